"""The `serve` process: it refuses artifacts that fail verification with the integrity exit code (and
never unpickles anything), and it serves, then stops cleanly on SIGTERM, with one or two workers.
"""

from __future__ import annotations

import pickle
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import skops.io as sio
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from mlops_operator.contracts import ExitCode

from ._serving import (
    ServerProcess,
    Trained,
    build_models,
    env,
    infer,
    matrix_request,
    outputs,
    serve_command,
    sha256_of,
)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Trained]:
    return build_models(tmp_path_factory.mktemp("models"))


# --- the process: refuses bad artifacts, exits with the integrity code -------------------------------------
class Sentinel:
    """A pickle that would create a file if anything unpickled it."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.path, "w"))


def _run_refused(trained: Trained, sha: str | None = None) -> subprocess.CompletedProcess[str]:
    cmd = serve_command(trained, 1, sha256=sha)
    return subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=180)


@pytest.mark.slow
def test_tampered_untrusted_and_pickled_artifacts_are_refused(models: dict[str, Trained], tmp_path: Path) -> None:
    trained = models["breast_cancer"]
    tampered_path = tmp_path / "tampered.skops"
    data = bytearray(trained.path.read_bytes())
    data[len(data) // 2] ^= 0x01
    tampered_path.write_bytes(bytes(data))
    tampered = Trained("bc", None, trained.X, tampered_path, trained.sha256)  # the hash of the good bytes

    evil = Pipeline([("f", FunctionTransformer(eval)), ("m", LogisticRegression())])
    evil_path = tmp_path / "evil.skops"
    sio.dump(evil, evil_path)
    untrusted = Trained("evil", None, trained.X, evil_path, sha256_of(evil_path))

    sentinel = tmp_path / "sentinel"
    pickle_path = tmp_path / "model.skops"
    pickle_path.write_bytes(pickle.dumps(Sentinel(str(sentinel))))
    pickled = Trained("pickled", None, trained.X, pickle_path, sha256_of(pickle_path))

    bare_path = tmp_path / "bare.skops"
    sio.dump(LogisticRegression(max_iter=5000).fit(trained.X.to_numpy(), load_breast_cancer().target), bare_path)
    bare = Trained("bare", None, trained.X, bare_path, sha256_of(bare_path))

    for bad, message in [
        (tampered, "refusing to load it"),
        (untrusted, "UntrustedArtifact"),
        (pickled, "CorruptArtifact"),
        (bare, "not a Pipeline"),
    ]:
        result = _run_refused(bad)
        assert result.returncode == ExitCode.INTEGRITY_ERROR, result.stderr
        assert message in result.stderr and "Traceback" not in result.stderr
    assert not sentinel.exists()
    missing = Trained("gone", None, trained.X, tmp_path / "gone.skops", trained.sha256)
    assert _run_refused(missing).returncode == ExitCode.STORE_ERROR
    assert _run_refused(trained, sha="abc").returncode == ExitCode.INTEGRITY_ERROR


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_cli_serves_and_stops_cleanly_on_sigterm(models: dict[str, Trained], workers: int) -> None:
    trained = models["breast_cancer"]
    server = ServerProcess(trained, "--workers", str(workers))
    try:
        server.wait_ready()
        X = trained.X.iloc[:30]
        for _ in range(4):
            got = outputs(infer(server.url, trained.name, matrix_request(X)))["predict"]["data"]
            assert got == trained.pipeline.predict(X).tolist()
        metrics = httpx.get(f"{server.url}/metrics").text
        assert 'route="infer"' in metrics
        code, out = server.terminate()
        assert code == 0, out
    finally:
        server.kill()
