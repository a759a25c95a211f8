"""Prediction drift, and the model's classes, from the target column of the baseline profile. No I/O.

The profile describes the target like any column (category counts, or a sorted sample in
reference.npz); `features.build` leaves it out of the input features, `target_reference` prepares it
the same way. The collected predictions are compared with it as one more feature would be, with one
difference in the `auto` choice: a distance (jensenshannon for classes, normed wasserstein for numbers),
never a p-value test. A model's predictions do not follow the target's distribution exactly (a
classifier leans towards the majority class, a regressor towards the mean), and a p-value test on a
window of thousands of predictions flags that constant bias at every check.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from mlops_operator.api.plans import PredictionDriftPlan
from mlops_operator.api.profile import DatasetProfile
from mlops_operator.api.results import PredictionDriftResult
from mlops_operator.api.v1alpha1.dataset import FeatureType
from mlops_operator.api.v1alpha1.driftmonitor import DriftTest
from mlops_operator.drift import categories, select
from mlops_operator.drift.features import (
    CategoricalReference,
    CurrentFeature,
    FeatureReference,
    NumericReference,
    numeric_missing,
    prepare_categorical,
    prepare_numeric,
)
from mlops_operator.drift.stats import FloatArray

MAX_CLASSES: Final = 1000  # more distinct target values than this is not a class list


def target_name(profile: DatasetProfile, plan: PredictionDriftPlan | None) -> str | None:
    return (plan.target if plan is not None else None) or profile.target


def target_reference(profile: DatasetProfile, target: str, sample: FloatArray | None) -> FeatureReference | None:
    """The target column of the profile, prepared like an input feature; None if the profile lacks it."""
    feature = profile.feature(target)
    if feature is None:
        return None
    rows = feature.count + feature.missing
    if feature.type == FeatureType.NUMERIC:
        values = sample if sample is not None else np.empty(0, dtype=np.float64)
        return prepare_numeric(target, values, missing=numeric_missing(feature, values), rows=rows)
    counts = feature.categorical.categories if feature.categorical else {}
    return prepare_categorical(target, counts, missing=feature.missing, rows=rows)


def model_classes(reference: FeatureReference | None) -> tuple[list[str], bool]:
    """The target's distinct values as canonical labels, and whether they are numbers; ([], False)
    when the profile cannot tell (no target, a folded category list, too many values)."""
    if isinstance(reference, CategoricalReference):
        if reference.has_overflow:
            return [], False
        return [c for c, n in zip(reference.categories, reference.counts, strict=True) if n > 0], False
    if isinstance(reference, NumericReference) and reference.size:
        values, _ = select.run_values(reference.sorted_values)
        if values.size <= MAX_CLASSES:
            return [categories.canonical_label(repr(float(v))) for v in values], True
    return [], False


def auto_test(reference: FeatureReference) -> DriftTest:
    if isinstance(reference, CategoricalReference) or reference.few_values is not None:
        return DriftTest.JENSEN_SHANNON
    return DriftTest.WASSERSTEIN


def evaluate(
    reference: FeatureReference, current: CurrentFeature, plan: PredictionDriftPlan, samples: int
) -> PredictionDriftResult:
    """The predictions' drift score; a test that cannot apply is a note, not a failure."""
    test = DriftTest(plan.test)
    if test == DriftTest.AUTO:
        test = auto_test(reference)
    threshold = plan.threshold if plan.threshold is not None else select.DEFAULT_THRESHOLDS[test]
    if test in select.NUMERIC_ONLY_TESTS and not isinstance(reference, NumericReference):
        note = f"test {test.value} needs a numeric target, and {reference.name!r} is categorical"
        return PredictionDriftResult(test=test, threshold=threshold, drifted=False, samples=samples, note=note)
    outcome = select.compute(test, reference, current)
    return PredictionDriftResult(
        test=test,
        score=outcome.value,
        threshold=threshold,
        drifted=select.is_drifted(test, outcome, threshold),
        samples=samples,
        note=outcome.note,
    )


def mismatch(reference: FeatureReference, samples: int, plan: PredictionDriftPlan, why: str) -> PredictionDriftResult:
    test = DriftTest(plan.test)
    test = auto_test(reference) if test == DriftTest.AUTO else test
    threshold = plan.threshold if plan.threshold is not None else select.DEFAULT_THRESHOLDS[test]
    return PredictionDriftResult(test=test, threshold=threshold, drifted=False, samples=samples, note=why)


__all__ = [
    "MAX_CLASSES",
    "auto_test",
    "evaluate",
    "mismatch",
    "model_classes",
    "target_name",
    "target_reference",
]
