"""Score one shard of a table with a Model version: one pod of a BatchScoring's Indexed Job.

Every pod gets the same plan (api/batch.py) and its shard from JOB_COMPLETION_INDEX (the Job controller
sets it; `--index` overrides it for a run by hand). The input is one Parquet file or every Parquet file
under a prefix, in name order; its rows, numbered across the files in that order, are cut into
`shards` contiguous ranges, and shard i scores the i-th. A pod reads only the Parquet row groups that
overlap its range (the footers of every file, for the counts), so a shard costs its own rows, plus at
most one row group at each end.

The model is loaded exactly as the server loads it (workloads.artifacts.load_verified_model: the
sha256 checked before skops parses a byte, trusted types only, a Pipeline only), and predicts `chunk_rows`
rows at a time: memory follows the chunk, not the shard. A reader thread reads the next chunk and a
writer thread writes the previous one while the main thread predicts (pyarrow releases the GIL), each
at most one chunk away, so a pod holds a few chunks at most; text features are read as Parquet's
dictionaries, and BLAS runs on one thread (docs/batch-scoring.md, Measured, says why and how much).
The shard's predictions are written to
`<output_dir>/part-<index>.parquet` through the store's atomic writer, so the part appears whole or
not at all, and a retried shard replaces it: running a shard twice gives the same file. Columns: the
plan's key columns as read (or `_mlops_row`, the row's ordinal in the input), `_mlops_prediction`, and
`_mlops_model_version`. An empty shard (fewer rows than shards) writes no file.

The result (api/batch.BatchScoreResult: rows, seconds) goes to the termination message, which the
operator adds up into the BatchScoring's status.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import time
from collections.abc import Generator, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]  # a dependency of scikit-learn

from mlops_operator import contracts, store
from mlops_operator.api.batch import BatchScorePlan, BatchScoreResult
from mlops_operator.api.v1alpha1.dataset import DataFormat, FeatureType
from mlops_operator.workloads import artifacts, common, confinement, data, sources

log = logging.getLogger(__name__)

ItemT = TypeVar("ItemT")


@dataclass(frozen=True)
class InputFile:
    uri: str
    first_row: int  # the ordinal of its first row in the whole input
    group_rows: tuple[int, ...]  # rows of each row group


def part_uri(output_dir: str, index: int) -> str:
    return store.join(output_dir, f"part-{index:05d}.parquet")


def shard_range(total: int, shards: int, index: int) -> tuple[int, int]:
    """Rows [start, stop) of shard `index`: contiguous, in order, sizes differing by at most one."""
    return total * index // shards, total * (index + 1) // shards


def list_inputs(uri: str, store_uri: str) -> list[str]:
    """The Parquet files to score: `uri` itself, or every Parquet file under it (a prefix or a
    directory, such as a Dataset version's snapshot), in name order."""
    fs, path = store.filesystem(uri)
    with store.translated(uri):
        directory = uri.endswith("/") or fs.isdir(path)
    listed = sources.list_source(uri.rstrip("/") + "/" if directory else uri, DataFormat.PARQUET)
    confinement.check_source_files(uri, listed, store_uri)
    return [f.uri for f in listed]


def read_layout(uris: Sequence[str]) -> list[InputFile]:
    """Each file's row groups, from its footer, and where its rows start in the whole input."""
    files, first = [], 0
    for uri in uris:
        with store.open_read(uri) as handle:
            try:
                meta = pq.ParquetFile(handle).metadata
            except (pa.ArrowInvalid, OSError) as exc:
                raise common.DataError("MalformedData", f"{store.redact(uri)} is not valid Parquet: {exc}") from exc
        groups = tuple(meta.row_group(g).num_rows for g in range(meta.num_row_groups))
        files.append(InputFile(uri, first, groups))
        first += sum(groups)
    return files


def shard_batches(
    files: Sequence[InputFile],
    start: int,
    stop: int,
    columns: list[str],
    chunk_rows: int,
    as_dictionary: Sequence[str] = (),
) -> Generator[tuple[int, pa.RecordBatch], None, None]:
    """(ordinal of the first row, batch) for the rows [start, stop), reading only the row groups that
    overlap them, at most `chunk_rows` rows a batch. The text columns named in `as_dictionary` come as
    Arrow dictionaries: Parquet stores text dictionary-encoded, so this skips building every row's
    string (3x cheaper to read, and features_frame makes one object per distinct value)."""
    for file in files:
        group_start = file.first_row
        overlapping: list[tuple[int, int]] = []  # (row group, its first ordinal)
        for group, rows in enumerate(file.group_rows):
            if group_start < stop and group_start + rows > start:
                overlapping.append((group, group_start))
            group_start += rows
        if not overlapping:
            continue
        with store.open_read(file.uri) as handle:
            parquet = pq.ParquetFile(handle, read_dictionary=list(as_dictionary) or None)
            for group, position in overlapping:
                for batch in parquet.iter_batches(batch_size=chunk_rows, row_groups=[group], columns=columns):
                    lo, hi = max(start, position), min(stop, position + batch.num_rows)
                    if lo < hi:
                        yield lo, batch.slice(lo - position, hi - lo)
                    position += batch.num_rows
                    if position >= stop:
                        break


def features_frame(batch: pa.RecordBatch, schema: Sequence[artifacts.InputFeature]) -> pd.DataFrame:
    """The model's input columns as the server hands them to the pipeline: numbers as float64 (NaN
    for missing), text as objects (NaN for missing)."""
    columns: dict[str, Any] = {}
    for feature in schema:
        column = batch.column(feature.name)
        if feature.kind == FeatureType.NUMERIC:
            try:
                columns[feature.name] = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise common.DataError("SchemaMismatch", f"column {feature.name!r} is not numeric: {exc}") from exc
        elif _is_text_dictionary(column):
            columns[feature.name] = _shared_text_objects(column)
        else:
            columns[feature.name] = data.as_categorical(pd.Series(column.to_pandas()))
    return pd.DataFrame(columns)


def _is_text_dictionary(column: pa.Array) -> bool:
    kind = column.type
    return bool(
        pa.types.is_dictionary(kind)
        and (pa.types.is_string(kind.value_type) or pa.types.is_large_string(kind.value_type))
        and column.dictionary.null_count == 0
    )


def _shared_text_objects(column: pa.DictionaryArray) -> pd.Series[Any]:
    """The values of a text dictionary as `as_categorical` gives them (str objects, NaN for missing), with
    one object per distinct value shared by its rows, like the trainer's frames (data._shared_text_objects):
    no string built per row, and the imputer's and one-hot encoder's lookups hit the identity check."""
    objects = np.append(column.dictionary.to_numpy(zero_copy_only=False).astype(object), np.nan)
    codes = column.indices.fill_null(-1) if column.null_count else column.indices  # -1 picks the NaN
    return pd.Series(objects[codes.to_numpy(zero_copy_only=False)], dtype=object)


def _check_columns(files: Sequence[InputFile], needed: Sequence[str]) -> None:
    if not files:
        return
    with store.open_read(files[0].uri) as handle:
        present = set(pq.ParquetFile(handle).schema_arrow.names)
    missing = [c for c in needed if c not in present]
    if missing:
        raise common.DataError(
            "SchemaMismatch",
            f"{store.redact(files[0].uri)} lacks the columns {missing[:10]} (the model's features and the key columns)",
        )


def _prediction_table(
    batch: pa.RecordBatch, first: int, labels: Any, classes: Any, key_columns: Sequence[str], version: int
) -> pa.Table:
    rows = batch.num_rows
    if key_columns:
        keys = {name: batch.column(name) for name in key_columns}
    else:
        keys = {contracts.BATCH_ROW_COLUMN: pa.array(np.arange(first, first + rows, dtype=np.int64))}
    return pa.table(
        {
            **keys,
            contracts.COLLECT_PREDICTION_COLUMN: _arrow_labels(np.asarray(labels), classes),
            contracts.COLLECT_MODEL_VERSION_COLUMN: pa.array(np.full(rows, version, dtype=np.int32)),
        }
    )


def _arrow_labels(labels: npt.NDArray[Any], classes: npt.NDArray[Any] | None) -> pa.Array:
    """The predictions as Arrow. Class names (text) go through their codes in the classifier's sorted
    `classes_`: converting each of 65,536 Python or fixed-width strings costs 10-30x more than
    numpy's search and Arrow's take. Anything else (numbers, other classes) is converted as it is."""
    if labels.dtype.kind in "OU" and classes is not None and classes.dtype.kind in "OU" and len(classes):
        try:
            codes = np.searchsorted(classes, labels)
            codes = np.minimum(codes, len(classes) - 1)
            if np.array_equal(classes[codes], labels):
                names = pa.array(classes.astype(object), type=pa.string())
                return names.take(pa.array(codes.astype(np.int32)))
        except (TypeError, pa.ArrowInvalid, pa.ArrowTypeError):
            pass  # mixed or unordered classes: convert the labels themselves
    return pa.array(labels.astype(object) if labels.dtype.kind == "U" else labels)


def _read_ahead(items: Iterator[ItemT], reader: ThreadPoolExecutor) -> Generator[ItemT, None, None]:
    """`items` in order, each next one produced on `reader` while the caller works on the current one.
    One read at a time and one ahead at most; closed early (the caller failed), it waits for the read in
    flight so that the caller can then close `items` (a generator runs on one thread at a time)."""
    pending = reader.submit(next, items, None)
    try:
        while (item := pending.result()) is not None:
            pending = reader.submit(next, items, None)
            yield item
    finally:
        with contextlib.suppress(Exception):
            pending.result()  # already failed or no longer wanted: only wait for it


class _PartWriter:
    """The part's Parquet writer, fed one chunk's predictions at a time (on the writer thread)."""

    def __init__(self, handle: Any, classes: Any, key_columns: Sequence[str], version: int) -> None:
        self.handle, self.classes, self.key_columns, self.version = handle, classes, key_columns, version
        self.parquet: pq.ParquetWriter | None = None

    def write(self, batch: pa.RecordBatch, first: int, labels: Any) -> None:
        table = _prediction_table(batch, first, labels, self.classes, self.key_columns, self.version)
        if self.parquet is None:
            # Dictionary pages only where values repeat: the row ordinals and keys are (nearly) unique.
            repeated = [contracts.COLLECT_PREDICTION_COLUMN, contracts.COLLECT_MODEL_VERSION_COLUMN]
            # the row ordinals are ascending: delta-encoded they cost next to nothing to write and store
            ordinals = {contracts.BATCH_ROW_COLUMN: "DELTA_BINARY_PACKED"} if not self.key_columns else None
            self.parquet = pq.ParquetWriter(
                self.handle, table.schema, compression="lz4", use_dictionary=repeated, column_encoding=ordinals
            )
        self.parquet.write_table(table.cast(self.parquet.schema))

    @classmethod
    @contextlib.contextmanager
    def opened(
        cls, handle: Any, classes: Any, key_columns: Sequence[str], version: int
    ) -> Generator[_PartWriter, None, None]:
        """The writer, closed when the block ends; on a failure closed too, quietly, while `handle` is still
        open (pyarrow would otherwise close it when collected, into a closed file), its own error dropped:
        the block's error is the one to report, and the atomic writer throws the partial file away."""
        part = cls(handle, classes, key_columns, version)
        try:
            yield part
        except BaseException:
            if part.parquet is not None:
                with contextlib.suppress(Exception):
                    part.parquet.close()
            raise
        if part.parquet is not None:
            part.parquet.close()


@dataclass
class _Spent:
    """Rows scored, and where the main thread's time went (the log says whether a shard waits on I/O)."""

    rows: int = 0
    predicting: float = 0.0
    converting: float = 0.0  # Arrow to the DataFrame the pipeline takes
    reading: float = 0.0  # waiting for the reader thread's next chunk
    writing: float = 0.0  # waiting for the writer thread's previous chunk


def _write_part(
    uri: str,
    batches: Generator[tuple[int, pa.RecordBatch], None, None],
    model: Pipeline,
    schema: Sequence[artifacts.InputFeature],
    plan: BatchScorePlan,
    spent: _Spent,
) -> None:
    """Predict every batch and write the part: the next batch is read and the previous one written while
    this thread predicts."""
    classes = getattr(model, "classes_", None)
    with (
        # One BLAS thread: a pod's parallelism is its shards. OpenBLAS sizes its pool to the node's cores (not
        # the pod's CPU limit), and its threads spin after each chunk's small matrix product, taking CPU from this
        # thread: the trainer's LogisticRegression pipeline predicted 1.7x slower with them (docs/batch-scoring.md).
        threadpool_limits(limits=1, user_api="blas"),
        store.atomic_writer(uri) as handle,
        _PartWriter.opened(handle, classes, plan.key_columns, plan.version) as part,
        ThreadPoolExecutor(1, thread_name_prefix="batch-read") as reader,
        ThreadPoolExecutor(1, thread_name_prefix="batch-write") as writer,
        contextlib.closing(batches),
        contextlib.closing(_read_ahead(batches, reader)) as chunks,
    ):
        # On leaving, in reverse order: the read in flight is awaited and the input closed, the write in
        # flight is awaited, the Parquet writer closed, and the part committed (or thrown away on an error).
        writing: Future[None] | None = None
        waited = time.monotonic()
        for first, batch in chunks:
            converting = time.monotonic()
            spent.reading += converting - waited
            frame = features_frame(batch, schema)
            predicting = time.monotonic()
            spent.converting += predicting - converting
            labels = model.predict(frame)
            handing_over = time.monotonic()
            spent.predicting += handing_over - predicting
            if writing is not None:
                writing.result()  # one write in flight at most (bounded memory); its error stops the shard here
            writing = writer.submit(part.write, batch, first, labels)
            spent.rows += batch.num_rows
            waited = time.monotonic()
            spent.writing += waited - handing_over
        if writing is not None:
            writing.result()
        spent.writing += time.monotonic() - waited


def score(plan: BatchScorePlan, index: int, pipeline: Pipeline | None = None) -> BatchScoreResult:
    """Score shard `index` of the plan's input and write its part; `pipeline` skips the load (tests)."""
    if not 0 <= index < plan.shards:
        raise common.SpecError("InvalidIndex", f"index {index} is outside the plan's {plan.shards} shards")
    started = time.monotonic()
    model = pipeline if pipeline is not None else artifacts.load_verified_model(plan.artifact_uri, plan.sha256)
    schema = artifacts.feature_schema(model)
    files = read_layout(list_inputs(plan.input_uri, plan.store_uri))
    total = sum(sum(f.group_rows) for f in files)
    start, stop = shard_range(total, plan.shards, index)
    names = [f.name for f in schema]
    columns = list(dict.fromkeys([*names, *plan.key_columns]))
    _check_columns(files, columns)
    # key columns are written as read: never turn one into a dictionary
    text = [f.name for f in schema if f.kind == FeatureType.CATEGORICAL and f.name not in plan.key_columns]
    uri = part_uri(plan.output_dir, index)
    spent = _Spent()
    if stop > start:
        batches = shard_batches(files, start, stop, columns, plan.chunk_rows, text)
        try:
            _write_part(uri, batches, model, schema, plan, spent)
        except OSError as exc:  # writing the part failed (a full or failing store): reads raise StoreErrors already
            raise store.error_from(exc, uri) from exc
    seconds = time.monotonic() - started
    log.info(
        "shard %d of %d: rows %d-%d (%d rows) in %.1fs -> %s",
        index,
        plan.shards,
        start,
        stop,
        spent.rows,
        seconds,
        store.redact(uri) if spent.rows else "no part (empty shard)",
    )
    if spent.rows:
        log.info(
            "of which predicting %.2fs, converting %.2fs, waiting for reads %.2fs and for writes %.2fs",
            spent.predicting,
            spent.converting,
            spent.reading,
            spent.writing,
        )
    return BatchScoreResult(
        ok=True,
        index=index,
        rows=spent.rows,
        seconds=round(seconds, 3),
        predict_seconds=round(spent.predicting, 3),
        output_uri=uri if spent.rows else None,
    )


def completion_index(given: int | None) -> int:
    if given is not None:
        return given
    raw = os.environ.get(contracts.ENV_JOB_COMPLETION_INDEX, "")
    if not raw.isdigit():
        raise common.SpecError(
            "InvalidIndex", f"{contracts.ENV_JOB_COMPLETION_INDEX} is {raw!r}: run in an Indexed Job or pass --index"
        )
    return int(raw)


def main(argv: Sequence[str]) -> int:
    parser = common.plan_parser("batch-score", __doc__, BatchScorePlan)
    parser.add_argument(
        "--index", type=int, default=None, help=f"the shard; default: ${contracts.ENV_JOB_COMPLETION_INDEX}"
    )
    args: argparse.Namespace = parser.parse_args(list(argv))

    def work(plan: BatchScorePlan) -> BatchScoreResult:
        return score(plan, completion_index(args.index))

    def failure(error: common.WorkloadError) -> BatchScoreResult:
        return BatchScoreResult(ok=False, index=args.index, error=error.message, reason=error.reason)

    return common.run_plan("batch-score", args, BatchScorePlan, work, failure)


__all__ = ["completion_index", "list_inputs", "main", "part_uri", "read_layout", "score", "shard_range"]
