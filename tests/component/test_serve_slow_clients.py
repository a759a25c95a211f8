"""Slow and idle clients against the real `mlops-operator serve` process (reliability bar §4.3).

A slowloris client (a header byte now and then), an idle connection, and a stalled body are cut
off by the server's read deadlines, with 408 where a request had begun, while a normal client
sharing the server keeps getting answers.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ._serving import ServerProcess, Trained, build_models

pytestmark = pytest.mark.slow
HEADER_TIMEOUT, BODY_TIMEOUT = 1.0, 1.5
SLOW_CLIENTS = 30


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Trained]]:
    trained = build_models(Path(tmp_path_factory.mktemp("models")))["breast_cancer"]
    process = ServerProcess(trained, "--header-timeout", str(HEADER_TIMEOUT), "--body-timeout", str(BODY_TIMEOUT))
    try:
        process.wait_ready()
        yield process, trained
    finally:
        process.kill()


def connect(process: ServerProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", process.port), timeout=10)


def read_until_closed(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    return data


def slowloris(process: ServerProcess, outcome: list[tuple[float, bytes]]) -> None:
    """Send a request line, then one header line every 0.2 s for as long as the server listens."""
    sock = connect(process)
    started = time.monotonic()
    received = b""
    try:
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\n")
        for i in range(200):  # 40 s at most: far past the deadline
            sock.sendall(f"X-Slow-{i}: {'a' * 10}\r\n".encode())
            time.sleep(0.2)
    except OSError:  # the server closed on us: what we want
        pass
    finally:
        sock.settimeout(5)
        with contextlib.suppress(OSError):
            received = read_until_closed(sock)
        outcome.append((time.monotonic() - started, received))
        sock.close()


def test_slowloris_clients_are_cut_off_with_408_and_a_normal_client_is_unaffected(
    server: tuple[ServerProcess, Trained],
) -> None:
    process, trained = server
    outcomes: list[tuple[float, bytes]] = []
    threads = [threading.Thread(target=slowloris, args=(process, outcomes)) for _ in range(SLOW_CLIENTS)]
    for thread in threads:
        thread.start()
    rows = trained.X.iloc[:4].to_dict(orient="records")
    answered = 0
    with httpx.Client(base_url=process.url, timeout=5) as client:  # one keep-alive connection
        deadline = time.monotonic() + 3 * HEADER_TIMEOUT
        while time.monotonic() < deadline:
            response = client.post("/predict", json={"records": rows})
            assert response.status_code == 200, response.text
            answered += 1
            time.sleep(0.05)
    for thread in threads:
        thread.join(60)

    assert answered > 10
    assert len(outcomes) == SLOW_CLIENTS
    for seconds, received in outcomes:
        assert received.startswith(b"HTTP/1.1 408 "), received[:200]
        assert received.endswith(b'{"error":"the request did not arrive in time"}')
        assert HEADER_TIMEOUT * 0.9 <= seconds < HEADER_TIMEOUT + 5  # cut off at the deadline, not at the end


def test_an_idle_connection_is_closed_without_a_response(server: tuple[ServerProcess, Trained]) -> None:
    process, _ = server
    with connect(process) as sock:
        started = time.monotonic()
        assert read_until_closed(sock) == b""
        assert time.monotonic() - started < HEADER_TIMEOUT + 5


def test_a_stalled_body_gets_408(server: tuple[ServerProcess, Trained]) -> None:
    process, _ = server
    with connect(process) as sock:
        sock.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
        )
        sock.sendall(b'{"records": [')
        started = time.monotonic()
        received = read_until_closed(sock)
        assert received.startswith(b"HTTP/1.1 408 "), received[:200]
        assert BODY_TIMEOUT * 0.9 <= time.monotonic() - started < BODY_TIMEOUT + 5


def test_a_keep_alive_connection_serves_requests_slower_than_the_header_deadline_apart(
    server: tuple[ServerProcess, Trained],
) -> None:
    """The header deadline counts from the previous response; time spent predicting is never cut."""
    process, trained = server
    rows = trained.X.iloc[:2].to_dict(orient="records")
    with httpx.Client(base_url=process.url, timeout=5) as client:
        for _ in range(3):
            assert client.post("/predict", json={"records": rows}).status_code == 200
            time.sleep(HEADER_TIMEOUT * 0.5)
    # an in-time request whose headers come in pieces is answered
    with connect(process) as sock:
        body = b'{"records": [' + b",".join(httpx.Request("POST", "/", json=r).content for r in rows) + b"]}"
        head = f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        for piece in (head[:20], head[20:], "Connection: close\r\n\r\n"):
            sock.sendall(piece.encode())
            time.sleep(HEADER_TIMEOUT * 0.2)
        sock.sendall(body)
        assert read_until_closed(sock).startswith(b"HTTP/1.1 200 ")
