"""What `profile` records about each column: summaries for profile.json, and for each numeric
feature the sorted reference sample that drift checks compare against (reference.npz).

A table read in one piece is summarised by `profile_features`. A source of many files is summarised
file by file (`column_summaries`, kept with each parsed file in workloads/parts.py) and the file
summaries are merged (`merge_numeric`, `merge_categorical`):
- count, missing, mean, std (Chan's pairwise formula), min and max are exact;
- the reference sample takes from each file a share of its values proportional to its size, from a
  seeded random order kept with the file: a stratified random sample of at most REFERENCE_SAMPLE_MAX
  values, every value when the column has no more;
- quantiles and the histogram are exact when the sample holds every value, else computed on the
  sample (the 0 and 1 quantiles stay the exact min and max, the histogram counts are scaled to the
  exact number of finite values);
- category counts are exact while every file has at most PART_CATEGORY_LIMIT distinct values.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import IO, Any, Final, Literal

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
from mlops_operator.workloads import data, npz

# A target with at most this many distinct integer values suggests classification.
CLASSIFICATION_MAX_CLASSES: Final = 20
# Category counts kept per file for merging; beyond it the merged counts and `distinct` are lower bounds.
PART_CATEGORY_LIMIT: Final = 100_000

TaskHint = Literal["classification", "regression"]
FloatArray = npt.NDArray[np.float64]


def target_classes(target: pd.Series[Any]) -> list[float] | None:
    """The distinct values of a numeric target if they are at most CLASSIFICATION_MAX_CLASSES integers."""
    values = target.dropna().to_numpy(dtype=np.float64)
    if not bool(np.all(np.isfinite(values) & (values == np.round(values)))):
        return None
    distinct = np.unique(values)
    return [float(v) for v in distinct] if distinct.size <= CLASSIFICATION_MAX_CLASSES else None


def infer_task(target: pd.Series[Any]) -> TaskHint:
    """Classification for a text target or one with few distinct integer values; else regression."""
    if data.feature_kind(target) == FeatureType.CATEGORICAL:
        return "classification"
    return "classification" if target_classes(target) is not None else "regression"


def column_summaries(frame: pd.DataFrame) -> tuple[list[FeatureProfile], dict[str, FloatArray]]:
    """Exact statistics of every column and, for numeric ones, their finite values (unsorted)."""
    features: list[FeatureProfile] = []
    finite: dict[str, FloatArray] = {}
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
            finite[name] = values[np.isfinite(values)]
            feature.numeric = numeric_stats(finite[name])
        else:
            feature.categorical = categorical_summary(series)
        features.append(feature)
    return features, finite


def profile_features(frame: pd.DataFrame, seed: int) -> tuple[list[FeatureProfile], dict[str, FloatArray]]:
    """Statistics for every column and, for numeric ones, the sorted reference sample."""
    rng = np.random.default_rng(seed)
    features, finite = column_summaries(frame)
    samples: dict[str, FloatArray] = {}
    for feature in features:
        if feature.numeric is not None:
            sample = _sampled(finite[feature.name], rng)
            samples[feature.name] = np.sort(sample)
            feature.numeric.reference_size = int(sample.size)
    return features, samples


def numeric_stats(present: FloatArray) -> NumericSummary:
    """Exact statistics of finite values (reference_size is left to the caller)."""
    if present.size == 0:
        return NumericSummary()
    quantiles = np.quantile(present, QUANTILES)
    counts, edges = np.histogram(present, bins=HISTOGRAM_BINS)
    return NumericSummary(
        mean=float(present.mean()),
        std=float(present.std()),
        min=float(quantiles[0]),
        max=float(quantiles[-1]),
        quantiles={str(q): float(v) for q, v in zip(QUANTILES, quantiles, strict=True)},
        histogram_edges=[float(e) for e in edges],
        histogram_counts=[int(c) for c in counts],
    )


def sorted_stats(ordered: FloatArray) -> NumericSummary:
    """numeric_stats of finite values already sorted: the same numbers (np.quantile's linear rule,
    np.histogram's bins), from positions instead of a pass over the values."""
    if ordered.size == 0:
        return NumericSummary()
    low, high = float(ordered[0]), float(ordered[-1])
    counts, edges = _sorted_histogram(ordered, low, high)
    return NumericSummary(
        mean=float(ordered.mean()),
        std=float(ordered.std()),
        min=low,
        max=high,
        quantiles={str(q): float(v) for q, v in zip(QUANTILES, sorted_quantiles(ordered), strict=True)},
        histogram_edges=[float(e) for e in edges],
        histogram_counts=[int(c) for c in counts],
    )


def sorted_quantiles(ordered: FloatArray) -> FloatArray:
    """np.quantile(ordered, QUANTILES) (method linear, numpy's own interpolation) of sorted values."""
    virtual = (ordered.size - 1) * np.asarray(QUANTILES, dtype=np.float64)
    below = np.floor(virtual).astype(np.int64)
    above = np.minimum(below + 1, ordered.size - 1)
    gamma = virtual - below
    a, b = ordered[below], ordered[above]
    difference = b - a
    return np.where(gamma >= 0.5, b - difference * (1 - gamma), a + difference * gamma)


def _sorted_histogram(ordered: FloatArray, low: float, high: float) -> tuple[npt.NDArray[np.int64], FloatArray]:
    """np.histogram(values, HISTOGRAM_BINS, range=(low, high)) of sorted values."""
    if low == high:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, HISTOGRAM_BINS + 1)
    starts = np.searchsorted(ordered, edges[:-1], side="left")
    ends = np.append(starts[1:], np.searchsorted(ordered, edges[-1], side="right"))
    return (ends - starts).astype(np.int64), edges


