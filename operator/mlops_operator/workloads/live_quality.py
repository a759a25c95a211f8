"""Reading live quality's inputs: the quality window's predictions, the labels, the ids before the window.

Each file is read whole through the store (as the drift window's are) and only the columns needed
are parsed:

- predictions: `_mlops_id`, `_mlops_prediction`, `_mlops_ts` and, when present, `_mlops_probability`
  of the collected hour partitions that overlap the quality window [start, end); rows outside it or
  without an id are left out;
- earlier ids: `_mlops_id` and `_mlops_ts` of the span of the same length before the window (to tell
  late labels from unknown ids);
- labels: `id`, `label`, `labelled_at` of the label files in the day partitions from the day of
  `start` to the day of `end`, keeping the labels that had arrived by `end` (a later one counts at a
  later check whose window still holds its prediction).

A file that cannot be parsed (torn, or a label file without the three columns) is skipped and named
in the note: a team's own pipeline may drop files here, and one bad file must not hide the quality of
the rest; a store that cannot be read fails the check (it is retried).

- shadow rows (when the plan names contracts.shadow_prefix()): the id, time, the candidate's answer
  and version and the champion's answer and version of the rows a mirroring champion recorded in the
  quality window; only the newest candidate version's rows are scored (an older one's are counted in
  the note).

Then the ids become integer codes shared by all sides, and the values class codes or floats
(drift/quality.py joins and scores them).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mlops_operator import contracts, store
from mlops_operator.api.plans import LiveQualityPlan
from mlops_operator.api.results import LiveQualityResult
from mlops_operator.api.v1alpha1.model import Metric, Task
from mlops_operator.api.v1alpha1.rollout import ShadowLiveQuality
from mlops_operator.drift import categories, quality
from mlops_operator.drift.stats import FloatArray, IntArray
from mlops_operator.workloads import collected, common

log = logging.getLogger(__name__)

ID, PREDICTION, TIME, PROBABILITY = (
    contracts.COLLECT_ID_COLUMN,
    contracts.COLLECT_PREDICTION_COLUMN,
    contracts.COLLECT_TIME_COLUMN,
    contracts.COLLECT_PROBABILITY_COLUMN,
)
LABEL_COLUMNS: Final = (contracts.LABEL_ID_COLUMN, contracts.LABEL_VALUE_COLUMN, contracts.LABEL_TIME_COLUMN)
SHADOW_COLUMNS: Final = (
    ID,
    TIME,
    PREDICTION,
    contracts.COLLECT_MODEL_VERSION_COLUMN,
    contracts.SHADOW_CHAMPION_PREDICTION_COLUMN,
    contracts.SHADOW_CHAMPION_VERSION_COLUMN,
)
MAX_NAMED_FILES: Final = 3


@dataclass
class Columns:
    """One side as read: Arrow arrays, one per file, concatenated when encoded."""

    ids: list[pa.Array] = field(default_factory=list)
    times: list[FloatArray] = field(default_factory=list)
    values: list[pa.Array] = field(default_factory=list)
    scores: list[pa.Array | None] = field(default_factory=list)

    def add(self, table: pa.Table, keep: np.ndarray, stamps: FloatArray, names: tuple[str, str | None]) -> None:
        """The rows in `keep` of the id column and, when named, the value column (and probabilities)."""
        id_, value = names
        mask = pa.array(keep)
        self.ids.append(pc.cast(table.column(id_).combine_chunks().filter(mask), pa.string()))
        self.times.append(np.asarray(stamps[keep], dtype=np.float64))
        if value is not None:
            self.values.append(table.column(value).combine_chunks().filter(mask))
            present = PROBABILITY in table.column_names and value == PREDICTION
            self.scores.append(table.column(PROBABILITY).combine_chunks().filter(mask) if present else None)


class Unreadable(Exception):
    """A file whose bytes are no Parquet table with the needed columns (the store itself answered)."""


def _read(uri: str, columns: Sequence[str], required: Sequence[str]) -> pa.Table:
    """The file's `columns` that it has; Unreadable when it lacks a `required` one or is no Parquet.

    The bytes come through the store (an outage fails the check, to be retried); parsing happens
    outside its error translation, as for the drift window, so a torn file is skipped, not retried.
    """
    data = store.read_bytes(uri)
    try:
        parquet = pq.ParquetFile(pa.BufferReader(data))
        names = set(parquet.schema_arrow.names)
        missing = [c for c in required if c not in names]
        if missing:
            raise Unreadable(f"no column {', '.join(missing)}")
        return parquet.read(columns=[c for c in columns if c in names])
    except (pa.ArrowException, OSError) as exc:
        raise Unreadable(str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__) from exc


def read_predictions(
    prefix: str, start: datetime, end: datetime, *, values: bool, skipped: list[str] | None = None
) -> Columns:
    """Collected rows with an id and start <= time < end: ids and times, and values when asked.
    Files without ids (written before the server gave every prediction one) hold nothing to join;
    torn ones are named in `skipped`."""
    side = Columns()
    low, high = collected.micros(start), collected.micros(end)
    wanted = (ID, TIME, PREDICTION, PROBABILITY) if values else (ID, TIME)
    for uri in collected.parquet_files(collected.partition_uris(prefix, start, end)):
        try:
            table = _read(uri, wanted, (TIME,))
        except Unreadable as exc:
            (skipped if skipped is not None else []).append(f"{store.redact(uri)} ({exc})"[:200])
            continue
        if ID not in table.column_names or (values and PREDICTION not in table.column_names):
            continue
        stamps = collected.micros_since_epoch(table.column(TIME))
        has_id = np.asarray(pc.is_valid(table.column(ID)).to_numpy(zero_copy_only=False), dtype=bool)
        keep = (stamps >= low) & (stamps < high) & has_id
        side.add(table, keep, stamps, (ID, PREDICTION if values else None))
    return side


def read_labels(prefix: str, start: datetime, end: datetime, skipped: list[str]) -> Columns:
    """Label rows that had arrived by `end`, from the day partitions of [start, end]; unreadable
    files are named in `skipped`."""
    side = Columns()
    high = collected.micros(end)
    for uri in collected.parquet_files(collected.day_partition_uris(prefix, start, end)):
        try:
            table = _read(uri, LABEL_COLUMNS, LABEL_COLUMNS)
            stamps = collected.micros_since_epoch(table.column(LABEL_COLUMNS[2]))
        except (Unreadable, common.DataError) as exc:
            skipped.append(f"{store.redact(uri)} ({exc})"[:200])
            continue
        has_id = np.asarray(pc.is_valid(table.column(LABEL_COLUMNS[0])).to_numpy(zero_copy_only=False), dtype=bool)
        side.add(table, (stamps < high) & has_id, stamps, (LABEL_COLUMNS[0], LABEL_COLUMNS[1]))
    return side


@dataclass
class ShadowRows:
    """The newest candidate version's recorded rows in the quality window (see read_shadow)."""

    ids: pa.Array
    times: FloatArray
    candidate: pa.Array
    champion: pa.Array
    version: str
    champion_version: str | None
    older_rows: int = 0  # rows of other candidate versions in the window, left out


