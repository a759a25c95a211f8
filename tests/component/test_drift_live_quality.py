"""Live quality and prediction drift, run for real: the drift workload (CLI) on collected Parquet
partitions with prediction ids and probabilities, and label files with late labels, duplicates,
unknown ids, labels that arrive after the check, mixed label types and a torn file; and a Shadow
rollout's recorded rows (written by the server's own recorder), scored with the same labels.

The model is a real LogisticRegression trained on one half of the breast-cancer data (the profiled
reference, with its target); the other half is what the server collected, one request per row.
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
from sklearn import metrics as skm
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from mlops_operator import contracts
from mlops_operator.api.plans import DriftPlan, LiveQualityPlan, PredictionDriftPlan, QualityPoint
from mlops_operator.api.profile import PROFILE_FILE
from mlops_operator.api.results import DriftResult
from mlops_operator.workloads import drift
from mlops_operator.workloads.serve.mirror import RecorderSettings, ShadowRecorder
from tests.unit.drift.profiles import build_profile, npz_bytes, samples_of

REPO = Path(__file__).resolve().parents[2]
CLI = REPO / ".venv" / "bin" / "mlops-operator"
END = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
DRIFT_START = END - timedelta(hours=1)
QUALITY_START = END - timedelta(days=1)


@pytest.fixture(scope="module")
def world() -> dict[str, object]:
    frame = load_breast_cancer(as_frame=True).frame
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    order = np.random.default_rng(1).permutation(len(frame))
    half = len(frame) // 2
    reference = frame.iloc[order[:half]].reset_index(drop=True)
    current = frame.iloc[order[half:]].reset_index(drop=True)
    features = [c for c in frame.columns if c != "target"]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    model.fit(reference[features], reference["target"])
    stump = DecisionTreeClassifier(max_depth=1, random_state=0).fit(reference[features], reference["target"])
    return {
        "shadowed": stump.predict(current[features]),  # a weaker candidate
        "reference": reference,
        "current": current,
        "features": features,
        "predicted": model.predict(current[features]),
        "probability": model.predict_proba(current[features])[:, 1],
    }


def _write_profile(reference: pd.DataFrame, directory: Path) -> Path:
    directory.mkdir(parents=True)
    profile = build_profile(reference, set(), directory).model_copy(update={"target": "target"})
    (directory / "reference.npz").write_bytes(npz_bytes(samples_of(reference, set())))
    (directory / PROFILE_FILE).write_text(profile.model_dump_json(by_alias=True))
    return directory / PROFILE_FILE


def _collect(prefix: Path, rows: pd.DataFrame, stamps: list[datetime], name: str) -> None:
    table = rows.copy()
    table[contracts.COLLECT_TIME_COLUMN] = pd.to_datetime(stamps, utc=True)
    table[contracts.COLLECT_MODEL_VERSION_COLUMN] = "1"
    for hour, part in table.groupby(table[contracts.COLLECT_TIME_COLUMN].dt.floor("h")):
        directory = prefix / f"date={hour:%Y-%m-%d}" / f"hour={hour:%H}"
        directory.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pandas(part, preserve_index=False), directory / f"{name}.parquet")


def _labels(prefix: Path, ids: list[str], values: list[object], times: list[datetime], name: str) -> None:
    day = times[0]
    directory = prefix / f"date={day:%Y-%m-%d}"
    directory.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            contracts.LABEL_ID_COLUMN: ids,
            contracts.LABEL_VALUE_COLUMN: values,
            contracts.LABEL_TIME_COLUMN: pa.array(times, type=pa.timestamp("us", tz="UTC")),
        }
    )
    pq.write_table(table, directory / f"{name}.parquet")


@pytest.fixture
def scene(tmp_path: Path, world: dict[str, object]) -> dict[str, object]:
    """Collected: the current half in the drift window (one request per row, id req-<i>), 50 older
    predictions in the span before the quality window. Labels: described inline."""
    reference, current = world["reference"], world["current"]
    assert isinstance(reference, pd.DataFrame) and isinstance(current, pd.DataFrame)
    features = world["features"]
    assert isinstance(features, list)
    collected, labels = tmp_path / "collected", tmp_path / "labels"
    rows = current[features].copy()
    rows[contracts.COLLECT_ID_COLUMN] = [f"req-{i}" for i in range(len(rows))]
    rows[contracts.COLLECT_PREDICTION_COLUMN] = np.asarray(world["predicted"])
    rows[contracts.COLLECT_PROBABILITY_COLUMN] = np.asarray(world["probability"])
    _collect(collected, rows, [DRIFT_START + timedelta(seconds=5 * i) for i in range(len(rows))], "now")
    old = rows.head(50).copy()
    old[contracts.COLLECT_ID_COLUMN] = [f"old-{i}" for i in range(50)]
    _collect(collected, old, [QUALITY_START - timedelta(hours=2)] * 50, "old")

    truth = current["target"].to_numpy()
    labelled = np.arange(0, len(rows), 2)  # every second prediction is labelled
    arrive = END - timedelta(minutes=20)
    # the first 30 labelled ids get a wrong label first and the right one later (the later wins)
    _labels(labels, [f"req-{i}" for i in labelled[:30]], [int(1 - truth[i]) for i in labelled[:30]],
            [arrive - timedelta(minutes=5)] * 30, "early")
    _labels(labels, [f"req-{i}" for i in labelled], [int(truth[i]) for i in labelled], [arrive] * len(labelled),
            "main")
    _labels(labels, [f"old-{i}" for i in range(12)], ["1"] * 12, [arrive] * 12, "late")  # text labels, late
    _labels(labels, [f"ghost-{i}" for i in range(7)], [1] * 7, [arrive] * 7, "ghost")
    _labels(labels, ["req-1", "req-3"], [0, 0], [END + timedelta(minutes=1)] * 2, "future")  # after the check
    (labels / f"date={arrive:%Y-%m-%d}" / "torn.parquet").write_bytes(b"PAR1 torn")
    return {
        "profile": _write_profile(reference, tmp_path / "datasets" / "cancer" / "v1"),
        "collected": collected,
        "labels": labels,
        "out": tmp_path / "drift",
        "labelled": labelled,
    }


def _plan(scene: dict[str, object], **quality: object) -> DriftPlan:
    return DriftPlan(
        namespace="default",
        monitor="cancer-monitor",
        model="cancer",
        profile_uri=str(scene["profile"]),
        collected_prefix=str(scene["collected"]),
        window_start=DRIFT_START,
        window_end=END,
        output_dir=str(scene["out"]),
        quality=LiveQualityPlan.model_validate(
            {"labels_prefix": str(scene["labels"]), "window_start": QUALITY_START, "task": "classification",
             "metric": "f1", **quality}
        ),
        prediction_drift=PredictionDriftPlan(),
        baseline_note="the serving version's own dataset version",
    )


def _run_cli(plan: DriftPlan, tmp_path: Path) -> tuple[int, DriftResult, bytes]:
    termination = tmp_path / "termination-log"
    env = {**os.environ, contracts.ENV_TERMINATION_LOG: str(termination)}
    done = subprocess.run(
        [str(CLI), "drift", contracts.PLAN_FLAG, plan.model_dump_json(by_alias=True), "--cache-dir",
         str(tmp_path / "cache")],
        capture_output=True, timeout=180, env=env, check=False,
    )
    sys.stderr.write(done.stderr.decode()[-3000:])
    message = termination.read_bytes()
    assert json.loads(done.stdout.decode().strip().splitlines()[-1]) == json.loads(message)
    return done.returncode, DriftResult.model_validate_json(message), message


def test_live_quality_through_the_cli_equals_sklearn_on_the_joined_rows(
    scene: dict[str, object], world: dict[str, object], tmp_path: Path
) -> None:
    history = [QualityPoint(time=END - timedelta(hours=h), value=0.99 - h / 100, labelled=100) for h in (3, 2, 1)]
    code, result, message = _run_cli(_plan(scene, history=history), tmp_path)
    assert code == 0 and len(message) <= contracts.TERMINATION_MESSAGE_LIMIT
    assert result.ok and result.verdict == "NoDrift"
    quality = result.quality
    assert quality is not None
    labelled = np.asarray(scene["labelled"])
    truth = np.asarray(world["current"]["target"])[labelled]  # type: ignore[index]
    predicted = np.asarray(world["predicted"])[labelled]
    probability = np.asarray(world["probability"])[labelled]
    rows = len(world["current"])  # type: ignore[arg-type]
    assert (quality.labelled, quality.predictions, quality.late, quality.unknown) == (len(labelled), rows, 12, 7)
    assert quality.duplicates == 30 and quality.invalid == 0
    assert quality.metric == "f1" and quality.value == pytest.approx(skm.f1_score(truth, predicted))
    assert quality.metrics["accuracy"] == pytest.approx(skm.accuracy_score(truth, predicted))
    assert quality.metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(truth, probability))
    assert "torn.parquet" in (quality.note or "")

    prediction = result.prediction_drift
    assert prediction is not None and prediction.test == "jensenshannon" and prediction.samples == rows
    assert prediction.score is not None and not prediction.drifted  # a good model predicts the class mix

    html = (Path(str(scene["out"])) / "report.html").read_text()
    assert 'id="live-quality"' in html and 'id="prediction-drift"' in html and "quality-line" in html
    assert html.count("<tr><td>2026-03-02T") == 4  # three earlier checks and this one
    assert "the serving version&#x27;s own dataset version" in html


def test_without_probabilities_roc_auc_is_skipped_and_an_unknown_target_is_said(
    scene: dict[str, object], tmp_path: Path
) -> None:
    for part in Path(str(scene["collected"])).rglob("*.parquet"):
        table = pq.read_table(part)
        pq.write_table(table.drop_columns([contracts.COLLECT_PROBABILITY_COLUMN]), part)
    plan = _plan(scene, metric="roc_auc").model_copy(update={"prediction_drift": PredictionDriftPlan(target="nope")})
    result = drift.check(plan, tmp_path / "cache")
    assert result.quality is not None and result.quality.value is None
    assert "probabilities" in result.quality.skipped["roc_auc"]
    assert "roc_auc not computed" in (result.quality.note or "")
    assert result.prediction_drift is not None and "no column 'nope'" in (result.prediction_drift.note or "")


def test_without_labels_or_ids_the_check_still_gives_its_verdict(scene: dict[str, object], tmp_path: Path) -> None:
    plan = _plan(scene).model_copy(deep=True)
    assert plan.quality is not None
    plan.quality.labels_prefix = str(tmp_path / "no-labels")
    result = drift.check(plan, tmp_path / "cache")
    assert result.verdict == "NoDrift" and result.quality is not None
    assert (result.quality.labelled, result.quality.predictions) == (0, 285)
    assert "no label has arrived" in (result.quality.note or "")


def _record(
    prefix: str, at: datetime, version: str, ids: list[str], candidate: list[object], champion: list[object]
) -> None:
    """Rows as a mirroring champion records them (its own recorder), one one-row request each."""
    settings = RecorderSettings(uri=prefix, candidate_version=version, champion_version="1", regression=False)
    recorder = ShadowRecorder(settings, clock=lambda: at.timestamp())
    for id_, mine, theirs in zip(ids, candidate, champion, strict=True):
        recorder.record(id_, [mine], [theirs])
    assert recorder.flush() == len(ids)


def test_a_shadowed_candidate_is_scored_beside_the_champion_on_the_same_labelled_rows(
    scene: dict[str, object], world: dict[str, object], tmp_path: Path
) -> None:
    shadow = (tmp_path / "shadow").as_uri()
    rows = len(world["current"])  # type: ignore[arg-type]
    champion, candidate = np.asarray(world["predicted"]), np.asarray(world["shadowed"])
    mirrored = np.arange(0, rows, 3)  # a third of the requests was mirrored
    _record(shadow, DRIFT_START + timedelta(minutes=1), "2", [f"req-{i}" for i in mirrored],
            candidate[mirrored].tolist(), champion[mirrored].tolist())
    # an earlier candidate, rolled back, earlier in the quality window: counted, not scored
    _record(shadow, QUALITY_START + timedelta(hours=1), "1b", [f"req-{i}" for i in range(10)], [0] * 10, [1] * 10)
    code, result, message = _run_cli(_plan(scene, shadow_prefix=shadow), tmp_path)
    assert code == 0 and len(message) <= contracts.TERMINATION_MESSAGE_LIMIT
    assert result.quality is not None and result.quality.shadow is not None
    scored = result.quality.shadow
    both = np.intersect1d(mirrored, np.asarray(scene["labelled"]))  # mirrored and labelled: every sixth row
    truth = np.asarray(world["current"]["target"])[both]  # type: ignore[index]
    assert (scored.version, scored.champion_version, scored.metric) == ("2", "1", "f1")
    assert (scored.labelled, scored.predictions) == (both.size, mirrored.size)
    assert scored.value == pytest.approx(skm.f1_score(truth, candidate[both]))
    assert scored.champion_value == pytest.approx(skm.f1_score(truth, champion[both]))
    assert scored.metrics["accuracy"] == pytest.approx(skm.accuracy_score(truth, candidate[both]))
    assert scored.champion_metrics["recall"] == pytest.approx(skm.recall_score(truth, champion[both]))
    assert scored.value != scored.champion_value  # the stump is a different model: the test can tell them apart
    assert "10 recorded rows of an earlier candidate left out" in (scored.message or "")
    # the champion's own live quality is unchanged by the shadow rows: all its labelled predictions
    assert result.quality.labelled == len(np.asarray(scene["labelled"]))

    full = DriftResult.model_validate_json((Path(str(scene["out"])) / "result.json").read_bytes())
    assert full.quality is not None and full.quality.shadow == scored
    html = (Path(str(scene["out"])) / "report.html").read_text()
    assert 'id="shadow-quality"' in html and 'id="shadow-metrics"' in html
    assert f'<td class="candidate">{scored.value:.4f}</td>' in html
    assert f'<td class="champion">{scored.champion_value:.4f}</td>' in html


def test_without_recorded_shadow_rows_there_is_no_shadow_score(scene: dict[str, object], tmp_path: Path) -> None:
    plan = _plan(scene, shadow_prefix=(tmp_path / "no-shadow").as_uri())
    result = drift.check(plan, tmp_path / "cache")
    assert result.quality is not None and result.quality.labelled > 0 and result.quality.shadow is None
    assert 'id="shadow-quality"' not in (Path(str(scene["out"])) / "report.html").read_text()
