"""Labelled production rows for the training data of the next version (spec.retrain.productionLabels).

The training workload asks `training_frame(plan)` for its data: the Dataset version's snapshot and,
when the plan has a `production` part, the production rows appended to it (before the split, so
some land in the test split: the gate then judges on today's rows too, minus the champion's own
training rows, by fingerprint, as for any test row):

1. read the collected rows predicted in [window_start, window_end) that carry a prediction id
   (the snapshot's feature columns, the id and the time; torn files are skipped and named);
2. join them by id to the labels that arrived before window_end, through the live-quality join
   (drift/quality.join: the latest prediction and the latest label per id);
3. conform each joined row to the snapshot's schema (its columns and their kinds; the snapshot is
   the Dataset's schema applied): a file without one of the feature columns, a number column
   holding text, a missing label, a class label that is not a whole number for a numeric target:
   the row is dropped and counted as `invalid`;
4. drop rows equal to a snapshot row (same feature values and target: data.row_fingerprints), so a
   row a team's pipeline already exported into the Dataset is not counted twice (`duplicates`);
5. keep the `max_rows` most recently predicted rows (`overMaxRows`).

Rows whose label arrived at or after `new_since` (when the champion's training started) are `new`.
With `require_new` (a retrain on the champion's own dataset version) and no new row, the run ends
with NoNewData before anything is fitted. What was used goes to the version's lineage.json
(`productionRows`): the window, the counts and a digest of the files read.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mlops_operator import contracts, store
from mlops_operator.api.plans import ProductionRowsPlan, TrainingPlan
from mlops_operator.api.v1alpha1.dataset import FeatureType
from mlops_operator.api.v1alpha1.model import Task
from mlops_operator.drift import categories, quality
from mlops_operator.workloads import collected, common, data, live_quality

log = logging.getLogger(__name__)

LINEAGE_ATTR: Final = "productionRows"  # frame.attrs key of the lineage record
ID, TIME = contracts.COLLECT_ID_COLUMN, contracts.COLLECT_TIME_COLUMN
LABEL_TIME: Final = "_mlops_labelled_at"
FITS: Final = "_mlops_fits"  # False: the row's file lacks a feature column
MAX_NAMED_FILES: Final = 3


@dataclass
class Counts:
    collected: int = 0  # collected rows with an id in the window
    labelled: int = 0  # of which joined to a label
    invalid: int = 0  # joined rows that do not fit the snapshot's schema
    duplicates: int = 0  # joined rows equal to a snapshot row
    over_max_rows: int = 0  # valid rows left out by max_rows (the oldest predictions)
    rows: int = 0  # appended
    new: int = 0  # appended rows whose label arrived at or after new_since


@dataclass
class Read:
    """What the store held for the window: collected rows, labels, and the files they came from."""

    rows: pd.DataFrame  # the collected rows whose id has a label (only those are kept in memory)
    labels: live_quality.Columns
    files: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    collected: int | None = None  # collected rows with an id in the window; None: len(rows)


# --- the training data ---------------------------------------------------------------------------
def training_frame(plan: TrainingPlan) -> pd.DataFrame:
    """The snapshot, with the labelled production rows appended when the plan asks for them."""
    snapshot = data.read_snapshot(plan.data_uri)
    if plan.production is None:
        return snapshot
    production = plan.production
    features = [str(c) for c in snapshot.columns if str(c) != plan.target]
    found = read(production, features)
    rows, counts = assemble(found, snapshot, plan.target, Task(plan.task), production)
    record = lineage(production, counts, found)
    log.info(
        "production rows: %d appended (%d new) of %d labelled; %d invalid, %d duplicates, %d over maxRows",
        counts.rows,
        counts.new,
        counts.labelled,
        counts.invalid,
        counts.duplicates,
        counts.over_max_rows,
    )
    if production.require_new and counts.new == 0:
        since = production.new_since.isoformat() if production.new_since else "the start of the window"
        raise common.DataError(
            "NoNewData",
            f"the Dataset has no new version and no labelled production row arrived since {since} "
            f"({counts.labelled} labelled in the window, {counts.rows} usable, none new): nothing to retrain on",
        )
    combined = append(snapshot, rows, plan.target)
    combined.attrs[LINEAGE_ATTR] = record
    return combined


def append(snapshot: pd.DataFrame, rows: pd.DataFrame, target: str) -> pd.DataFrame:
    """The snapshot's rows, then `rows` (its columns only); number columns as float64 on both sides."""
    distinct: dict[str, int] = dict(snapshot.attrs.get(data.DISTINCT_ATTR, {}))
    if rows.empty:
        return snapshot
    head = snapshot.copy(deep=False)
    for column in head.columns:
        if data.feature_kind(head[column]) == FeatureType.NUMERIC and head[column].dtype != np.float64:
            head[column] = head[column].astype(np.float64)  # bool + float would concatenate as objects
    combined = pd.concat([head, rows[list(head.columns)]], ignore_index=True)
    for column in distinct:  # the one-hot cap decides on these counts
        distinct[column] = int(combined[column].nunique())
    combined.attrs = {data.DISTINCT_ATTR: distinct}
    log.debug("appended %d production rows to %d snapshot rows (target %s)", len(rows), len(snapshot), target)
    return combined


