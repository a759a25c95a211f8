"""Issue 11's acceptance for the feedback endpoint, over real HTTP against a real uvicorn.

- Bad ids, wrong label types, oversized batches and bodies: a 4xx whose JSON message names the item
  and the rule, and a refused request keeps none of its labels.
- Unknown ids in the servers' own form (mistyped, cut short, another model's) are a 400: each
  server-issued id carries a check keyed by the model's name, so any server of the model (any
  replica, version or restart) knows whether one of them issued it.
- A client's own ids cannot be checked at the endpoint: a label may name a prediction another replica
  answered, or one from before a restart, days ago. They are accepted and the check counts them as
  `unknown`; labels whose prediction left the quality window are counted as `late`. None is lost:
  labelled + late + unknown is every label posted.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlops_operator import contracts
from mlops_operator.api.plans import LiveQualityPlan
from mlops_operator.api.v1alpha1.model import Metric, Task
from mlops_operator.workloads import live_quality
from mlops_operator.workloads.serve import ids

from ._serving import ThreadServer, Trained, build_models, matrix_request
from .test_serve_feedback import NS, post, start

NAME = "breast_cancer"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    return build_models(tmp_path_factory.mktemp("models"))[NAME]


@pytest.fixture
def root(tmp_path: Path) -> str:
    return (tmp_path / "store").as_uri()


@pytest.fixture
def server(trained: Trained, root: str) -> Iterator[ThreadServer]:
    running = start(trained, root, "--max-body-bytes", "65536")
    try:
        yield running
    finally:
        running.__exit__()


def label_files(root: str) -> list[Path]:
    return sorted(Path(contracts.labels_prefix(root, NS, NAME).removeprefix("file://")).rglob("*.parquet"))


REFUSED: list[tuple[Any, int, list[str]]] = [
    ({"labels": [{"id": "ok", "label": 1}, {"id": "", "label": 1}]}, 400, ["labels[1].id", "1-128 printable ASCII"]),
    ({"labels": [{"id": "x" * 129, "label": 1}]}, 400, ["labels[0].id", "1-128"]),
    ({"labels": [{"id": "tab\there", "label": 1}]}, 400, ["labels[0].id"]),
    ({"labels": [{"id": 17, "label": 1}]}, 400, ["labels[0].id", "string"]),
    ({"labels": [{"id": "a", "label": None}]}, 400, ["labels[0].label", "finite number, a boolean or a string"]),
    ({"labels": [{"id": "a", "label": {"class": 1}}]}, 400, ["labels[0].label"]),
    ({"labels": [{"id": "a", "label": [0, 1]}]}, 400, ["labels[0].label"]),
    ({"labels": [{"id": "a", "label": ""}]}, 400, ["labels[0].label", "1-1024 characters"]),
    ({"labels": [{"id": "a", "label": "y" * 1025}]}, 400, ["labels[0].label", "1-1024 characters"]),
    ({"labels": [{"id": "a", "label": 1}, {"label": 0}]}, 400, ["labels[1]", "'id' and 'label'"]),
    ({"labels": []}, 400, ["'labels' is empty"]),
    ({"labels": "a,b"}, 400, ["list 'labels'"]),
]


@pytest.mark.parametrize(("payload", "status", "words"), REFUSED, ids=lambda v: str(v)[:40])
def test_a_bad_feedback_request_is_a_4xx_naming_what_is_wrong_and_keeps_nothing(
    server: ThreadServer, root: str, payload: Any, status: int, words: list[str]
) -> None:
    r = httpx.post(f"{server.url}/v2/models/{NAME}/feedback", json=payload, timeout=30)
    assert r.status_code == status and all(w in r.json()["error"] for w in words), r.text
    server.__exit__()  # the shutdown flush writes whatever was accepted: nothing here
    assert label_files(root) == []


def test_labels_over_the_count_limit_or_the_body_limit_are_refused_with_a_message(
    trained: Trained, root: str
) -> None:
    running = start(trained, root)  # default body limit: 10,001 labels fit in it, the count does not
    try:
        many = {"labels": [{"id": f"i{i}", "label": 1} for i in range(10_001)]}
        r = httpx.post(f"{running.url}/v2/models/{NAME}/feedback", json=many, timeout=30)
        assert r.status_code == 413 and "10001 labels are over the limit of 10000" in r.json()["error"]
    finally:
        running.__exit__()
    small = start(trained, root, "--max-body-bytes", "4096")
    try:
        big = {"labels": [{"id": f"id-{i}", "label": "yes"} for i in range(400)]}
        r = httpx.post(f"{small.url}/v2/models/{NAME}/feedback", json=big, timeout=30)
        assert r.status_code == 413 and "over the limit of 4096" in r.json()["error"], r.text
    finally:
        small.__exit__()
    assert label_files(root) == []


def test_an_id_in_the_servers_form_that_no_server_of_this_model_issued_is_a_400(
    server: ThreadServer, trained: Trained, root: str
) -> None:
    infer = f"/v2/models/{NAME}/infer"
    one = post(server.url, infer, matrix_request(trained.X.iloc[:1]))
    batch = post(server.url, infer, matrix_request(trained.X.iloc[:3]))
    issued, batch_id = one.json()["id"], batch.json()["id"]
    assert one.headers["x-prediction-id"] == issued
    base, check = issued.rsplit(".", 1)
    wrong = "0" * 8 if check != "0" * 8 else "1" * 8
    other_model = ids.Issuer("another-model").new_id()
    for bad in (f"{base}.{wrong}", issued[:-1] + "x", other_model, f"{base}.{wrong}:2"):
        payload = {"labels": [{"id": issued, "label": 1}, {"id": bad, "label": 0}]}
        r = post(server.url, f"/v2/models/{NAME}/feedback", payload)
        if bad == issued[:-1] + "x":  # no longer in the servers' form: a client id, accepted
            assert r.status_code == 202, r.text
            continue
        assert r.status_code == 400 and "labels[1].id" in r.json()["error"], r.text
        assert "unknown prediction id" in r.json()["error"]
    ok = {"labels": [{"id": issued, "label": 1}, {"id": f"{batch_id}:2", "label": 0}]}
    assert post(server.url, f"/v2/models/{NAME}/feedback", ok).status_code == 202
    # another server of the same model (a replica, a restart, the next version) knows these ids too
    assert not ids.Issuer(NAME).foreign(issued) and not ids.Issuer(NAME).foreign(f"{batch_id}:2")


def test_unknown_and_late_labels_are_accepted_and_counted_never_lost(trained: Trained, root: str) -> None:
    running = start(trained, root)
    try:
        infer = f"/v2/models/{NAME}/infer"
        for i in range(8):  # predicted before the quality window starts
            row = trained.X.iloc[i : i + 1]
            assert post(running.url, infer, matrix_request(row, id=f"early-{i}")).status_code == 200
        window_start = datetime.now(UTC)  # after the early answers came back, before the next requests
        for i in range(10):  # predicted in the window
            assert post(running.url, infer, matrix_request(trained.X.iloc[i : i + 1], id=f"now-{i}")).status_code == 200
        truth = trained.pipeline.predict(trained.X.iloc[:10])
        labels = (
            [{"id": f"early-{i}", "label": 1} for i in range(8)]
            + [{"id": f"now-{i}", "label": truth[i].item()} for i in range(10)]
            + [{"id": f"never-{i}", "label": 0} for i in range(5)]
        )
        r = post(running.url, f"/v2/models/{NAME}/feedback", {"labels": labels})
        assert r.status_code == 202 and r.json() == {"accepted": 23}  # unknown ids too: the server cannot tell
    finally:
        running.__exit__()  # flushes the collected rows and the labels
    plan = LiveQualityPlan(labels_prefix=contracts.labels_prefix(root, NS, NAME), window_start=window_start,
                           task=Task.CLASSIFICATION, metric=Metric.ACCURACY)
    end = datetime.now(UTC) + timedelta(minutes=1)
    classes = [str(c) for c in trained.pipeline.classes_]
    result = live_quality.assess(plan, contracts.collected_prefix(root, NS, NAME), end, classes)
    assert (result.predictions, result.labelled, result.late, result.unknown) == (10, 10, 8, 5)
    assert result.labelled + result.late + result.unknown == len(labels)
    assert result.value == 1.0  # the in-window labels are the model's own predictions
