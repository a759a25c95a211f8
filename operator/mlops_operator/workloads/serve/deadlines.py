"""What uvicorn's httptools protocol lacks: read deadlines, a header size cap, and JSON errors.

Read deadlines. uvicorn arms no timer before a connection's first response (its keep-alive timer
starts after one), and every byte received cancels that timer. A client that connects and sends
nothing, or sends a header byte every few seconds (slowloris), or a body slower than any real
client, holds its connection and a slot of `limit_concurrency` forever. Here a request's headers
must arrive within `header_seconds` of the connection (or of the previous response), and its body
within `body_seconds` of the headers; a late request gets 408 and the connection is closed. Nothing
is timed while the app is computing a response.

Header size. Neither uvicorn nor httptools bounds a request's head, and httptools accumulates a
header value (and uvicorn the URL) by concatenation, in time quadratic in its pieces: one client
sending a 100 MB header held the event loop for ~10 s, long enough to fail liveness probes. Here
the bytes of a request's head are counted as they arrive, before the parser sees them; past
`max_header_bytes` the request gets 431 and the connection is closed.

JSON errors. Every error of the server is `{"error": ...}` (docs/serving.md); uvicorn's own answers
are plain text: its 400 for a request httptools cannot parse, its 503 over `limit_concurrency`.

The seam (issue 10 item 6), decided: keep the subclass, pin uvicorn. It subclasses uvicorn's
`HttpToolsProtocol` and relies on its internals: the parser callbacks, `data_received`,
`send_400_response`, `_start_asgi_task`, `_unsupported_upgrade_warning`, the `cycle`, `pipeline`,
`flow`, `transport` and `loop` attributes, and `flow_control.service_unavailable`. uvicorn has no
public API for any of the three (its h11 protocol caps the head but parses slower and has no
deadlines either), and an HTTP/1.1 protocol of our own would be more code to get wrong than this
seam. So uvicorn is pinned to the version verified (`VERIFIED_UVICORN`, pyproject.toml),
`check_seam()` refuses at start-up a uvicorn without the methods used, and
tests/component/test_serve_seam.py drives the protocol through each internal and fails loudly when
uvicorn's version or internals change; the slow-client, hostile and fuzz tests exercise the whole.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
import uvicorn
from uvicorn.protocols.http import flow_control
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)
VERIFIED_UVICORN = frozenset({"0.54.0"})
# What the subclass overrides or calls on HttpToolsProtocol (attributes are set in its __init__).
SEAM_METHODS = (
    "connection_made",
    "connection_lost",
    "data_received",
    "on_message_begin",
    "on_headers_complete",
    "on_message_complete",
    "on_response_complete",
    "send_400_response",
    "_start_asgi_task",
    "_unsupported_upgrade_warning",
)
SEAM_ATTRIBUTES = ("cycle", "pipeline", "flow", "transport", "loop")
DEFAULT_MAX_HEADER_BYTES = 32 * 1024
LINGER_SECONDS = 1.0


def _response(status: str, message: str) -> bytes:
    body = orjson.dumps({"error": message})
    head = f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\nconnection: close\r\n"
    return head.encode() + f"content-length: {len(body)}\r\n\r\n".encode() + body


TIMED_OUT = orjson.dumps({"error": "the request did not arrive in time"})
RESPONSE_408 = _response("408 Request Timeout", "the request did not arrive in time")
RESPONSE_400 = _response("400 Bad Request", "invalid HTTP request")
_BUSY = orjson.dumps({"error": "too many connections or requests: retry later"})


def response_431(limit: int) -> bytes:
    return _response("431 Request Header Fields Too Large", f"the request's headers are over {limit} bytes")


async def _busy(scope: Any, receive: Any, send: Any) -> None:
    """uvicorn's 503 over `limit_concurrency`, as JSON."""
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(_BUSY))]
    await send({"type": "http.response.start", "status": 503, "headers": [*headers, (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": _BUSY})


def check_seam() -> None:
    """Refuse to start on a uvicorn whose protocol lacks what the subclass uses; warn off the pin."""
    missing = [m for m in SEAM_METHODS if not callable(getattr(HttpToolsProtocol, m, None))]
    if not callable(getattr(flow_control, "service_unavailable", None)):
        missing.append("flow_control.service_unavailable")
    if missing:
        raise RuntimeError(f"uvicorn {uvicorn.__version__}: HttpToolsProtocol lacks {missing} (serve/deadlines.py)")
    if uvicorn.__version__ not in VERIFIED_UVICORN:
        log.warning("uvicorn %s is not a version serve/deadlines.py was verified with", uvicorn.__version__)


class DeadlineHttpToolsProtocol(HttpToolsProtocol):
    """The protocol with the read deadlines, the header cap and JSON errors; `deadline_protocol`
    makes a subclass with the server's settings."""

    header_seconds = 10.0
    body_seconds = 60.0
    max_header_bytes = DEFAULT_MAX_HEADER_BYTES
    response_too_large = response_431(DEFAULT_MAX_HEADER_BYTES)
    _deadline: asyncio.TimerHandle | None = None
    _reading = False  # between the first byte of a request and its last
    _in_head = True  # before the end of a request's headers
    _head_bytes = 0  # bytes received since the end of the previous request
    _refused = False  # head over the cap: drop what arrives
    _heads = 0  # request heads completed on this connection

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_seconds)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if not self._in_head:
            super().data_received(data)
            return
        room = self.max_header_bytes - self._head_bytes
        if len(data) <= room:
            self._head_bytes += len(data)
            super().data_received(data)
            return
        # Past the cap unless a head ends within `room`: the parser sees no byte beyond it first.
        heads = self._heads
        if room > 0:
            self._head_bytes += room
            super().data_received(data[:room])
        if self.transport.is_closing():
            return
        if self._heads == heads:
            self._refuse_head()
            return
        self.data_received(data[room:])  # the body, or the next request's head, counted afresh

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading = True
        if self._deadline is None:  # a pipelined request began while the previous one ran
            self._arm(self.header_seconds)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._heads += 1
        super().on_headers_complete()
        self._arm(self.body_seconds)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading = False
        self._in_head, self._head_bytes = True, 0
        self._disarm()

    def on_response_complete(self) -> None:
        pipelined = bool(self.pipeline)
        super().on_response_complete()
        if not pipelined and not self._reading and not self.transport.is_closing():
            self._arm(self.header_seconds)  # the next request on this keep-alive connection

    def send_400_response(self, msg: str) -> None:
        self.transport.write(RESPONSE_400)
        self.transport.close()

    def _unsupported_upgrade_warning(self) -> None:
        # ws="none": an Upgrade request is served as an ordinary one. uvicorn would log two
        # warnings per such request, one telling to install a WebSocket library.
        log.debug("ignored an Upgrade header")

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        super()._start_asgi_task(cycle, _busy if app is flow_control.service_unavailable else app)

    def _answering(self) -> bool:
        cycle: Any = self.cycle
        return cycle is not None and not cycle.response_complete

    def _refuse_head(self) -> None:
        self._refused = True
        self._disarm()
        if self._answering():  # a pipelined head: finish the response in progress, then close
            self.cycle.keep_alive = False
            self.flow.pause_reading()
            return
        # Lingering close: the answer, end of our side, then discard what the client still sends
        # (for a moment) so that the kernel does not reset the connection before it reads 431.
        self.transport.write(self.response_too_large)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._deadline = self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        cycle: Any = self.cycle
        answering = cycle is not None and not cycle.response_complete and cycle.response_started
        if self._reading and not answering:
            self.transport.write(RESPONSE_408)
        self.transport.close()


def deadline_protocol(
    header_seconds: float, body_seconds: float, max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
) -> type[HttpToolsProtocol]:
    """uvicorn's protocol class (Config(http=...)) with the read deadlines and the header cap."""
    check_seam()
    settings = {
        "header_seconds": header_seconds,
        "body_seconds": body_seconds,
        "max_header_bytes": max_header_bytes,
        "response_too_large": response_431(max_header_bytes),
    }
    return type("ConfiguredDeadlineHttpToolsProtocol", (DeadlineHttpToolsProtocol,), settings)


__all__ = [
    "RESPONSE_400",
    "RESPONSE_408",
    "VERIFIED_UVICORN",
    "DeadlineHttpToolsProtocol",
    "check_seam",
    "deadline_protocol",
    "response_431",
]