# --- pure: join, conform, deduplicate, cap -------------------------------------------------------
def assemble(
    found: Read, snapshot: pd.DataFrame, target: str, task: Task, plan: ProductionRowsPlan
) -> tuple[pd.DataFrame, Counts]:
    """The rows to append (the snapshot's columns) and what happened to the others."""
    counts = Counts(collected=len(found.rows) if found.collected is None else found.collected)
    joined = join(found.rows, found.labels, target)
    counts.labelled = len(joined)
    rows, valid = conform(joined, snapshot, target, task)
    counts.invalid = int((~valid).sum())
    rows = rows[valid]
    features = [str(c) for c in snapshot.columns if str(c) != target]
    if len(rows) and len(snapshot):
        known = np.unique(data.row_fingerprints(snapshot[features], snapshot[target]))
        seen = data.seen_rows(data.row_fingerprints(rows[features], rows[target]), known)
        counts.duplicates = int(seen.sum())
        rows = rows[~seen]
    if len(rows) > plan.max_rows:
        counts.over_max_rows = len(rows) - plan.max_rows
        rows = rows.sort_values(TIME, ascending=False, kind="stable").head(plan.max_rows)
    since = collected.micros(plan.new_since) if plan.new_since is not None else -np.inf
    counts.rows, counts.new = len(rows), int((rows[LABEL_TIME] >= since).sum())
    return rows[[*snapshot.columns]].reset_index(drop=True), counts


def join(rows: pd.DataFrame, labels: live_quality.Columns, target: str) -> pd.DataFrame:
    """Each label (the latest per id) with its collected row (the latest per id), the label as
    `target` and its arrival time as LABEL_TIME (drift/quality.join, as live quality joins)."""
    label_times = np.concatenate(labels.times) if labels.times else np.empty(0, dtype=np.float64)
    ids = pa.array(rows[ID].astype(str).tolist() if len(rows) else [], type=pa.string())
    row_ids, label_ids = live_quality.id_codes([ids], labels.ids)
    zeros = np.zeros(0, dtype=np.int64)
    pairs = quality.join(
        quality.Side(row_ids, rows[TIME].to_numpy(dtype=np.float64), np.zeros(len(row_ids))),
        quality.Side(label_ids, label_times, np.zeros(len(label_ids))),
        zeros,
    )
    joined = rows.iloc[pairs.prediction_rows].reset_index(drop=True)
    values = live_quality.unify(labels.values).to_pandas() if labels.values else pd.Series([], dtype=object)
    joined[target] = values.iloc[pairs.label_rows].reset_index(drop=True)
    joined[LABEL_TIME] = label_times[pairs.label_rows]
    return joined


