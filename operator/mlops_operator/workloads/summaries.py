"""What `profile` records about each column: summaries for profile.json, and for each numeric
feature the sorted reference sample that drift checks compare against (reference.npz).
"""

from __future__ import annotations

import io
import zipfile
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from mlops_operator.api.profile import (
    HISTOGRAM_BINS,
    MAX_CATEGORIES,
    OTHER_CATEGORY,
    QUANTILES,
    REFERENCE_SAMPLE_MAX,
    CategoricalSummary,
    FeatureProfile,
    NumericSummary,
)
from mlops_operator.api.v1alpha1.dataset import FeatureType
from mlops_operator.workloads import data

# A target with at most this many distinct integer values suggests classification.
CLASSIFICATION_MAX_CLASSES: Final = 20

TaskHint = Literal["classification", "regression"]
FloatArray = npt.NDArray[np.float64]


def infer_task(target: pd.Series[Any]) -> TaskHint:
    """Classification for a text target or one with few distinct integer values; else regression."""
    if data.feature_kind(target) == FeatureType.CATEGORICAL:
        return "classification"
    values = target.dropna().to_numpy(dtype=np.float64)
    integral = bool(np.all(np.isfinite(values) & (values == np.round(values))))
    if integral and np.unique(values).size <= CLASSIFICATION_MAX_CLASSES:
        return "classification"
    return "regression"


def profile_features(frame: pd.DataFrame, seed: int) -> tuple[list[FeatureProfile], dict[str, FloatArray]]:
    """Statistics for every column and, for numeric ones, the sorted reference sample."""
    rng = np.random.default_rng(seed)
    features: list[FeatureProfile] = []
    samples: dict[str, FloatArray] = {}
    for column in frame.columns:
        series = frame[column]
        name = str(column)
        kind = data.feature_kind(series)
        missing = int(series.isna().sum())
        feature = FeatureProfile(
            name=name, type=kind, dtype=str(series.dtype), count=len(series) - missing, missing=missing
        )
        if kind == FeatureType.NUMERIC:
            values = series.to_numpy(dtype=np.float64, na_value=np.nan)
            feature.numeric, samples[name] = numeric_summary(values, rng)
        else:
            feature.categorical = categorical_summary(series)
        features.append(feature)
    return features, samples


def numeric_summary(values: FloatArray, rng: np.random.Generator) -> tuple[NumericSummary, FloatArray]:
    present = values[np.isfinite(values)]
    if present.size == 0:
        return NumericSummary(), np.empty(0, dtype=np.float64)
    quantiles = np.quantile(present, QUANTILES)
    counts, edges = np.histogram(present, bins=HISTOGRAM_BINS)
    sample = present if present.size <= REFERENCE_SAMPLE_MAX else rng.choice(
        present, REFERENCE_SAMPLE_MAX, replace=False
    )
    summary = NumericSummary(
        mean=float(present.mean()),
        std=float(present.std()),
        min=float(quantiles[0]),
        max=float(quantiles[-1]),
        quantiles={str(q): float(v) for q, v in zip(QUANTILES, quantiles, strict=True)},
        histogram_edges=[float(e) for e in edges],
        histogram_counts=[int(c) for c in counts],
        reference_size=int(sample.size),
    )
    return summary, np.sort(sample)


def categorical_summary(series: pd.Series[Any]) -> CategoricalSummary:
    counts = series.value_counts(dropna=True, sort=True)
    top = counts.iloc[:MAX_CATEGORIES]
    categories = {str(k): int(v) for k, v in top.items()}
    overflow = int(counts.iloc[MAX_CATEGORIES:].sum())
    if overflow:
        categories[OTHER_CATEGORY] = overflow
    return CategoricalSummary(categories=categories, distinct=int(counts.size))


def reference_npz(samples: dict[str, FloatArray]) -> bytes:
    """An .npz archive written member by member: np.savez would clash with columns named `file`."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, values in samples.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, values, allow_pickle=False)
    return buffer.getvalue()


__all__ = ["categorical_summary", "infer_task", "numeric_summary", "profile_features", "reference_npz"]
