"""Helpers for the serving component tests: real pipelines on scikit-learn's datasets, saved with
skops, and a real uvicorn server on 127.0.0.1 (in a thread, or as the `mlops-operator serve` process).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import skops.io as sio
import uvicorn
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Trained:
    name: str
    pipeline: Any
    X: pd.DataFrame
    path: Path
    sha256: str


def _numeric_pipeline(columns: list[str], estimator: Any) -> Pipeline:
    numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    return Pipeline([("pre", ColumnTransformer([("num", numeric, columns)])), ("model", estimator)])


def categorical_frame() -> tuple[pd.DataFrame, Any]:
    """breast_cancer's first 8 columns plus two string columns, one of them informative."""
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X = X.iloc[:, :8].copy()
    rng = np.random.default_rng(7)
    X["color"] = np.where(y == 1, rng.choice(["red", "green"], len(X)), rng.choice(["blue", "green"], len(X)))
    X["shape"] = rng.choice(["round", "square", "oval"], len(X))
    return X, y


def build_models(directory: Path) -> dict[str, Trained]:
    out: dict[str, Trained] = {}
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    out["breast_cancer"] = _save(
        "breast_cancer",
        _numeric_pipeline(list(X.columns), LogisticRegression(max_iter=2000)).fit(X, y),
        X,
        directory,
    )
    X, y = load_wine(return_X_y=True, as_frame=True)
    labels = np.array(["barolo", "grignolino", "barbera"])[y]  # string classes: BYTES outputs
    wine = _numeric_pipeline(list(X.columns), RandomForestClassifier(n_estimators=20, max_depth=5, random_state=0))
    out["wine"] = _save("wine", wine.fit(X, labels), X, directory)
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    out["diabetes"] = _save("diabetes", _numeric_pipeline(list(X.columns), Ridge()).fit(X, y), X, directory)
    X, y = categorical_frame()
    numeric = list(X.columns[:8])
    pre = ColumnTransformer(
        [
            ("num", Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler())]), numeric),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["color", "shape"]),
        ]
    )
    mixed = Pipeline([("pre", pre), ("model", LogisticRegression(max_iter=2000))]).fit(X, y)
    out["mixed"] = _save("mixed", mixed, X, directory)
    return out


def _save(name: str, pipeline: Any, X: pd.DataFrame, directory: Path) -> Trained:
    path = directory / f"{name}.skops"
    sio.dump(pipeline, path)
    return Trained(name, pipeline, X, path, sha256_of(path))


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ThreadServer:
    """A real uvicorn (httptools, uvloop) serving `app` on 127.0.0.1 in a background thread."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, loop="uvloop", http="httptools", log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def serve_command(trained: Trained, port: int, *extra: str, sha256: str | None = None) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mlops_operator.cli",
        "serve",
        "--model-name",
        trained.name,
        "--model-version",
        "3",
        "--artifact-uri",
        trained.path.as_uri(),
        "--sha256",
        sha256 or trained.sha256,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *extra,
    ]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO / "operator")}


class ServerProcess:
    """`mlops-operator serve` as a real process; waits for /v2/health/ready."""

    def __init__(self, trained: Trained, *extra: str) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            serve_command(trained, self.port, *extra),
            env=env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                output = self.proc.stdout.read() if self.proc.stdout else ""
                raise RuntimeError(f"server exited {self.proc.returncode}: {output}")
            try:
                if httpx.get(f"{self.url}/v2/health/ready", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise TimeoutError("server not ready")

    def terminate(self, timeout: float = 60) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def raw_exchange(port: int, request: bytes, timeout: float = 10) -> RawResponse:
    """Send bytes as they are (no client library tidies them) and read the answer until the server
    closes or the declared length has arrived."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        with contextlib.suppress(OSError):  # the server may answer and close before reading it all
            sock.sendall(request)
        data = b""
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                data += chunk
                if _complete(data):
                    break
    return parse_response(data)


def _complete(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def parse_response(data: bytes) -> RawResponse:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines[0].startswith("HTTP/1.1 "):
        raise AssertionError(f"not an HTTP response: {data[:200]!r}")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return RawResponse(int(lines[0].split()[1]), headers, body)


# --- V2 requests a client sends -------------------------------------------------------------------------
def matrix_request(X: Any, **extra: Any) -> dict[str, Any]:
    rows = [[None if isinstance(v, float) and v != v else v for v in row] for row in X.to_numpy().tolist()]
    datatype = "FP64" if all(k in "fi" for k in X.dtypes.map(lambda d: d.kind)) else "BYTES"
    return {
        "inputs": [{"name": "input-0", "shape": list(X.shape), "datatype": datatype, "data": rows}],
        **extra,
    }


def infer(url: str, name: str, payload: Any, version: str | None = None) -> httpx.Response:
    path = f"/v2/models/{name}" + (f"/versions/{version}" if version else "") + "/infer"
    return httpx.post(url + path, json=payload, timeout=30)


def outputs(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return {o["name"]: o for o in response.json()["outputs"]}
