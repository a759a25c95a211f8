"""The optional bearer-token check (spec.serving.auth) over real HTTP: inference and feedback need the
token from the mounted file, health/readiness/metadata/metrics stay open, and a rotated file is
picked up without a restart. The process refusing to start without its token file is at the end.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import skops.io as sio
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from mlops_operator.contracts import ExitCode
from mlops_operator.workloads.serve import feedback
from mlops_operator.workloads.serve.app import ServeApp
from mlops_operator.workloads.serve.artifact import load_verified_model
from mlops_operator.workloads.serve.auth import TokenCheck
from mlops_operator.workloads.serve.metrics import ServeMetrics
from mlops_operator.workloads.serve.model import ServedModel

from ._serving import ThreadServer, Trained, env, matrix_request, serve_command, sha256_of

TOKEN = "s3cr3t-token-one"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X = X.iloc[:, :5]
    path = tmp_path_factory.mktemp("auth") / "m.skops"
    pipeline = Pipeline([("model", LogisticRegression(max_iter=2000))]).fit(X, y)
    sio.dump(pipeline, path)
    return Trained("cancer", pipeline, X, path, sha256_of(path))


def _kubelet_style_secret(directory: Path, token: str) -> Path:
    """A Secret volume as the kubelet lays it out: token -> ..data/token, ..data -> a timestamped dir.
    Rotation writes a new dir and swaps the ..data symlink atomically."""
    generation = directory / f"..2026_{len(os.listdir(directory))}"
    generation.mkdir()
    (generation / "token").write_text(token + "\n")
    tmp_link = directory / "..data_tmp"
    tmp_link.symlink_to(generation.name)
    os.replace(tmp_link, directory / "..data")
    if not (directory / "token").is_symlink():
        (directory / "token").symlink_to("..data/token")
    return directory / "token"


@pytest.fixture
def server(trained: Trained, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    secret = tmp_path / "secret"
    secret.mkdir()
    token_file = _kubelet_style_secret(secret, TOKEN)
    served = ServedModel("cancer", "1", load_verified_model(trained.path.as_uri(), trained.sha256))
    writer = feedback.LabelWriter(feedback.LabelSettings(uri=(tmp_path / "labels").as_uri()))
    app = ServeApp(
        "cancer", "1", served, ServeMetrics(), label_writer=writer, auth=TokenCheck(str(token_file), recheck_seconds=0)
    )
    with ThreadServer(app) as s:
        yield s.url, secret


def _infer(url: str, trained: Trained, headers: dict[str, str]) -> httpx.Response:
    payload = matrix_request(trained.X.iloc[:3])
    return httpx.post(url + "/v2/models/cancer/infer", json=payload, headers=headers, timeout=30)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_inference_needs_the_token(server: tuple[str, Path], trained: Trained) -> None:
    url, _ = server
    missing = _infer(url, trained, {})
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert missing.headers["content-type"] == "application/json"
    assert "missing bearer token" in missing.json()["error"]
    refused = [_bearer("wrong"), _bearer(TOKEN + "x"), {"Authorization": f"Basic {TOKEN}"}, {"Authorization": "Bearer"}]
    for headers in refused:
        bad = _infer(url, trained, headers)
        assert bad.status_code == 401, headers
        assert TOKEN not in bad.text
    ok = _infer(url, trained, _bearer(TOKEN))
    assert ok.status_code == 200, ok.text
    expected = trained.pipeline.predict(trained.X.iloc[:3]).tolist()
    assert ok.json()["outputs"][0]["data"] == expected
    assert _infer(url, trained, {"authorization": f"bearer {TOKEN}"}).status_code == 200  # scheme is case-free


def test_records_route_and_feedback_need_the_token(server: tuple[str, Path], trained: Trained) -> None:
    url, _ = server
    records = trained.X.iloc[:2].to_dict(orient="records")
    assert httpx.post(url + "/predict", json=records).status_code == 401
    assert httpx.post(url + "/predict", json=records, headers=_bearer(TOKEN)).status_code == 200
    labels = {"labels": [{"id": "a", "label": 1}]}
    assert httpx.post(url + "/v2/models/cancer/feedback", json=labels).status_code == 401
    assert httpx.post(url + "/v2/models/cancer/feedback", json=labels, headers=_bearer(TOKEN)).status_code == 202


def test_probes_metadata_and_metrics_stay_open(server: tuple[str, Path]) -> None:
    url, _ = server
    for path in ("/v2/health/live", "/v2/health/ready", "/v2/models/cancer/ready", "/v2/models/cancer", "/v2"):
        assert httpx.get(url + path).status_code == 200, path
    assert httpx.post(url + "/predict", json=[]).status_code == 401
    metrics = httpx.get(url + "/metrics")
    assert metrics.status_code == 200
    assert 'code="401",route="predict"' in metrics.text, metrics.text[:600]  # refused, still counted


def test_a_rotated_token_is_used_without_a_restart(server: tuple[str, Path], trained: Trained) -> None:
    url, secret = server
    assert _infer(url, trained, _bearer(TOKEN)).status_code == 200
    _kubelet_style_secret(secret, "the-second-token")
    assert _infer(url, trained, _bearer("the-second-token")).status_code == 200
    assert _infer(url, trained, _bearer(TOKEN)).status_code == 401


def test_a_vanished_token_file_keeps_the_last_token(server: tuple[str, Path], trained: Trained) -> None:
    url, secret = server
    (secret / "..data").unlink()
    assert _infer(url, trained, _bearer(TOKEN)).status_code == 200
    assert _infer(url, trained, {}).status_code == 401


@pytest.mark.parametrize("content", [None, "  \n"])
def test_the_server_refuses_to_start_without_a_token(trained: Trained, tmp_path: Path, content: str | None) -> None:
    token_file = tmp_path / "token"
    if content is not None:
        token_file.write_text(content)
    command = serve_command(trained, 1, "--auth-token-file", str(token_file))
    done = subprocess.run(command, env=env(), capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == ExitCode.SPEC_ERROR, done.stderr
    assert "token file" in done.stderr
