"""Shadow traffic: the champion mirrors a sample of its inference requests to a candidate.

Fire and forget: after the champion has its own prediction, `offer` decides the sample and puts
the request on a bounded queue without waiting (a full queue drops it, counted); the client's
answer is the champion's, sent as if no mirror existed. A few tasks on the server's event loop send
the queued requests to the candidate over keep-alive HTTP/1.1 connections, with a timeout, and
compare its predictions with the champion's row by row: a classifier's rows agree when the labels
are equal, a regressor's when they differ by at most `max_abs_diff` (the absolute differences are
summed too). Only counters leave this module, as `mlops_serve_shadow_*` metrics, which the operator
reads into the Model's status.rollout.shadow.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import orjson
from numpy.typing import NDArray
from prometheus_client import CollectorRegistry, Counter

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


class Mirror:
    def __init__(self, settings: MirrorSettings, metrics: ShadowMetrics, *, regression: bool) -> None:
        parts = urlsplit(settings.url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"--shadow-url must be http://host[:port], got {settings.url!r}")
        self.host, self.port = parts.hostname, parts.port or 80
        self.settings = settings
        self.metrics = metrics
        self.regression = regression
        self._queue: asyncio.Queue[Mirrored] | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """On the server's event loop (the ASGI lifespan's startup)."""
        self._queue = asyncio.Queue(self.settings.queue_size)
        self._tasks = [asyncio.create_task(self._sender(), name=f"shadow-{i}") for i in range(SENDERS)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

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
            self.compare(item.champion, answer[1])

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

    def compare(self, champion: NDArray[Any], answer: bytes) -> None:
        """Count the rows on which the candidate's answer agrees with the champion's labels."""
        try:
            candidate = _predictions(orjson.loads(answer))
        except (ValueError, KeyError, TypeError):
            self.metrics.failed.inc()
            return
        if candidate is None or len(candidate) != len(champion):
            self.metrics.failed.inc()
            return
        self.metrics.compared_rows.inc(len(champion))
        if self.regression:
            diff = np.abs(np.asarray(candidate, dtype=np.float64) - champion.astype(np.float64))
            self.metrics.abs_diff.inc(float(diff.sum()))
            self.metrics.agreed_rows.inc(int((diff <= self.settings.max_abs_diff).sum()))
        else:
            agreed = sum(str(a) == str(b) for a, b in zip(candidate, _plain(champion), strict=True))
            self.metrics.agreed_rows.inc(agreed)


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


def _close(
    connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None,
) -> None:
    if connection is not None:
        connection[1].close()
