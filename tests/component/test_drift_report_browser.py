"""The drift report renders in a real headless Chromium: table rows and one SVG plot per feature, with
every category named on its axis, n and missing shares per feature, and quantile ticks."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_wine

from mlops_operator.api.plans import DriftPlan
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
    current.loc[: len(current) // 4, "magnesium"] = np.nan  # a quarter of one feature missing
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

    # Every category on its axis, n and missing shares per feature, quantile ticks on numeric plots.
    axis = re.findall(r'<text class="axis-label"[^>]*><title>([^<]*)</title>', dom)
    assert sorted(axis) == ["deep", "mid", "pale"]
    assert dom.count('<td class="n-current">') == len(features) == dom.count('<span class="sizes">')
    magnesium = re.search(r'<tr class="\w+" data-feature="magnesium">.*?</tr>', dom)
    assert magnesium is not None
    missing = 1 + len(current) // 4
    assert f'<td class="n-current">{len(current) - missing}</td>' in magnesium.group()
    assert f'<td class="missing-current">{missing / len(current):.1%}</td>' in magnesium.group()
    assert dom.count('class="quantile-tick"') == 5 * (len(features) - 1)