def read_shadow(prefix: str, start: datetime, end: datetime, skipped: list[str]) -> ShadowRows | None:
    """Recorded shadow rows with an id and start <= time < end, of the candidate version recorded
    last; None when there are none. Unreadable files are named in `skipped`."""
    low, high = collected.micros(start), collected.micros(end)
    parts: list[tuple[pa.Table, FloatArray]] = []
    for uri in collected.parquet_files(collected.partition_uris(prefix, start, end)):
        try:
            table = _read(uri, SHADOW_COLUMNS, SHADOW_COLUMNS)
            stamps = collected.micros_since_epoch(table.column(TIME))
        except (Unreadable, common.DataError) as exc:
            skipped.append(f"{store.redact(uri)} ({exc})"[:200])
            continue
        has_id = np.asarray(pc.is_valid(table.column(ID)).to_numpy(zero_copy_only=False), dtype=bool)
        keep = (stamps >= low) & (stamps < high) & has_id
        if keep.any():
            parts.append((table.filter(pa.array(keep)), np.asarray(stamps[keep], dtype=np.float64)))
    if not parts:
        return None

    def column(name: str, type_: pa.DataType | None = None) -> pa.Array:
        return unify([t.column(name).combine_chunks() for t, _ in parts], type_)

    times = np.concatenate([stamps for _, stamps in parts])
    versions = np.asarray(column(contracts.COLLECT_MODEL_VERSION_COLUMN, pa.string()).to_pylist(), dtype=object)
    newest = versions[int(np.argmax(times))]  # the candidate recorded last: the one being rolled out now
    mine = versions == newest
    champions = column(contracts.SHADOW_CHAMPION_VERSION_COLUMN, pa.string()).filter(pa.array(mine))
    last_champion = champions[len(champions) - 1].as_py() if len(champions) else None
    return ShadowRows(
        ids=column(ID, pa.string()).filter(pa.array(mine)),
        times=times[mine],
        candidate=column(PREDICTION).filter(pa.array(mine)),
        champion=column(contracts.SHADOW_CHAMPION_PREDICTION_COLUMN).filter(pa.array(mine)),
        version="" if newest is None else str(newest),
        champion_version=last_champion,
        older_rows=int((~mine).sum()),
    )


