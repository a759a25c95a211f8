"""Live quality: ground truth joined to the collected predictions by id, and the Model's metrics on them.

The reader (workloads/live_quality.py) hands over both sides encoded: prediction ids as integer codes
shared by both sides (one code per distinct id text), times as microseconds since the epoch, values as
class codes (classification; -1: missing or unreadable) or floats (regression; NaN: missing or
unreadable). Everything here is vectorised numpy (a sort-merge on the id codes) and does no I/O.

The join, over the quality window's predictions:

- several predictions with one id (a client reusing its request id): the latest one is scored;
- several labels for one id: the latest (by `labelled_at`, then file order) wins; the others are
  counted as `duplicates`;
- a label whose id is no prediction of the window is `late` when the id is one of `earlier_ids` (the
  predictions made in the span before the window: the label came after its prediction left the
  window), else `unknown` (another model's, a typo, or older than the span);
- a matched pair with a missing value on either side is counted as `invalid` and not scored.

Metrics follow the training workload (workloads/train.py) and scikit-learn's definitions, checked
against sklearn.metrics in tests/unit/drift/test_quality.py: accuracy; precision, recall and F1 for
the second class when the model has two classes (sklearn's `average="binary"`, `pos_label=classes_[1]`),
else their macro average over the classes present in either side, zero where undefined
(`zero_division=0`); roc_auc from the collected probabilities (binary, or one-vs-rest macro with one
column per model class) and left out with a reason when there are none or a class is absent; r2, rmse
and mae (r2 needs two rows; a constant truth gives 1.0 for a perfect fit, else 0.0, as sklearn does).

A Shadow rollout's recorded rows (each with the candidate's and the champion's answer to one mirrored
row, by prediction id) are joined to the same labels the same way (`assess_shadow`), and both models
are scored on exactly the labelled rows both answered validly: the candidate against the champion on
equal terms, whatever share of the traffic was mirrored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from mlops_operator.api.results import LiveQualityResult
from mlops_operator.api.v1alpha1.model import Metric, Task
from mlops_operator.api.v1alpha1.rollout import ShadowLiveQuality
from mlops_operator.drift.stats import FloatArray, IntArray

BoolArray = npt.NDArray[np.bool_]
MISSING_CLASS: Final = -1
NO_PROBABILITIES: Final = (
    "the collected predictions carry no class probabilities (the optional _mlops_probability column)"
)


@dataclass(frozen=True, slots=True)
class Side:
    """Predictions (with their optional probabilities) or labels, encoded (see the module docstring)."""

    ids: IntArray
    times: FloatArray
    values: npt.NDArray[Any]  # int64 class codes or float64 values
    scores: FloatArray | None = None  # predictions only: (n,) or (n, k) probabilities, NaN where absent

    def __len__(self) -> int:
        return int(self.ids.size)


@dataclass(frozen=True, slots=True)
class JoinCounts:
    predictions: int = 0  # distinct prediction ids in the window
    labelled: int = 0  # of which with a label (before dropping invalid values)
    late: int = 0
    unknown: int = 0
    duplicates: int = 0  # label rows replaced by a later label for the same id
    duplicate_predictions: int = 0  # prediction rows replaced by a later one with the same id


@dataclass(frozen=True, slots=True)
class Joined:
    prediction_rows: IntArray  # row i of the pairs: predictions[prediction_rows[i]] ...
    label_rows: IntArray  # ... with labels[label_rows[i]]
    counts: JoinCounts


@dataclass
class Scores:
    metrics: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


# --- the join ----------------------------------------------------------------------------------------


def last_per_id(ids: IntArray, times: FloatArray) -> tuple[IntArray, int]:
    """Rows to keep, one per id (the latest; a tie goes to the later row), sorted by id; and how many
    rows were dropped. Ids are the dense codes of id_codes (a sort of the rows would cost ~40x more
    than these two scatter passes); sparse or negative ids are sorted instead."""
    n = int(ids.size)
    if n == 0:
        return np.empty(0, dtype=np.int64), 0
    size = int(ids.max()) + 1
    if int(ids.min()) < 0 or size > 4 * n + 1024:
        return _last_per_id_sorted(ids, times)
    keyed = np.where(np.isnan(times), np.inf, times)  # as a sort places it: after every time
    latest = np.full(size, -np.inf)
    np.maximum.at(latest, ids, keyed)
    candidates = np.flatnonzero(keyed == latest[ids])
    last = np.full(size, -1, dtype=np.int64)
    np.maximum.at(last, ids[candidates], candidates)
    kept = last[last >= 0]
    return kept, n - int(kept.size)


def _last_per_id_sorted(ids: IntArray, times: FloatArray) -> tuple[IntArray, int]:
    n = int(ids.size)
    order = np.lexsort((np.arange(n), times, ids))
    sorted_ids = ids[order]
    last = np.ones(n, dtype=bool)
    last[:-1] = sorted_ids[1:] != sorted_ids[:-1]
    kept = order[last].astype(np.int64)
    return kept, n - int(kept.size)


def join(predictions: Side, labels: Side, earlier_ids: IntArray) -> Joined:
    """Each label (the latest per id) with the window's prediction of the same id (see the docstring)."""
    p_rows, p_dropped = last_per_id(predictions.ids, predictions.times)
    l_rows, l_dropped = last_per_id(labels.ids, labels.times)
    p_ids, l_ids = predictions.ids[p_rows], labels.ids[l_rows]  # both sorted and unique
    at = np.searchsorted(p_ids, l_ids)
    matched = at < p_ids.size
    matched[matched] = p_ids[at[matched]] == l_ids[matched]
    unmatched = l_ids[~matched]
    late = int(np.isin(unmatched, earlier_ids).sum()) if unmatched.size else 0
    counts = JoinCounts(
        predictions=int(p_ids.size),
        labelled=int(matched.sum()),
        late=late,
        unknown=int(unmatched.size) - late,
        duplicates=l_dropped,
        duplicate_predictions=p_dropped,
    )
    return Joined(p_rows[at[matched]], l_rows[matched], counts)


