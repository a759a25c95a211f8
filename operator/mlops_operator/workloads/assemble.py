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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from mlops_operator.api.profile import FeatureProfile
from mlops_operator.api.v1alpha1.dataset import DatasetSpec, DuplicatePolicy, FeatureType, QualityFinding
from mlops_operator.workloads import data, npz, parts, quality, summaries
from mlops_operator.workloads.summaries import FloatArray, TaskHint

SORT_THREADS: Final = 2  # the row hashes sorted beside the samples' reading; the samples sorted two at a time


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
    members: dict[str, npz.Member] = field(default_factory=dict)  # merged: reference.npz's members, CRCs made


def build(found: Sequence[parts.Part], spec: DatasetSpec, seed: int) -> Built:
    """Apply the rules across the parts and profile the result (merged, or whole when rules need it).
    Two threads (numpy's sort and zlib's CRC release the GIL): the row hashes are sorted beside the
    reading of the parts' samples, then the samples are sorted and their archive members made."""
    summaries_ = [p.summary for p in found]
    rows_read = sum(s.rows_read for s in summaries_)
    missing: dict[str, int] = {}
    for s in summaries_:
        for column, count in s.missing.items():
            missing[column] = missing.get(column, 0) + count
    quality.check_missing(missing, rows_read, spec.quality.max_missing_fraction)
    target = spec.schema_.target
    findings = quality.missing_target_findings(sum(s.missing_target for s in summaries_), target)
    with ThreadPoolExecutor(max_workers=SORT_THREADS) as pool:
        counting = pool.submit(count_duplicates, parts.read_row_hashes(found))
        read = None if quality.needs_whole_table(spec, 0) else _read_samples(found)
        duplicates = counting.result()
        if read is None or quality.needs_whole_table(spec, duplicates):
            return _whole(found, spec, findings, rows_read, seed)
        findings += quality.duplicate_findings(duplicates, DuplicatePolicy(spec.quality.duplicates), findings)
        rows = sum(s.rows for s in summaries_)
        quality.check_min_rows(rows, spec.quality.min_rows)
        features, samples, members = _merged(found, read, pool)
    return Built(rows_read, rows, features, samples, findings, _task_hint(found, target),
                 part_uris=[p.data_uri for p in found], members=members)


def count_duplicates(hashes: npt.NDArray[np.uint64]) -> int:
    """Rows whose hash an earlier row has (64-bit row hashes: a false match has a chance of 2^-64 a pair).
    Sorts `hashes` in place (a refresh's million hashes are not copied again), as int64: only equal
    values next to each other matter, and numpy sorts signed 64-bit integers faster."""
    if hashes.size < 2:
        return 0
    signed = hashes.view(np.int64)
    signed.sort()
    return int(np.count_nonzero(signed[1:] == signed[:-1]))


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


def _read_samples(found: Sequence[parts.Part]) -> dict[str, FloatArray]:
    """Each numeric column's merged sample, unsorted (the parts' first sampled values by allocation)."""
    by_part = [{f.name: f for f in p.summary.features} for p in found]
    numeric = [f.name for f in found[0].summary.features if f.type == FeatureType.NUMERIC]
    return _samples(found, {c: _allocation(found, by_part, c) for c in numeric})


def _merged(
    found: Sequence[parts.Part], read: dict[str, FloatArray], pool: ThreadPoolExecutor
) -> tuple[list[FeatureProfile], dict[str, FloatArray], dict[str, npz.Member]]:
    """The merged features from the unsorted samples `read` (sorted in place on `pool`, each with its
    reference.npz member made on the same thread), in column order."""
    sorting = {column: pool.submit(_sorted_member, sample) for column, sample in read.items()}
    members: dict[str, npz.Member] = {}
    columns = [f.name for f in found[0].summary.features]
    by_part = [{f.name: f for f in p.summary.features} for p in found]
    features: list[FeatureProfile] = []
    samples: dict[str, FloatArray] = {}
    for column in columns:
        pieces = [b[column] for b in by_part]
        merged = summaries.merge_feature(pieces)
        if column in read:
            sample, members[column] = read[column], sorting[column].result()
            if len(found) == 1 and pieces[0].numeric is not None:  # one file: its exact statistics
                merged.numeric, samples[column] = pieces[0].numeric.model_copy(), sample
                merged.numeric.reference_size = int(sample.size)
            else:
                numeric = [p.numeric for p in pieces if p.numeric is not None]
                merged.numeric, samples[column] = summaries.merge_numeric(numeric, sample)
        elif len(found) == 1:
            merged.categorical = pieces[0].categorical
        else:
            merged.categorical = summaries.merge_categorical([p.summary.categories.get(column, {}) for p in found])
        features.append(merged)
    return features, samples, members


def _sorted_member(sample: FloatArray) -> npz.Member:
    """Sort in place, then the archive member (its CRC-32): the same bytes as sorting and writing one
    column after another, since it is the same algorithm on the same values."""
    sample.sort()
    return npz.member(sample)


def _allocation(found: Sequence[parts.Part], by_part: list[dict[str, FeatureProfile]], column: str) -> list[int]:
    finite = [sum(b[column].numeric.histogram_counts) if b[column].numeric else 0 for b in by_part]  # type: ignore[union-attr]
    available = [_sampled(p, column) for p in found]
    return summaries.sample_allocation(finite, available)


def _sampled(part: parts.Part, column: str) -> int:
    summary = part.summary
    return summary.sample_lengths[summary.sample_columns.index(column)] if column in summary.sample_columns else 0


def _samples(found: Sequence[parts.Part], allocations: dict[str, list[int]]) -> dict[str, FloatArray]:
    """Each numeric column's merged sample (unsorted): the first `allocations[column][i]` sampled
    values of part i, in part order. Each part's blocks are read once, for every column. The samples
    are views of one buffer: tens of MB in one allocation take huge pages (numpy advises them from
    4 MiB), where one array per column would page-fault every 4 KiB of it."""
    buffer = np.empty(sum(sum(take) for take in allocations.values()), dtype=np.float64)
    samples: dict[str, FloatArray] = {}
    at = 0
    for column, take in allocations.items():
        samples[column], at = buffer[at : at + sum(take)], at + sum(take)
    filled = dict.fromkeys(allocations, 0)
    reader = parts.SampleReader()
    for i, part in enumerate(found):
        rows = max((take[i] for take in allocations.values()), default=0)
        if not rows:
            continue
        blocks = reader.blocks(part, rows)
        for column, take in allocations.items():
            at, count = filled[column], take[i]
            if count:
                index = part.summary.sample_columns.index(column)
                parts.copy_column_values(blocks, index, samples[column][at : at + count])
                filled[column] = at + count
    return {column: sample[: filled[column]] for column, sample in samples.items()}


__all__ = ["Built", "build", "count_duplicates"]