# --- encoding ---------------------------------------------------------------------------------------


def unify(arrays: Sequence[pa.Array], type_: pa.DataType | None = None) -> pa.Array:
    """One array from the files' arrays: dictionaries decoded; mixed types as float64 when all are
    numbers, else as text (one file may hold labels as 1, the next as "1")."""
    decoded = [a.dictionary_decode() if pa.types.is_dictionary(a.type) else a for a in arrays]
    if type_ is None:
        types = {a.type for a in decoded}
        if len(types) <= 1:
            return pa.chunked_array(decoded).combine_chunks() if decoded else pa.array([], type=pa.string())
        numeric = all(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t) or pa.types.is_null(t)
                      for t in types)
        type_ = pa.float64() if numeric else pa.string()
    if not decoded:
        return pa.array([], type=type_)
    return pa.chunked_array([pc.cast(a, type_) for a in decoded], type=type_).combine_chunks()


def id_codes(*sides: list[pa.Array]) -> list[IntArray]:
    """One integer code per distinct id text, shared by every side (a hash-based dictionary encode)."""
    arrays = [unify(side, pa.string()) for side in sides]
    joined = pa.chunked_array(arrays, type=pa.string()).combine_chunks()
    codes = np.asarray(pc.dictionary_encode(joined).indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    bounds = np.cumsum([0, *(len(a) for a in arrays)])
    return [codes[bounds[i] : bounds[i + 1]] for i in range(len(arrays))]


def _uniques(values: pa.Array) -> tuple[list[str | None], IntArray]:
    """The distinct values as canonical labels (None for null) and each row's index into them."""
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    # Encoded first, then only the distinct values turned into text (numbers to text is one-to-one).
    encoded = pc.dictionary_encode(values, null_encoding="encode")
    distinct = pc.cast(encoded.dictionary, pa.string()).to_pylist()
    texts = [None if t is None else categories.canonical_label(t) for t in distinct]
    return texts, np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)


def vocabulary(classes: Sequence[str], *sides: Sequence[str | None]) -> dict[str, int]:
    """The model's classes first (their order is sklearn's), then every other label seen, sorted."""
    known = dict.fromkeys(classes)
    extra = {t for side in sides for t in side if t is not None and t not in known}
    ordered = [*known, *quality.model_class_order(sorted(extra), numeric=all(_is_number(t) for t in extra))]
    return {label: code for code, label in enumerate(ordered)}


def class_codes(texts: Sequence[str | None], rows: IntArray, codes: dict[str, int]) -> IntArray:
    """Each row's class code; null is quality.MISSING_CLASS."""
    lookup = np.array([quality.MISSING_CLASS if t is None else codes[t] for t in texts], dtype=np.int64)
    return lookup[rows] if lookup.size else np.full(rows.size, quality.MISSING_CLASS, dtype=np.int64)


