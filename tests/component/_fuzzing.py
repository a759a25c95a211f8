"""Request generators for the model server's fuzz test (tests/component/test_serve_fuzz.py).

Hypothesis strategies that know the V2 request's structure and the model's features, so that most
requests get past the JSON and deep into validation, mixed with wild values at every level; and
hand-written hostile requests, some over a raw socket because no client library would send them.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from hypothesis import strategies as st

from ._serving import RawResponse, raw_exchange

DATATYPES = ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64"]
DATATYPES += ["BYTES"]
EDGE_NUMBERS: list[Any] = [0, -0.0, 1, -1, 0.5, -5, 127, 128, 255, 256, -129, 32768, 65504, 65520, 2**31, 2**32]
EDGE_NUMBERS += [2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1, -(2**63), 3.4e38, 3.5e38, 1e308, -1e308, 5e-324, 1e-300]


@dataclass(frozen=True)
class Target:
    """One served model: where it listens, its features (name, categorical) and a valid row."""

    name: str
    url: str
    port: int
    features: tuple[tuple[str, bool], ...]
    row: tuple[Any, ...]

    @property
    def feature_names(self) -> list[str]:
        return [f for f, _ in self.features]


@dataclass
class Tally:
    """Every response, by source and status; the first few that break a rule, with their request."""

    counts: Counter[tuple[str, int]] = field(default_factory=Counter)
    broken: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def server_errors(self) -> int:
        return sum(n for (_, status), n in self.counts.items() if status >= 500)

    def record(self, source: str, status: int, content_type: str, body: bytes, request: object) -> None:
        self.counts[(source, status)] += 1
        head = isinstance(request, tuple) and request[0] == "HEAD"
        problem = _problem(status, content_type, body, head)
        if problem and len(self.broken) < 20:
            self.broken.append(f"{source}: {problem}; request {str(request)[:300]}; answer {body[:300]!r}")


def _problem(status: int, content_type: str, body: bytes, head: bool) -> str | None:
    if status >= 500:
        return f"{status}"
    if status < 400:
        return None
    if content_type != "application/json":
        return f"{status} with Content-Type {content_type!r}"
    if head:  # the headers of the GET answer, without its body
        return None
    try:
        error = orjson.loads(body)["error"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return f"{status} whose body is not {{'error': ...}}"
    return None if isinstance(error, str) and "Traceback" not in error else f"{status} with error {error!r}"


def send(client: httpx.Client, tally: Tally, source: str, request: tuple[str, str, dict[str, str], bytes]) -> None:
    method, path, headers, body = request
    r = client.request(method, path, content=body or None, headers=headers)
    tally.record(source, r.status_code, r.headers.get("content-type", ""), r.content, request)


def send_raw(port: int, tally: Tally, source: str, data: bytes) -> None:
    r: RawResponse = raw_exchange(port, data)
    tally.record(source, r.status, r.headers.get("content-type", ""), r.body, data[:300])


# --- Hypothesis: structure-aware V2 and records requests ------------------------------------------------
# Hypothesis chooses the structure (forms, shapes, names, datatypes, where to break it), and a
# random.Random it draws fills the tensors' values: a draw per value would cost ~50 ms a request.
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=6),
    st.sampled_from(EDGE_NUMBERS),
)
ANY_JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=10,
)
SEEDS = st.integers(0, 2**32 - 1)  # random.Random(seed): values without a Hypothesis draw each
WILD_VALUES: list[Any] = [*EDGE_NUMBERS, None, True, False, "", "x", "\u0000", [], {}, [1], {"a": 1}]


def _value(rng: random.Random, target: Target, datatype: Any, feature: int | None, odd: float = 0.02) -> Any:
    """Mostly a value that fits the datatype and the feature (by its index), else anything (odds `odd`)."""
    if rng.random() < odd:
        return rng.choice(WILD_VALUES)
    like = target.row[feature] if feature is not None and feature < len(target.row) else rng.choice(target.row)
    if datatype == "BOOL":
        return rng.random() < 0.5
    if isinstance(datatype, str) and "INT" in datatype:
        return rng.randint(-200, 70_000) if rng.random() < 0.2 else round(like) if type(like) is float else like
    if isinstance(like, str):
        strings = [v for v in target.row if isinstance(v, str)]
        return rng.choice(strings) if rng.random() < 0.9 else rng.choice(["zz", "", 1.5])
    return like * rng.uniform(0.5, 1.5) if rng.random() < 0.9 else rng.uniform(-1e6, 1e6)


@st.composite
def _tensor(
    draw: st.DrawFn, target: Target, name: Any, shape: list[int], natural: str, feature: int | None, wild: float
) -> Any:
    """A tensor of `shape` ([rows] or [rows, width]); `natural` is the datatype a client would send,
    `feature` the feature of a one-column tensor (None: the columns are the features in order), and
    `wild` scales the odds of breaking it (so a request of 30 tensors is not always broken)."""
    rng = random.Random(draw(SEEDS))
    if rng.random() < 0.03 * wild:
        return draw(ANY_JSON)
    datatype: Any = natural if rng.random() > 0.2 * wild else draw(st.sampled_from(DATATYPES))
    if rng.random() < 0.03 * wild:
        datatype = draw(ANY_JSON)
    rows, width = shape[0], shape[1] if len(shape) == 2 else 1
    odd = 0.3 * wild / (rows * width or 1)  # about one tensor in three (wild=1) holds an odd value
    flat = [_value(rng, target, datatype, i % width if feature is None else feature, odd) for i in range(rows * width)]
    data: Any = flat
    if len(shape) == 2 and rng.random() < 0.5:
        data = [flat[i * width : (i + 1) * width] for i in range(rows)]
    if rng.random() < 0.05 * wild:
        shape = draw(st.lists(st.integers(-3, 2**64) | st.sampled_from([0, 1, 2**60, 2**63 - 1]), max_size=3))
    elif rng.random() < 0.03 * wild:
        shape = draw(ANY_JSON)
    if rng.random() < 0.05 * wild and data:
        data = data[: rng.randrange(len(data))]  # too few values
    tensor = {"name": name, "shape": shape, "datatype": datatype, "data": data}
    if rng.random() < 0.05 * wild:
        tensor.pop(rng.choice(sorted(tensor)))
    if rng.random() < 0.05 * wild:
        tensor["parameters"] = draw(ANY_JSON)
    return tensor


@st.composite
def v2_document(draw: st.DrawFn, target: Target) -> Any:
    rng = random.Random(draw(SEEDS))
    rows = rng.randint(1, 4) if rng.random() < 0.97 else draw(st.sampled_from([0, 5, 50]))
    wild = rng.choice([0.0, 1.0, 2.0])  # clean, broken now and then, broken often
    names, n = target.feature_names, len(target.features)
    form = rng.choices(["matrix", "columns", "wild"], [0.45, 0.45, 0.1])[0]
    if form == "matrix":
        width = n if rng.random() < 0.8 else draw(st.sampled_from([n - 1, n + 1, 1, 0]))
        natural = "BYTES" if any(c for _, c in target.features) else "FP64"
        inputs = [draw(_tensor(target, draw(st.text(max_size=8)), [rows, width], natural, None, wild))]
    elif form == "columns":
        chosen = names
        if rng.random() < 0.15 * wild:  # some missing, some twice
            chosen = draw(st.lists(st.sampled_from(names), min_size=n - 1, max_size=n + 1))
        shape = [rows] if rng.random() < 0.7 else [rows, draw(st.sampled_from([1, 2]))]
        inputs = []
        for name in chosen:
            i = names.index(name)
            natural = "BYTES" if target.features[i][1] else "FP64"
            inputs.append(draw(_tensor(target, name, shape, natural, i, wild / len(chosen))))
    else:
        inputs = draw(st.lists(ANY_JSON, max_size=3) | ANY_JSON)
    doc: dict[str, Any] = {"inputs": inputs}
    if rng.random() < 0.3:
        doc["id"] = draw(st.text(max_size=8)) if rng.random() < 0.8 else draw(ANY_JSON)
    if rng.random() < 0.2:
        doc["parameters"] = {"predict_proba": rng.random() < 0.7} if rng.random() < 0.7 else draw(ANY_JSON)
    if rng.random() < 0.2:
        output = st.fixed_dictionaries({"name": st.sampled_from(["predict", "predict_proba", "x"]) | ANY_JSON})
        doc["outputs"] = draw(st.lists(output | ANY_JSON, max_size=3) | ANY_JSON)
    return doc


@st.composite
def records_document(draw: st.DrawFn, target: Target) -> Any:
    rng = random.Random(draw(SEEDS))
    records: list[Any] = []
    for _ in range(rng.randint(1, 4) if rng.random() < 0.97 else 0):
        record = {
            name: value if rng.random() < 0.8 else _value(rng, target, "BYTES" if categorical else "FP64", i)
            for i, ((name, categorical), value) in enumerate(zip(target.features, target.row, strict=True))
        }
        if rng.random() < 0.1:
            record = draw(st.dictionaries(st.sampled_from([*target.feature_names, "x"]), SCALARS) | ANY_JSON)
        records.append(record)
    return {"records": records} if rng.random() < 0.7 else records


def _encode(rng: random.Random, doc: Any) -> bytes:
    body = json.dumps(doc).encode()
    roll = rng.random()
    if roll < 0.03 and body:  # truncated
        return body[: rng.randrange(len(body))]
    if roll < 0.06 and body:  # one byte changed
        i = rng.randrange(len(body))
        return body[:i] + bytes([rng.randrange(256)]) + body[i + 1 :]
    return body


@st.composite
def http_request(draw: st.DrawFn, target: Target) -> tuple[str, str, dict[str, str], bytes]:
    """(method, path, headers, body) for one of the target's routes, mostly inference."""
    rng = random.Random(draw(SEEDS))
    base = f"/v2/models/{target.name}"
    paths = [f"{base}/infer", f"{base}/versions/3/infer", "/predict"]
    if rng.random() < 0.05:
        paths = [f"{base}/versions/9/infer", "/v2/models/other/infer", base, "/v2", "/metrics"]
    path = rng.choice(paths)
    doc = draw(records_document(target)) if path == "/predict" else draw(v2_document(target))
    content_type = "application/json"
    if rng.random() < 0.1:
        content_type = rng.choice(["application/json; charset=utf-8", "text/plain", "", "a/b;;", "APPLICATION/JSON"])
    headers = {"content-type": content_type} if content_type else {}
    method = "POST" if rng.random() < 0.96 else rng.choice(["GET", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"])
    return method, path, headers, _encode(rng, doc)


# --- hand-written hostile requests ------------------------------------------------------------------------
def hostile_http(target: Target, seed: int) -> Iterator[tuple[str, str, dict[str, str], bytes]]:
    """Requests an HTTP client can send: odd bodies, sizes, encodings and headers."""
    infer, n = f"/v2/models/{target.name}/infer", len(target.features)
    json_type = {"content-type": "application/json"}
    row = list(target.row)
    k = seed % 7 + 1

    def v2(data: Any, shape: Any, datatype: Any = "FP64", name: Any = "x") -> bytes:
        return orjson.dumps({"inputs": [{"name": name, "shape": shape, "datatype": datatype, "data": data}]})

    yield "POST", infer, json_type, b"[" * (1000 + seed) + b"]" * (1000 + seed)
    yield "POST", infer, json_type, b'{"inputs":' * (300 + seed) + b"1" + b"}" * (300 + seed)
    yield "POST", infer, json_type, v2([], [0, 2**60 + seed])
    yield "POST", infer, json_type, v2([row], [1, 2**63 - k])
    yield "POST", infer, json_type, v2([row] * k, [2**62, 2**62])
    yield "POST", infer, json_type, v2([row], [1, n], {"d": seed})
    yield "POST", infer, json_type, v2([row], [1, n], [seed])
    yield "POST", infer, json_type, v2([[True] * n] * k, [k, n])
    yield "POST", infer, json_type, v2([[True, *row[1:]]], [1, n])
    yield "POST", infer, json_type, v2([[-5 - seed] * n], [1, n], "UINT8")
    yield "POST", infer, json_type, v2([[300 + seed] * n], [1, n], "UINT8")
    yield "POST", infer, json_type, v2([[2**64 - 1, -1] * (n // 2)], [1, n], "INT64")
    yield "POST", infer, json_type, v2([[[[row]]]], [1, n])
    yield "POST", infer, json_type, v2([[row]] * 2, [2, n])
    yield "POST", infer, json_type, v2("x" * (1000 * k), [1])
    yield "POST", infer, json_type, v2([row], [1, n], name="\u0000\ud7ff\U0001f600" * k)
    yield "POST", infer, json_type, b'{"inputs": [{"name": "\\ud800", "shape": [1], "datatype": "FP64", "data": [1]}]}'
    yield "POST", infer, json_type, b"\xef\xbb\xbf" + v2([row], [1, n])  # a byte-order mark
    yield "POST", infer, json_type, b'{"inputs": [], "inputs": ' + v2([row], [1, n])[10:]  # duplicate key
    yield (
        "POST",
        infer,
        json_type,
        orjson.dumps(
            {"inputs": [{"name": f"f{i}", "shape": [1], "datatype": "FP64", "data": [i]} for i in range(2000 + seed)]}
        ),
    )
    yield "POST", infer, json_type, orjson.dumps({"inputs": [{"name": "x", "shape": [1], "data": [1]}] * 3})
    yield "POST", infer, json_type, v2([row], [1, n])[:-1] + b', "outputs": [{"name": {"a": []}}]}'
    yield "POST", infer, json_type, v2([row], [1, n])[:-1] + b', "id": "' + b"i" * (5000 * k) + b'"}'
    yield "POST", infer, {"content-type": "application/json", "inference-header-content-length": str(seed)}, b"{}"
    yield "POST", infer, {"content-type": "application/json; charset=latin-1"}, v2([row], [1, n])
    yield "POST", infer, {"content-type": "multipart/form-data; boundary=x"}, b"--x--"
    yield "POST", infer, {**json_type, "content-encoding": "gzip"}, b"\x1f\x8b\x08\x00" + bytes(range(k * 10))
    yield "POST", "/predict", json_type, orjson.dumps([dict(zip(target.feature_names, row, strict=True))] * (50 * k))
    yield "POST", "/predict", json_type, orjson.dumps({"records": [{f: None for f in target.feature_names}]})
    yield "POST", "/predict", json_type, orjson.dumps({"records": [{f: [1] for f in target.feature_names}]})
    yield "POST", "/predict", json_type, orjson.dumps({"records": {"a": 1}})
    yield "GET", f"/v2/models/{target.name}/versions/{'9' * (1000 * k)}", {}, b""
    yield "GET", "/v2/models/%2e%2e/%2e%2e/etc/passwd", {}, b""
    yield "GET", f"/v2/health/live?{'q=1&' * (100 * k)}", {}, b""
    yield "OPTIONS", infer, {}, b""
    yield "TRACE", "/v2", {}, b""
    yield "POST", infer, {**json_type, "expect": "100-continue"}, v2([row], [1, n])
    yield "POST", infer, {**json_type, "x-many": "a" * (8000 + seed)}, v2([row], [1, n])


def hostile_raw(target: Target, seed: int) -> Iterator[bytes]:
    """Bytes no client library sends: broken framing, bad HTTP, heads over the cap."""
    infer = f"/v2/models/{target.name}/infer".encode()
    head = b"POST " + infer + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    yield b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n"
    yield b"GARBAGE %d\r\n\r\n" % seed
    yield b"GET /v2/\xff\xfe%d HTTP/1.1\r\nHost: x\r\n\r\n" % seed
    yield b"GET /v2 HTTP/1.1\r\nHost: x\r\nBad Header: %d\r\n\r\n" % seed
    yield head + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n"
    yield head + b'Transfer-Encoding: chunked\r\n\r\n4\r\n{"in\r\n0\r\n\r\n'
    yield head + b"Content-Length: 5\r\nContent-Length: 9\r\n\r\n12345"
    yield head + b"Content-Length: 99999999999999999999999\r\n\r\n{}"
    yield head + b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
    yield b"GET /v2 HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (40_000 + seed) + b"\r\n\r\n"  # over the cap
    yield b"GET /" + b"a" * (40_000 + seed) + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    yield b"GET /v2/health/live HTTP/1.0\r\n\r\n"
    yield b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    yield b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    yield b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(range(seed % 200))  # a TLS hello
