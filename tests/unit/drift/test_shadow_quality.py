"""A Shadow rollout's candidate scored with the feedback labels: the join of the labels to the rows the
mirroring champion recorded, both models' metrics on exactly the same rows against sklearn.metrics,
the reading of recorded Parquet parts (window, candidate versions, torn files), the report section and
the termination-message budget."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn import metrics as skm

from mlops_operator import contracts
from mlops_operator.api.results import DriftFeatureResult, DriftResult, LiveQualityResult
from mlops_operator.api.v1alpha1.driftmonitor import DriftTest, LiveQuality
from mlops_operator.api.v1alpha1.model import Metric, Task
from mlops_operator.api.v1alpha1.rollout import ShadowLiveQuality
from mlops_operator.drift import quality, report
from mlops_operator.drift.quality import Recorded, Side
from mlops_operator.workloads import common, drift, live_quality
from mlops_operator.workloads.serve.mirror import RecorderSettings, ShadowRecorder

END = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
START = END - timedelta(hours=6)


def ids(*values: int) -> np.ndarray:
    return np.asarray(values, dtype=np.int64)


def codes(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.int64)


# --- the join and the scores (encoded sides) --------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_both_models_are_scored_on_the_same_labelled_rows_as_sklearn_does(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 400
    truth = rng.integers(0, 2, n)
    # the champion is right 85 % of the time, the candidate 70 %: the scores must tell them apart
    champion = np.where(rng.random(n) < 0.85, truth, 1 - truth)
    candidate = np.where(rng.random(n) < 0.70, truth, 1 - truth)
    labelled = np.sort(rng.choice(n, 250, replace=False))
    # labels arrive shuffled, with 20 unknown ids and a wrong first label for 15 rows (the later wins)
    wrong = labelled[:15]
    label_ids = np.concatenate([wrong, labelled, np.arange(n, n + 20)])
    label_values = np.concatenate([1 - truth[wrong], truth[labelled], np.zeros(20, dtype=np.int64)])
    label_times = np.concatenate([np.full(15, 1.0), np.full(250, 2.0), np.full(20, 2.0)])
    order = rng.permutation(label_ids.size)
    labels = Side(codes(label_ids[order]), label_times[order], codes(label_values[order]))
    recorded = Recorded(Side(ids(*range(n)), np.zeros(n), codes(candidate)), codes(champion), "3", "2")

    shadow = quality.assess_shadow(recorded, labels, task=Task.CLASSIFICATION, metric=Metric.F1, model_classes=2)

    y, mine, theirs = truth[labelled], candidate[labelled], champion[labelled]
    assert (shadow.version, shadow.champion_version, shadow.metric) == ("3", "2", "f1")
    assert (shadow.labelled, shadow.predictions) == (250, n)
    assert shadow.value == pytest.approx(skm.f1_score(y, mine))
    assert shadow.champion_value == pytest.approx(skm.f1_score(y, theirs))
    assert shadow.value < shadow.champion_value  # type: ignore[operator]
    for name, score in (
        ("accuracy", skm.accuracy_score),
        ("precision", skm.precision_score),
        ("recall", skm.recall_score),
    ):
        assert shadow.metrics[name] == pytest.approx(score(y, mine)), name
        assert shadow.champion_metrics[name] == pytest.approx(score(y, theirs)), name
    assert "roc_auc" not in shadow.metrics and shadow.message is None


def test_a_pair_either_model_answered_invalidly_is_left_out_for_both() -> None:
    missing = quality.MISSING_CLASS
    recorded = Recorded(Side(ids(0, 1, 2, 3), np.zeros(4), ids(1, missing, 0, 1)), ids(1, 1, missing, 0), "2")
    labels = Side(ids(0, 1, 2, 3), np.ones(4), ids(1, 1, 0, 1))
    shadow = quality.assess_shadow(recorded, labels, task=Task.CLASSIFICATION, metric=Metric.ACCURACY, model_classes=2)
    # rows 1 (the candidate's answer unreadable) and 2 (the champion's) are scored for neither
    assert shadow.labelled == 2
    assert (shadow.value, shadow.champion_value) == (1.0, 0.5)


def test_regression_scores_equal_sklearn_on_the_same_rows() -> None:
    rng = np.random.default_rng(5)
    truth = rng.normal(100, 20, 300)
    candidate = truth + rng.normal(0, 5, 300)
    champion = truth + rng.normal(3, 10, 300)
    champion[9] = np.nan  # a champion answer that was no number: row 9 is scored for neither
    labelled = np.arange(0, 300, 3)
    recorded = Recorded(Side(ids(*range(300)), np.zeros(300), candidate), champion, "5", "4")
    labels = Side(codes(labelled), np.ones(labelled.size), truth[labelled])
    shadow = quality.assess_shadow(recorded, labels, task=Task.REGRESSION, metric=Metric.RMSE)
    rows = labelled[labelled != 9]
    assert shadow.labelled == rows.size == 99
    assert shadow.value == pytest.approx(skm.root_mean_squared_error(truth[rows], candidate[rows]))
    assert shadow.champion_value == pytest.approx(skm.root_mean_squared_error(truth[rows], champion[rows]))
    assert shadow.metrics["r2"] == pytest.approx(skm.r2_score(truth[rows], candidate[rows]))
    assert shadow.champion_metrics["mae"] == pytest.approx(skm.mean_absolute_error(truth[rows], champion[rows]))


def test_without_labels_or_probabilities_the_reason_is_said() -> None:
    recorded = Recorded(Side(ids(0, 1), np.zeros(2), ids(0, 1)), ids(0, 1), "2")
    none = Side(ids(), np.zeros(0), ids())
    shadow = quality.assess_shadow(recorded, none, task=Task.CLASSIFICATION, metric=Metric.ACCURACY, model_classes=2)
    assert shadow.value is None and shadow.labelled == 0 and "no label has arrived" in (shadow.message or "")
    labels = Side(ids(0, 1), np.ones(2), ids(0, 1))
    auc = quality.assess_shadow(recorded, labels, task=Task.CLASSIFICATION, metric=Metric.ROC_AUC, model_classes=2)
    assert auc.value is None and auc.metrics["accuracy"] == 1.0
    assert auc.message == "roc_auc not computed: the mirror records no probabilities"


# --- reading recorded parts and encoding them ---------------------------------------------------------


def record(
    prefix: str, at: datetime, version: str, rows: list[tuple[str, object, object]], regression: bool = False
) -> None:
    """Rows written by the server's own recorder, as a mirroring champion writes them."""
    settings = RecorderSettings(uri=prefix, candidate_version=version, champion_version="1", regression=regression)
    recorder = ShadowRecorder(settings, clock=lambda: at.timestamp())
    for request_id, candidate, champion in rows:
        recorder.record(request_id, [candidate], [champion])
    assert recorder.flush() == len(rows)