def _is_number(text: str) -> bool:
    return not np.isnan(_number(text))


def float_values(values: pa.Array) -> FloatArray:
    """Numbers as float64; text that is no number, and null, as NaN."""
    if pa.types.is_integer(values.type) or pa.types.is_floating(values.type) or pa.types.is_boolean(values.type):
        return np.asarray(pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
    texts, rows = _uniques(values)
    lookup = np.array([_number(t) for t in texts] + [np.nan], dtype=np.float64)
    return lookup[rows]


def _number(text: str | None) -> float:
    try:
        return float(text) if text is not None else np.nan
    except ValueError:
        return np.nan


def probabilities(scores: list[pa.Array | None], sizes: list[int]) -> FloatArray | None:
    """The probability column over all files: (n,) floats or (n, k) from equal-length lists; NaN rows
    where a file had none; None when no file had it or list lengths differ. Vectorised: a million
    rows of lists are never turned into Python lists."""
    if all(s is None for s in scores):
        return None
    lists = [s for s in scores if s is not None and pa.types.is_list(s.type)]
    width: set[int] = set()
    for s in lists:
        lengths = pc.list_value_length(s).drop_null()
        width.update(int(n) for n in np.unique(lengths.to_numpy(zero_copy_only=False)))
    if len(width) > 1 or (lists and (len(lists) != sum(s is not None for s in scores) or not width or 0 in width)):
        return None
    shape: tuple[int, ...] = (0,) if not width else (0, width.pop())
    parts = []
    for s, n in zip(scores, sizes, strict=True):
        if s is None:
            parts.append(np.full((n, *shape[1:]), np.nan))
        elif len(shape) == 1:
            parts.append(float_values(s))
        else:
            parts.append(_list_rows(s, shape[1]))
    return np.concatenate(parts) if parts else None


def _list_rows(values: pa.Array, width: int) -> FloatArray:
    """A column of lists of `width` numbers as an (n, width) array; null rows and values NaN."""
    rows = np.full((len(values), width), np.nan)
    valid = np.asarray(values.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    flat = pc.cast(pc.list_flatten(values), pa.float64()).to_numpy(zero_copy_only=False)
    rows[valid] = np.asarray(flat, dtype=np.float64).reshape(-1, width)
    return rows


# --- the whole -----------------------------------------------------------------------------------


@dataclass
class Inputs:
    """What a check reads: the window's predictions, the ids of the span before it, the labels."""

    predictions: Columns
    earlier: Columns
    labels: Columns
    skipped: list[str] = field(default_factory=list)  # unreadable files, named in the note
    shadow: ShadowRows | None = None  # a Shadow rollout's recorded rows, when the plan names them


def read(plan: LiveQualityPlan, collected_prefix: str, end: datetime) -> Inputs:
    span = end - plan.window_start
    skipped: list[str] = []
    predictions = read_predictions(collected_prefix, plan.window_start, end, values=True, skipped=skipped)
    earlier = read_predictions(collected_prefix, plan.window_start - span, plan.window_start, values=False)
    labels = read_labels(plan.labels_prefix, plan.window_start, end, skipped)
    shadow = read_shadow(plan.shadow_prefix, plan.window_start, end, skipped) if plan.shadow_prefix else None
    return Inputs(predictions, earlier, labels, skipped, shadow)


def assess(plan: LiveQualityPlan, collected_prefix: str, end: datetime, classes: Sequence[str]) -> LiveQualityResult:
    """Read, encode, join and score; `classes` are the model's classes in sklearn's order ([] unknown)."""
    return score(read(plan, collected_prefix, end), Task(plan.task), Metric(plan.metric), classes)


def score(inputs: Inputs, task: Task, metric: Metric, classes: Sequence[str]) -> LiveQualityResult:
    """Encode, join and score what read() returned (no I/O)."""
    predictions, labels = inputs.predictions, inputs.labels
    p_ids, l_ids, e_ids = id_codes(predictions.ids, labels.ids, inputs.earlier.ids)
    truth, predicted, known, scores = _encode_values(task, labels, predictions, classes)
    result = quality.assess(
        quality.Side(p_ids, _times(predictions), predicted, scores),
        quality.Side(l_ids, _times(labels), truth),
        e_ids,
        task=task,
        metric=metric,
        model_classes=known,
    )
    if inputs.shadow is not None:
        result.shadow = score_shadow(inputs.shadow, labels, task, metric, classes)
    if inputs.skipped:
        result.note = "; ".join(filter(None, [result.note, _skipped_note(inputs.skipped)]))
    return result


def score_shadow(
    shadow: ShadowRows, labels: Columns, task: Task, metric: Metric, classes: Sequence[str]
) -> ShadowLiveQuality:
    """The shadowed candidate and the champion on the same labelled recorded rows (no I/O)."""
    s_ids, l_ids = id_codes([shadow.ids], labels.ids)
    label_values = unify(labels.values)
    truth: npt.NDArray[Any]
    candidate: npt.NDArray[Any]
    champion: npt.NDArray[Any]
    if task == Task.REGRESSION:
        truth, candidate, champion = (float_values(v) for v in (label_values, shadow.candidate, shadow.champion))
        known = 0
    else:
        (label_texts, label_rows), (candidate_texts, candidate_rows), (champion_texts, champion_rows) = (
            _uniques(v) for v in (label_values, shadow.candidate, shadow.champion)
        )
        codes = vocabulary(classes, label_texts, candidate_texts, champion_texts)
        truth = class_codes(label_texts, label_rows, codes)
        candidate = class_codes(candidate_texts, candidate_rows, codes)
        champion = class_codes(champion_texts, champion_rows, codes)
        known = len(classes) or len(codes)
    recorded = quality.Recorded(
        quality.Side(s_ids, shadow.times, candidate), champion, shadow.version, shadow.champion_version
    )
    result = quality.assess_shadow(
        recorded, quality.Side(l_ids, _times(labels), truth), task=task, metric=metric, model_classes=known
    )
    if shadow.older_rows:
        older = f"{shadow.older_rows:,} recorded rows of an earlier candidate left out"
        result.message = "; ".join(filter(None, [result.message, older]))[:1024]
    return result


def _encode_values(
    task: Task, labels: Columns, predictions: Columns, classes: Sequence[str]
) -> tuple[npt.NDArray[Any], npt.NDArray[Any], int, FloatArray | None]:
    """Truth and predictions as class codes (with the number of model classes and the probabilities)
    or as floats."""
    if task == Task.REGRESSION:
        return float_values(unify(labels.values)), float_values(unify(predictions.values)), 0, None
    label_texts, label_rows = _uniques(unify(labels.values))
    predicted_texts, predicted_rows = _uniques(unify(predictions.values))
    codes = vocabulary(classes, label_texts, predicted_texts)
    scores = probabilities(predictions.scores, [len(v) for v in predictions.values])
    return (
        class_codes(label_texts, label_rows, codes),
        class_codes(predicted_texts, predicted_rows, codes),
        len(classes) or len(codes),
        scores,
    )


def _times(side: Columns) -> FloatArray:
    return np.concatenate(side.times) if side.times else np.empty(0, dtype=np.float64)


def _skipped_note(skipped: list[str]) -> str:
    shown = "; ".join(skipped[:MAX_NAMED_FILES])
    more = f" and {len(skipped) - MAX_NAMED_FILES} more" if len(skipped) > MAX_NAMED_FILES else ""
    return f"skipped {len(skipped)} unreadable files: {shown}{more}"


__all__ = [
    "Columns",
    "Inputs",
    "ShadowRows",
    "assess",
    "class_codes",
    "float_values",
    "id_codes",
    "probabilities",
    "read",
    "read_labels",
    "read_predictions",
    "read_shadow",
    "score",
    "score_shadow",
    "unify",
    "vocabulary",
]
