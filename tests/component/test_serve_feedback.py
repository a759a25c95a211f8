"""Prediction ids and the feedback endpoint over real HTTP, read back by the real live-quality reader.

A real uvicorn serves models built by the runner from command-line options (so the labels prefix is
the one derived from --collect-uri, as in a cluster); predictions are collected, labels are posted
to /v2/models/{name}/feedback, and workloads/live_quality.assess() scores what the server wrote:
its metrics equal scikit-learn's on the same rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from sklearn import metrics as skm

from mlops_operator import contracts
from mlops_operator.api.plans import LiveQualityPlan
from mlops_operator.api.v1alpha1.model import Metric, Task
from mlops_operator.workloads import live_quality
from mlops_operator.workloads.serve import feedback
from mlops_operator.workloads.serve import options as serve_options
from mlops_operator.workloads.serve.artifact import load_verified_model
from mlops_operator.workloads.serve.errors import NotReady
from mlops_operator.workloads.serve.model import ServedModel
from mlops_operator.workloads.serve.runner import build_app

from ._serving import ThreadServer, Trained, build_models, matrix_request

NS = "team"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Trained]:
    return build_models(tmp_path_factory.mktemp("models"))


def start(trained: Trained, root: str, *extra: str) -> ThreadServer:
    argv = [
        "--model-name", trained.name, "--model-version", "1", "--artifact-uri", trained.path.as_uri(),
        "--sha256", trained.sha256, "--collect-uri", contracts.collected_prefix(root, NS, trained.name),
        "--flush-interval", "3600", *extra,
    ]
    options = serve_options.parse(argv)
    model = ServedModel(trained.name, "1", load_verified_model(trained.path.as_uri(), trained.sha256))
    return ThreadServer(build_app(options, model)).__enter__()


@pytest.fixture
def root(tmp_path: Path) -> str:
    return (tmp_path / "store").as_uri()


@pytest.fixture
def cancer(models: dict[str, Trained], root: str) -> Iterator[ThreadServer]:
    server = start(models["breast_cancer"], root)
    try:
        yield server
    finally:
        server.__exit__()


def post(url: str, path: str, payload: Any, **headers: str) -> httpx.Response:
    return httpx.post(url + path, json=payload, headers=headers, timeout=30)


def assess(root: str, name: str, metric: Metric, classes: list[str]) -> Any:
    now = datetime.now(UTC)
    plan = LiveQualityPlan(
        labels_prefix=contracts.labels_prefix(root, NS, name),
        window_start=now - timedelta(hours=2),
        task=Task.CLASSIFICATION,
        metric=metric,
    )
    return live_quality.assess(plan, contracts.collected_prefix(root, NS, name), now + timedelta(minutes=1), classes)


# --- ids ------------------------------------------------------------------------------------------------
def test_every_prediction_gets_an_id_in_body_and_header(models: dict[str, Trained], cancer: ThreadServer) -> None:
    X = models["breast_cancer"].X.iloc[:3]
    r = post(cancer.url, "/v2/models/breast_cancer/infer", matrix_request(X))
    assert r.status_code == 200 and r.json()["id"] == r.headers[contracts.PREDICTION_ID_HEADER]
    again = post(cancer.url, "/v2/models/breast_cancer/infer", matrix_request(X))
    assert again.json()["id"] != r.json()["id"]
    records = post(cancer.url, "/predict", {"records": X.to_dict(orient="records")})
    assert records.status_code == 200 and records.headers[contracts.PREDICTION_ID_HEADER]
    assert records.headers[contracts.PREDICTION_ID_HEADER] not in (r.json()["id"], again.json()["id"])


def test_a_client_id_is_kept_and_a_bad_one_refused(models: dict[str, Trained], cancer: ThreadServer) -> None:
    X = models["breast_cancer"].X.iloc[:1]
    r = post(cancer.url, "/v2/models/breast_cancer/infer", matrix_request(X, id="order-17"))
    assert (r.json()["id"], r.headers[contracts.PREDICTION_ID_HEADER]) == ("order-17", "order-17")
    h = post(cancer.url, "/v2/models/breast_cancer/infer", matrix_request(X), **{"X-Request-Id": "trace-9"})
    assert (h.json()["id"], h.headers[contracts.PREDICTION_ID_HEADER]) == ("trace-9", "trace-9")
    p = post(cancer.url, "/predict", {"records": X.to_dict(orient="records")}, **{"X-Request-Id": "rec-1"})
    assert p.headers[contracts.PREDICTION_ID_HEADER] == "rec-1"
    for bad in ("x" * 129, "", " padded", "tab\there", "é", 17, ["a"]):
        r = post(cancer.url, "/v2/models/breast_cancer/infer", matrix_request(X, id=bad))
        assert r.status_code == 400 and "id" in r.json()["error"], bad
    r = post(cancer.url, "/predict", {"records": X.to_dict(orient="records")}, **{"X-Request-Id": "x" * 200})
    assert r.status_code == 400 and "X-Request-Id" in r.json()["error"]


# --- feedback: bad input -----------------------------------------------------------------------------
BAD_FEEDBACK: list[Any] = [
    [],
    {},
    {"labels": []},
    {"labels": {"id": "a", "label": 1}},
    {"labels": [{"id": "a"}]},
    {"labels": [{"label": 1}]},
    {"labels": [{"id": "", "label": 1}]},
    {"labels": [{"id": "x" * 129, "label": 1}]},
    {"labels": [{"id": 5, "label": 1}]},
    {"labels": [{"id": "a", "label": None}]},
    {"labels": [{"id": "a", "label": {"x": 1}}]},
    {"labels": [{"id": "a", "label": [1]}]},
    {"labels": [{"id": "a", "label": ""}]},
    {"labels": [{"id": "a", "label": "y" * 2000}]},
    {"labels": [{"id": "ok", "label": 1}, "no object"]},
]


def test_bad_feedback_is_a_4xx_with_a_json_error(cancer: ThreadServer) -> None:
    url = cancer.url + "/v2/models/breast_cancer/feedback"
    for payload in BAD_FEEDBACK:
        r = httpx.post(url, json=payload, timeout=30)
        assert r.status_code == 400 and isinstance(r.json()["error"], str), (payload, r.text)
    many = {"labels": [{"id": f"i{i}", "label": 1} for i in range(10_001)]}
    assert httpx.post(url, json=many, timeout=30).status_code == 413
    assert httpx.post(url, content=b"{not json", timeout=30).status_code == 400
    assert httpx.post(url, content=b"{}", headers={"content-type": "text/csv"}, timeout=30).status_code == 415
    assert httpx.get(url, timeout=30).status_code == 405
    other = httpx.post(cancer.url + "/v2/models/other/feedback", json={"labels": [{"id": "a", "label": 1}]})
    assert other.status_code == 404 and "other" in other.json()["error"]
    ok = httpx.post(url, json={"labels": [{"id": "a", "label": True}, {"id": "b", "label": 2.5}]}, timeout=30)
    assert ok.status_code == 202 and ok.json() == {"accepted": 2}


# --- the drift Job reads what the server wrote ------------------------------------------------------
def predict_and_label(url: str, trained: Trained, rows: pd.DataFrame, truth: np.ndarray) -> np.ndarray:
    """Rows 0-39 one per request (alternately with a client id), the rest in batches of 25; every
    row labelled through the feedback endpoint. Returns the probabilities the server answered."""
    path = f"/v2/models/{trained.name}/infer"
    labels, probabilities = [], []
    for i in range(len(rows)):
        if i >= 40 and (i - 40) % 25:
            continue
        chunk = rows.iloc[i : i + 1] if i < 40 else rows.iloc[i : i + 25]
        extra = {"id": f"client-{i}"} if i < 40 and i % 2 else {}
        r = post(url, path, matrix_request(chunk, outputs=[{"name": "predict_proba"}], **extra))
        assert r.status_code == 200, r.text
        request_id = r.headers[contracts.PREDICTION_ID_HEADER]
        row_ids = [request_id] if len(chunk) == 1 else [f"{request_id}:{j}" for j in range(len(chunk))]
        labels += [{"id": row_id, "label": truth[i + j].item()} for j, row_id in enumerate(row_ids)]
        probabilities.append(np.asarray(r.json()["outputs"][0]["data"]).reshape(len(chunk), -1))
    for start_ in range(0, len(labels), 100):
        r = post(url, f"/v2/models/{trained.name}/feedback", {"labels": labels[start_ : start_ + 100]})
        assert r.status_code == 202 and r.json()["accepted"] == len(labels[start_ : start_ + 100])
    return np.concatenate(probabilities)


@pytest.mark.parametrize("name", ["breast_cancer", "wine"])
def test_live_quality_reads_what_the_server_wrote(name: str, models: dict[str, Trained], root: str) -> None:
    trained = models[name]
    rows = trained.X.iloc[:140]
    truth = np.random.default_rng(3).permutation(trained.pipeline.predict(trained.X))[:140]  # a noisy truth
    server = start(trained, root, "--collect-proba", "on")
    try:
        proba = predict_and_label(server.url, trained, rows, truth)
    finally:
        server.__exit__()  # graceful shutdown flushes the collector and the labels
    collected = pq.read_table(Path(contracts.collected_prefix(root, NS, name).removeprefix("file://")))
    ids = collected.column(contracts.COLLECT_ID_COLUMN).to_pylist()
    assert len(ids) == len(set(ids)) == 140 and "client-1" in ids and not any(":" in i for i in ids[:40])
    classes = [str(c) for c in trained.pipeline.classes_]
    predicted = trained.pipeline.predict(rows)
    result = assess(root, name, Metric.ACCURACY, classes)
    assert (result.labelled, result.predictions, result.unknown) == (140, 140, 0)
    assert result.metrics["accuracy"] == pytest.approx(skm.accuracy_score(truth, predicted))
    expected_auc = (
        skm.roc_auc_score(truth, proba[:, 1]) if len(classes) == 2
        else skm.roc_auc_score(truth, proba, multi_class="ovr", labels=trained.pipeline.classes_)
    )
    assert result.metrics["roc_auc"] == pytest.approx(expected_auc), result.skipped


@pytest.mark.parametrize("flag", ["auto", None])
def test_auto_collects_probabilities_of_binary_classifiers(
    flag: str | None, models: dict[str, Trained], root: str
) -> None:
    for name, expected in (("breast_cancer", flag == "auto"), ("wine", False)):
        server = start(models[name], root, *(["--collect-proba", flag] if flag else []))
        try:
            r = post(server.url, f"/v2/models/{name}/infer", matrix_request(models[name].X.iloc[:5]))
            assert r.status_code == 200 and [o["name"] for o in r.json()["outputs"]] == ["predict"]
        finally:
            server.__exit__()
        table = pq.read_table(Path(contracts.collected_prefix(root, NS, name).removeprefix("file://")))
        assert (contracts.COLLECT_PROBABILITY_COLUMN in table.column_names) is expected
        assert table.column(contracts.COLLECT_ID_COLUMN).to_pylist()[1].endswith(":1")


def test_labels_prefix_is_derived_from_the_collect_prefix() -> None:
    collect = contracts.collected_prefix("s3://bucket/root", NS, "churn")
    assert feedback.labels_uri(collect, "churn") == contracts.labels_prefix("s3://bucket/root", NS, "churn")
    assert feedback.labels_uri("s3://bucket/elsewhere", "churn") is None
    assert feedback.labels_uri(None, "churn") is None


def test_a_full_label_buffer_answers_503_and_a_failing_store_costs_only_its_labels(tmp_path: Path) -> None:
    dropped: list[tuple[str, int]] = []
    writer = feedback.LabelWriter(
        feedback.LabelSettings(uri=(tmp_path / "l").as_uri(), max_buffer_bytes=1_000),
        on_dropped=lambda reason, n: dropped.append((reason, n)),
    )
    writer.offer([("a", "1")] * 5)
    with pytest.raises(NotReady):
        writer.offer([("b", "1")] * 20)
    assert writer.flush() == 5 and dropped == [("buffer_full", 20)]
    (tmp_path / "file").write_text("")
    broken = feedback.LabelWriter(
        feedback.LabelSettings(uri=(tmp_path / "file" / "x").as_uri()),
        on_dropped=lambda reason, n: dropped.append((reason, n)),
    )
    broken.offer([("a", "1")])
    assert broken.flush() == 0 and dropped[-1] == ("store_error", 1)
