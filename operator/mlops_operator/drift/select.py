"""Which test each feature gets, with which threshold, and the dataset verdict.

Defaults follow Evidently's auto-selection, the widely known one:

| reference rows | feature                                        | test               | drift when      |
|---------------:|------------------------------------------------|--------------------|-----------------|
| <= 1000        | numeric with > 5 distinct values               | ks                 | p-value <= 0.05 |
| <= 1000        | categorical (or numeric <= 5 values), > 2 vals | chisquare          | p-value < 0.05  |
| <= 1000        | at most 2 distinct values                      | ztest              | p-value < 0.05  |
| > 1000         | numeric with > 5 distinct values               | wasserstein (norm) | distance >= 0.1 |
| > 1000         | categorical (or numeric <= 5 values)           | jensenshannon      | distance >= 0.1 |

"Distinct values" counts both sides together, as Evidently does. A plan may set one test for all
numeric and one for all categorical features, a threshold for every test, and per-feature overrides of
test, threshold and `ignore`. With `bonferroni`, every p-value threshold is divided by the number of
features tested. The dataset drifts when the share of drifted features, among those with a verdict,
reaches `drift_share`.

Count-based tests (chisquare, ztest, psi, jensenshannon) on a numeric feature use its distinct values
when the reference has at most 5 of them, else the reference-decile bins.

Missing values (null, NaN, ±inf) are counted on both sides and reported per feature. A feature whose
missing share rose by at least `missing_increase` (default 0.1, i.e. 10 percentage points; None turns
the check off) over the reference's, with a two-proportion z-test p-value below MISSING_ALPHA (so
small windows do not alarm on noise), is drifted whatever its statistic says, and has a verdict even
when no value is left to compute the statistic on.

No I/O here: no store, no files, no network (import-linter keeps it so).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

import numpy as np

from mlops_operator.api.plans import DriftPlan
from mlops_operator.api.v1alpha1.driftmonitor import DriftTest, FeatureOverride
from mlops_operator.drift import categories, stats
from mlops_operator.drift.features import (
    CategoricalReference,
    CurrentCategorical,
    CurrentFeature,
    CurrentNumeric,
    NumericReference,
    Reference,
    current_numeric,
)
from mlops_operator.drift.stats import FloatArray, IntArray, StatisticResult

SMALL_REFERENCE_ROWS: Final = 1000
FEW_VALUES_FOR_CATEGORICAL: Final = 5
BINARY_VALUES: Final = 2

DEFAULT_THRESHOLDS: Final[dict[DriftTest, float]] = {
    DriftTest.KS: 0.05,
    DriftTest.CHI_SQUARE: 0.05,
    DriftTest.Z_TEST: 0.05,
    DriftTest.WASSERSTEIN: 0.1,
    DriftTest.JENSEN_SHANNON: 0.1,
    DriftTest.PSI: 0.1,
}
P_VALUE_TESTS: Final = frozenset({DriftTest.KS, DriftTest.CHI_SQUARE, DriftTest.Z_TEST})
NUMERIC_ONLY_TESTS: Final = frozenset({DriftTest.KS, DriftTest.WASSERSTEIN})
DEFAULT_MISSING_INCREASE: Final = 0.1  # a rise of the missing share by 10 percentage points
MISSING_ALPHA: Final = 0.05  # ... that a two-proportion z-test also finds significant


class SelectionError(ValueError):
    """The plan asks for a test that cannot apply to a feature (a spec error)."""


@dataclass(frozen=True, slots=True)
class DriftCheckSettings:
    """How one drift check tests and judges features (from the DriftPlan)."""

    numeric_test: DriftTest = DriftTest.AUTO
    categorical_test: DriftTest = DriftTest.AUTO
    threshold: float | None = None
    drift_share: float = 0.5
    bonferroni: bool = False
    overrides: Mapping[str, FeatureOverride] = field(default_factory=dict)
    missing_increase: float | None = DEFAULT_MISSING_INCREASE  # None: the missing share never drifts

    @classmethod
    def from_plan(cls, plan: DriftPlan) -> DriftCheckSettings:
        return cls(
            numeric_test=DriftTest(plan.numeric_test),
            categorical_test=DriftTest(plan.categorical_test),
            threshold=plan.threshold,
            drift_share=plan.drift_share,
            bonferroni=plan.bonferroni,
            overrides={o.name: o for o in plan.features},
        )


@dataclass(frozen=True, slots=True)
class FeatureVerdict:
    name: str
    kind: Literal["numeric", "categorical"]
    test: DriftTest
    threshold: float
    outcome: StatisticResult
    drifted: bool  # the statistic crossed its threshold, or the missing share rose (missing_drifted)
    reference_missing_share: float | None = None
    current_missing_share: float | None = None
    reference_n: int = 0  # values the statistic used on each side (numeric: the reference sample)
    current_n: int = 0
    missing_drifted: bool = False

    @property
    def is_p_value(self) -> bool:
        return self.test in P_VALUE_TESTS

    @property
    def has_verdict(self) -> bool:
        """A computable statistic, or a missing share that drifted even without one."""
        return self.outcome.computable or self.missing_drifted


@dataclass(frozen=True, slots=True)
class Evaluation:
    features: list[FeatureVerdict]
    ignored: list[str]
    drift_share: float

    @property
    def computable(self) -> list[FeatureVerdict]:
        """The features with a verdict (FeatureVerdict.has_verdict): the drifted share's denominator."""
        return [f for f in self.features if f.has_verdict]

    @property
    def drifted(self) -> list[str]:
        return [f.name for f in self.features if f.drifted]

    @property
    def drifted_share(self) -> float | None:
        computable = len(self.computable)
        return len(self.drifted) / computable if computable else None

    @property
    def dataset_drift(self) -> bool | None:
        share = self.drifted_share
        return None if share is None else share >= self.drift_share