def label_file(prefix: Path, ids_: list[str], values: list[object], at: datetime) -> None:
    directory = prefix / f"date={at:%Y-%m-%d}"
    directory.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.table(
            {"id": ids_, "label": values, "labelled_at": pa.array([at] * len(ids_), pa.timestamp("us", tz="UTC"))}
        ),
        directory / f"{len(list(directory.iterdir()))}.parquet",
    )


def test_recorded_parts_are_read_for_the_newest_candidate_in_the_window(tmp_path: Path) -> None:
    shadow = tmp_path / "shadow" / "wine"
    prefix = shadow.as_uri()
    record(prefix, END - timedelta(hours=5), "2", [(f"a-{i}", "barolo", "barolo") for i in range(4)])
    record(
        prefix,
        END - timedelta(hours=2),
        "3",
        [(f"b-{i}", c, "barbera") for i, c in enumerate(["barbera", "grignolino", "barbera", "barolo"])],
    )
    record(prefix, END + timedelta(minutes=5), "4", [("c-0", "barolo", "barolo")])  # after the check
    record(prefix, START - timedelta(hours=1), "3", [("d-0", "barolo", "barolo")])  # before the window
    hour = END - timedelta(hours=2)
    (shadow / f"date={hour:%Y-%m-%d}" / f"hour={hour:%H}" / "torn.parquet").write_bytes(b"PAR1 torn")
    skipped: list[str] = []
    rows = live_quality.read_shadow(prefix, START, END, skipped)
    assert rows is not None
    assert (rows.version, rows.champion_version, rows.older_rows) == ("3", "1", 4)
    assert rows.ids.to_pylist() == ["b-0", "b-1", "b-2", "b-3"]
    assert len(skipped) == 1 and "torn.parquet" in skipped[0]
    assert live_quality.read_shadow((tmp_path / "none").as_uri(), START, END, []) is None

    labels_dir = tmp_path / "labels"
    label_file(
        labels_dir,
        ["b-0", "b-1", "b-2", "b-3", "a-0"],
        ["barbera", "barbera", "barolo", "barolo", "x"],
        END - timedelta(minutes=30),
    )
    labels = live_quality.read_labels(labels_dir.as_uri(), START, END, [])
    scored = live_quality.score_shadow(
        rows, labels, Task.CLASSIFICATION, Metric.ACCURACY, ["barbera", "barolo", "grignolino"]
    )
    y = ["barbera", "barbera", "barolo", "barolo"]
    assert scored.labelled == 4
    assert scored.value == skm.accuracy_score(y, ["barbera", "grignolino", "barbera", "barolo"])
    assert scored.champion_value == skm.accuracy_score(y, ["barbera"] * 4)
    assert scored.metrics["f1"] == pytest.approx(
        skm.f1_score(y, ["barbera", "grignolino", "barbera", "barolo"], average="macro", zero_division=0)
    )
    assert "4 recorded rows of an earlier candidate left out" in (scored.message or "")


