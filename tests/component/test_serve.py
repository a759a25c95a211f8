"""The `serve` workload over real HTTP: predictions equal the pipeline's, and every bad-input row of
the reliability bar gets its 4xx. The fuzz is test_serve_fuzz.py, the defects an outside fuzz found
test_serve_hostile.py, the process (refused artifacts, SIGTERM) test_serve_process.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import skops.io as sio
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from mlops_operator.workloads.serve.app import Limits, ServeApp
from mlops_operator.workloads.serve.artifact import load_verified_model
from mlops_operator.workloads.serve.metrics import ServeMetrics
from mlops_operator.workloads.serve.model import ServedModel

from ._serving import ThreadServer, Trained, build_models, infer, matrix_request, outputs, sha256_of

NAMED = ["breast_cancer", "wine", "diabetes", "mixed"]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Trained]:
    directory = tmp_path_factory.mktemp("models")
    trained = build_models(directory)
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    # fitted on a bare array: no feature names, and no imputer
    plain = Pipeline([("estimator", LogisticRegression(max_iter=5000))]).fit(X.to_numpy(), y)
    path = directory / "plain.skops"
    sio.dump(plain, path)
    trained["plain"] = Trained("plain", plain, X, path, sha256_of(path))
    return trained


@pytest.fixture(scope="module")
def servers(models: dict[str, Trained]) -> Iterator[dict[str, str]]:
    started: dict[str, ThreadServer] = {}
    try:
        for name, trained in models.items():
            served = ServedModel(name, "3", load_verified_model(trained.path.as_uri(), trained.sha256))
            limits = Limits(max_body_bytes=1024 * 1024, max_batch_rows=1000)
            started[name] = ThreadServer(ServeApp(name, "3", served, ServeMetrics(), limits=limits)).__enter__()
        yield {name: s.url for name, s in started.items()}
    finally:
        for s in started.values():
            s.__exit__()


def columnar_request(X: Any) -> dict[str, Any]:
    inputs = []
    for col in X.columns:
        kind = X[col].dtype.kind
        inputs.append(
            {
                "name": col,
                "shape": [len(X)],
                "datatype": "FP64" if kind in "fi" else "BYTES",
                "data": X[col].tolist(),
            }
        )
    return {"inputs": inputs}


# --- the served model answers what the pipeline answers ------------------------------------------------
@pytest.mark.parametrize("name", NAMED)
def test_v2_matrix_and_columnar_and_records_match_pipeline(
    name: str, models: dict[str, Trained], servers: dict[str, str]
) -> None:
    trained, url = models[name], servers[name]
    X = trained.X.iloc[:400]
    expected = trained.pipeline.predict(X)
    for payload in (matrix_request(X, id="req-1"), columnar_request(X)):
        r = infer(url, name, payload, version="3")
        got = outputs(r)["predict"]
        assert got["shape"] == [len(X)]
        assert np.array_equal(np.asarray(got["data"]), expected), name
        assert r.json()["model_name"] == name and r.json()["model_version"] == "3"
    assert infer(url, name, matrix_request(X, id="req-1")).json()["id"] == "req-1"
    records = httpx.post(f"{url}/predict", json={"records": X.to_dict("records")}).json()["predictions"]
    assert np.array_equal(np.asarray(records), expected)
    bare_list = httpx.post(f"{url}/predict", json=X.iloc[:5].to_dict("records")).json()["predictions"]
    assert np.array_equal(np.asarray(bare_list), expected[:5])


@pytest.mark.parametrize("name", ["breast_cancer", "wine", "mixed"])
def test_predict_proba_on_request(name: str, models: dict[str, Trained], servers: dict[str, str]) -> None:
    trained, url = models[name], servers[name]
    X = trained.X.iloc[:50]
    r = infer(url, name, matrix_request(X, outputs=[{"name": "predict_proba"}]))
    proba = outputs(r)["predict_proba"]
    assert set(outputs(r)) == {"predict_proba"}
    assert proba["shape"] == [50, len(trained.pipeline.classes_)]
    assert np.array_equal(np.asarray(proba["data"]).reshape(proba["shape"]), trained.pipeline.predict_proba(X))
    by_param = outputs(infer(url, name, matrix_request(X, parameters={"predict_proba": True})))
    assert set(by_param) == {"predict", "predict_proba"}


def test_numeric_pipelines_take_the_fast_path_and_agree(models: dict[str, Trained]) -> None:
    for name in ["breast_cancer", "wine", "diabetes", "plain"]:
        trained = models[name]
        served = ServedModel(name, "1", trained.pipeline)
        assert served.uses_fast_path, name
    mixed = ServedModel("mixed", "1", models["mixed"].pipeline)
    assert not mixed.uses_fast_path and [f.name for f in mixed.features if f.categorical] == [
        "color",
        "shape",
    ]


def test_missing_values_are_null_and_imputed(models: dict[str, Trained], servers: dict[str, str]) -> None:
    X = models["breast_cancer"].X.iloc[:20].copy()
    X.iloc[::3, 4] = np.nan
    got = outputs(infer(servers["breast_cancer"], "breast_cancer", matrix_request(X)))["predict"]["data"]
    assert got == models["breast_cancer"].pipeline.predict(X).tolist()


def test_unnamed_model_and_nan_without_imputer(models: dict[str, Trained], servers: dict[str, str]) -> None:
    url, X = servers["plain"], models["plain"].X.iloc[:10]
    meta = httpx.get(f"{url}/v2/models/plain").json()
    assert [i["name"] for i in meta["inputs"]] == [f"x{i}" for i in range(30)]
    got = outputs(infer(url, "plain", matrix_request(X)))["predict"]["data"]
    assert got == models["plain"].pipeline.predict(X.to_numpy()).tolist()
    X = X.copy()
    X.iloc[0, 0] = np.nan
    r = infer(url, "plain", matrix_request(X))
    assert r.status_code == 400 and "NaN" in r.json()["error"]


def test_health_and_metadata(servers: dict[str, str], models: dict[str, Trained]) -> None:
    url = servers["mixed"]
    assert httpx.get(f"{url}/v2/health/live").json() == {"live": True}
    assert httpx.get(f"{url}/v2/health/ready").status_code == 200
    assert httpx.get(f"{url}/v2/models/mixed/ready").json()["ready"] is True
    assert httpx.get(f"{url}/v2/models/mixed/versions/3/ready").status_code == 200
    server = httpx.get(f"{url}/v2").json()
    assert server["name"] == "mlops-operator" and "version" in server
    meta = httpx.get(f"{url}/v2/models/mixed/versions/3").json()
    assert meta["name"] == "mixed" and meta["versions"] == ["3"]
    types = {i["name"]: i["datatype"] for i in meta["inputs"]}
    assert types["color"] == "BYTES" and types["mean radius"] == "FP64"
    assert [o["name"] for o in meta["outputs"]] == ["predict", "predict_proba"]


def test_v2_client_shapes(models: dict[str, Trained], servers: dict[str, str]) -> None:
    """Requests as KServe's InferRequest.to_rest() and tritonclient's JSON mode write them."""
    X = models["breast_cancer"].X.iloc[:4]
    flat = X.to_numpy().ravel().tolist()
    triton = {
        "inputs": [{"name": "INPUT0", "shape": [4, 30], "datatype": "FP64", "data": flat, "parameters": {}}],
        "outputs": [{"name": "predict", "parameters": {"binary_data": False}}],
    }
    kserve = {
        "id": "3f1c",
        "inputs": [{"name": "input-0", "shape": [4, 30], "datatype": "FP64", "data": flat}],
    }
    expected = models["breast_cancer"].pipeline.predict(X).tolist()
    for payload in (triton, kserve):
        r = httpx.post(
            f"{servers['breast_cancer']}/v2/models/breast_cancer/infer",
            content=json.dumps(payload),
            headers={"content-type": "application/json"},
        )
        out = outputs(r)["predict"]
        assert out["data"] == expected and out["datatype"] == "INT64"
    wine = outputs(infer(servers["wine"], "wine", matrix_request(models["wine"].X.iloc[:3])))["predict"]
    assert wine["datatype"] == "BYTES" and all(isinstance(v, str) for v in wine["data"])


def test_metrics_count_requests_batches_and_predictions(servers: dict[str, str], models: dict[str, Trained]) -> None:
    url = servers["diabetes"]
    infer(url, "diabetes", matrix_request(models["diabetes"].X.iloc[:7]))
    httpx.post(f"{url}/v2/models/diabetes/infer", content=b"{")
    text = httpx.get(f"{url}/metrics").text
    assert 'mlops_serve_requests_total{code="200",route="infer"}' in text
    assert 'mlops_serve_requests_total{code="400",route="infer"}' in text
    assert "mlops_serve_request_duration_seconds_bucket" in text
    assert "mlops_serve_batch_rows_bucket" in text
    assert _metric(text, "mlops_serve_predictions_total") >= 7


def _metric(text: str, name: str) -> float:
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " "))


# --- bad input: one row per case of the reliability bar (docs/serving.md) ---------------------------------
ROW = [float(v) for v in load_breast_cancer().data[0]]
BC = "/v2/models/breast_cancer/infer"


def _v2(data: Any, shape: Any = (1, 30), datatype: str = "FP64", name: str = "x") -> bytes:
    return json.dumps({"inputs": [{"name": name, "shape": list(shape), "datatype": datatype, "data": data}]}).encode()


BAD_REQUESTS: list[tuple[str, str, str, bytes, dict[str, str], int, str]] = [
    # (case, method, path, body, headers, status, fragment of the error)
    ("not json", "POST", BC, b"{nope", {}, 400, "malformed JSON"),
    ("truncated json", "POST", BC, _v2([ROW])[:-7], {}, 400, "malformed JSON"),
    ("not utf-8", "POST", BC, b'{"inputs": "\xff\xfe"}', {}, 400, "malformed JSON"),
    ("empty body", "POST", BC, b"", {}, 400, "empty body"),
    ("NaN literal", "POST", BC, _v2([ROW]).replace(b"17.99", b"NaN"), {}, 400, "malformed JSON"),
    ("Infinity literal", "POST", BC, _v2([ROW]).replace(b"17.99", b"Infinity"), {}, 400, "malformed JSON"),
    ("deep nesting", "POST", BC, b"[" * 100_000 + b"]" * 100_000, {}, 400, "malformed JSON"),
    ("not an object", "POST", BC, b"[1, 2]", {}, 400, "JSON object"),
    ("inputs missing", "POST", BC, b"{}", {}, 400, "'inputs'"),
    ("inputs empty", "POST", BC, b'{"inputs": []}', {}, 400, "'inputs'"),
    ("inputs not a list", "POST", BC, b'{"inputs": {"a": 1}}', {}, 400, "'inputs'"),
    ("tensor not an object", "POST", BC, b'{"inputs": [3]}', {}, 400, "inputs[0]"),
    (
        "no name",
        "POST",
        BC,
        b'{"inputs": [{"shape": [1], "datatype": "FP64", "data": [1]}]}',
        {},
        400,
        "name",
    ),
    (
        "no data",
        "POST",
        BC,
        b'{"inputs": [{"name": "x", "shape": [1, 30], "datatype": "FP64"}]}',
        {},
        400,
        "data",
    ),
    (
        "wrong feature count",
        "POST",
        BC,
        _v2([ROW[:29]], (1, 29)),
        {},
        400,
        "expected 30 features per row, got 29",
    ),
    ("size != shape", "POST", BC, _v2([ROW[:29]]), {}, 400, "needs 30 values, got 29"),
    ("negative dim", "POST", BC, _v2([ROW], (-1, 30)), {}, 400, "non-negative integers"),
    ("fractional dim", "POST", BC, _v2([ROW], (1.5, 30)), {}, 400, "non-negative integers"),
    ("3-D shape", "POST", BC, _v2([[ROW]], (1, 1, 30)), {}, 400, "shape must be"),
    ("zero rows", "POST", BC, _v2([], (0, 30)), {}, 400, "no rows"),
    ("unknown datatype", "POST", BC, _v2([ROW], datatype="FP128"), {}, 400, "datatype must be one of"),
    ("strings in FP64", "POST", BC, _v2([["a"] * 30]), {}, 400, "does not fit FP64"),
    ("mixed strings in FP64", "POST", BC, _v2([[None, "a", *ROW[2:]]]), {}, 400, "expected numbers"),
    ("floats in INT64", "POST", BC, _v2([ROW], datatype="INT64"), {}, 400, "does not fit INT64"),
    ("datatype an object", "POST", BC, _v2([ROW], datatype={"a": 1}), {}, 400, "datatype must be one of"),  # type: ignore[arg-type]
    ("booleans in FP64", "POST", BC, _v2([[True, *ROW[1:]]]), {}, 400, "does not fit FP64"),
    ("numbers in BOOL", "POST", BC, _v2([ROW], datatype="BOOL"), {}, 400, "does not fit BOOL"),
    ("UINT8 out of range", "POST", BC, _v2([[300] * 30], datatype="UINT8"), {}, 400, "300 is out of range for UINT8"),
    ("zero rows, huge width", "POST", BC, _v2([], (0, 2**60)), {}, 400, "no rows"),
    (
        "binary extension",
        "POST",
        BC,
        b"{}",
        {"inference-header-content-length": "2"},
        415,
        "binary tensor data extension",
    ),
    ("ragged data", "POST", BC, _v2([ROW, ROW[:3]], (2, 30)), {}, 400, "ragged"),
    ("unknown input name", "POST", BC, _v2([1.0], (1,), name="nope"), {}, 400, "unknown ['nope']"),
    ("id not a string", "POST", BC, b'{"id": 5, "inputs": [1]}', {}, 400, "'id'"),
    (
        "unknown output",
        "POST",
        BC,
        _v2([ROW])[:-1] + b', "outputs": [{"name": "shap"}]}',
        {},
        400,
        "unknown outputs",
    ),
    ("too many rows", "POST", BC, _v2([ROW], (1001, 30)), {}, 413, "over the limit of 1000"),
    ("body over limit", "POST", BC, b" " * (1024 * 1024 + 1), {}, 413, "over the limit"),
    ("wrong content type", "POST", BC, _v2([ROW]), {"content-type": "text/plain"}, 415, "application/json"),
    (
        "form content type",
        "POST",
        "/predict",
        b"a=1",
        {"content-type": "application/x-www-form-urlencoded"},
        415,
        "",
    ),
    ("unknown model", "POST", "/v2/models/nope/infer", _v2([ROW]), {}, 404, "unknown model 'nope'"),
    (
        "unknown version",
        "POST",
        "/v2/models/breast_cancer/versions/9/infer",
        _v2([ROW]),
        {},
        404,
        "unknown version",
    ),
    ("unknown model metadata", "GET", "/v2/models/nope", b"", {}, 404, "unknown model"),
    ("unknown route", "GET", "/v1/models/breast_cancer:predict", b"", {}, 404, "no route"),
    ("GET infer", "GET", BC, b"", {}, 405, "use POST"),
    ("POST live", "POST", "/v2/health/live", b"", {}, 405, "use GET"),
    ("DELETE predict", "DELETE", "/predict", b"", {}, 405, "use POST"),
    ("records not a list", "POST", "/predict", b'{"records": 3}', {}, 400, "records"),
    ("record not an object", "POST", "/predict", b'{"records": [[1, 2]]}', {}, 400, "records[0]"),
    ("record missing feature", "POST", "/predict", b'{"records": [{"mean radius": 1}]}', {}, 400, "missing"),
    ("records empty", "POST", "/predict", b'{"records": []}', {}, 400, "no rows"),
    ("records over batch", "POST", "/predict", json.dumps([{}] * 1001).encode(), {}, 413, "batch limit"),
]


@pytest.mark.parametrize(
    ("case", "method", "path", "body", "headers", "status", "fragment"),
    BAD_REQUESTS,
    ids=[r[0] for r in BAD_REQUESTS],
)
def test_bad_request_rows(
    servers: dict[str, str],
    case: str,
    method: str,
    path: str,
    body: bytes,
    headers: dict[str, str],
    status: int,
    fragment: str,
) -> None:
    url = servers["breast_cancer"]
    headers = {"content-type": "application/json", **headers} if method == "POST" else headers
    r = httpx.request(method, url + path, content=body or None, headers=headers, timeout=30)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    error = r.json()["error"]
    assert fragment in error and "Traceback" not in error
    assert httpx.get(f"{url}/v2/health/live").status_code == 200


def test_record_value_types(models: dict[str, Trained], servers: dict[str, str]) -> None:
    record = models["breast_cancer"].X.iloc[0].to_dict()
    for bad, fragment in [
        ({**record, "mean radius": "big"}, "not numbers"),
        ({**record, "extra": 1}, "unknown"),
    ]:
        r = httpx.post(f"{servers['breast_cancer']}/predict", json={"records": [bad]})
        assert r.status_code == 400 and fragment in r.json()["error"]
    mixed = models["mixed"].X.iloc[0].to_dict()
    for bad, fragment in [
        ({**mixed, "color": 3}, "expected strings"),
        ({**mixed, "mean area": "x"}, "expected numbers"),
    ]:
        r = httpx.post(f"{servers['mixed']}/predict", json={"records": [bad]})
        assert r.status_code == 400 and fragment in r.json()["error"], r.text


def test_proba_of_a_regressor_is_a_client_error(servers: dict[str, str], models: dict[str, Trained]) -> None:
    r = infer(
        servers["diabetes"],
        "diabetes",
        matrix_request(models["diabetes"].X.iloc[:2], outputs=[{"name": "predict_proba"}]),
    )
    assert r.status_code == 400 and "no predict_proba" in r.json()["error"]


def test_chunked_body_over_the_limit_is_413(servers: dict[str, str]) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"inputs": ['
        for _ in range(40):
            yield b" " * 32768

    r = httpx.post(servers["breast_cancer"] + BC, content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_not_ready_is_503_and_live_stays_200() -> None:
    with ThreadServer(ServeApp("m", "1", None, ServeMetrics())) as server:
        assert httpx.get(f"{server.url}/v2/health/live").status_code == 200
        for method, path in [
            ("GET", "/v2/health/ready"),
            ("GET", "/v2/models/m/ready"),
            ("POST", "/v2/models/m/infer"),
        ]:
            r = httpx.request(method, server.url + path, content=_v2([ROW]) if method == "POST" else None)
            assert r.status_code == 503 and "not ready" in r.json()["error"]