# --- counts on a common set of categories -------------------------------------------------------


def run_values(sorted_values: FloatArray) -> tuple[FloatArray, IntArray]:
    """Distinct values of a sorted array and their counts, in one pass (np.unique would sort again)."""
    if sorted_values.size == 0:
        return np.empty(0, np.float64), np.empty(0, np.int64)
    starts = np.concatenate(([0], np.flatnonzero(np.diff(sorted_values)) + 1))
    counts = np.diff(np.concatenate((starts, [sorted_values.size]))).astype(np.int64)
    return sorted_values[starts], counts


def aligned_category_counts(
    reference: CategoricalReference, current: Mapping[str, int]
) -> tuple[list[str], IntArray, IntArray]:
    """Reference and current counts over common categories, labels canonicalised alike on both sides.

    Without a fold in the profile: the union of categories (a category unseen on one side is a zero
    cell). When the profile folded rare categories into OTHER_CATEGORY, the categories kept on both
    sides are chosen by their combined counts (categories.align), so equal distributions stay equal.
    """
    ref = dict(zip(reference.categories, (int(c) for c in reference.counts), strict=True))
    return categories.align(ref, categories.canonical_counts(current.items()), reference.has_overflow)


def aligned_value_counts(reference: NumericReference, current: CurrentNumeric) -> tuple[list[str], IntArray, IntArray]:
    """Counts of a numeric feature as categories: its distinct values if few, else decile bins."""
    if reference.few_values is not None and reference.few_counts is not None:
        cur_values, cur_counts = run_values(current.sorted_values)
        union = np.union1d(reference.few_values, cur_values)
        ref_aligned = np.zeros(union.size, dtype=np.int64)
        cur_aligned = np.zeros(union.size, dtype=np.int64)
        ref_aligned[np.searchsorted(union, reference.few_values)] = reference.few_counts
        cur_aligned[np.searchsorted(union, cur_values)] = cur_counts
        return [f"{v:g}" for v in union], ref_aligned, cur_aligned
    edges = reference.decile_edges
    labels = [f"<= {edges[0]:.4g}"] if edges.size else ["all"]
    labels += [f"({lo:.4g}, {hi:.4g}]" for lo, hi in itertools.pairwise(edges)]
    labels += [f"> {edges[-1]:.4g}"] if edges.size else []
    return labels, reference.decile_counts, stats.binned_counts(current.sorted_values, edges)


