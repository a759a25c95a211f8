"""Live quality's vectorised paths give what the plain definitions give, on random data with ties.

last_per_id scatters over dense id codes (sparse ids are sorted instead); roc_auc_binary counts ranks
from the sorted scores; the classes present are counted. Each is checked against the definition
(a sort of (id, time, row), average ranks, np.union1d) and against scikit-learn.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from scipy.stats import rankdata
from sklearn import metrics as skm

from mlops_operator.api.v1alpha1.model import Metric
from mlops_operator.drift import quality
from mlops_operator.workloads import live_quality


def by_sorting(ids: np.ndarray, times: np.ndarray) -> tuple[list[int], int]:
    """The definition: per id the row with the latest time, a tie to the later row (NaN sorts last)."""
    order = np.lexsort((np.arange(ids.size), times, ids))
    last = np.ones(ids.size, dtype=bool)
    last[:-1] = ids[order][1:] != ids[order][:-1]
    return order[last].tolist(), int(ids.size - last.sum())


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("spread", [1, 1000])  # dense codes, and ids far apart (the sorted fallback)
def test_last_per_id_keeps_the_latest_row_per_id(seed: int, spread: int) -> None:
    rng = np.random.default_rng(seed)
    n = 2000
    ids = rng.integers(0, 300, n).astype(np.int64) * spread
    times = rng.integers(0, 20, n).astype(np.float64)  # many ties
    times[rng.random(n) < 0.05] = np.nan
    kept, dropped = quality.last_per_id(ids, times)
    assert (kept.tolist(), dropped) == by_sorting(ids, times)


def test_last_per_id_of_negative_ids_sorts() -> None:
    kept, dropped = quality.last_per_id(np.array([-5, 3, -5], dtype=np.int64), np.array([2.0, 1.0, 1.0]))
    assert kept.tolist() == [0, 1] and dropped == 1


@pytest.mark.parametrize("seed", range(5))
def test_roc_auc_binary_equals_average_ranks_and_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 5000
    positive = rng.random(n) < 0.3
    scores = np.round(rng.random(n) + 0.3 * positive, 2).astype(np.float64)  # rounded: many tied scores
    ranks = rankdata(scores)
    n1, n0 = int(positive.sum()), int((~positive).sum())
    by_ranks = (ranks[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)
    assert quality.roc_auc_binary(positive, scores) == by_ranks
    assert quality.roc_auc_binary(positive, scores) == pytest.approx(skm.roc_auc_score(positive, scores), abs=1e-12)
    assert quality.roc_auc_binary(np.zeros(n, dtype=bool), scores) is None


@pytest.mark.parametrize("seed", range(5))
def test_multiclass_metrics_average_over_the_classes_present(seed: int) -> None:
    rng = np.random.default_rng(seed)
    truth = rng.choice([0, 2, 5], 3000)  # classes 1, 3 and 4 absent from both sides
    predicted = np.where(rng.random(3000) < 0.7, truth, rng.choice([0, 2, 5, 6], 3000))
    scores = quality.classification_metrics(truth, predicted, model_classes=6)
    present = np.union1d(truth, predicted)
    assert scores.metrics[Metric.F1] == pytest.approx(
        skm.f1_score(truth, predicted, average="macro", labels=present, zero_division=0), abs=1e-12
    )
    assert scores.metrics[Metric.RECALL] == pytest.approx(
        skm.recall_score(truth, predicted, average="macro", labels=present, zero_division=0), abs=1e-12
    )


def test_list_probabilities_are_read_without_python_rows() -> None:
    rng = np.random.default_rng(3)
    rows: list[list[float | None] | None] = [
        None if rng.random() < 0.1 else [float(v) for v in rng.dirichlet(np.ones(3))] for _ in range(500)
    ]
    rows[7] = [0.2, None, 0.8]  # a null value inside a row
    column = pa.array(rows, pa.list_(pa.float64()))
    kept = column.filter(pa.array(rng.random(500) < 0.8))  # as read: the window's rows of a file
    plain = [[np.nan] * 3 if r is None else [np.nan if v is None else v for v in r] for r in kept.to_pylist()]
    expected = np.array(plain, dtype=np.float64)
    got = live_quality.probabilities([kept, None], [len(kept), 4])
    assert got is not None and got.shape == (len(kept) + 4, 3)
    np.testing.assert_array_equal(got[: len(kept)], expected)
    assert np.isnan(got[len(kept) :]).all()
    assert live_quality.probabilities([pa.array([[0.5, 0.5], [1.0]], pa.list_(pa.float64()))], [2]) is None
