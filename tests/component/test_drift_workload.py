"""The drift workload run for real: a breast-cancer reference, collected Parquet partitions, verdicts.

The reference is one random half of scikit-learn's breast-cancer data (30 numeric features plus a
categorical size band derived from the mean radius); the undrifted window is the other half, the
drifted window the same rows scaled and shifted. Windows are real hive partitions with rows on both
sides of the window's edges.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.datasets import load_breast_cancer

from mlops_operator import contracts
from mlops_operator.api.plans import DriftPlan
from mlops_operator.api.results import DriftFeatureResult, DriftResult, LiveQualityResult, PredictionDriftResult
from mlops_operator.api.v1alpha1.driftmonitor import DriftTest
from mlops_operator.workloads import drift
from tests.unit.drift.profiles import write_profile

REPO = Path(__file__).resolve().parents[2]
CLI = REPO / ".venv" / "bin" / "mlops-operator"
WINDOW_START = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
WINDOW_END = WINDOW_START + timedelta(hours=1)
CATEGORICAL = {"size_band"}


def _breast_cancer() -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = load_breast_cancer(as_frame=True).frame.drop(columns="target")
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    frame["size_band"] = pd.cut(frame["mean_radius"], [0, 12, 15, 100], labels=["small", "medium", "large"]).astype(str)
    order = np.random.default_rng(0).permutation(len(frame))
    half = len(frame) // 2
    return frame.iloc[order[:half]].reset_index(drop=True), frame.iloc[order[half:]].reset_index(drop=True)


def _shifted(frame: pd.DataFrame) -> pd.DataFrame:
    moved = frame.copy()
    numeric = [c for c in frame.columns if c not in CATEGORICAL]
    moved[numeric] = moved[numeric] * 1.3 + moved[numeric].std() * 0.5
    moved["size_band"] = np.where(np.arange(len(frame)) % 2 == 0, "large", moved["size_band"])
    return moved


def _write_partition(prefix: Path, frame: pd.DataFrame, start: datetime, name: str) -> None:
    """Rows one second apart from `start`, into the hour partition(s) they fall in."""
    stamps = [start + timedelta(seconds=i) for i in range(len(frame))]
    table = frame.copy()
    table[contracts.COLLECT_TIME_COLUMN] = stamps
    table[contracts.COLLECT_PREDICTION_COLUMN] = 0.0
    table[contracts.COLLECT_MODEL_VERSION_COLUMN] = 1
    table[contracts.COLLECT_TIME_COLUMN] = pd.to_datetime(table[contracts.COLLECT_TIME_COLUMN], utc=True)
    for hour, rows in table.groupby(table[contracts.COLLECT_TIME_COLUMN].dt.floor("h")):
        directory = prefix / f"date={hour:%Y-%m-%d}" / f"hour={hour:%H}"
        directory.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pandas(rows, preserve_index=False), directory / f"{name}.parquet")


@pytest.fixture(scope="module")
def halves() -> tuple[pd.DataFrame, pd.DataFrame]:
    return _breast_cancer()


@pytest.fixture
def setup(tmp_path: Path, halves: tuple[pd.DataFrame, pd.DataFrame]) -> dict[str, Path]:
    reference, _ = halves
    profile = write_profile(reference, CATEGORICAL, tmp_path / "datasets" / "cancer" / "v1")
    return {
        "profile": profile,
        "collected": tmp_path / "collected",
        "out": tmp_path / "drift",
        "cache": tmp_path / "cache",
    }


def _plan(paths: dict[str, Path], **overrides: object) -> DriftPlan:
    fields: dict[str, object] = {
        "namespace": "default",
        "monitor": "cancer-monitor",
        "model": "cancer",
        "profile_uri": str(paths["profile"]),
        "collected_prefix": str(paths["collected"]),
        "window_start": WINDOW_START,
        "window_end": WINDOW_END,
        "min_samples": 100,
        "output_dir": str(paths["out"]),
    }
    fields.update(overrides)
    return DriftPlan.model_validate(fields)


def _run_cli(plan: DriftPlan | str, tmp_path: Path, *extra: str) -> tuple[int, DriftResult, bytes]:
    termination = tmp_path / "termination-log"
    spec = plan if isinstance(plan, str) else plan.model_dump_json(by_alias=True)
    env = {**os.environ, contracts.ENV_TERMINATION_LOG: str(termination)}
    done = subprocess.run(
        [str(CLI), "drift", contracts.PLAN_FLAG, spec, *extra],
        capture_output=True,
        timeout=120,
        env=env,
        check=False,
    )
    sys.stderr.write(done.stderr.decode()[-2000:])
    message = termination.read_bytes()
    assert json.loads(done.stdout.decode().strip().splitlines()[-1]) == json.loads(message)
    return done.returncode, DriftResult.model_validate_json(message), message


def _run(plan: DriftPlan, cache: Path) -> DriftResult:
    return drift.check(plan, cache)


def test_undrifted_window_via_the_cli(
    setup: dict[str, Path], halves: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    _, current = halves
    _write_partition(setup["collected"], current, WINDOW_START + timedelta(minutes=5), "inside")
    _write_partition(setup["collected"], _shifted(current), WINDOW_START - timedelta(minutes=30), "before")
    _write_partition(setup["collected"], _shifted(current), WINDOW_END, "after")
    code, result, message = _run_cli(_plan(setup), tmp_path, "--cache-dir", str(setup["cache"]))
    assert code == 0 and len(message) <= contracts.TERMINATION_MESSAGE_LIMIT
    assert result.ok and result.verdict == "NoDrift"
    assert result.samples == len(current)  # only the rows inside [start, end)
    assert result.drifted_share is not None and result.drifted_share < 0.5
    full = DriftResult.model_validate_json(Path(setup["out"] / "result.json").read_bytes())
    assert len(full.scores) == 31 and {s.test for s in full.scores} == {"ks", "chisquare"}
    assert (setup["out"] / "report.html").read_text().count("<svg") == 31
    assert list(setup["cache"].glob("*/reference.npz")), "the reference sample is cached per profile hash"


def test_shifted_window_drifts_with_scores_equal_to_scipy(
    setup: dict[str, Path], halves: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    from scipy import stats as scipy_stats

    reference, current = halves
    moved = _shifted(current)
    _write_partition(setup["collected"], moved, WINDOW_START + timedelta(minutes=1), "inside")
    result = _run(_plan(setup), setup["cache"])
    assert result.verdict == "Drift" and result.drifted_share is not None and result.drifted_share >= 0.5
    scores = {s.name: s for s in result.scores}
    for name in ("mean_radius", "worst_area", "mean_smoothness"):
        expected = scipy_stats.ks_2samp(reference[name], moved[name]).pvalue
        assert scores[name].score == pytest.approx(expected, rel=1e-9)
        assert scores[name].drifted == (expected <= 0.05)
    assert set(result.drifted_features) == {n for n, s in scores.items() if s.drifted}


def test_too_few_rows_give_no_verdict(setup: dict[str, Path], halves: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    _, current = halves
    _write_partition(setup["collected"], _shifted(current).head(40), WINDOW_START, "few")
    result = _run(_plan(setup), setup["cache"])
    assert (result.verdict, result.samples, result.drifted_features) == ("NotEnoughData", 40, [])
    assert "minSamples=100" in (result.message or "")
    assert (setup["out"] / "result.json").exists()


def test_an_empty_window_gives_no_verdict(setup: dict[str, Path]) -> None:
    assert _run(_plan(setup), setup["cache"]).verdict == "NotEnoughData"


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda f: f.drop(columns=["mean_texture"]), "'mean_texture' is missing"),
        (lambda f: f.assign(surprise=1.0), "'surprise' is not a feature"),
        (lambda f: f.assign(mean_area=f["mean_area"].astype(str)), "'mean_area' is numeric in the reference"),
    ],
)
def test_schema_mismatch_is_its_own_verdict(
    setup: dict[str, Path], halves: tuple[pd.DataFrame, pd.DataFrame], change: object, needle: str
) -> None:
    _, current = halves
    _write_partition(setup["collected"], change(current), WINDOW_START, "changed")  # type: ignore[operator]
    result = _run(_plan(setup), setup["cache"])
    assert result.ok and result.verdict == "SchemaMismatch"
    assert needle in (result.message or "")
    assert result.drifted_features == []


def test_overrides_and_bonferroni_reach_the_result(
    setup: dict[str, Path], halves: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    _, current = halves
    _write_partition(setup["collected"], current, WINDOW_START, "inside")
    plan = _plan(
        setup,
        bonferroni=True,
        features=[
            {"name": "mean_radius", "test": "psi", "threshold": 0.3},
            {"name": "size_band", "ignore": True},
        ],
    )
    scores = {s.name: s for s in _run(plan, setup["cache"]).scores}
    assert "size_band" not in scores
    assert (scores["mean_radius"].test, scores["mean_radius"].threshold) == (DriftTest.PSI, 0.3)
    assert scores["mean_texture"].threshold == pytest.approx(0.05 / 30)


def test_bad_inputs_exit_with_reserved_codes(
    setup: dict[str, Path], tmp_path: Path, halves: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    code, result, _ = _run_cli('{"namespace": "default"}', tmp_path)
    assert (code, result.ok, result.verdict, result.reason) == (
        contracts.ExitCode.SPEC_ERROR,
        False,
        "Failed",
        "InvalidSpec",
    )
    missing = _plan(setup, profile_uri=str(tmp_path / "nowhere" / "profile.json"))
    assert drift.main([contracts.PLAN_FLAG, missing.model_dump_json()]) == contracts.ExitCode.STORE_ERROR

    (setup["profile"].parent / "reference.npz").write_bytes(b"not a zip archive")
    corrupt_cache = tmp_path / "fresh-cache"
    args = [contracts.PLAN_FLAG, _plan(setup).model_dump_json(), "--cache-dir", str(corrupt_cache)]
    assert drift.main(args) == contracts.ExitCode.DATA_ERROR

    write_profile(halves[0], CATEGORICAL, setup["profile"].parent)
    broken = setup["collected"] / f"date={WINDOW_START:%Y-%m-%d}" / f"hour={WINDOW_START:%H}"
    broken.mkdir(parents=True)
    (broken / "torn.parquet").write_bytes(b"PAR1 torn write")
    assert drift.main(args) == contracts.ExitCode.DATA_ERROR


def test_the_termination_message_keeps_the_verdict_and_drifted_features() -> None:
    scores = [
        DriftFeatureResult(name=f"feature_{i:04d}", test=DriftTest.KS, score=0.5, threshold=0.05, drifted=i % 7 == 0)
        for i in range(400)
    ]
    drifted = [s.name for s in scores if s.drifted]
    full = DriftResult(
        ok=True,
        verdict="Drift",
        samples=10_000,
        drifted_share=len(drifted) / 400,
        drifted_features=drifted,
        scores=scores,
    )
    small = drift.compact(full)
    encoded = small.model_dump_json(by_alias=True, exclude_none=True).encode()
    assert len(encoded) <= contracts.TERMINATION_MESSAGE_LIMIT
    assert small.verdict == "Drift" and small.drifted_features == drifted
    assert small.scores and all(s.drifted for s in small.scores[: min(len(small.scores), len(drifted))])
    assert "trimmed" in (small.message or "")


def test_the_termination_message_keeps_live_quality_and_prediction_drift() -> None:
    scores = [
        DriftFeatureResult(name=f"feature_{i:04d}", test=DriftTest.KS, score=0.5, threshold=0.05, drifted=False)
        for i in range(400)
    ]
    quality = LiveQualityResult(
        metric="f1", value=0.81, labelled=1200, predictions=5000, late=40, unknown=3, duplicates=12,
        metrics={m: 0.8 for m in ("accuracy", "f1", "precision", "recall")},
        skipped={"roc_auc": "the collected predictions carry no class probabilities (" + "x" * 200 + ")"},
        note="skipped 3 unreadable files: " + "y" * 700,
    )
    prediction = PredictionDriftResult(test=DriftTest.JENSEN_SHANNON, score=0.02, threshold=0.1, drifted=False)
    full = DriftResult(ok=True, verdict="NoDrift", samples=9000, drifted_share=0.0, scores=scores, quality=quality,
                       prediction_drift=prediction)
    small = drift.compact(full)
    encoded = small.model_dump_json(by_alias=True, exclude_none=True).encode()
    assert len(encoded) <= contracts.TERMINATION_MESSAGE_LIMIT
    assert small.quality == quality and small.prediction_drift == prediction and small.scores


def test_the_job_prunes_what_the_retention_lets_go_after_its_check(
    setup: dict[str, Path], halves: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    _, current = halves
    _write_partition(setup["collected"], current, WINDOW_START + timedelta(minutes=5), "inside")
    _write_partition(setup["collected"], current.iloc[:10], WINDOW_START - timedelta(days=3), "old")
    old = setup["collected"] / "date=2026-02-26" / "hour=10" / "old.parquet"
    old_bytes = old.stat().st_size
    labels = tmp_path / "labels"
    (labels / "date=2026-02-20").mkdir(parents=True)
    (labels / "date=2026-02-20" / "l.parquet").write_bytes(b"l" * 9)
    runs = setup["out"].parent / "runs"
    for stamp in ("20260201T000000Z", "20260202T000000Z"):
        (runs / stamp).mkdir(parents=True)
        (runs / stamp / "result.json").write_bytes(b"{}")
    retention = {
        "partition_prefixes": [str(setup["collected"]), str(labels)],
        "max_age_days": 2,
        "runs_dir": str(runs),
        "keep_runs": 2,
    }
    plan = _plan(setup, output_dir=str(runs / "20260301T110000Z"), retention=retention)
    code, result, _ = _run_cli(plan, tmp_path, "--cache-dir", str(setup["cache"]))
    assert code == 0 and result.verdict == "NoDrift" and result.samples == len(current)
    assert result.pruned_objects == 3  # the old hour, the old labels day, the oldest run
    assert result.pruned_bytes == old_bytes + 9 + 2
    assert not old.exists() and not (labels / "date=2026-02-20").exists()
    assert sorted(p.name for p in runs.iterdir()) == ["20260202T000000Z", "20260301T110000Z"]
    assert sorted(p.parent.name for p in setup["collected"].glob("*/*/*.parquet")) == ["hour=10"]