def conform(
    joined: pd.DataFrame, snapshot: pd.DataFrame, target: str, task: Task
) -> tuple[pd.DataFrame, np.ndarray[Any, np.dtype[np.bool_]]]:
    """The joined rows in the snapshot's column kinds, and which rows fit them."""
    rows = pd.DataFrame(index=joined.index)
    valid = joined[FITS].to_numpy(dtype=bool) if FITS in joined else np.ones(len(joined), dtype=bool)
    for column in snapshot.columns:
        name = str(column)
        raw = joined[name] if name in joined else pd.Series(np.nan, index=joined.index, dtype=object)
        converted, fits = _conform_column(raw, snapshot[column], task if name == target else None)
        if name == target:
            fits &= converted.notna().to_numpy()  # a label that is missing or unreadable trains nothing
        rows[name] = converted
        valid = valid & fits
    for extra in (TIME, LABEL_TIME):
        rows[extra] = joined[extra] if extra in joined else pd.Series(dtype=np.float64)
    return rows, valid


def _conform_column(
    raw: pd.Series[Any], reference: pd.Series[Any], target_task: Task | None
) -> tuple[pd.Series[Any], np.ndarray[Any, np.dtype[np.bool_]]]:
    """`raw` in the kind of `reference`; False where a present value does not fit it."""
    present = raw.notna().to_numpy()
    if data.feature_kind(reference) == FeatureType.CATEGORICAL:
        return _as_reference_text(data.as_categorical(raw), reference), np.ones(len(raw), dtype=bool)
    if pd.api.types.is_bool_dtype(raw.dtype) or pd.api.types.is_numeric_dtype(raw.dtype):
        numbers = pd.Series(raw.to_numpy(dtype=np.float64, na_value=np.nan), index=raw.index)
    else:  # text or mixed values: each one read as a number (the slow path, only for such columns)
        numbers = pd.to_numeric(raw.map(_number, na_action="ignore"), errors="coerce").astype(np.float64)
    fits = ~present | numbers.notna().to_numpy()
    if target_task == Task.CLASSIFICATION:
        values = numbers.to_numpy()
        fits = fits & (~np.isfinite(values) | (values == np.round(values)))
    return numbers, fits


def _as_reference_text(values: pd.Series[Any], reference: pd.Series[Any]) -> pd.Series[Any]:
    """Text values spelled as the snapshot spells the same category: a label file's 1.0 or True is the
    snapshot's "1" or "true" (categories.canonical_label, as live quality and drift compare them)."""
    present = values.dropna().unique()
    if len(present) == 0:
        return values
    known = {categories.canonical_label(str(t)): t for t in reference.dropna().unique()}
    spelled = {t: known.get(categories.canonical_label(str(t)), t) for t in present}
    if all(spelled[t] == t for t in present):
        return values
    return values.map(spelled, na_action="ignore")


def _number(value: Any) -> Any:
    """Booleans as 0/1 and text as its number (to_numeric would keep 'True' as text)."""
    if isinstance(value, bool | np.bool_):
        return float(value)
    return value


# --- reading -------------------------------------------------------------------------------------
def read(plan: ProductionRowsPlan, features: Sequence[str]) -> Read:
    """The labels first, then the collected rows whose id has one."""
    skipped: list[str] = []
    label_files = collected.parquet_files(
        collected.day_partition_uris(plan.labels_prefix, plan.window_start, plan.window_end)
    )
    labels = live_quality.read_labels(plan.labels_prefix, plan.window_start, plan.window_end, skipped)
    labelled_ids = pc.unique(live_quality.unify(labels.ids, pa.string()))
    rows, files, in_window = read_collected(plan, features, skipped, labelled_ids)
    return Read(rows, labels, sorted(files + label_files), skipped, in_window)


