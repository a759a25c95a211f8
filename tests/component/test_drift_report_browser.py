"""The drift report renders in a real headless Chromium: table rows and one SVG plot per feature."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_wine

from mlops_operator.api.results import DriftPlan
from mlops_operator.workloads import drift
from tests.component.test_drift_workload import _write_partition
from tests.unit.drift.profiles import write_profile

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
START = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def _dump_dom(page: Path, profile_dir: Path) -> str:
    assert CHROMIUM is not None
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile_dir}",
    ]
    done = subprocess.run([CHROMIUM, *flags, "--dump-dom", page.as_uri()], capture_output=True, timeout=120, check=True)
    return done.stdout.decode()


def test_report_renders_table_and_plots_in_chromium(tmp_path: Path) -> None:
    wine = load_wine(as_frame=True).frame.drop(columns="target")
    wine["colour_band"] = pd.qcut(wine["color_intensity"], 3, labels=["pale", "mid", "deep"]).astype(str)
    reference, current = wine.iloc[::2].reset_index(drop=True), wine.iloc[1::2].reset_index(drop=True)
    current["alcohol"] = current["alcohol"] + 2.0  # one obviously drifted feature
    profile = write_profile(reference, {"colour_band"}, tmp_path / "profile")
    _write_partition(tmp_path / "collected", current, START, "part")
    plan = DriftPlan(
        namespace="default",
        monitor="wine",
        model="wine",
        profile_uri=str(profile),
        collected_prefix=str(tmp_path / "collected"),
        window_start=START,
        window_end=START + timedelta(hours=1),
        min_samples=10,
        output_dir=str(tmp_path / "out"),
    )
    result = drift.check(plan, tmp_path / "cache")
    page = tmp_path / "out" / "report.html"
    html = page.read_text()
    assert "<script" not in html and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")

    dom = _dump_dom(page, tmp_path / "chromium-profile")
    features = [*reference.columns]
    assert dom.count("<tr class=") == len(features)
    assert dom.count("<figure") == len(features) and dom.count("<svg") == len(features)
    assert np.sum([dom.count(f'data-feature="{name}"') for name in features]) == 2 * len(features)
    assert f'id="verdict" class="verdict-{result.verdict}"' in dom
    assert '<tr class="drifted" data-feature="alcohol">' in dom
    assert dom.count('class="bar-reference"') >= len(features) and dom.count('class="bar-current"') >= len(features)
