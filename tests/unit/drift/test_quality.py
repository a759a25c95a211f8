"""Live quality: the id join (late labels, duplicates, unknown ids), the encoding of mixed types, and
every metric against sklearn.metrics."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from sklearn import metrics as skm

from mlops_operator.api.v1alpha1.model import Metric, Task
from mlops_operator.drift import quality
from mlops_operator.drift.quality import Side
from mlops_operator.workloads import live_quality


def ids(*values: int) -> np.ndarray:
    return np.asarray(values, dtype=np.int64)


def times(*values: float) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


# --- the join --------------------------------------------------------------------------------------


def test_last_label_per_id_wins_and_the_others_count_as_duplicates() -> None:
    kept, dropped = quality.last_per_id(ids(5, 3, 5, 5, 3), times(10, 1, 30, 20, 1))
    # id 3: equal times, the later row wins; id 5: the latest time wins
    assert kept.tolist() == [4, 2] and dropped == 3


def test_join_counts_late_unknown_duplicates_and_pairs_values() -> None:
    predictions = Side(ids(1, 2, 3, 4), times(0, 0, 0, 0), ids(0, 1, 0, 1))
    labels = Side(
        ids(1, 2, 2, 7, 8, 9),
        times(5, 5, 9, 5, 5, 5),
        ids(0, 0, 1, 0, 0, 0),  # id 2 relabelled 0 -> 1 later: the later label wins
    )
    joined = quality.join(predictions, labels, earlier_ids=ids(7, 8, 11))
    counts = joined.counts
    assert (counts.predictions, counts.labelled, counts.late, counts.unknown, counts.duplicates) == (4, 2, 2, 1, 1)
    pairs = sorted(zip(predictions.ids[joined.prediction_rows], labels.values[joined.label_rows], strict=True))
    assert pairs == [(1, 0), (2, 1)]


def test_a_reused_prediction_id_scores_the_latest_prediction() -> None:
    predictions = Side(ids(1, 1), times(0, 10), ids(0, 1))
    labels = Side(ids(1), times(20), ids(1))
    joined = quality.join(predictions, labels, ids())
    assert joined.prediction_rows.tolist() == [1] and joined.counts.duplicate_predictions == 1


def test_empty_sides_join_to_nothing() -> None:
    empty = Side(ids(), times(), ids())
    result = quality.assess(empty, empty, ids(), task=Task.CLASSIFICATION, metric=Metric.ACCURACY)
    assert result.labelled == 0 and result.value is None and "no collected prediction" in (result.note or "")


def test_labels_that_have_not_arrived_give_no_value_and_say_so() -> None:
    predictions = Side(ids(1, 2), times(0, 0), ids(0, 1))
    result = quality.assess(
        predictions, Side(ids(), times(), ids()), ids(), task=Task.CLASSIFICATION, metric=Metric.F1, model_classes=2
    )
    assert result.value is None and result.predictions == 2 and "no label has arrived" in (result.note or "")


def test_invalid_pairs_are_counted_not_scored() -> None:
    predictions = Side(ids(1, 2, 3), times(0, 0, 0), np.array([1.0, np.nan, 3.0]))
    labels = Side(ids(1, 2, 3), times(1, 1, 1), np.array([1.5, 2.0, np.nan]))
    result = quality.assess(predictions, labels, ids(), task=Task.REGRESSION, metric=Metric.MAE)
    assert (result.labelled, result.invalid, result.value) == (1, 2, pytest.approx(0.5))
    assert "r2" in result.skipped


# --- encoding of mixed types -------------------------------------------------------------------------


def test_ids_get_one_code_per_text_across_sides() -> None:
    p, labels, e = live_quality.id_codes([pa.array(["a", "b"])], [pa.array(["b", "zz"]), pa.array(["a"])], [])
    assert p[0] == labels[2] and p[1] == labels[0] and labels[1] not in (p[0], p[1]) and e.size == 0


@pytest.mark.parametrize(
    ("label_arrays", "prediction_arrays"),
    [
        ([pa.array([1, 0, 1])], [pa.array([1.0, 0.0, 0.0])]),  # ints against floats
        ([pa.array(["1", "0"]), pa.array([1])], [pa.array([1, 0, 0])]),  # text and ints, file by file
        ([pa.array([True, False, True])], [pa.array(["true", "False", "0"])]),  # booleans and their texts
    ],
)
def test_class_values_compare_by_canonical_label(
    label_arrays: list[pa.Array], prediction_arrays: list[pa.Array]
) -> None:
    labels_texts, label_rows = live_quality._uniques(live_quality.unify(label_arrays))
    predicted_texts, predicted_rows = live_quality._uniques(live_quality.unify(prediction_arrays))
    codes = live_quality.vocabulary([], labels_texts, predicted_texts)
    truth = live_quality.class_codes(labels_texts, label_rows, codes)
    predicted = live_quality.class_codes(predicted_texts, predicted_rows, codes)
    assert truth[0] == predicted[0] and truth[1] == predicted[1]
    assert len(codes) == 2 or set(codes) == {"true", "false", "0"}


def test_model_classes_come_first_in_sklearns_order_and_nulls_are_missing() -> None:
    texts, rows = live_quality._uniques(pa.array(["b", None, "zebra", "a"]))
    codes = live_quality.vocabulary(["a", "b"], texts)
    assert codes == {"a": 0, "b": 1, "zebra": 2}
    assert live_quality.class_codes(texts, rows, codes).tolist() == [1, quality.MISSING_CLASS, 2, 0]
    assert quality.model_class_order(["10", "9", "1"], numeric=True) == ["1", "9", "10"]


def test_regression_text_that_is_no_number_is_nan() -> None:
    values = live_quality.float_values(live_quality.unify([pa.array([1, 2]), pa.array(["3.5", "n/a", None])]))
    assert values[:3].tolist() == [1.0, 2.0, 3.5] and np.isnan(values[3:]).all()


def test_probabilities_from_floats_lists_and_files_without_them() -> None:
    binary = live_quality.probabilities([pa.array([0.1, None]), None], [2, 1])
    assert binary is not None and binary.shape == (3,) and np.isnan(binary[1:]).all()
    multi = live_quality.probabilities([pa.array([[0.2, 0.8], [0.5, 0.5]])], [2])
    assert multi is not None and multi.shape == (2, 2)
    assert live_quality.probabilities([pa.array([[0.2, 0.8], [1.0]])], [2]) is None
    assert live_quality.probabilities([None], [3]) is None


# --- metrics against sklearn -------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_binary_metrics_equal_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, 300)
    predicted = np.where(rng.random(300) < 0.8, truth, 1 - truth)
    scores = np.clip(truth * 0.4 + rng.random(300) * 0.6, 0, 1).round(2)  # ties included
    got = quality.classification_metrics(truth, predicted, 2, scores).metrics
    assert got[Metric.ACCURACY] == pytest.approx(skm.accuracy_score(truth, predicted))
    for name, fn in (("f1", skm.f1_score), ("precision", skm.precision_score), ("recall", skm.recall_score)):
        assert got[name] == pytest.approx(fn(truth, predicted, pos_label=1, zero_division=0)), name
    assert got[Metric.ROC_AUC] == pytest.approx(skm.roc_auc_score(truth, scores))


@pytest.mark.parametrize("seed", range(5))
def test_multiclass_metrics_equal_sklearn_macro_and_ovr(seed: int) -> None:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 4, 400)
    predicted = np.where(rng.random(400) < 0.6, truth, rng.integers(0, 4, 400))
    raw = rng.random((400, 4)) + np.eye(4)[truth] * 0.5
    probabilities = raw / raw.sum(axis=1, keepdims=True)
    got = quality.classification_metrics(truth, predicted, 4, probabilities).metrics
    for name, fn in (("f1", skm.f1_score), ("precision", skm.precision_score), ("recall", skm.recall_score)):
        assert got[name] == pytest.approx(fn(truth, predicted, average="macro", zero_division=0)), name
    expected = skm.roc_auc_score(truth, probabilities, multi_class="ovr", labels=[0, 1, 2, 3])
    assert got[Metric.ROC_AUC] == pytest.approx(expected)


def test_macro_runs_over_the_classes_present_as_sklearn_does() -> None:
    truth, predicted = ids(0, 0, 2, 2, 4), ids(0, 2, 2, 2, 0)  # class 1 and 3 of a 5-class model never appear
    got = quality.classification_metrics(truth, predicted, 5).metrics
    assert got["f1"] == pytest.approx(skm.f1_score(truth, predicted, average="macro", zero_division=0))


def test_roc_auc_is_skipped_with_a_reason() -> None:
    truth, predicted = ids(0, 1, 1), ids(0, 1, 0)
    assert "probabilities" in quality.classification_metrics(truth, predicted, 2).skipped["roc_auc"]
    one_class = quality.classification_metrics(ids(1, 1), ids(1, 0), 2, np.array([0.9, 0.2]))
    assert "one class" in one_class.skipped["roc_auc"]
    absent = quality.classification_metrics(ids(0, 1, 1), ids(0, 1, 1), 3, np.full((3, 3), 1 / 3))
    assert "absent" in absent.skipped["roc_auc"]


@pytest.mark.parametrize("seed", range(5))
def test_regression_metrics_equal_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    truth = rng.normal(10, 3, 250)
    predicted = truth + rng.normal(0, 1, 250)
    got = quality.regression_metrics(truth, predicted).metrics
    assert got[Metric.RMSE] == pytest.approx(skm.root_mean_squared_error(truth, predicted))
    assert got[Metric.MAE] == pytest.approx(skm.mean_absolute_error(truth, predicted))
    assert got[Metric.R2] == pytest.approx(skm.r2_score(truth, predicted))


def test_r2_of_a_constant_truth_follows_sklearn() -> None:
    truth = np.full(4, 2.0)
    assert quality.regression_metrics(truth, truth).metrics["r2"] == skm.r2_score(truth, truth)
    assert quality.regression_metrics(truth, truth + 1).metrics["r2"] == skm.r2_score(truth, truth + 1)


def test_average_ranks_equal_scipy() -> None:
    from scipy.stats import rankdata

    values = np.random.default_rng(3).integers(0, 20, 500).astype(np.float64)
    assert np.allclose(quality.average_ranks(values), rankdata(values))