# --- metrics -----------------------------------------------------------------------------------------


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0  # sklearn's zero_division=0


def _precision_recall_f1(truth: IntArray, predicted: IntArray, cls: int) -> tuple[float, float, float]:
    tp = float(np.sum((truth == cls) & (predicted == cls)))
    fp = float(np.sum((truth != cls) & (predicted == cls)))
    fn = float(np.sum((truth == cls) & (predicted != cls)))
    return _ratio(tp, tp + fp), _ratio(tp, tp + fn), _ratio(2 * tp, 2 * tp + fp + fn)


def average_ranks(values: FloatArray) -> FloatArray:
    """Ranks from 1, ties sharing their average rank (scipy.stats.rankdata's `average`)."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.concatenate(([0], np.flatnonzero(np.diff(ordered)) + 1))
    ends = np.concatenate((starts[1:], [ordered.size]))
    run_rank = (starts + ends + 1) / 2.0  # the mean of ranks starts+1 .. ends
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = np.repeat(run_rank, ends - starts)
    return ranks


def roc_auc_binary(positive: BoolArray, scores: FloatArray) -> float | None:
    """The area under the ROC curve (Mann-Whitney U / n1 n0); None when a class is absent.

    A positive's average rank among all scores (ties sharing theirs) is (below + at_or_below + 1) / 2,
    both counts read from the sorted scores: a sort and two searches of the sorted positives instead
    of an argsort. Twice the rank sum is an integer, summed exactly."""
    n1 = int(positive.sum())
    n0 = int(positive.size) - n1
    if n1 == 0 or n0 == 0:
        return None
    ordered = np.sort(scores)
    mine = np.sort(scores[positive])
    below = np.searchsorted(ordered, mine, side="left")
    at_or_below = np.searchsorted(ordered, mine, side="right")
    twice_rank_sum = int(below.sum()) + int(at_or_below.sum()) + n1
    return float((twice_rank_sum / 2.0 - n1 * (n1 + 1) / 2.0) / (n1 * n0))


def roc_auc(truth: IntArray, scores: FloatArray | None, model_classes: int) -> tuple[float | None, str]:
    """roc_auc as training reports it, or None and why not."""
    if scores is None:
        return None, NO_PROBABILITIES
    rows = ~np.isnan(scores) if scores.ndim == 1 else ~np.isnan(scores).any(axis=1)
    truth, scores = truth[rows], scores[rows]
    if truth.size == 0:
        return None, NO_PROBABILITIES
    if model_classes == 2 and scores.ndim == 1:
        auc = roc_auc_binary(truth == 1, scores)
        return auc, "" if auc is not None else "the labels hold one class only"
    if scores.ndim != 2 or scores.shape[1] != model_classes:
        return None, f"the probabilities do not have one column per model class ({model_classes})"
    if truth.max(initial=0) >= model_classes:
        return None, "the labels hold classes the model does not know"
    per_class = [roc_auc_binary(truth == c, scores[:, c]) for c in range(model_classes)]
    if any(a is None for a in per_class):
        return None, "a class of the model is absent from the labels"
    return float(np.mean([a for a in per_class if a is not None])), ""


def classification_metrics(
    truth: IntArray, predicted: IntArray, model_classes: int, scores: FloatArray | None = None
) -> Scores:
    """Class codes 0..model_classes-1 are the model's classes in sklearn's order; higher codes are
    labels or predictions the model never saw."""
    result = Scores()
    if truth.size == 0:
        return result
    result.metrics[Metric.ACCURACY] = float(np.mean(truth == predicted))
    # the classes present in either side (codes are small and >= 0: counted, not sorted)
    width = int(max(truth.max(), predicted.max())) + 1
    present = np.flatnonzero(np.bincount(truth, minlength=width) + np.bincount(predicted, minlength=width))
    if model_classes == 2 and present.max() < 2:
        p, r, f1 = _precision_recall_f1(truth, predicted, 1)
    else:
        each = np.array([_precision_recall_f1(truth, predicted, int(c)) for c in present])
        p, r, f1 = (float(v) for v in each.mean(axis=0))
    result.metrics |= {Metric.PRECISION: p, Metric.RECALL: r, Metric.F1: f1}
    auc, why = roc_auc(truth, scores, model_classes)
    if auc is None:
        result.skipped[Metric.ROC_AUC] = why
    else:
        result.metrics[Metric.ROC_AUC] = auc
    return result


def regression_metrics(truth: FloatArray, predicted: FloatArray) -> Scores:
    result = Scores()
    if truth.size == 0:
        return result
    error = truth - predicted
    result.metrics[Metric.RMSE] = float(np.sqrt(np.mean(error**2)))
    result.metrics[Metric.MAE] = float(np.mean(np.abs(error)))
    if truth.size < 2:
        result.skipped[Metric.R2] = "r2 needs at least two labelled predictions"
        return result
    residual = float(np.sum(error**2))
    total = float(np.sum((truth - truth.mean()) ** 2))
    if total == 0.0:
        result.metrics[Metric.R2] = 1.0 if residual == 0.0 else 0.0
    else:
        result.metrics[Metric.R2] = 1.0 - residual / total
    return result


# --- the whole assessment ----------------------------------------------------------------------------


def _valid(task: Task, truth: npt.NDArray[Any], predicted: npt.NDArray[Any]) -> BoolArray:
    if task == Task.CLASSIFICATION:
        return np.asarray((truth != MISSING_CLASS) & (predicted != MISSING_CLASS))
    return np.asarray(np.isfinite(truth) & np.isfinite(predicted))


def assess(
    predictions: Side,
    labels: Side,
    earlier_ids: IntArray,
    *,
    task: Task,
    metric: Metric,
    model_classes: int = 0,
) -> LiveQualityResult:
    """Join, drop invalid pairs, score; the headline `metric` and every metric of the task."""
    joined = join(predictions, labels, earlier_ids)
    truth = labels.values[joined.label_rows]
    predicted = predictions.values[joined.prediction_rows]
    valid = _valid(task, truth, predicted)
    truth, predicted = truth[valid], predicted[valid]
    if task == Task.CLASSIFICATION:
        probabilities = None if predictions.scores is None else predictions.scores[joined.prediction_rows][valid]
        scores = classification_metrics(truth, predicted, model_classes, probabilities)
    else:
        scores = regression_metrics(truth, predicted)
    counts = joined.counts
    value = scores.metrics.get(metric)
    return LiveQualityResult(
        metric=str(metric),
        value=value,
        labelled=int(truth.size),
        predictions=counts.predictions,
        late=counts.late,
        unknown=counts.unknown,
        duplicates=counts.duplicates,
        invalid=int(valid.size - truth.size),
        metrics={str(k): v for k, v in scores.metrics.items()},
        skipped={str(k): v for k, v in scores.skipped.items()},
        note=_note(value, metric, truth.size, scores, counts),
    )


@dataclass(frozen=True, slots=True)
class Recorded:
    """A Shadow rollout's recorded rows of one candidate version, encoded as a Side is: the candidate's
    answers in `answers.values`, the champion's to the same rows in `champion` (same encoding)."""

    answers: Side
    champion: npt.NDArray[Any]
    version: str
    champion_version: str | None = None


