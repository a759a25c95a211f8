"""The seam between `serve/deadlines.py` and uvicorn's internals (issue 10 item 6).

`DeadlineHttpToolsProtocol` subclasses uvicorn's `HttpToolsProtocol` and relies on private methods
and attributes. uvicorn is pinned to the version verified; these tests fail loudly, each naming the
internal it needs, when a uvicorn upgrade changes any of them: the protocol is driven in process,
byte by byte through a recording transport, through each internal the subclass touches.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
import uvicorn
from uvicorn.protocols.http import flow_control, httptools_impl
from uvicorn.server import ServerState

from mlops_operator.workloads.serve import deadlines
from mlops_operator.workloads.serve.deadlines import RESPONSE_400, RESPONSE_408, deadline_protocol, response_431

HEAD = b"GET /live HTTP/1.1\r\nHost: x\r\n\r\n"


def in_loop(test: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    """An `async def` test run on a fresh event loop (the project has no pytest-asyncio)."""

    def run() -> None:
        asyncio.run(test())

    run.__name__, run.__doc__ = test.__name__, test.__doc__
    return run


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = self.eof = self.paused = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof = True

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8080)}.get(name, default)


async def live(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    body = b'{"live":true}'
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def connect(**limits: Any) -> tuple[Any, RecordingTransport]:
    config = uvicorn.Config(live, lifespan="off", ws="none", log_level="warning", **limits.pop("config", {}))
    config.load()
    cls = deadline_protocol(limits.get("header", 5.0), limits.get("body", 5.0), limits.get("max_head", 1024))
    protocol = cls(config=config, server_state=ServerState(), app_state={}, _loop=asyncio.get_running_loop())
    transport = RecordingTransport()
    protocol.connection_made(transport)
    return protocol, transport


def test_uvicorn_is_a_version_the_seam_was_verified_with() -> None:
    assert uvicorn.__version__ in deadlines.VERIFIED_UVICORN, (
        f"uvicorn {uvicorn.__version__} is not verified: read its protocols/http/httptools_impl.py against "
        "serve/deadlines.py (every name in SEAM_METHODS and SEAM_ATTRIBUTES), run this file and "
        "tests/component/test_serve_slow_clients.py and test_serve_hostile.py, then add the version to "
        "VERIFIED_UVICORN and the pin in pyproject.toml"
    )


def test_the_internals_the_subclass_uses_are_there() -> None:
    deadlines.check_seam()  # what the server itself checks at start-up
    assert httptools_impl.service_unavailable is flow_control.service_unavailable, "the 503 app moved"
    parameters = {
        "data_received": ["self", "data"],
        "send_400_response": ["self", "msg"],
        "_start_asgi_task": ["self", "cycle", "app"],
        "_unsupported_upgrade_warning": ["self"],
        "on_response_complete": ["self"],
        "connection_made": ["self", "transport"],
        "connection_lost": ["self", "exc"],
    }
    for name, expected in parameters.items():
        got = list(inspect.signature(getattr(httptools_impl.HttpToolsProtocol, name)).parameters)
        assert got == expected, f"HttpToolsProtocol.{name} now takes {got}"
    cycle_init = inspect.signature(httptools_impl.RequestResponseCycle.__init__).parameters
    assert "keep_alive" in cycle_init and "on_response" in cycle_init, "RequestResponseCycle changed"


@in_loop
async def test_instance_attributes_and_a_request_through_the_seam() -> None:
    protocol, transport = await connect()
    for name in deadlines.SEAM_ATTRIBUTES:
        assert hasattr(protocol, name), f"HttpToolsProtocol instances have no {name!r} any more"
    assert isinstance(protocol.pipeline, deque) and protocol.cycle is None
    assert protocol._deadline is not None, "the header deadline is armed at connection_made"
    protocol.data_received(HEAD)
    await asyncio.sleep(0.05)
    assert transport.written.startswith(b"HTTP/1.1 200 OK\r\n") and transport.written.endswith(b'{"live":true}')
    assert protocol.cycle.response_complete and protocol.cycle.response_started
    assert protocol._deadline is not None, "on_response_complete re-arms the header deadline"
    assert not transport.closed
    protocol.connection_lost(None)


@in_loop
async def test_a_late_head_gets_408() -> None:
    protocol, transport = await connect(header=0.05)
    protocol.data_received(HEAD[:10])
    await asyncio.sleep(0.2)
    assert bytes(transport.written) == RESPONSE_408 and transport.closed


@in_loop
async def test_a_head_over_the_cap_gets_431_and_a_lingering_close() -> None:
    protocol, transport = await connect(max_head=1024)
    protocol.data_received(b"GET /live HTTP/1.1\r\nX-Big: " + b"a" * 600)
    assert not transport.written
    protocol.data_received(b"a" * 600)  # the parser never sees the bytes past the cap
    assert bytes(transport.written) == response_431(1024) and transport.eof and not transport.closed
    protocol.data_received(b"a" * 100_000)  # discarded
    assert bytes(transport.written) == response_431(1024)
    await asyncio.sleep(deadlines.LINGER_SECONDS + 0.2)
    assert transport.closed


@in_loop
async def test_a_head_and_body_in_one_chunk_past_the_cap_are_served() -> None:
    protocol, transport = await connect(max_head=64)
    body = b"x" * 500
    protocol.data_received(b"POST /p HTTP/1.1\r\nContent-Length: 500\r\n\r\n" + body)  # head 40 B, body past 64
    await asyncio.sleep(0.05)
    assert transport.written.startswith(b"HTTP/1.1 200 OK\r\n"), bytes(transport.written)


@in_loop
async def test_a_pipelined_head_over_the_cap_closes_after_the_response_in_progress() -> None:
    protocol, transport = await connect(max_head=1024)
    protocol.data_received(HEAD + b"GET /live HTTP/1.1\r\nX-Big: " + b"a" * 2000)
    assert transport.paused or protocol.cycle.keep_alive is False
    await asyncio.sleep(0.05)
    assert transport.written.startswith(b"HTTP/1.1 200 OK\r\n") and transport.closed
    assert b"431" not in transport.written


@in_loop
async def test_unparsable_requests_get_uvicorns_400_as_json() -> None:
    protocol, transport = await connect()
    protocol.data_received(b"NOT HTTP\r\n\r\n")
    assert bytes(transport.written) == RESPONSE_400 and transport.closed
    assert orjson.loads(RESPONSE_400.partition(b"\r\n\r\n")[2]) == {"error": "invalid HTTP request"}


@in_loop
async def test_over_limit_concurrency_uvicorns_503_is_json() -> None:
    protocol, transport = await connect(config={"limit_concurrency": 1})
    protocol.data_received(HEAD)
    await asyncio.sleep(0.05)
    assert transport.written.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert b"content-type: application/json" in transport.written and transport.closed
    assert orjson.loads(transport.written.partition(b"\r\n\r\n")[2])["error"].startswith("too many")
