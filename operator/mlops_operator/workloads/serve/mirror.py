"""Shadow traffic: the champion mirrors a sample of its inference requests to a candidate.

Fire and forget: after the champion has its own prediction, `offer` decides the sample and puts
the request on a bounded queue without waiting (a full queue drops it, counted); the client's
answer is the champion's, sent as if no mirror existed. A few tasks on the server's event loop send
the queued requests to the candidate over keep-alive HTTP/1.1 connections, with a timeout, and
compare its predictions with the champion's row by row: a classifier's rows agree when the labels
are equal, a regressor's when they differ by at most `max_abs_diff` (the absolute differences are
summed too). The counters leave this module as `mlops_serve_shadow_*` metrics, which the operator
reads into the Model's status.rollout.shadow.

When the champion collects (--collect-uri), a ShadowRecorder also keeps every compared row, by its
prediction id (ids.row_ids, the id the collector and the feedback endpoint use), with the candidate's
and the champion's answers: Parquet parts under contracts.shadow_prefix(), beside the collected rows,
written off the request path like the collector's (bounded buffer, a background flush, atomic parts).
The drift workload joins the labels to them and scores both models on the same labelled rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import orjson
import pyarrow as pa
from numpy.typing import NDArray
from prometheus_client import CollectorRegistry, Counter

from mlops_operator import contracts
from mlops_operator.workloads.serve import ids
from mlops_operator.workloads.serve.collector import BackgroundFlush, write_part

log = logging.getLogger(__name__)
SENDERS = 4
MAX_RESPONSE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class MirrorSettings:
    url: str  # http://host[:port] of the candidate's Service
    sample_percent: float = 100.0
    queue_size: int = 1000
    timeout: float = 5.0
    max_abs_diff: float = 0.0


@dataclass(frozen=True)
class Mirrored:
    path: str  # the candidate's route: /v2/models/<name>/infer or /predict
    body: bytes
    authorization: bytes | None
    champion: NDArray[Any]  # the champion's predicted labels, one per row
    request_id: str | None = None  # the prediction id the client got (rows: ids.row_ids); None: not recorded


class ShadowMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        def counter(name: str, what: str) -> Counter:
            return Counter(f"mlops_serve_shadow_{name}", what, registry=registry)

        self.mirrored = counter("mirrored", "Requests mirrored to the shadowed candidate (sent)")
        self.dropped = counter("dropped", "Sampled requests not mirrored: the queue was full")
        self.failed = counter("failed", "Mirrored requests the candidate did not answer 200 in time")
        self.compared_rows = counter("compared_rows", "Rows whose predictions were compared")
        self.agreed_rows = counter("agreed_rows", "Compared rows on which the candidate agreed")
        self.abs_diff = counter("abs_diff", "Sum of |candidate - champion| over a regressor's compared rows")
        self.recorded_rows = counter("recorded_rows", "Compared rows written to the store by prediction id")
        self.unrecorded_rows = counter(
            "unrecorded_rows", "Compared rows not written: the record buffer was full or the store failed"
        )


def shadow_uri(collect_uri: str | None, model_name: str) -> str | None:
    """The shadow prefix next to a collect prefix built by contracts.collected_prefix():
    <root>/<ns>/collected/<model> → <root>/<ns>/shadow/<model>; None when it is not of that form."""
    if not collect_uri:
        return None
    head, sep, tail = collect_uri.rstrip("/").rpartition("/collected/")
    if not sep or tail != model_name:
        return None
    return f"{head}/shadow/{model_name}"


@dataclass(frozen=True)
class RecorderSettings:
    uri: str  # contracts.shadow_prefix()
    candidate_version: str
    champion_version: str
    regression: bool
    flush_rows: int = 10_000
    flush_interval: float = 60.0
    max_buffer_rows: int = 200_000


@dataclass(frozen=True)
class _Answers:
    ts: float
    request_id: str
    candidate: list[Any]
    champion: list[Any]


class ShadowRecorder(BackgroundFlush):
    """Both models' answers per row, by prediction id, written as Parquet under the shadow prefix.

    `record` runs on the event loop (a sender, after the comparison): it only appends to a buffer
    bounded in rows (a full buffer drops the rows, counted); a thread writes the buffer every
    `flush_interval` seconds or at `flush_rows`, and once more on stop, one part per UTC hour, with
    the collector's atomic part writer. A failed write costs its rows (counted), never the server."""

    def __init__(
        self,
        settings: RecorderSettings,
        on_written: Callable[[int], None] = lambda n: None,
        on_dropped: Callable[[int], None] = lambda n: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__("shadow-flush", settings.flush_interval)
        self.settings = settings
        self._on_written, self._on_dropped, self._clock = on_written, on_dropped, clock
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._pending: list[_Answers] = []
        self._rows = 0

    def record(self, request_id: str, candidate: list[Any], champion: list[Any]) -> None:
        rows = len(candidate)
        with self._lock:
            full = self._rows + rows > self.settings.max_buffer_rows
            if not full:
                self._pending.append(_Answers(self._clock(), request_id, candidate, champion))
                self._rows += rows
            due = self._rows >= self.settings.flush_rows
        if full:
            self._on_dropped(rows)
        elif due:
            self._wake.set()

    def flush(self) -> int:
        """Write everything buffered; returns rows written."""
        with self._write_lock:
            with self._lock:
                pending, self._pending, self._rows = self._pending, [], 0
            by_hour: dict[str, list[_Answers]] = {}
            for answers in pending:
                hour = datetime.fromtimestamp(answers.ts, UTC)
                by_hour.setdefault(f"date={hour:%Y-%m-%d}/hour={hour:%H}", []).append(answers)
            written = 0
            for partition, group in by_hour.items():
                rows = sum(len(a.candidate) for a in group)
                try:
                    write_part(self.settings.uri, partition, self._table(group))
                except Exception as exc:  # a store failure costs these rows (counted), never the server
                    self._on_dropped(rows)
                    log.warning("shadow: dropped %d recorded rows, store write failed: %s", rows, exc)
                    continue
                written += rows
                self._on_written(rows)
            return written

    def _table(self, group: list[_Answers]) -> pa.Table:
        settings = self.settings
        row_ids = [r for a in group for r in ids.row_ids(a.request_id, len(a.candidate))]
        stamps = [int(a.ts * 1_000_000) for a in group for _ in a.candidate]
        candidate = [v for a in group for v in a.candidate]
        champion = [v for a in group for v in a.champion]
        return pa.table(
            {
                contracts.COLLECT_ID_COLUMN: pa.array(row_ids, pa.string()),
                contracts.COLLECT_TIME_COLUMN: pa.array(stamps, pa.timestamp("us", tz="UTC")),
                contracts.COLLECT_PREDICTION_COLUMN: _values(candidate, settings.regression),
                contracts.COLLECT_MODEL_VERSION_COLUMN: pa.array([settings.candidate_version] * len(row_ids)),
                contracts.SHADOW_CHAMPION_PREDICTION_COLUMN: _values(champion, settings.regression),
                contracts.SHADOW_CHAMPION_VERSION_COLUMN: pa.array([settings.champion_version] * len(row_ids)),
            }
        )


def _values(values: list[Any], regression: bool) -> pa.Array:
    """A regressor's answers as float64 (null where not a number); a classifier's as text, which live
    quality reads like the labels' text ("1", "1.0" and 1 are one class; True and "true" too)."""
    if regression:
        return pa.array([_float(v) for v in values], pa.float64())
    return pa.array([None if v is None else str(v) for v in values], pa.string())


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class Mirror:
    def __init__(
        self,
        settings: MirrorSettings,
        metrics: ShadowMetrics,
        *,
        regression: bool,
        recorder: ShadowRecorder | None = None,
    ) -> None:
        parts = urlsplit(settings.url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"--shadow-url must be http://host[:port], got {settings.url!r}")
        self.host, self.port = parts.hostname, parts.port or 80
        self.settings = settings
        self.metrics = metrics
        self.regression = regression
        self.recorder = recorder
        self._queue: asyncio.Queue[Mirrored] | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """On the server's event loop (the ASGI lifespan's startup)."""
        self._queue = asyncio.Queue(self.settings.queue_size)
        self._tasks = [asyncio.create_task(self._sender(), name=f"shadow-{i}") for i in range(SENDERS)]
        if self.recorder is not None:
            self.recorder.start()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self.recorder is not None:
            # The last flush blocks: off the loop, which may still be finishing other requests.
            await asyncio.get_running_loop().run_in_executor(None, self.recorder.stop)

    def offer(self, item: Mirrored) -> None:
        """Never waits and never raises: sampled out, queued, or dropped (counted)."""
        if self._queue is None or random.random() * 100.0 >= self.settings.sample_percent:
            return
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.metrics.dropped.inc()

    async def _sender(self) -> None:
        assert self._queue is not None
        connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        while True:
            item = await self._queue.get()
            self.metrics.mirrored.inc()
            answer = None
            # A kept-alive connection the candidate closed while idle fails at once: one retry on a
            # new connection, so an idle spell is not counted against the candidate.
            for attempt in range(1 if connection is None else 2):
                try:
                    connection, status, body = await asyncio.wait_for(
                        self._post(connection, item), timeout=self.settings.timeout
                    )
                except (OSError, ValueError, TimeoutError, asyncio.IncompleteReadError) as exc:
                    log.debug("shadow request failed (attempt %d): %s", attempt + 1, exc)
                    _close(connection)
                    connection = None
                    if isinstance(exc, TimeoutError):
                        break
                    continue
                answer = (status, body)
                break
            if answer is None or answer[0] != 200:
                self.metrics.failed.inc()
                continue
            candidate = self.compare(item.champion, answer[1])
            if candidate is not None and self.recorder is not None and item.request_id is not None:
                self.recorder.record(item.request_id, candidate, _first_output(_plain(item.champion)))

    async def _post(
        self, connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None, item: Mirrored
    ) -> tuple[tuple[asyncio.StreamReader, asyncio.StreamWriter] | None, int, bytes]:
        if connection is None or connection[1].is_closing():
            connection = await asyncio.open_connection(self.host, self.port)
        reader, writer = connection
        head = (
            f"POST {item.path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(item.body)}\r\nX-Mlops-Shadow: 1\r\n"
        ).encode()
        if item.authorization is not None:
            head += b"Authorization: " + item.authorization + b"\r\n"
        writer.write(head + b"\r\n" + item.body)
        await writer.drain()
        status_line = await reader.readuntil(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        length, keep = 0, True
        while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value.strip())
            elif name == b"connection" and value.strip().lower() == b"close":
                keep = False
        if length > MAX_RESPONSE_BYTES:
            raise ValueError(f"the candidate answered {length} bytes")
        body = await reader.readexactly(length)
        if not keep:
            _close(connection)
            return None, status, body
        return connection, status, body

    def compare(self, champion: NDArray[Any], answer: bytes) -> list[Any] | None:
        """Count the rows on which the candidate's answer agrees with the champion's labels; the
        candidate's predictions (the first output's, one per row), or None when its answer is unusable."""
        try:
            candidate = _predictions(orjson.loads(answer))
        except (ValueError, KeyError, TypeError):
            self.metrics.failed.inc()
            return None
        if candidate is None or len(candidate) != len(champion):
            self.metrics.failed.inc()
            return None
        self.metrics.compared_rows.inc(len(champion))
        if self.regression:
            diff = np.abs(np.asarray(candidate, dtype=np.float64) - champion.astype(np.float64))
            self.metrics.abs_diff.inc(float(diff.sum()))
            self.metrics.agreed_rows.inc(int((diff <= self.settings.max_abs_diff).sum()))
        else:
            agreed = sum(str(a) == str(b) for a, b in zip(candidate, _plain(champion), strict=True))
            self.metrics.agreed_rows.inc(agreed)
        return _first_output(candidate)


def _predictions(doc: Any) -> list[Any] | None:
    """The predicted labels in a V2 response (`predict` output) or a /predict response."""
    if "predictions" in doc:
        return list(doc["predictions"])
    for output in doc.get("outputs") or []:
        if output.get("name") == "predict":
            return list(output["data"])
    return None


def _plain(labels: NDArray[Any]) -> list[Any]:
    """The labels as Python values, compared by their text with what the candidate's JSON gives back."""
    values: list[Any] = labels.tolist()
    return values


def _first_output(rows: list[Any]) -> list[Any]:
    """One prediction per row: the first output of a multi-output model, as the collector keeps."""
    return [row[0] if isinstance(row, list) and row else row for row in rows]


def _close(
    connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None,
) -> None:
    if connection is not None:
        connection[1].close()