def numeric_summary(values: FloatArray, rng: np.random.Generator) -> tuple[NumericSummary, FloatArray]:
    """Statistics of a column's values (NaN and infinities are not counted) and its sorted sample."""
    present = values[np.isfinite(values)]
    summary = numeric_stats(present)
    sample = _sampled(present, rng)
    summary.reference_size = int(sample.size)
    return summary, np.sort(sample)


def _sampled(present: FloatArray, rng: np.random.Generator) -> FloatArray:
    return present if present.size <= REFERENCE_SAMPLE_MAX else rng.choice(present, REFERENCE_SAMPLE_MAX, replace=False)


def categorical_summary(series: pd.Series[Any]) -> CategoricalSummary:
    counts = series.value_counts(dropna=True, sort=True)
    return _top_categories({str(k): int(v) for k, v in counts.items()}, int(counts.size), presorted=True)


def category_counts(series: pd.Series[Any]) -> tuple[dict[str, int], bool]:
    """Every value's count (the PART_CATEGORY_LIMIT most frequent), and whether some were left out."""
    counts = series.value_counts(dropna=True, sort=True)
    kept = counts.iloc[:PART_CATEGORY_LIMIT]
    return {str(k): int(v) for k, v in kept.items()}, counts.size > PART_CATEGORY_LIMIT


def _top_categories(counts: dict[str, int], distinct: int, presorted: bool = False) -> CategoricalSummary:
    ordered = list(counts.items()) if presorted else sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    categories = dict(ordered[:MAX_CATEGORIES])
    overflow = sum(v for _, v in ordered[MAX_CATEGORIES:])
    if overflow:
        categories[OTHER_CATEGORY] = overflow
    return CategoricalSummary(categories=categories, distinct=distinct)


# --- merging the summaries of many files --------------------------------------------------------
def sample_allocation(finite: Sequence[int], available: Sequence[int]) -> list[int]:
    """How many sampled values to take from each file: min(REFERENCE_SAMPLE_MAX, total) in all,
    proportional to each file's finite values (largest remainder), never more than it has sampled."""
    total = sum(finite)
    wanted = min(REFERENCE_SAMPLE_MAX, total)
    if total == 0:
        return [0] * len(finite)
    exact = [wanted * n / total for n in finite]
    shares = [int(x) for x in exact]
    for i in sorted(range(len(exact)), key=lambda i: shares[i] - exact[i])[: wanted - sum(shares)]:
        shares[i] += 1
    return [min(s, a) for s, a in zip(shares, available, strict=True)]


