"""Both sides of a drift check as the statistics need them, with their missing counts. No I/O.

The reference side comes from a Dataset profile (api/profile.py): `profile.json` with category counts
and one sorted float64 sample per numeric feature. `build` turns them into `Reference`: the sorted
samples as they are (a check merges into them, never sorts them), the few derived numbers (std, decile
edges and counts, the distinct values of low-cardinality numeric features) that cost one pass over a
sorted array, and how many values of each feature were missing in the profiled data. Reading the files
(store, cache) is drift/reference.py's job.

The current side is what the window held: a sorted finite sample or category counts, and the number of
missing values. "Missing" means the same on both sides: null, NaN, +inf or -inf. Non-finite values
never enter a statistic (see stats.finite_sorted).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from mlops_operator.api.profile import OTHER_CATEGORY, DatasetProfile, FeatureProfile
from mlops_operator.api.v1alpha1.dataset import FeatureType
from mlops_operator.drift import stats
from mlops_operator.drift.categories import canonical_counts
from mlops_operator.drift.stats import FloatArray, IntArray

# Evidently treats a numeric feature with at most this many distinct values like a categorical one.
FEW_DISTINCT_VALUES: Final = 5


def _share(missing: int, rows: int) -> float | None:
    return missing / rows if rows > 0 else None


@dataclass(frozen=True, slots=True)
class NumericReference:
    name: str
    sorted_values: FloatArray  # finite only
    std: float
    decile_edges: FloatArray
    decile_counts: IntArray
    # The distinct values and their counts when there are at most FEW_DISTINCT_VALUES of them.
    few_values: FloatArray | None
    few_counts: IntArray | None
    missing: int = 0  # null, NaN or ±inf values of the profiled column (profile counts, not sample counts)
    rows: int = 0  # values of the profiled column, missing ones included

    @property
    def size(self) -> int:
        return int(self.sorted_values.size)

    @property
    def missing_share(self) -> float | None:
        return _share(self.missing, self.rows)


@dataclass(frozen=True, slots=True)
class CategoricalReference:
    name: str
    categories: tuple[str, ...]  # canonical labels (categories.canonical_label)
    counts: IntArray
    has_overflow: bool  # the profile folded rare categories into OTHER_CATEGORY
    missing: int = 0
    rows: int = 0

    @property
    def size(self) -> int:
        return int(self.counts.sum())

    @property
    def missing_share(self) -> float | None:
        return _share(self.missing, self.rows)


FeatureReference = NumericReference | CategoricalReference


@dataclass(frozen=True, slots=True)
class Reference:
    profile: DatasetProfile
    profile_sha256: str
    features: dict[str, FeatureReference]

    @property
    def rows(self) -> int:
        return self.profile.rows


@dataclass(frozen=True, slots=True)
class CurrentNumeric:
    """A numeric feature of the current window: finite and sorted (see current_numeric)."""

    sorted_values: FloatArray
    missing: int = 0  # null, NaN or ±inf values in the window
    non_finite: int = 0  # of which ±inf (known when built by current_numeric)

    @property
    def rows(self) -> int:
        return int(self.sorted_values.size) + self.missing

    @property
    def missing_share(self) -> float | None:
        return _share(self.missing, self.rows)


@dataclass(frozen=True, slots=True)
class CurrentCategorical:
    counts: Mapping[str, int]  # raw labels as read; canonicalised when compared
    missing: int = 0

    @property
    def rows(self) -> int:
        return sum(self.counts.values()) + self.missing

    @property
    def missing_share(self) -> float | None:
        return _share(self.missing, self.rows)


CurrentFeature = CurrentNumeric | CurrentCategorical


def current_numeric(values: npt.ArrayLike) -> CurrentNumeric:
    """A window's numeric column (nulls as NaN) as a check needs it: finite, sorted, missing counted."""
    array = np.asarray(values, dtype=np.float64)
    sorted_values = stats.finite_sorted(array)
    infinite = int(np.isinf(array).sum()) if sorted_values.size < array.size else 0
    return CurrentNumeric(sorted_values, missing=int(array.size - sorted_values.size), non_finite=infinite)


