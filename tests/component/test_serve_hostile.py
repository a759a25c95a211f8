"""Defects an outside fuzz found in the model server (issue 12 item 8), each against the real
`mlops-operator serve` process over real HTTP: a client mistake is a 4xx with a JSON error, never a
5xx, a hang, or plain text.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from ._serving import ServerProcess, Trained, build_models, raw_exchange

pytestmark = pytest.mark.slow
BC = "/v2/models/breast_cancer/infer"
MAX_HEADER_BYTES = 32 * 1024  # the default of --max-header-bytes


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    return build_models(Path(tmp_path_factory.mktemp("models")))["breast_cancer"]


@pytest.fixture(scope="module")
def server(trained: Trained) -> Iterator[ServerProcess]:
    process = ServerProcess(trained)
    try:
        process.wait_ready()
        yield process
    finally:
        process.kill()


def tensor(data: Any, datatype: Any = "FP64", shape: Any = (1, 30)) -> dict[str, Any]:
    return {"inputs": [{"name": "x", "shape": list(shape), "datatype": datatype, "data": data}]}


def post(server: ServerProcess, payload: Any, path: str = BC, **headers: str) -> httpx.Response:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return httpx.post(server.url + path, content=body, headers={"content-type": "application/json", **headers})


def assert_json_error(r: httpx.Response, status: int, *fragments: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    error = r.json()["error"]
    assert all(f in error for f in fragments), error


ROW = [1.0] * 30


# --- datatype that is a JSON object or array: was TypeError unhashable → 500 ---------------------------
@pytest.mark.parametrize("datatype", [{}, {"a": 1}, [], ["FP64"], 5, None, True])
def test_a_datatype_that_is_not_a_string_is_400(server: ServerProcess, datatype: Any) -> None:
    assert_json_error(post(server, tensor([ROW], datatype)), 400, "datatype must be one of")


# --- shapes are judged before any data is converted: [0, 2**60] reached reshape → 500 -----------------
@pytest.mark.parametrize(
    ("shape", "data", "status", "fragment"),
    [
        ([0, 2**60], [], 400, "no rows"),
        ([0, 2**63 - 1], [], 400, "no rows"),
        ([1, 2**60], ROW, 400, "expected 30 features per row, got 1152921504606846976"),
        ([2**62, 2**62], [], 413, "over the limit"),
        ([2**63], [], 413, "over the limit"),
        ([5, 31], [[*ROW, 1.0]] * 5, 400, "expected 30 features per row, got 31"),
        ([3, 30], [ROW], 400, "needs 90 values"),
        ([1, 30], [ROW] * 4, 400, "needs 30 values, got 4 items"),
        ([1, -1], ROW, 400, "non-negative integers"),
        ([1, True], ROW, 400, "non-negative integers"),
        ({"rows": 1}, ROW, 400, "shape must be"),
    ],
)
def test_shapes_are_validated_before_allocation(
    server: ServerProcess, shape: Any, data: Any, status: int, fragment: str
) -> None:
    assert_json_error(post(server, tensor(data, shape=shape)), status, fragment)


# --- declared datatypes are enforced ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("datatype", "value", "fragment"),
    [
        ("FP64", True, "does not fit FP64"),  # was silently 1.0
        ("FP32", False, "does not fit FP32"),
        ("INT64", True, "does not fit INT64"),
        ("UINT8", -5, "-5 is out of range for UINT8 [0, 255]"),
        ("UINT8", 300, "300 is out of range for UINT8 [0, 255]"),
        ("INT8", 128, "out of range for INT8 [-128, 127]"),
        ("INT16", -40000, "out of range for INT16"),
        ("UINT64", -1, "out of range for UINT64"),
        ("INT64", 2**64 - 1, "out of range for INT64"),
        ("INT32", 1.5, "does not fit INT32: expected integers within [-2147483648, 2147483647]"),
        ("UINT64", 0.5, "does not fit UINT64"),
        ("FP16", 70000, "out of range for FP16"),
        ("FP32", 1e39, "out of range for FP32"),
        ("BOOL", 1, "does not fit BOOL: expected true or false"),
        ("BOOL", "true", "does not fit BOOL"),
        ("FP64", "1.0", "does not fit FP64"),
    ],
)
def test_values_that_do_not_fit_the_declared_datatype_are_400(
    server: ServerProcess, datatype: str, value: Any, fragment: str
) -> None:
    fill = [1] * 29  # integers: they fit every numeric type but BOOL
    for data in ([[value, *fill]], [[None, value, *fill[1:]]], [value, *fill]):  # dense, with a null, flat
        assert_json_error(post(server, tensor(data, datatype)), 400, "input 'x'", fragment)


def test_values_that_fit_are_served(server: ServerProcess, trained: Trained) -> None:
    columns = trained.X.columns
    flags = [[bool((i + j) % 2) for j in range(30)] for i in range(4)]
    r = post(server, tensor(flags, "BOOL", (4, 30)))
    assert r.status_code == 200, r.text
    expected = trained.pipeline.predict(pd.DataFrame(np.array(flags, dtype=float), columns=columns))
    assert r.json()["outputs"][0]["data"] == expected.tolist()
    for datatype, row in [
        ("UINT8", [255, 0] * 15),
        ("INT8", [-128, 127] * 15),
        ("UINT64", [2**64 - 1] * 30),
        ("INT32", [None, *range(29)]),  # null is missing, for any numeric type
        ("FP16", [65504.0, 1] * 15),
        ("UINT64", [2**64 - 1, 0] * 15),  # numpy alone makes these floats
        ("FP64", [1e200, -1e200] * 15),
    ]:
        r = post(server, tensor([row], datatype))
        assert r.status_code == 200, (datatype, r.text)


def test_booleans_in_records_are_refused(server: ServerProcess, trained: Trained) -> None:
    record = trained.X.iloc[0].to_dict()
    for value in (True, False):
        r = post(server, {"records": [{**record, "mean radius": value}]}, "/predict")
        assert_json_error(r, 400, "does not fit FP64")


# --- the binary tensor data extension: was "malformed JSON: str is not valid UTF-8" -------------------
def test_the_binary_tensor_extension_is_refused_clearly(server: ServerProcess) -> None:
    header = json.dumps({"inputs": [{"name": "x", "shape": [1, 30], "datatype": "FP64", "parameters": {}}]})
    body = header.encode() + np.ones(30).tobytes()
    for content_type in ("application/json", "application/octet-stream", None):
        headers = {"inference-header-content-length": str(len(header))}
        if content_type:
            headers["content-type"] = content_type
        r = httpx.post(server.url + BC, content=body, headers=headers)
        assert_json_error(r, 415, "binary tensor data extension", "not supported")


# --- errors uvicorn answers itself are JSON too --------------------------------------------------------
@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /v2/health/live HTTP/9.9\r\nHost: x\r\n\r\n",
        b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n",
        b"GET /v2/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n12345",
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    ],
)
def test_requests_uvicorn_cannot_parse_get_a_json_400(server: ServerProcess, request_bytes: bytes) -> None:
    r = raw_exchange(server.port, request_bytes)
    assert r.status == 400 and r.headers["content-type"] == "application/json", r
    assert r.json() == {"error": "invalid HTTP request"}
    assert httpx.get(f"{server.url}/v2/health/live").status_code == 200


def test_over_the_connection_limit_is_a_json_503(trained: Trained) -> None:
    process = ServerProcess(trained, "--max-connections", "2")
    try:
        process.wait_ready()
        with (
            socket.create_connection(("127.0.0.1", process.port)),
            socket.create_connection(("127.0.0.1", process.port)),
        ):
            time.sleep(0.2)
            r = raw_exchange(process.port, b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        assert r.status == 503 and r.headers["content-type"] == "application/json"
        assert "retry later" in r.json()["error"]
    finally:
        process.kill()


def test_a_websocket_upgrade_is_an_ordinary_request(server: ServerProcess) -> None:
    r = raw_exchange(
        server.port,
        b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    assert r.status == 200 and r.json() == {"live": True}


# --- the request head is capped: a 100 MB header stalled the event loop for ~10 s -----------------------
def big_head(port: int, size: int, many: bool) -> tuple[float, bytes]:
    """Send `size` bytes of headers (one value, or many headers) while reading the answer."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    piece = b"X-Many-%d: " + b"a" * 1000 + b"\r\n" if many else b"a" * 65536

    def send() -> None:
        try:
            sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\n" + (b"" if many else b"X-Big: "))
            for i in range(size // len(piece)):
                sock.sendall(piece % i if many else piece)
        except OSError:  # the server closed on us: what we want
            pass

    sender = threading.Thread(target=send)
    started = time.monotonic()
    sender.start()
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except OSError:
        pass
    elapsed = time.monotonic() - started
    sender.join(30)
    sock.close()
    return elapsed, received


@pytest.mark.parametrize(("size", "many"), [(1 << 20, False), (1 << 20, True), (100 << 20, False)])
def test_an_oversized_head_gets_431_quickly_while_others_are_served(
    server: ServerProcess, trained: Trained, size: int, many: bool
) -> None:
    outcomes: list[tuple[float, bytes]] = []
    hostile = [threading.Thread(target=lambda: outcomes.append(big_head(server.port, size, many))) for _ in range(4)]
    records = {"records": trained.X.iloc[:3].to_dict(orient="records")}
    latencies = []
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for thread in hostile:
            thread.start()
        while any(t.is_alive() for t in hostile) or len(latencies) < 20:
            started = time.monotonic()
            assert client.post("/predict", json=records).status_code == 200
            assert client.get("/v2/health/live").status_code == 200
            latencies.append(time.monotonic() - started)
    for seconds, received in outcomes:
        assert received.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"), received[:200]
        assert received.endswith(b'{"error":"the request\'s headers are over 32768 bytes"}')
        assert seconds < 5
    assert len(outcomes) == 4 and max(latencies) < 1.0, max(latencies)


def test_a_head_within_the_cap_is_served(server: ServerProcess) -> None:
    filler = b"".join(b"X-Fill-%d: %s\r\n" % (i, b"b" * 900) for i in range(30))  # ~27 KB
    r = raw_exchange(server.port, b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n" + filler + b"\r\n")
    assert r.status == 200 and r.json() == {"live": True}
