"""Category labels mean the same on both sides; the fold of rare categories keeps equal distributions equal."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from scipy import stats as scipy_stats

from mlops_operator.api.profile import MAX_CATEGORIES, OTHER_CATEGORY
from mlops_operator.api.v1alpha1.driftmonitor import DriftTest
from mlops_operator.drift import categories, select, stats
from mlops_operator.drift.features import CategoricalReference, prepare_categorical
from mlops_operator.drift.select import CurrentCategorical, DriftCheckSettings
from tests.unit.drift.profiles import in_memory_reference

CHI_SQUARE = DriftCheckSettings(categorical_test=DriftTest.CHI_SQUARE)
Draw = Callable[[np.random.Generator], np.ndarray]


@pytest.mark.parametrize(
    ("label", "canonical"),
    [
        ("1.0", "1"),
        ("1", "1"),
        ("-0.0", "0"),
        ("-0", "0"),
        ("2.50", "2.5"),
        ("1e+15", "1000000000000000"),
        ("1000000000000000.0", "1000000000000000"),
        ("0.00001", "1e-05"),
        ("1e-05", "1e-05"),
        ("True", "true"),
        ("FALSE", "false"),
        ("true", "true"),
        ("007", "007"),
        ("01.5", "01.5"),
        ("12345678901234567890", "12345678901234567890"),
        ("red", "red"),
        ("e", "e"),
        ("1.2.3", "1.2.3"),
        (OTHER_CATEGORY, OTHER_CATEGORY),
    ],
)
def test_canonical_label(label: str, canonical: str) -> None:
    assert categories.canonical_label(label) == canonical


def _arrow_counts(values: np.ndarray) -> dict[str, int]:
    """Current counts the way the drift workload reads them: Arrow's cast to string, then value_counts."""
    counted = pc.value_counts(pc.cast(pa.array(values), pa.string()))
    return {str(item["values"]): int(item["counts"]) for item in counted.to_pylist()}


def _pandas_counts(values: np.ndarray) -> dict[str, int]:
    return {str(k): int(v) for k, v in pd.Series(values).astype(str).value_counts().items()}


@pytest.mark.parametrize(
    ("reference_values", "current_values", "count"),
    [
        (lambda r: r.integers(0, 4, 900), lambda r: r.integers(0, 4, 700).astype(float), _pandas_counts),
        (lambda r: r.integers(0, 4, 900), lambda r: r.integers(0, 4, 700).astype(float), _arrow_counts),
        (lambda r: r.integers(0, 4, 900).astype(float), lambda r: r.integers(0, 4, 700), _arrow_counts),
        (lambda r: r.random(900) < 0.3, lambda r: r.random(700) < 0.3, _arrow_counts),
    ],
    ids=["ints-vs-pandas-floats", "ints-vs-arrow-floats", "floats-vs-arrow-ints", "bools"],
)
def test_equal_distributions_of_numeric_or_boolean_labels_do_not_drift(
    reference_values: Draw, current_values: Draw, count: Callable[[np.ndarray], dict[str, int]]
) -> None:
    """ "1.0" against "1" (or "True" against "true") used to be two categories, each seen on one side:
    equal distributions drifted with p near 1e-200."""
    rng = np.random.default_rng(21)
    reference_raw, current_raw = reference_values(rng), current_values(rng)
    reference = in_memory_reference(pd.DataFrame({"c": reference_raw}), {"c"})
    evaluation = select.evaluate(reference, {"c": CurrentCategorical(count(current_raw))}, CHI_SQUARE)
    table = pd.crosstab(np.r_[np.zeros(900), np.ones(700)], np.r_[reference_raw, current_raw].astype(float))
    expected = scipy_stats.chi2_contingency(table.to_numpy(), correction=False).pvalue
    verdict = evaluation.features[0]
    assert verdict.outcome.value == pytest.approx(expected, rel=1e-9)
    assert not verdict.drifted


def test_labels_that_canonicalise_alike_add_up() -> None:
    reference = prepare_categorical("c", {"1": 5, "1.0": 3, "True": 2})
    assert reference.categories == ("1", "true") and reference.counts.tolist() == [8, 2]
    labels, ref, cur = select.aligned_category_counts(reference, {"1.0": 4, "true": 1, "2": 6})
    assert (labels, ref.tolist(), cur.tolist()) == (["1", "true", "2"], [8, 2, 0], [4, 1, 6])


def _folded_profile(values: np.ndarray) -> CategoricalReference:
    """A categorical profile as workloads/profile.py writes it: the MAX_CATEGORIES most frequent, the rest folded."""
    counts = pd.Series(values).value_counts()
    kept = {str(k): int(v) for k, v in counts.iloc[:MAX_CATEGORIES].items()}
    return prepare_categorical("c", {**kept, OTHER_CATEGORY: int(counts.iloc[MAX_CATEGORIES:].sum())})


def _folded_p_value(reference_values: np.ndarray, current_values: np.ndarray) -> float:
    reference = _folded_profile(reference_values)
    current = {str(k): int(v) for k, v in pd.Series(current_values).value_counts().items()}
    _, ref, cur = select.aligned_category_counts(reference, current)
    p = stats.chi_square(ref, cur).value
    assert p is not None
    return p


def test_the_fold_of_5000_categories_does_not_flag_identical_distributions() -> None:
    """Kept categories chosen by the reference's own counts are the ones it over-sampled: chi-squared
    flagged identical distributions 20 times in 20. Chosen by combined counts, at about alpha."""
    flagged = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        flagged += _folded_p_value(rng.integers(0, 5000, 100_000), rng.integers(0, 5000, 50_000)) < 0.05
    assert flagged <= 3


def test_the_fold_keeps_frequent_categories_and_still_sees_their_drift() -> None:
    rng = np.random.default_rng(30)
    zipf = 1 / np.arange(1, 5001)
    shifted = zipf.copy()
    shifted[:10] *= 1.3
    reference = rng.choice(5000, 100_000, p=zipf / zipf.sum())
    assert _folded_p_value(reference, rng.choice(5000, 50_000, p=zipf / zipf.sum())) > 0.05
    assert _folded_p_value(reference, rng.choice(5000, 50_000, p=shifted / shifted.sum())) < 1e-6
    labels, _, _ = select.aligned_category_counts(_folded_profile(reference), {"0": 5000})
    assert labels[0] == "0" and labels[-1] == OTHER_CATEGORY