def prepare_numeric(
    name: str, sorted_values: FloatArray, *, missing: int | None = None, rows: int | None = None
) -> NumericReference:
    """Everything a check needs from one sorted sample; O(n) on the sorted array, no sort.

    Non-finite values (an old profile kept ±inf in its sample) are dropped. `missing` and `rows`
    describe the whole profiled column; without them the sample is taken as the whole column.
    """
    finite = np.isfinite(sorted_values)
    values = sorted_values if finite.all() else sorted_values[finite]
    few_values: FloatArray | None = None
    few_counts: IntArray | None = None
    if values.size:
        starts = np.concatenate(([0], np.flatnonzero(np.diff(values)) + 1))
        if starts.size <= FEW_DISTINCT_VALUES:
            few_values = values[starts]
            few_counts = np.diff(np.concatenate((starts, [values.size]))).astype(np.int64)
    edges = stats.decile_edges(values)
    return NumericReference(
        name=name,
        sorted_values=values,
        std=float(np.std(values)) if values.size else 0.0,
        decile_edges=edges,
        decile_counts=stats.binned_counts(values, edges),
        few_values=few_values,
        few_counts=few_counts,
        missing=int(sorted_values.size - values.size) if missing is None else missing,
        rows=int(sorted_values.size) if rows is None else rows,
    )


def prepare_categorical(
    name: str, categories: Mapping[str, int], *, missing: int = 0, rows: int | None = None
) -> CategoricalReference:
    """Category counts under canonical labels (categories.canonical_label)."""
    canonical = canonical_counts(categories.items())
    values = np.fromiter(canonical.values(), dtype=np.int64, count=len(canonical))
    return CategoricalReference(
        name=name,
        categories=tuple(canonical),
        counts=values,
        has_overflow=OTHER_CATEGORY in canonical,
        missing=missing,
        rows=int(values.sum()) + missing if rows is None else rows,
    )


def numeric_missing(feature: FeatureProfile, sample: FloatArray) -> int:
    """Null, NaN and ±inf values of a profiled numeric column, in the profile's counts.

    The profile counts nulls as `missing` and everything else in `count`; its histogram holds the
    finite values only. Without a histogram (no finite value, or an older profile) the share of finite
    values in the sample stands in.
    """
    summary = feature.numeric
    if summary is not None and summary.histogram_counts:
        finite = sum(summary.histogram_counts)
    elif sample.size:
        finite = round(feature.count * int(np.isfinite(sample).sum()) / sample.size)
    else:
        finite = 0
    return feature.missing + max(feature.count - finite, 0)


def build(profile: DatasetProfile, profile_sha256: str, samples: Mapping[str, FloatArray]) -> Reference:
    features: dict[str, FeatureReference] = {}
    for feature in profile.features:
        if feature.name == profile.target:
            continue
        rows = feature.count + feature.missing
        if feature.type == FeatureType.NUMERIC:
            sample = samples.get(feature.name, _EMPTY)
            missing = numeric_missing(feature, sample)
            features[feature.name] = prepare_numeric(feature.name, sample, missing=missing, rows=rows)
        else:
            counts = feature.categorical.categories if feature.categorical else {}
            features[feature.name] = prepare_categorical(feature.name, counts, missing=feature.missing, rows=rows)
    return Reference(profile=profile, profile_sha256=profile_sha256, features=features)


_EMPTY: Final = np.empty(0, dtype=np.float64)


__all__ = [
    "FEW_DISTINCT_VALUES",
    "CategoricalReference",
    "CurrentCategorical",
    "CurrentFeature",
    "CurrentNumeric",
    "FeatureReference",
    "NumericReference",
    "Reference",
    "build",
    "current_numeric",
    "numeric_missing",
    "prepare_categorical",
    "prepare_numeric",
]
