"""Collect scoring inputs and outputs into the store as Parquet, off the request path.

A request only appends a reference to its already-parsed batch to an in-memory buffer (under a lock,
O(1)); a background thread turns the buffer into Parquet files when it holds `flush_rows` rows or
every `flush_interval` seconds, and once more on shutdown. The buffer is bounded in rows and in bytes:
when full, rows are dropped and counted, never waited for. String values longer than
`max_value_chars` are cut to it when written (counted). A store that fails a write costs that write's rows (counted),
never the server.

Layout: <prefix>/date=YYYY-MM-DD/hour=HH/<utc-stamp>-<pid>-<random>.parquet (UTC). Each file is
written under a dot-name in the same directory and then renamed, so readers (which skip dot-files)
never see a partial file. Columns: the model's features, then contracts.COLLECT_TIME_COLUMN,
COLLECT_PREDICTION_COLUMN, COLLECT_MODEL_VERSION_COLUMN, COLLECT_ID_COLUMN (ids.row_ids) and, when
the requests' probabilities were computed, COLLECT_PROBABILITY_COLUMN (see _probabilities).
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from numpy.typing import NDArray

from mlops_operator import contracts
from mlops_operator.workloads.serve import ids
from mlops_operator.workloads.serve.model import Batch, Feature

log = logging.getLogger(__name__)

DROP_BUFFER_FULL = "buffer_full"
DROP_STORE_ERROR = "store_error"


@dataclass(frozen=True)
class CollectorSettings:
    uri: str
    sample_rate: float = 1.0
    flush_rows: int = 10_000
    flush_interval: float = 60.0
    max_buffer_rows: int = 200_000
    # Also bounded in bytes: a few requests of long strings must not take the memory 200,000 rows would.
    max_buffer_bytes: int = 256 * 1024 * 1024
    # A collected string value longer than this is cut to it (counted): drift needs no 8 MiB category.
    max_value_chars: int = 1024


@dataclass
class _Chunk:
    ts: float
    batch: Batch
    labels: NDArray[Any]
    id: str
    proba: NDArray[Any] | None


class BackgroundFlush:
    """A thread that calls `flush()` every `interval` seconds or when woken, and once more on stop."""

    def __init__(self, name: str, interval: float) -> None:
        self._flush_thread_name, self._flush_interval = name, interval
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def flush(self) -> int:
        raise NotImplementedError

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self._flush_thread_name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the thread and flush what is left (called on graceful shutdown)."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.flush()

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self._flush_interval)
            self._wake.clear()
            if not self._stopping:
                self.flush()


class Collector(BackgroundFlush):
    def __init__(
        self,
        settings: CollectorSettings,
        features: Sequence[Feature],
        model_version: str,
        on_written: Callable[[int], None] = lambda n: None,
        on_dropped: Callable[[str, int], None] = lambda reason, n: None,
        on_truncated: Callable[[int], None] = lambda n: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__("collector-flush", settings.flush_interval)
        self.settings = settings
        self.features = tuple(features)
        self.model_version = model_version
        self._on_written = on_written
        self._on_dropped = on_dropped
        self._on_truncated = on_truncated
        self._bytes = 0
        self._clock = clock
        self._lock = threading.Lock()
        self._chunks: list[_Chunk] = []
        self._rows = 0
        self._write_lock = threading.Lock()
        self._last_error_log = 0.0
        # Dictionary-encode only low-cardinality strings: trying it on float columns (the default)
        # makes a flush ~5x slower, and the flush shares this process's CPU with the requests.
        self._dictionary_columns = [f.name for f in self.features if f.categorical] + [
            contracts.COLLECT_PREDICTION_COLUMN,
            contracts.COLLECT_MODEL_VERSION_COLUMN,
        ]

    # --- request path ---------------------------------------------------------------------------
    def offer(
        self,
        batch: Batch,
        labels: NDArray[Any],
        request_id: str,
        proba: NDArray[Any] | None = None,
        body_bytes: int = 0,
    ) -> None:
        """Maybe keep this request's rows (sampled per request). Never blocks on I/O.

        The rows' size is estimated without touching them: the arrays' bytes, plus the request body's
        length when there are string columns (the strings came from it)."""
        rate = self.settings.sample_rate
        if rate <= 0.0 or (rate < 1.0 and random.random() >= rate):
            return
        with self._lock:
            size = _size(batch, labels, proba, body_bytes)
            full = (
                self._rows + batch.rows > self.settings.max_buffer_rows
                or self._bytes + size > self.settings.max_buffer_bytes
            )
            if not full:
                self._bytes += size
                # one prediction per row (the first output of a multi-output model)
                flat = labels if labels.ndim == 1 else labels.reshape(batch.rows, -1)[:, 0]
                self._chunks.append(_Chunk(self._clock(), batch, flat, request_id, proba))
                self._rows += batch.rows
            due = self._rows >= self.settings.flush_rows
        if full:
            self._on_dropped(DROP_BUFFER_FULL, batch.rows)
        elif due:
            self._wake.set()

    def flush(self) -> int:
        """Write everything buffered so far; returns rows written."""
        with self._write_lock:
            with self._lock:
                chunks, self._chunks, self._rows, self._bytes = self._chunks, [], 0, 0
            if not chunks:
                return 0
            written = 0
            for partition, group in _by_hour(chunks).items():
                rows = sum(c.batch.rows for c in group)
                try:
                    self._write(partition, self._table(group))
                except Exception as exc:  # any store failure: count, log (rate-limited), carry on
                    self._on_dropped(DROP_STORE_ERROR, rows)
                    now = time.monotonic()
                    if now - self._last_error_log > 30:
                        self._last_error_log = now
                        log.warning("collector: dropped %d rows, store write failed: %s", rows, exc)
                    continue
                written += rows
                self._on_written(rows)
            return written

    def _table(self, chunks: list[_Chunk]) -> pa.Table:
        # Vectorised over chunks: a flush of 10,000 single-row requests must stay cheap, because
        # it runs in this process and shares the GIL with the requests.
        columns: dict[str, Any] = {}
        if chunks[0].batch.matrix is not None:
            matrix = np.concatenate([c.batch.matrix for c in chunks if c.batch.matrix is not None])
            for j, feature in enumerate(self.features):
                columns[feature.name] = pa.array(np.ascontiguousarray(matrix[:, j]))
        else:
            for j, feature in enumerate(self.features):
                values = np.concatenate([c.batch.columns[j] for c in chunks if c.batch.columns is not None])
                if feature.categorical:
                    columns[feature.name] = self._capped(pa.array(values, type=pa.string(), from_pandas=True))
                else:
                    columns[feature.name] = pa.array(values.astype(np.float64))
        rows = np.fromiter((c.batch.rows for c in chunks), dtype=np.int64, count=len(chunks))
        micros = np.fromiter((c.ts * 1_000_000 for c in chunks), dtype=np.float64, count=len(chunks))
        stamps = np.repeat(micros.astype(np.int64), rows)
        columns[contracts.COLLECT_TIME_COLUMN] = pa.array(stamps, type=pa.timestamp("us", tz="UTC"))
        labels = np.concatenate([c.labels for c in chunks])
        columns[contracts.COLLECT_PREDICTION_COLUMN] = pa.array(
            labels.astype(str) if labels.dtype.kind not in "iufb" else labels
        )
        columns[contracts.COLLECT_MODEL_VERSION_COLUMN] = pa.repeat(
            pa.scalar(self.model_version, pa.string()), len(stamps)
        )
        columns[contracts.COLLECT_ID_COLUMN] = pa.array(
            [r for c in chunks for r in ids.row_ids(c.id, c.batch.rows)], pa.string()
        )
        probability = _probabilities(chunks)
        if probability is not None:
            columns[contracts.COLLECT_PROBABILITY_COLUMN] = probability
        return pa.table(columns)

    def _capped(self, values: pa.Array) -> pa.Array:
        """String values cut to max_value_chars (counted)."""
        cap = self.settings.max_value_chars
        over = pc.sum(pc.greater(pc.utf8_length(values), cap)).as_py() or 0
        if not over:
            return values
        self._on_truncated(over)
        return pc.utf8_slice_codeunits(values, 0, cap)

    def _write(self, partition: tuple[str, str], table: pa.Table) -> None:
        date, hour = partition
        write_part(self.settings.uri, f"date={date}/hour={hour}", table, use_dictionary=self._dictionary_columns)


def write_part(uri: str, partition: str, table: pa.Table, **options: Any) -> None:
    """One Parquet file under <uri>/<partition>/, written under a dot-name and renamed, so readers (which
    skip dot-files) never see a partial file; a failed write leaves nothing behind."""
    fs, prefix = fsspec.core.url_to_fs(uri)
    directory = f"{prefix.rstrip('/')}/{partition}"
    part = f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{os.getpid()}-{uuid.uuid4().hex[:8]}.parquet"
    final, temp = f"{directory}/{part}", f"{directory}/.{part}.tmp"
    fs.makedirs(directory, exist_ok=True)
    try:
        with fs.open(temp, "wb") as f:
            pq.write_table(table, f, **options)
        fs.mv(temp, final)
    except Exception:
        try:
            if fs.exists(temp):
                fs.rm(temp)
        except Exception:
            pass
        raise

def _size(batch: Batch, labels: NDArray[Any], proba: NDArray[Any] | None, body_bytes: int) -> int:
    arrays = [batch.matrix] if batch.matrix is not None else list(batch.columns or [])
    strings = any(a.dtype == object for a in arrays)
    extra = proba.nbytes if proba is not None else 0
    return sum(a.nbytes for a in arrays) + labels.nbytes + extra + (body_bytes if strings else 0) + 128


def _probabilities(chunks: list[_Chunk]) -> pa.Array | None:
    """contracts.COLLECT_PROBABILITY_COLUMN: binary models the probability of classes_[1] (float),
    more classes a list of floats in classes_ order; null for rows whose request had none."""
    widths = {c.proba.shape[1] for c in chunks if c.proba is not None and c.proba.ndim == 2}
    if len(widths) != 1:
        return None
    width = widths.pop()
    parts = [
        np.asarray(c.proba, dtype=np.float64) if c.proba is not None else np.full((c.batch.rows, width), np.nan)
        for c in chunks
    ]
    matrix = np.concatenate(parts)
    mask = np.isnan(matrix).any(axis=1)
    if width == 2:
        return pa.array(matrix[:, 1], pa.float64(), mask=mask)
    offsets = pa.array(np.arange(0, matrix.size + 1, width, dtype=np.int32))
    lists = pa.ListArray.from_arrays(offsets, pa.array(matrix.reshape(-1), pa.float64()))
    return pa.array(lists.to_pylist(), pa.list_(pa.float64()), mask=mask) if mask.any() else lists


def _by_hour(chunks: list[_Chunk]) -> dict[tuple[str, str], list[_Chunk]]:
    by_hour: dict[int, list[_Chunk]] = {}
    for c in chunks:
        by_hour.setdefault(int(c.ts // 3600), []).append(c)
    out: dict[tuple[str, str], list[_Chunk]] = {}
    for hour, group in by_hour.items():
        t = datetime.fromtimestamp(hour * 3600, UTC)
        out[(f"{t:%Y-%m-%d}", f"{t:%H}")] = group
    return out