# --- selection -----------------------------------------------------------------------------------


def distinct_values(reference: NumericReference | CategoricalReference, current: CurrentFeature) -> int:
    """Distinct non-missing values over both sides (cheap: only called on few-valued features)."""
    if isinstance(reference, CategoricalReference):
        assert isinstance(current, CurrentCategorical)
        seen = {c for c, n in zip(reference.categories, reference.counts, strict=True) if n > 0}
        return len(seen | {c for c, n in categories.canonical_counts(current.counts.items()).items() if n > 0})
    assert isinstance(current, CurrentNumeric)
    if reference.few_values is None:
        return FEW_VALUES_FOR_CATEGORICAL + 1
    return int(np.union1d(reference.few_values, run_values(current.sorted_values)[0]).size)


def auto_test(reference_rows: int, numeric: bool, distinct: int) -> DriftTest:
    continuous = numeric and distinct > FEW_VALUES_FOR_CATEGORICAL
    if reference_rows <= SMALL_REFERENCE_ROWS:
        if continuous:
            return DriftTest.KS
        return DriftTest.CHI_SQUARE if distinct > BINARY_VALUES else DriftTest.Z_TEST
    return DriftTest.WASSERSTEIN if continuous else DriftTest.JENSEN_SHANNON


def choose_test(
    name: str,
    reference: NumericReference | CategoricalReference,
    current: CurrentFeature,
    reference_rows: int,
    settings: DriftCheckSettings,
) -> DriftTest:
    numeric = isinstance(reference, NumericReference)
    override = settings.overrides.get(name)
    test = DriftTest(override.test) if override is not None else DriftTest.AUTO
    if test == DriftTest.AUTO:
        test = settings.numeric_test if numeric else settings.categorical_test
    if test == DriftTest.AUTO:
        # A numeric feature with more than 5 reference values is continuous whatever the window holds.
        few = not numeric or (isinstance(reference, NumericReference) and reference.few_values is not None)
        distinct = distinct_values(reference, current) if few else FEW_VALUES_FOR_CATEGORICAL + 1
        test = auto_test(reference_rows, numeric, distinct)
    if test in NUMERIC_ONLY_TESTS and not numeric:
        raise SelectionError(f"test {test.value!r} needs a numeric feature, and {name!r} is categorical")
    return test


def threshold_for(name: str, test: DriftTest, settings: DriftCheckSettings, tested: int) -> float:
    override = settings.overrides.get(name)
    chosen = override.threshold if override is not None and override.threshold is not None else None
    threshold = chosen if chosen is not None else settings.threshold
    threshold = threshold if threshold is not None else DEFAULT_THRESHOLDS[test]
    if settings.bonferroni and test in P_VALUE_TESTS and tested > 1:
        threshold /= tested
    return threshold


# --- evaluation ------------------------------------------------------------------------------------


def compute(
    test: DriftTest, reference: NumericReference | CategoricalReference, current: CurrentFeature
) -> StatisticResult:
    if isinstance(reference, NumericReference):
        assert isinstance(current, CurrentNumeric)
        if test == DriftTest.KS:
            return stats.ks(reference.sorted_values, current.sorted_values)
        if test == DriftTest.WASSERSTEIN:
            return stats.normed_wasserstein(reference.sorted_values, current.sorted_values, reference.std)
        _, ref_counts, cur_counts = aligned_value_counts(reference, current)
    else:
        assert isinstance(current, CurrentCategorical)
        _, ref_counts, cur_counts = aligned_category_counts(reference, current.counts)
    return compute_on_counts(test, ref_counts, cur_counts)