def test_labels_as_numbers_or_text_join_answers_recorded_as_text(tmp_path: Path) -> None:
    """The recorder keeps a classifier's answers as text; labels posted as 1, "1" or true all match."""
    prefix = (tmp_path / "shadow").as_uri()
    record(prefix, END - timedelta(hours=1), "2", [("r0", 1, 1), ("r1", 0, 1), ("r2", True, False), ("r3", 1.0, 0)])
    rows = live_quality.read_shadow(prefix, START, END, [])
    assert rows is not None
    label_file(tmp_path / "labels", ["r0", "r1"], ["1", "0"], END - timedelta(minutes=3))
    label_file(tmp_path / "labels", ["r2", "r3"], ["true", "1"], END - timedelta(minutes=2))
    labels = live_quality.read_labels((tmp_path / "labels").as_uri(), START, END, [])
    scored = live_quality.score_shadow(rows, labels, Task.CLASSIFICATION, Metric.ACCURACY, [])
    assert (scored.labelled, scored.value, scored.champion_value) == (4, 1.0, 0.25)


def test_regression_answers_are_read_as_numbers(tmp_path: Path) -> None:
    prefix = (tmp_path / "shadow").as_uri()
    record(
        prefix, END - timedelta(hours=1), "2", [("r0", 10.0, 12.0), ("r1", "n/a", 9.0), ("r2", 5, 5.5)], regression=True
    )
    rows = live_quality.read_shadow(prefix, START, END, [])
    assert rows is not None
    label_file(tmp_path / "labels", ["r0", "r1", "r2"], [11.0, 9.0, 5.0], END - timedelta(minutes=3))
    labels = live_quality.read_labels((tmp_path / "labels").as_uri(), START, END, [])
    scored = live_quality.score_shadow(rows, labels, Task.REGRESSION, Metric.MAE, [])
    assert scored.labelled == 2  # "n/a" is no number: r1 is scored for neither
    assert scored.value == pytest.approx(skm.mean_absolute_error([11.0, 5.0], [10.0, 5.0]))
    assert scored.champion_value == pytest.approx(skm.mean_absolute_error([11.0, 5.0], [12.0, 5.5]))


# --- status, report and the termination message -------------------------------------------------------


def a_shadow(**changes: object) -> ShadowLiveQuality:
    base = ShadowLiveQuality(
        version="3",
        champion_version="2",
        metric="accuracy",
        value=0.91,
        champion_value=0.88,
        labelled=120,
        predictions=400,
        metrics={"accuracy": 0.91, "f1": 0.9},
        champion_metrics={"accuracy": 0.88, "f1": 0.87},
    )
    return base.model_copy(update=changes)


def test_status_keeps_the_shadow_scores_of_the_result() -> None:
    from mlops_operator.api.results import LIVE_QUALITY_FIELDS

    result = LiveQualityResult(metric="accuracy", value=0.88, labelled=300, shadow=a_shadow())
    status = LiveQuality(**result.model_dump(include=set(LIVE_QUALITY_FIELDS)), time=END)
    assert status.shadow == a_shadow()
    wire = status.dump()["shadow"]
    assert (wire["value"], wire["championValue"], wire["championVersion"]) == (0.91, 0.88, "2")
    assert LiveQualityResult.model_validate({"metric": "accuracy"}).shadow is None  # older results stay valid


def test_the_report_section_shows_both_models_side_by_side() -> None:
    section = report.shadow_quality_section(a_shadow(version="<3>", message="1 row <left> out"))
    body = section.body_html
    assert section.id == "shadow-quality"
    assert '<tr data-metric="accuracy" class=headline><td>accuracy</td><td class="champion">0.8800</td>' in body
    assert '<td class="candidate">0.9100</td><td class="difference">+0.0300</td>' in body
    assert "candidate &lt;3&gt;" in body and "1 row &lt;left&gt; out" in body and "<3>" not in body
    assert "120 labelled of 400 recorded rows" in body
    empty = report.shadow_quality_section(a_shadow(metrics={}, champion_metrics={}, value=None, champion_value=None))
    assert 'id="shadow-metrics"' not in empty.body_html and "candidate —" in empty.body_html


def test_the_compact_result_keeps_the_shadow_headline_within_the_limit() -> None:
    scores = [
        DriftFeatureResult(name=f"feature_{i:03d}", test=DriftTest.KS, score=0.5, threshold=0.05, drifted=False)
        for i in range(200)
    ]
    long_note = "n" * 1000
    shadow = a_shadow(
        message="m" * 1000,
        metrics={f"m{i}": 0.5 for i in range(16)},
        champion_metrics={f"m{i}": 0.5 for i in range(16)},
    )
    result = DriftResult(
        ok=True,
        verdict="NoDrift",
        samples=10,
        scores=scores,
        message="x" * 900,
        quality=LiveQualityResult(metric="accuracy", value=0.9, note=long_note, shadow=shadow),
    )
    small = drift.compact(result)
    encoded = common.encode_result(small)
    assert len(encoded) <= contracts.TERMINATION_MESSAGE_LIMIT
    kept = DriftResult.model_validate_json(encoded).quality
    assert kept is not None and kept.shadow is not None
    assert (kept.shadow.value, kept.shadow.champion_value, kept.shadow.labelled) == (0.91, 0.88, 120)
    # with room, every metric of both stays
    roomy = drift.compact(result.model_copy(update={"scores": [], "message": None}))
    assert roomy.quality is not None and roomy.quality.shadow is not None and len(roomy.quality.shadow.metrics) == 16
