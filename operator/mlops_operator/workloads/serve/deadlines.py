"""Read deadlines for uvicorn's httptools protocol, which has none.

uvicorn arms no timer before a connection's first response (its keep-alive timer starts after one),
and every byte received cancels that timer. A client that connects and sends nothing, or sends a
header byte every few seconds (slowloris), or a body slower than any real client, holds its
connection and a slot of `limit_concurrency` forever. Here a request's headers must arrive within
`header_seconds` of the connection (or of the previous response), and its body within
`body_seconds` of the headers; a late request gets 408 and the connection is closed. Nothing is
timed while the app is computing a response.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

TIMED_OUT = orjson.dumps({"error": "the request did not arrive in time"})
RESPONSE_408 = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
    + f"content-length: {len(TIMED_OUT)}\r\n\r\n".encode()
    + TIMED_OUT
)


def deadline_protocol(header_seconds: float, body_seconds: float) -> type[HttpToolsProtocol]:
    """uvicorn's protocol class (Config(http=...)) with the two read deadlines."""

    class DeadlineHttpToolsProtocol(HttpToolsProtocol):
        _deadline: asyncio.TimerHandle | None = None
        _reading = False  # between the first byte of a request and its last

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm(header_seconds)

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._reading = True
            if self._deadline is None:  # a pipelined request began while the previous one ran
                self._arm(header_seconds)

        def on_headers_complete(self) -> None:
            super().on_headers_complete()
            self._arm(body_seconds)

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._reading = False
            self._disarm()

        def on_response_complete(self) -> None:
            pipelined = bool(self.pipeline)
            super().on_response_complete()
            if not pipelined and not self._reading and not self.transport.is_closing():
                self._arm(header_seconds)  # the next request on this keep-alive connection

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

    return DeadlineHttpToolsProtocol


__all__ = ["RESPONSE_408", "deadline_protocol"]