def compute_on_counts(test: DriftTest, ref_counts: IntArray, cur_counts: IntArray) -> StatisticResult:
    if test == DriftTest.CHI_SQUARE:
        return stats.chi_square(ref_counts, cur_counts)
    if test == DriftTest.PSI:
        return stats.psi_from_counts(ref_counts, cur_counts)
    if test == DriftTest.JENSEN_SHANNON:
        return stats.jensen_shannon_from_counts(ref_counts, cur_counts)
    if test == DriftTest.Z_TEST:
        present = (ref_counts + cur_counts) > 0
        if present.sum() > BINARY_VALUES:
            return stats.not_computable(f"the z-test needs at most 2 distinct values, found {int(present.sum())}")
        # The share of the last present category; with one category both shares are 1 (p = 1).
        last = int(np.flatnonzero(present)[-1]) if present.any() else 0
        return stats.z_test(int(ref_counts[last]), int(ref_counts.sum()), int(cur_counts[last]), int(cur_counts.sum()))
    raise SelectionError(f"test {test.value!r} cannot run on counts")


def is_drifted(test: DriftTest, outcome: StatisticResult, threshold: float) -> bool:
    if outcome.value is None:
        return False
    if test == DriftTest.KS:
        return outcome.value <= threshold  # Evidently's rule for ks is "p <= threshold"
    if test in P_VALUE_TESTS:
        return outcome.value < threshold
    return outcome.value >= threshold


def missing_share_drifted(
    reference: NumericReference | CategoricalReference, current: CurrentFeature, increase: float | None
) -> bool:
    """The missing share rose by at least `increase`, and a two-proportion z-test finds it significant."""
    ref_share, cur_share = reference.missing_share, current.missing_share
    if increase is None or ref_share is None or cur_share is None or cur_share - ref_share < increase:
        return False
    p = stats.z_test(reference.missing, reference.rows, current.missing, current.rows).value
    return p is not None and p < MISSING_ALPHA


def _sizes(reference: NumericReference | CategoricalReference, current: CurrentFeature) -> tuple[int, int]:
    if isinstance(current, CurrentNumeric):
        return reference.size, int(current.sorted_values.size)
    return reference.size, sum(current.counts.values())


def evaluate(reference: Reference, current: Mapping[str, CurrentFeature], settings: DriftCheckSettings) -> Evaluation:
    """Score every feature of the reference that is not ignored; `current` must hold each of them."""
    ignored = [name for name in reference.features if _ignored(name, settings)]
    tested = [name for name in reference.features if name not in ignored]
    plans = [
        (name, choose_test(name, reference.features[name], current[name], reference.rows, settings)) for name in tested
    ]
    verdicts: list[FeatureVerdict] = []
    for name, test in plans:
        feature, window = reference.features[name], current[name]
        threshold = threshold_for(name, test, settings, len(tested))
        outcome = compute(test, feature, window)
        missing_drifted = missing_share_drifted(feature, window, settings.missing_increase)
        reference_n, current_n = _sizes(feature, window)
        verdicts.append(
            FeatureVerdict(
                name=name,
                kind="numeric" if isinstance(feature, NumericReference) else "categorical",
                test=test,
                threshold=threshold,
                outcome=outcome,
                drifted=is_drifted(test, outcome, threshold) or missing_drifted,
                reference_missing_share=feature.missing_share,
                current_missing_share=window.missing_share,
                reference_n=reference_n,
                current_n=current_n,
                missing_drifted=missing_drifted,
            )
        )
    return Evaluation(features=verdicts, ignored=ignored, drift_share=settings.drift_share)


def _ignored(name: str, settings: DriftCheckSettings) -> bool:
    override = settings.overrides.get(name)
    return override is not None and override.ignore



__all__ = [
    "DEFAULT_MISSING_INCREASE",
    "DEFAULT_THRESHOLDS",
    "MISSING_ALPHA",
    "P_VALUE_TESTS",
    "CurrentCategorical",
    "CurrentFeature",
    "CurrentNumeric",
    "DriftCheckSettings",
    "Evaluation",
    "FeatureVerdict",
    "SelectionError",
    "aligned_category_counts",
    "aligned_value_counts",
    "auto_test",
    "choose_test",
    "compute",
    "current_numeric",
    "evaluate",
    "is_drifted",
    "missing_share_drifted",
    "run_values",
    "threshold_for",
]
