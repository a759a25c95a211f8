"""Prediction drift's inputs: the target's reference sample and the window's predictions, as
drift/predictions.py compares them; and the model's classes for live quality."""

from __future__ import annotations

import io
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlops_operator import store
from mlops_operator.api.plans import DriftPlan
from mlops_operator.api.profile import PROFILE_FILE, REFERENCE_FILE
from mlops_operator.api.results import PredictionDriftResult
from mlops_operator.api.v1alpha1.dataset import FeatureType
from mlops_operator.drift import predictions, quality
from mlops_operator.drift import reference as reference_mod
from mlops_operator.drift.features import (
    CurrentCategorical,
    CurrentFeature,
    FeatureReference,
    NumericReference,
    current_numeric,
)
from mlops_operator.drift.reference import Reference
from mlops_operator.drift.stats import FloatArray
from mlops_operator.workloads import live_quality


def target_sample(reference: Reference, target: str, cache_dir: Path | None, profile_uri: str) -> FloatArray | None:
    """The target's sorted sample from reference.npz (the local cache first); None if there is none."""
    feature = reference.profile.feature(target)
    if feature is None or feature.type != FeatureType.NUMERIC:
        return None
    cached = (cache_dir or reference_mod.default_cache_dir()) / reference.profile_sha256 / REFERENCE_FILE
    try:
        data = cached.read_bytes()
    except OSError:
        uri = reference.profile.reference_uri or profile_uri.removesuffix(PROFILE_FILE) + REFERENCE_FILE
        data = store.read_bytes(uri)
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            if target not in archive.files:
                return None
            values = archive[target]
    except (ValueError, OSError, zipfile.BadZipFile, EOFError):
        return None
    if values.ndim != 1 or values.dtype != np.float64:
        return None
    return np.asarray(values, dtype=np.float64)


def target_of(plan: DriftPlan, reference: Reference, cache_dir: Path | None) -> FeatureReference | None:
    name = predictions.target_name(reference.profile, plan.prediction_drift)
    if name is None:
        return None
    sample = target_sample(reference, name, cache_dir, plan.profile_uri)
    return predictions.target_reference(reference.profile, name, sample)


def current_side(values: list[pa.Array], target: FeatureReference) -> tuple[CurrentFeature, int, str | None]:
    """The window's predictions as the target's kind: numbers or category counts; with the count of
    predictions and, when they cannot be compared at all, why."""
    if not values:
        empty: CurrentFeature = current_numeric([]) if isinstance(target, NumericReference) else CurrentCategorical({})
        return empty, 0, "no collected prediction in the window"
    joined = live_quality.unify(values)
    if isinstance(target, NumericReference):
        numbers = live_quality.float_values(joined)
        unreadable = int(np.isnan(numbers).sum()) - joined.null_count
        if len(joined) and unreadable == len(joined):
            return current_numeric(numbers), len(joined), "the predictions are text and the target is numeric"
        return current_numeric(numbers), len(joined), None
    counts: Counter[str] = Counter()
    for item in pc.value_counts(pc.cast(joined.drop_null(), pa.string())).to_pylist():
        counts[str(item["values"])] += int(item["counts"])
    return CurrentCategorical(counts, joined.null_count), len(joined), None


def prediction_drift(
    plan: DriftPlan, target: FeatureReference | None, values: list[pa.Array]
) -> PredictionDriftResult | None:
    """Prediction drift as the plan asks, or None when it does not."""
    settings = plan.prediction_drift
    if settings is None:
        return None
    if target is None:
        name = settings.target or "the target"
        return PredictionDriftResult(
            test=settings.test, threshold=settings.threshold or 0.1, drifted=False,
            note=f"the baseline profile has no column {name!r} to compare the predictions with",
        )
    current, samples, why = current_side(values, target)
    if why is not None:
        return predictions.mismatch(target, samples, settings, why)
    if samples < plan.min_samples:
        why = f"{samples} predictions in the window, fewer than minSamples={plan.min_samples}"
        return predictions.mismatch(target, samples, settings, why)
    return predictions.evaluate(target, current, settings, samples)


def classes_of(target: FeatureReference | None) -> list[str]:
    labels, numeric = predictions.model_classes(target)
    return quality.model_class_order(labels, numeric)


__all__ = ["classes_of", "current_side", "prediction_drift", "target_of", "target_sample"]