def merge_numeric(parts: Sequence[NumericSummary], ordered: FloatArray) -> tuple[NumericSummary, FloatArray]:
    """One column's statistics from its files' (exact) ones and the merged sample, sorted (it becomes
    the reference)."""
    present = [(sum(p.histogram_counts), p) for p in parts if p.histogram_counts and p.mean is not None]
    total = sum(n for n, _ in present)
    reference = ordered
    if reference.size == total:  # the sample is every value: exact, as for a table read whole
        summary = sorted_stats(reference)
    else:
        mean = sum(n * float(p.mean or 0.0) for n, p in present) / total
        m2 = sum(n * (float(p.std or 0.0) ** 2 + (float(p.mean or 0.0) - mean) ** 2) for n, p in present)
        low = min(float(p.min if p.min is not None else np.inf) for _, p in present)
        high = max(float(p.max if p.max is not None else -np.inf) for _, p in present)
        summary = _estimated(reference, total, low, high)
        summary.mean, summary.std, summary.min, summary.max = mean, float(np.sqrt(m2 / total)), low, high
    summary.reference_size = int(reference.size)
    return summary, reference


def _estimated(ordered: FloatArray, total: int, low: float, high: float) -> NumericSummary:
    """Quantiles and histogram of a sorted sample, the ends exact and the counts scaled to `total`."""
    quantiles = sorted_quantiles(ordered)
    quantiles[0], quantiles[-1] = low, high
    counts, edges = _sorted_histogram(ordered, low, high)
    scaled = counts * (total / max(int(counts.sum()), 1))
    whole = np.floor(scaled).astype(np.int64)
    for i in np.argsort(whole - scaled)[: total - int(whole.sum())]:
        whole[i] += 1
    return NumericSummary(
        quantiles={str(q): float(v) for q, v in zip(QUANTILES, quantiles, strict=True)},
        histogram_edges=[float(e) for e in edges],
        histogram_counts=[int(c) for c in whole],
    )


def merge_categorical(parts: Sequence[dict[str, int]]) -> CategoricalSummary:
    """Summed counts: the MAX_CATEGORIES most frequent (ties by value), the rest under OTHER_CATEGORY."""
    total: Counter[str] = Counter()
    for counts in parts:
        total.update(counts)
    return _top_categories(dict(total), len(total))


def merge_feature(parts: Sequence[FeatureProfile]) -> FeatureProfile:
    """A column's count, missing, type and dtype over files (the summaries are merged by the caller)."""
    first = parts[0]
    return FeatureProfile(
        name=first.name,
        type=first.type,
        dtype=first.dtype,
        count=sum(p.count for p in parts),
        missing=sum(p.missing for p in parts),
    )


def reference_npz(samples: dict[str, FloatArray]) -> bytes:
    """reference.npz's bytes (workloads/npz.py: what np.savez would write, without its clash with
    columns named `file`)."""
    buffer = io.BytesIO()
    npz.write(buffer, samples)
    return buffer.getvalue()


def write_reference(
    handle: IO[bytes], samples: dict[str, FloatArray], members: Mapping[str, npz.Member] | None = None
) -> None:
    """reference.npz straight into a file object, in one forward pass (no copy of the archive in
    memory); `members`: the samples' members with their CRC-32 computed already (npz.member)."""
    npz.write(handle, samples, members)


__all__ = [
    "categorical_summary",
    "category_counts",
    "column_summaries",
    "infer_task",
    "merge_categorical",
    "merge_feature",
    "merge_numeric",
    "numeric_stats",
    "numeric_summary",
    "profile_features",
    "reference_npz",
    "sample_allocation",
    "sorted_quantiles",
    "sorted_stats",
    "target_classes",
    "write_reference",
]
