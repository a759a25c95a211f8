"""Shadow mirroring over real HTTP: two real servers on 127.0.0.1, the champion mirrors to the
candidate; the client only ever gets the champion's answers, and agreement is counted per row. A
collecting champion also records both answers by prediction id, which live quality scores with the
labels posted to its feedback endpoint."""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow.parquet as pq
import pytest
import skops.io as sio
from prometheus_client.parser import text_string_to_metric_families
from sklearn import metrics as skm
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.tree import DecisionTreeClassifier

from mlops_operator import contracts
from mlops_operator.api.v1alpha1.model import Metric, Task
from mlops_operator.workloads import live_quality
from mlops_operator.workloads.serve.app import ServeApp
from mlops_operator.workloads.serve.artifact import load_verified_model
from mlops_operator.workloads.serve.metrics import ServeMetrics
from mlops_operator.workloads.serve.mirror import (
    Mirror,
    MirrorSettings,
    RecorderSettings,
    ShadowMetrics,
    ShadowRecorder,
    shadow_uri,
)
from mlops_operator.workloads.serve.model import ServedModel
from mlops_operator.workloads.serve.options import parse
from mlops_operator.workloads.serve.runner import build_app

from ._serving import ThreadServer, matrix_request, sha256_of

X, Y = load_breast_cancer(return_X_y=True, as_frame=True)
X = X.iloc[:, :5]


def served(tmp: Path, name: str, pipeline: Pipeline) -> ServedModel:
    path = tmp / f"{name}.skops"
    sio.dump(pipeline, path)
    return ServedModel("cancer", name, load_verified_model(path.as_uri(), sha256_of(path)))


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[ServedModel, ServedModel]:
    tmp = tmp_path_factory.mktemp("mirror")
    champion = Pipeline([("m", LogisticRegression(max_iter=2000))]).fit(X, Y)
    candidate = Pipeline([("m", DecisionTreeClassifier(max_depth=1, random_state=0))]).fit(X, Y)
    return served(tmp, "1", champion), served(tmp, "2", candidate)


def shadow_counters(url: str) -> dict[str, float]:
    text = httpx.get(url + "/metrics").text
    return {
        s.name.removeprefix("mlops_serve_shadow_").removesuffix("_total"): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith("mlops_serve_shadow_") and s.name.endswith("_total")
    }


def wait_for(url: str, key: str, value: float) -> dict[str, float]:
    counters: dict[str, float] = {}
    for _ in range(300):
        counters = shadow_counters(url)
        if counters.get(key) == value:
            return counters
        time.sleep(0.05)
    raise AssertionError(f"{key} never reached {value}: {counters}")


def champion_app(model: ServedModel, candidate_url: str, **settings: float) -> tuple[ServeApp, ShadowMetrics]:
    metrics = ServeMetrics()
    shadow = ShadowMetrics(metrics.registry)
    mirror = Mirror(MirrorSettings(url=candidate_url, **settings), shadow, regression=False)  # type: ignore[arg-type]
    return ServeApp("cancer", "1", model, metrics, mirror=mirror), shadow


def test_the_client_gets_the_champions_answers_and_agreement_is_counted(
    models: tuple[ServedModel, ServedModel],
) -> None:
    champion, candidate = models
    candidate_app = ServeApp("cancer", "2", candidate, ServeMetrics())
    with ThreadServer(candidate_app) as shadow_server:
        app, _ = champion_app(champion, shadow_server.url)
        with ThreadServer(app) as server:
            rows = [X.iloc[i : i + 3] for i in range(0, 120, 3)]
            for batch in rows:
                answer = httpx.post(server.url + "/v2/models/cancer/versions/1/infer", json=matrix_request(batch))
                assert answer.status_code == 200
                assert answer.json()["model_version"] == "1"
                assert answer.json()["outputs"][0]["data"] == champion.estimator.predict(batch).tolist()
            records = httpx.post(server.url + "/predict", json=X.iloc[:10].to_dict(orient="records"))
            assert records.json()["predictions"] == champion.estimator.predict(X.iloc[:10]).tolist()
            counters = wait_for(server.url, "compared_rows", 130.0)
    first = X.iloc[:120]
    expected_agree = int((champion.estimator.predict(first) == candidate.estimator.predict(first)).sum())
    expected_agree += int((champion.estimator.predict(X.iloc[:10]) == candidate.estimator.predict(X.iloc[:10])).sum())
    assert 0 < expected_agree < 130  # the two models disagree on some rows: the test can tell them apart
    assert counters["mirrored"] == 41 and counters["failed"] == 0 and counters["dropped"] == 0
    assert counters["agreed_rows"] == expected_agree
    # the candidate answered the mirrored requests itself (its own metrics), never the client
    assert candidate_app.metrics.predictions._value.get() == 130  # type: ignore[attr-defined]