def read_collected(
    plan: ProductionRowsPlan, features: Sequence[str], skipped: list[str], labelled_ids: pa.Array
) -> tuple[pd.DataFrame, list[str], int]:
    """The collected rows predicted in the window whose id is one of `labelled_ids`: `features` (those
    a file has), ID, TIME (microseconds) and FITS (whether the file had every feature); the files
    listed; and how many rows with an id the window held."""
    low, high = collected.micros(plan.window_start), collected.micros(plan.window_end)
    files = collected.parquet_files(collected.partition_uris(plan.collected_prefix, plan.window_start, plan.window_end))
    tables: list[pa.Table] = []
    in_window = 0
    for uri in files:
        raw = store.read_bytes(uri)  # an outage fails the run (retried); a torn file is skipped
        try:
            parquet = pq.ParquetFile(pa.BufferReader(raw))
            names = set(parquet.schema_arrow.names)
            if ID not in names or TIME not in names:
                continue  # written before every prediction had an id: nothing to join
            table = parquet.read(columns=[c for c in (*features, ID, TIME) if c in names])
            stamps = collected.micros_since_epoch(table.column(TIME))
        except (pa.ArrowException, OSError, common.DataError) as exc:
            skipped.append(f"{store.redact(uri)} ({str(exc).splitlines()[0][:120] if str(exc) else exc})"[:200])
            continue
        has_id = np.asarray(pc.is_valid(table.column(ID)).to_numpy(zero_copy_only=False), dtype=bool)
        keep = (stamps >= low) & (stamps < high) & has_id
        in_window += int(keep.sum())
        table = table.filter(pa.array(keep)).drop_columns([TIME])
        fits = all(f in names for f in features)
        tables.append(
            table.append_column(TIME, pa.array(stamps[keep])).append_column(FITS, pa.repeat(fits, len(table)))
        )
    if not tables:
        return pd.DataFrame({ID: pd.Series(dtype=object), TIME: pd.Series(dtype=np.float64)}), files, in_window
    return _concatenated(tables, labelled_ids), files, in_window


def _concatenated(tables: list[pa.Table], labelled_ids: pa.Array) -> pd.DataFrame:
    """One frame of the files' rows whose id is labelled: through Arrow when their columns agree (a
    column a file lacks is null there; one lookup over all ids), else file by file through pandas (one
    file wrote a column as text, another as numbers). Unlabelled rows never become Python objects."""

    def labelled(table: pa.Table) -> pa.Table:
        return table.filter(pc.is_in(pc.cast(table.column(ID), pa.string()), value_set=labelled_ids))

    try:
        frame: pd.DataFrame = labelled(pa.concat_tables(tables, promote_options="default")).to_pandas()
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        frame = pd.concat([labelled(t).to_pandas() for t in tables], ignore_index=True)
    return frame


def lineage(plan: ProductionRowsPlan, counts: Counts, found: Read) -> dict[str, Any]:
    """lineage.json's `productionRows`: the window, the counts, and a digest of the files read."""
    digest = hashlib.sha256("\n".join(found.files).encode()).hexdigest()
    record: dict[str, Any] = {
        "window": {"start": plan.window_start.isoformat(), "end": plan.window_end.isoformat()},
        "newSince": plan.new_since.isoformat() if plan.new_since else None,
        "files": len(found.files),
        "filesSha256": digest,
        **{_camel(k): v for k, v in asdict(counts).items()},
    }
    if found.skipped:
        shown = "; ".join(found.skipped[:MAX_NAMED_FILES])
        record["skippedFiles"] = f"{len(found.skipped)} unreadable: {shown}"
    return record


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


__all__ = [
    "LINEAGE_ATTR",
    "Counts",
    "Read",
    "append",
    "assemble",
    "conform",
    "join",
    "lineage",
    "read",
    "read_collected",
    "training_frame",
]
