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
features tested. The dataset drifts when the share of drifted features, among those whose statistic
could be computed, reaches `drift_share`.

Count-based tests (chisquare, ztest, psi, jensenshannon) on a numeric feature use its distinct values
when the reference has at most 5 of them, else the reference-decile bins.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

import numpy as np

from mlops_operator.api.profile import OTHER_CATEGORY
from mlops_operator.api.results import DriftPlan
from mlops_operator.api.v1alpha1.driftmonitor import DriftTest, FeatureOverride
from mlops_operator.drift import stats
from mlops_operator.drift.reference import CategoricalReference, NumericReference, Reference
from mlops_operator.drift.stats import FloatArray, IntArray, Outcome

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


class SelectionError(ValueError):
    """The plan asks for a test that cannot apply to a feature (a spec error)."""


@dataclass(frozen=True, slots=True)
class CurrentNumeric:
    """A numeric feature of the current window: NaN-free and sorted (see stats.finite_sorted)."""

    sorted_values: FloatArray
    missing: int = 0


@dataclass(frozen=True, slots=True)
class CurrentCategorical:
    counts: Mapping[str, int]
    missing: int = 0


CurrentFeature = CurrentNumeric | CurrentCategorical


@dataclass(frozen=True, slots=True)
class Settings:
    numeric_test: DriftTest = DriftTest.AUTO
    categorical_test: DriftTest = DriftTest.AUTO
    threshold: float | None = None
    drift_share: float = 0.5
    bonferroni: bool = False
    overrides: Mapping[str, FeatureOverride] = field(default_factory=dict)

    @classmethod
    def from_plan(cls, plan: DriftPlan) -> Settings:
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
    outcome: Outcome
    drifted: bool

    @property
    def is_p_value(self) -> bool:
        return self.test in P_VALUE_TESTS


@dataclass(frozen=True, slots=True)
class Evaluation:
    features: list[FeatureVerdict]
    ignored: list[str]
    drift_share: float

    @property
    def computable(self) -> list[FeatureVerdict]:
        return [f for f in self.features if f.outcome.computable]

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
    """Reference and current counts over the union of categories.

    A current category the reference never saw is a zero in the reference row, unless the profile
    folded rare categories into OTHER_CATEGORY: then an unknown value may be one of those and counts
    there.
    """
    labels = list(reference.categories)
    index = {label: i for i, label in enumerate(labels)}
    current_counts = [0] * len(labels)
    for label, count in current.items():
        target = label if label in index or not reference.has_overflow else OTHER_CATEGORY
        if target not in index:
            index[target] = len(labels)
            labels.append(target)
            current_counts.append(0)
        current_counts[index[target]] += int(count)
    reference_counts = np.zeros(len(labels), dtype=np.int64)
    reference_counts[: reference.counts.size] = reference.counts
    return labels, reference_counts, np.asarray(current_counts, dtype=np.int64)


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
        return len(seen | {c for c, n in current.counts.items() if n > 0})
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
    settings: Settings,
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


def threshold_for(name: str, test: DriftTest, settings: Settings, tested: int) -> float:
    override = settings.overrides.get(name)
    chosen = override.threshold if override is not None and override.threshold is not None else None
    threshold = chosen if chosen is not None else settings.threshold
    threshold = threshold if threshold is not None else DEFAULT_THRESHOLDS[test]
    if settings.bonferroni and test in P_VALUE_TESTS and tested > 1:
        threshold /= tested
    return threshold


# --- evaluation ------------------------------------------------------------------------------------


def compute(test: DriftTest, reference: NumericReference | CategoricalReference, current: CurrentFeature) -> Outcome:
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


def compute_on_counts(test: DriftTest, ref_counts: IntArray, cur_counts: IntArray) -> Outcome:
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


def is_drifted(test: DriftTest, outcome: Outcome, threshold: float) -> bool:
    if outcome.value is None:
        return False
    if test == DriftTest.KS:
        return outcome.value <= threshold  # Evidently's rule for ks is "p <= threshold"
    if test in P_VALUE_TESTS:
        return outcome.value < threshold
    return outcome.value >= threshold


def evaluate(reference: Reference, current: Mapping[str, CurrentFeature], settings: Settings) -> Evaluation:
    """Score every feature of the reference that is not ignored; `current` must hold each of them."""
    ignored = [name for name in reference.features if _ignored(name, settings)]
    tested = [name for name in reference.features if name not in ignored]
    plans = [
        (name, choose_test(name, reference.features[name], current[name], reference.rows, settings)) for name in tested
    ]
    verdicts: list[FeatureVerdict] = []
    for name, test in plans:
        feature = reference.features[name]
        threshold = threshold_for(name, test, settings, len(tested))
        outcome = compute(test, feature, current[name])
        verdicts.append(
            FeatureVerdict(
                name=name,
                kind="numeric" if isinstance(feature, NumericReference) else "categorical",
                test=test,
                threshold=threshold,
                outcome=outcome,
                drifted=is_drifted(test, outcome, threshold),
            )
        )
    return Evaluation(features=verdicts, ignored=ignored, drift_share=settings.drift_share)


def _ignored(name: str, settings: Settings) -> bool:
    override = settings.overrides.get(name)
    return override is not None and override.ignore


__all__ = [
    "DEFAULT_THRESHOLDS",
    "P_VALUE_TESTS",
    "CurrentCategorical",
    "CurrentFeature",
    "CurrentNumeric",
    "Evaluation",
    "FeatureVerdict",
    "SelectionError",
    "Settings",
    "aligned_category_counts",
    "aligned_value_counts",
    "auto_test",
    "choose_test",
    "compute",
    "evaluate",
    "is_drifted",
    "run_values",
    "threshold_for",
]