def test_a_candidate_that_is_down_or_stalls_never_touches_the_client(models: tuple[ServedModel, ServedModel]) -> None:
    champion, _ = models
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        down_url = f"http://127.0.0.1:{closed.getsockname()[1]}"  # bound, not listening: refused
        app, _ = champion_app(champion, down_url)
        with ThreadServer(app) as server:
            for _ in range(20):
                assert httpx.post(server.url + "/predict", json=X.iloc[:2].to_dict(orient="records")).status_code == 200
            wait_for(server.url, "failed", 20.0)

    # a candidate that accepts and never answers: the queue (2) fills, the rest is dropped and counted
    stall = socket.socket()
    stall.bind(("127.0.0.1", 0))
    stall.listen(64)
    try:
        app, _ = champion_app(champion, f"http://127.0.0.1:{stall.getsockname()[1]}", queue_size=2, timeout=60.0)
        with ThreadServer(app) as server:
            for batch in (X.iloc[i : i + 2] for i in range(0, 60, 2)):
                answer = httpx.post(server.url + "/v2/models/cancer/infer", json=matrix_request(batch), timeout=30)
                assert answer.json()["outputs"][0]["data"] == champion.estimator.predict(batch).tolist()
            counters = shadow_counters(server.url)
    finally:
        stall.close()
    # 4 senders hold one request each, 2 wait in the queue: the other 24 were dropped
    assert counters["mirrored"] == 4 and counters["dropped"] == 24 and counters["compared_rows"] == 0


def test_a_regressor_counts_absolute_differences(tmp_path: Path) -> None:
    Xr, yr = load_diabetes(return_X_y=True, as_frame=True)
    champion = served(tmp_path, "1", Pipeline([("m", LinearRegression())]).fit(Xr, yr))
    candidate = served(tmp_path, "2", Pipeline([("m", LinearRegression())]).fit(Xr.iloc[:200], yr.iloc[:200]))
    with ThreadServer(ServeApp("cancer", "2", candidate, ServeMetrics())) as shadow_server:
        metrics = ServeMetrics()
        mirror = Mirror(
            MirrorSettings(url=shadow_server.url, max_abs_diff=5.0), ShadowMetrics(metrics.registry), regression=True
        )
        with ThreadServer(ServeApp("cancer", "1", champion, metrics, mirror=mirror)) as server:
            httpx.post(server.url + "/predict", json=Xr.iloc[:50].to_dict(orient="records"))
            counters = wait_for(server.url, "compared_rows", 50.0)
    diff = np.abs(champion.estimator.predict(Xr.iloc[:50]) - candidate.estimator.predict(Xr.iloc[:50]))
    assert counters["abs_diff"] == pytest.approx(diff.sum(), rel=1e-9)
    assert counters["agreed_rows"] == int((diff <= 5.0).sum())
    assert 0 < counters["agreed_rows"] < 50


def test_the_flags_build_a_mirroring_server(models: tuple[ServedModel, ServedModel]) -> None:
    champion, _ = models
    base = ["--model-name", "cancer", "--model-version", "1", "--artifact-uri", "file:///x", "--sha256", "0" * 64]
    options = parse([*base, "--shadow-url", "http://cancer-shadow.team-a.svc", "--shadow-sample-percent", "25"])
    app = build_app(options, champion)
    assert app.mirror is not None and app.mirror.settings.sample_percent == 25.0
    assert (app.mirror.host, app.mirror.port) == ("cancer-shadow.team-a.svc", 80)
    assert build_app(parse(base), champion).mirror is None
    with pytest.raises(SystemExit):
        parse([*base, "--shadow-sample-percent", "0"])
    with pytest.raises(ValueError, match="http://host"):
        build_app(parse([*base, "--shadow-url", "https://x"]), champion)


