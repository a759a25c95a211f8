"""A version's content from its parts: the rules that need every row, the profile, the snapshot.

Two ways, by what the rules need:
- **merged** (the usual one): the whole-table rules run on the parts' summaries (missing values and
  rows summed, duplicates found among the parts' row hashes), the profile is merged from the parts'
  exact statistics and samples (summaries.py), and the snapshot is the parts themselves. Only new
  files' bytes are read: the cost of a refresh is that of its new files plus reading the parts'
  summaries, row hashes and the first rows of their samples.
- **whole**: outlier rules, and dropping duplicates when there are some, need every row in one frame.
  The parts are read, cleaned as one table, profiled exactly, and written as one new part.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

from mlops_operator.api.profile import FeatureProfile
from mlops_operator.api.v1alpha1.dataset import DatasetSpec, DuplicatePolicy, FeatureType, QualityFinding
from mlops_operator.workloads import data, parts, quality, summaries
from mlops_operator.workloads.summaries import FloatArray, TaskHint


@dataclass
class Built:
    """What a version directory will hold."""

    rows_read: int
    rows: int
    features: list[FeatureProfile]
    samples: dict[str, FloatArray]  # sorted reference sample per numeric column
    findings: list[QualityFinding]
    task_hint: TaskHint | None
    frame: pd.DataFrame | None = None  # whole: the cleaned table to write as the snapshot
    part_uris: list[str] = field(default_factory=list)  # merged: the parts that are the snapshot


def build(found: Sequence[parts.Part], spec: DatasetSpec, seed: int) -> Built:
    """Apply the rules across the parts and profile the result (merged, or whole when rules need it)."""
    summaries_ = [p.summary for p in found]
    rows_read = sum(s.rows_read for s in summaries_)
    missing: dict[str, int] = {}
    for s in summaries_:
        for column, count in s.missing.items():
            missing[column] = missing.get(column, 0) + count
    quality.check_missing(missing, rows_read, spec.quality.max_missing_fraction)
    target = spec.schema_.target
    findings = quality.missing_target_findings(sum(s.missing_target for s in summaries_), target)
    duplicates = count_duplicates(parts.read_row_hashes(found))
    if quality.needs_whole_table(spec, duplicates):
        return _whole(found, spec, findings, rows_read, seed)
    findings += quality.duplicate_findings(duplicates, DuplicatePolicy(spec.quality.duplicates), findings)
    rows = sum(s.rows for s in summaries_)
    quality.check_min_rows(rows, spec.quality.min_rows)
    features, samples = merged_features(found)
    return Built(rows_read, rows, features, samples, findings, _task_hint(found, target),
                 part_uris=[p.data_uri for p in found])


def count_duplicates(hashes: npt.NDArray[np.uint64]) -> int:
    """Rows whose hash an earlier row has (64-bit row hashes: a false match has a chance of 2^-64 a pair)."""
    if hashes.size < 2:
        return 0
    ordered = np.sort(hashes)
    return int(np.count_nonzero(ordered[1:] == ordered[:-1]))


def _whole(
    found: Sequence[parts.Part], spec: DatasetSpec, findings: list[QualityFinding], rows_read: int, seed: int
) -> Built:
    frame = data.read_parts([p.data_uri for p in found], text_as_objects=False)
    prepared = quality.clean_whole(quality.Prepared(frame, findings), spec)
    features, samples = summaries.profile_features(prepared.frame, seed=seed)
    target = spec.schema_.target
    task_hint = summaries.infer_task(prepared.frame[target]) if target else None
    return Built(rows_read, len(prepared.frame), features, samples, prepared.findings, task_hint,
                 frame=prepared.frame)


def _task_hint(found: Sequence[parts.Part], target: str | None) -> TaskHint | None:
    if target is None:
        return None
    if found[0].summary.kinds.get(target) == parts.TEXT:
        return "classification"
    classes: set[float] = set()
    for part in found:
        if part.summary.target_classes is None and part.summary.rows:
            return "regression"
        classes.update(part.summary.target_classes or [])
    return "classification" if len(classes) <= summaries.CLASSIFICATION_MAX_CLASSES else "regression"


def merged_features(found: Sequence[parts.Part]) -> tuple[list[FeatureProfile], dict[str, FloatArray]]:
    """Every column's merged statistics and, for numeric ones, the merged sorted reference sample."""
    columns = [f.name for f in found[0].summary.features]
    by_part = [{f.name: f for f in p.summary.features} for p in found]
    allocations = {c: _allocation(found, by_part, c) for c in columns if by_part[0][c].type == FeatureType.NUMERIC}
    rows = [max((a[i] for a in allocations.values()), default=0) for i in range(len(found))]
    matrices = [parts.read_sample_rows(p, n) if n else None for p, n in zip(found, rows, strict=True)]
    features: list[FeatureProfile] = []
    samples: dict[str, FloatArray] = {}
    for column in columns:
        pieces = [b[column] for b in by_part]
        merged = summaries.merge_feature(pieces)
        if column in allocations:
            sample = _sample(found, matrices, column, allocations[column])
            if len(found) == 1 and pieces[0].numeric is not None:  # one file: its exact statistics
                merged.numeric, samples[column] = pieces[0].numeric.model_copy(), np.sort(sample)
                merged.numeric.reference_size = int(sample.size)
            else:
                numeric = [p.numeric for p in pieces if p.numeric is not None]
                merged.numeric, samples[column] = summaries.merge_numeric(numeric, sample)
        elif len(found) == 1:
            merged.categorical = pieces[0].categorical
        else:
            merged.categorical = summaries.merge_categorical([p.summary.categories.get(column, {}) for p in found])
        features.append(merged)
    return features, samples


def _allocation(found: Sequence[parts.Part], by_part: list[dict[str, FeatureProfile]], column: str) -> list[int]:
    finite = [sum(b[column].numeric.histogram_counts) if b[column].numeric else 0 for b in by_part]  # type: ignore[union-attr]
    available = [_sampled(p, column) for p in found]
    return summaries.sample_allocation(finite, available)


def _sampled(part: parts.Part, column: str) -> int:
    summary = part.summary
    return summary.sample_lengths[summary.sample_columns.index(column)] if column in summary.sample_columns else 0


def _sample(
    found: Sequence[parts.Part], matrices: list[npt.NDArray[np.float64] | None], column: str, take: list[int]
) -> FloatArray:
    """The column's merged sample: the first `take[i]` sampled values of each part, in one new array."""
    sample = np.empty(sum(take), dtype=np.float64)
    at = 0
    for part, matrix, count in zip(found, matrices, take, strict=True):
        if count and matrix is not None:
            sample[at : at + count] = parts.column_values(matrix, part.summary.sample_columns.index(column), count)
            at += count
    return sample[:at]


__all__ = ["Built", "build", "count_duplicates", "merged_features"]