def assess_shadow(
    recorded: Recorded, labels: Side, *, task: Task, metric: Metric, model_classes: int = 0
) -> ShadowLiveQuality:
    """Join the labels to the recorded rows (as `join` does: the latest label per id) and score the
    candidate and the champion on the same labelled rows; roc_auc is never computed (no probabilities
    are recorded)."""
    joined = join(recorded.answers, labels, np.empty(0, dtype=np.int64))
    truth = labels.values[joined.label_rows]
    candidate = recorded.answers.values[joined.prediction_rows]
    champion = recorded.champion[joined.prediction_rows]
    valid = _valid(task, truth, candidate) & _valid(task, truth, champion)
    truth, candidate, champion = truth[valid], candidate[valid], champion[valid]
    if task == Task.CLASSIFICATION:
        mine, theirs = (classification_metrics(truth, side, model_classes) for side in (candidate, champion))
        for scores in (mine, theirs):
            if Metric.ROC_AUC in scores.skipped:
                scores.skipped[Metric.ROC_AUC] = "the mirror records no probabilities"
    else:
        mine, theirs = regression_metrics(truth, candidate), regression_metrics(truth, champion)
    value = mine.metrics.get(metric)
    if truth.size == 0:
        note = (
            "no recorded shadow row in the quality window"
            if joined.counts.predictions == 0
            else "no label has arrived yet for the recorded shadow rows"
        )
    elif value is None:
        note = f"{metric} not computed: {mine.skipped.get(metric, 'not a metric of this task')}"
    else:
        note = None
    return ShadowLiveQuality(
        version=recorded.version[:64],
        champion_version=None if recorded.champion_version is None else recorded.champion_version[:64],
        metric=str(metric),
        value=value,
        champion_value=theirs.metrics.get(metric),
        labelled=int(truth.size),
        predictions=joined.counts.predictions,
        metrics={str(k): v for k, v in mine.metrics.items()},
        champion_metrics={str(k): v for k, v in theirs.metrics.items()},
        message=note,
    )


def _note(value: float | None, metric: Metric, labelled: int, scores: Scores, counts: JoinCounts) -> str | None:
    if labelled == 0:
        if counts.predictions == 0:
            return "no collected prediction with an id in the quality window"
        return "no label has arrived yet for the predictions in the quality window"
    if value is None:
        return f"{metric} not computed: {scores.skipped.get(metric, 'not a metric of this task')}"
    return None


def model_class_order(labels: Sequence[str], numeric: bool) -> list[str]:
    """The model's classes in scikit-learn's order (`classes_` is sorted): by value for numbers."""
    unique = list(dict.fromkeys(labels))
    if numeric:
        return sorted(unique, key=float)
    return sorted(unique)


__all__ = [
    "MISSING_CLASS",
    "JoinCounts",
    "Joined",
    "Recorded",
    "Scores",
    "Side",
    "assess",
    "assess_shadow",
    "average_ranks",
    "classification_metrics",
    "join",
    "last_per_id",
    "model_class_order",
    "regression_metrics",
    "roc_auc",
    "roc_auc_binary",
]