def test_sampling_mirrors_a_share(models: tuple[ServedModel, ServedModel]) -> None:
    champion, candidate = models
    with ThreadServer(ServeApp("cancer", "2", candidate, ServeMetrics())) as shadow_server:
        app, _ = champion_app(champion, shadow_server.url, sample_percent=50.0)
        with ThreadServer(app) as server:
            with httpx.Client() as client:
                for _ in range(200):
                    client.post(server.url + "/predict", json=X.iloc[:1].to_dict(orient="records"))
            time.sleep(0.5)
            counters = shadow_counters(server.url)
    assert 40 < counters["mirrored"] < 160  # binomial(200, 0.5): outside this range has p < 1e-17


def test_a_connection_the_candidate_closed_is_retried_once_not_counted_as_a_failure(
    models: tuple[ServedModel, ServedModel],
) -> None:
    """The candidate closes every connection after one answer without saying so (as a server does to a
    keep-alive connection idle past its timeout): each next request finds it closed and is sent again."""
    champion, _ = models
    label = int(champion.estimator.predict(X.iloc[:1])[0])

    class Once(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # closes after each answer; sends no Connection header

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            body = json.dumps({"predictions": [label]}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    stub = ThreadingHTTPServer(("127.0.0.1", 0), Once)
    threading.Thread(target=stub.serve_forever, daemon=True).start()
    try:
        app, _ = champion_app(champion, f"http://127.0.0.1:{stub.server_address[1]}")
        with ThreadServer(app) as server:
            for _ in range(10):
                httpx.post(server.url + "/predict", json=X.iloc[:1].to_dict(orient="records"))
                wait_for(server.url, "compared_rows", float(_ + 1))
            counters = shadow_counters(server.url)
    finally:
        stub.shutdown()
        stub.server_close()
    assert (counters["mirrored"], counters["failed"], counters["agreed_rows"]) == (10, 0, 10)


def test_a_collecting_champion_records_both_answers_by_prediction_id_and_they_score_with_the_labels(
    models: tuple[ServedModel, ServedModel], tmp_path: Path
) -> None:
    champion, candidate = models
    root = (tmp_path / "store").as_uri()
    argv = [
        "--model-name",
        "cancer",
        "--model-version",
        "1",
        "--artifact-uri",
        "file:///x",
        "--sha256",
        "0" * 64,
        "--collect-uri",
        contracts.collected_prefix(root, "team-a", "cancer"),
        "--flush-interval",
        "3600",
    ]
    start = datetime.now(UTC) - timedelta(hours=1)
    with ThreadServer(ServeApp("cancer", "2", candidate, ServeMetrics())) as shadow_server:
        app = build_app(parse([*argv, "--shadow-url", shadow_server.url, "--shadow-version", "2"]), champion)
        answered: dict[str, int] = {}  # the row's prediction id -> its row of X
        with ThreadServer(app) as server:
            for n, first in enumerate(range(0, 150, 3)):  # batches of 3 rows, every second with its own id
                own = {"id": f"order-{n}"} if n % 2 else {}
                r = httpx.post(
                    server.url + "/v2/models/cancer/infer", json=matrix_request(X.iloc[first : first + 3], **own)
                )
                answered |= {f"{r.json()['id']}:{i}": first + i for i in range(3)}
            for row in range(150, 200):  # one row each: the row's id is the request's
                r = httpx.post(server.url + "/predict", json=X.iloc[row : row + 1].to_dict(orient="records"))
                answered[r.headers[contracts.PREDICTION_ID_HEADER]] = row
            wait_for(server.url, "compared_rows", 200.0)
            labelled = sorted(answered)[::2]
            feedback = [{"id": i, "label": int(Y.iloc[answered[i]])} for i in labelled]
            assert httpx.post(server.url + "/v2/models/cancer/feedback", json={"labels": feedback}).status_code == 202
        # the graceful shutdown flushed the recorded rows (and the labels)
    assert app.mirror is not None and app.mirror.recorder is not None
    assert app.mirror.metrics.recorded_rows._value.get() == 200  # type: ignore[attr-defined]
    prefix = contracts.shadow_prefix(root, "team-a", "cancer")
    files = sorted((tmp_path / "store" / "team-a" / "shadow" / "cancer").rglob("*.parquet"))
    assert files and all(f.parent.name.startswith("hour=") and not f.name.startswith(".") for f in files)
    table = pq.ParquetDataset(files).read().to_pandas().set_index(contracts.COLLECT_ID_COLUMN)
    assert set(table.index) == set(answered)
    rows = [answered[i] for i in table.index]
    assert table[contracts.COLLECT_PREDICTION_COLUMN].tolist() == [
        str(v) for v in candidate.estimator.predict(X.iloc[rows])
    ]
    assert table[contracts.SHADOW_CHAMPION_PREDICTION_COLUMN].tolist() == [
        str(v) for v in champion.estimator.predict(X.iloc[rows])
    ]
    assert set(table[contracts.COLLECT_MODEL_VERSION_COLUMN]) == {"2"}
    assert set(table[contracts.SHADOW_CHAMPION_VERSION_COLUMN]) == {"1"}

    end = datetime.now(UTC) + timedelta(minutes=1)
    recorded = live_quality.read_shadow(prefix, start, end, [])
    labels = live_quality.read_labels(contracts.labels_prefix(root, "team-a", "cancer"), start, end, [])
    assert recorded is not None
    scored = live_quality.score_shadow(recorded, labels, Task.CLASSIFICATION, Metric.F1, ["0", "1"])
    truth_rows = [answered[i] for i in labelled]
    y = Y.iloc[truth_rows]
    mine, theirs = candidate.estimator.predict(X.iloc[truth_rows]), champion.estimator.predict(X.iloc[truth_rows])
    assert (mine != theirs).any()  # the two models differ on the labelled rows: the scores can tell
    assert (scored.labelled, scored.predictions, scored.version, scored.champion_version) == (100, 200, "2", "1")
    assert scored.value == pytest.approx(skm.f1_score(y, mine))
    assert scored.champion_value == pytest.approx(skm.f1_score(y, theirs))
    assert scored.metrics["accuracy"] == pytest.approx(skm.accuracy_score(y, mine))


def test_the_recorder_is_bounded_and_a_store_failure_costs_only_its_rows(tmp_path: Path) -> None:
    written: list[int] = []
    dropped: list[int] = []
    settings = RecorderSettings(
        uri=(tmp_path / "shadow").as_uri(),
        candidate_version="2",
        champion_version="1",
        regression=False,
        max_buffer_rows=5,
    )
    recorder = ShadowRecorder(settings, on_written=written.append, on_dropped=dropped.append)
    recorder.record("a", [1, 0, 1], [1, 1, 1])
    recorder.record("b", [0, 0, 0], [0, 0, 0])  # 6 rows would pass the bound of 5: dropped, counted
    recorder.record("c", [1], [0])
    assert dropped == [3] and recorder.flush() == 4 and written == [4]
    table = pq.ParquetDataset(sorted((tmp_path / "shadow").rglob("*.parquet"))).read()
    assert table.column(contracts.COLLECT_ID_COLUMN).to_pylist() == ["a:0", "a:1", "a:2", "c"]

    (tmp_path / "file").write_text("not a directory")
    broken = ShadowRecorder(replace(settings, uri=(tmp_path / "file").as_uri()), on_dropped=dropped.append)
    broken.record("d", [1, 1], [1, 1])
    assert broken.flush() == 0 and dropped[-1] == 2


def test_the_shadow_prefix_sits_beside_the_collected_one() -> None:
    collected = contracts.collected_prefix("s3://bucket/mlops", "team-a", "cancer")
    assert shadow_uri(collected, "cancer") == contracts.shadow_prefix("s3://bucket/mlops", "team-a", "cancer")
    assert shadow_uri("s3://bucket/elsewhere", "cancer") is None
    assert shadow_uri(collected, "other") is None and shadow_uri(None, "cancer") is None
