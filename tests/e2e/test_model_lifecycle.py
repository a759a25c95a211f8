"""Issue 4's end-to-end acceptance on the local cluster, with real workloads in real pods.

The operator runs in this process (the real kopf operator, watching only the test namespace); the
profile, training and serving pods run the project image in the cluster. Flow: Dataset → profile
Job → Model → training Job → validated → approved (Automatic and Manual) → Deployment serving
predictions over HTTP → a worse version is rejected and the champion keeps serving → a better one
is approved and rolled out with zero failed requests under a steady client → deleting a Model in
the middle of training leaves no Job, Pod, Deployment or Service.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import pytest

from mlops_operator import contracts
from mlops_operator.api.v1alpha1 import Dataset, Model
from mlops_operator.kube import DEPLOYMENT, JOB, MODEL, POD, SERVICE
from tests.integration.reconcile_harness import Cluster, eventually, resource

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
EVERY, ATTEMPTS = 1.0, 480  # real pods: up to 8 min per step, bounded
STUMP = {"estimator": "sklearn.tree.DecisionTreeClassifier", "params": {"max_depth": 1, "random_state": 0}}
# So strongly regularised that it predicts the majority class (about 0.63).
WORSE = {"estimator": "sklearn.linear_model.LogisticRegression", "params": {"C": 1e-6, "max_iter": 100}}
BETTER = {"estimator": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 2000}}


def replacing(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A merge patch of spec.trainer that replaces the params: keys the new set lacks become null."""
    params = {k: None for k in old["params"] if k not in new["params"]} | new["params"]
    return {**new, "params": params}



def first_answer(c: Any, model: str) -> bool:
    try:
        return len(predict(c, model, records(1))) == 1
    except OSError:
        return False


def records(n: int) -> list[dict[str, float]]:
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame.drop(columns=["target"])
    return [{k: float(v) for k, v in row.items()} for row in frame.head(n).to_dict(orient="records")]


def predict(c: Cluster, service: str, rows: list[dict[str, float]], timeout: float = 5) -> list[Any]:
    svc = c.call("GET", SERVICE, service)
    url = f"http://{svc['spec']['clusterIP']}:{svc['spec']['ports'][0]['port']}/predict"
    body = json.dumps({"records": rows}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        predictions: list[Any] = json.loads(response.read())["predictions"]
    return predictions


@dataclass
class SteadyClient:
    """Predicts in a loop until stopped; every non-2xx or connection error counts as a failure."""

    c: Cluster
    service: str
    ok: int = 0
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> SteadyClient:
        rows = records(4)

        def loop() -> None:
            while not self._stop.is_set():
                try:
                    assert len(predict(self.c, self.service, rows)) == 4
                    self.ok += 1
                except Exception as exc:  # every failure is counted, none ends the loop
                    self.failures.append(f"{type(exc).__name__}: {exc}")
                time.sleep(0.05)

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)


def serving_version(c: Cluster, model: str) -> int | None:
    status = c.status("Model", model)
    return status.get("servingVersion") if status.get("phase") == "Serving" else None


def version_state(c: Cluster, model: str, version: int) -> str | None:
    return next(
        (str(v["state"]) for v in c.status("Model", model).get("versions") or [] if v["version"] == version), None
    )


def settled_state(c: Cluster, model: str, version: int) -> str | None:
    state = version_state(c, model, version)
    return state if state not in (None, "Training") else None


def model(name: str, trainer: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return resource(
        Model,
        name,
        {
            "datasetRef": {"name": "cancer"},
            "trainer": trainer,
            "validation": {"metric": "accuracy", "threshold": 0.6, "mustBeatChampion": True},
            "retrain": {"cooldownSeconds": 0},
            **spec,
        },
    )


def owned(c: Cluster, name: str) -> dict[str, list[str]]:
    selector = {"labelSelector": f"{contracts.LABEL_MODEL}={name}"}
    return {
        kind.kind: [o["metadata"]["name"] for o in c.call("GET", kind, query=selector)["items"]]
        for kind in (JOB, POD, DEPLOYMENT, SERVICE)
    }


def test_dataset_to_served_model_champion_challenger_and_clean_deletion(live: Cluster) -> None:
    c = live
    c.create(
        resource(Dataset, "cancer", {"source": {"uri": "sklearn://breast_cancer"}, "schema": {"target": "target"}})
    )
    eventually(
        lambda: c.status("Dataset", "cancer").get("phase") == "Ready",
        what="Dataset Ready",
        every=EVERY,
        attempts=ATTEMPTS,
    )
    assert c.status("Dataset", "cancer")["rows"] == 569

    # Automatic: v1 (a stump) is trained, validated, approved and served
    c.create(model("auto", STUMP))
    eventually(lambda: serving_version(c, "auto") == 1, what="auto serving v1", every=EVERY, attempts=ATTEMPTS)
    eventually(lambda: first_answer(c, "auto"), what="the new Service to answer", every=0.5, attempts=40)
    assert len(predict(c, "auto", records(5))) == 5

    # Manual: validated, then waits for spec.approvedVersion
    c.create(model("manual", STUMP, approval={"policy": "Manual"}))
    eventually(
        lambda: c.status("Model", "manual").get("phase") == "AwaitingApproval",
        what="manual awaiting",
        every=EVERY,
        attempts=ATTEMPTS,
    )
    assert c.deployment("manual-server") is None
    c.patch("Model", "manual", {"spec": {"approvedVersion": 1}})
    eventually(lambda: serving_version(c, "manual") == 1, what="manual serving v1", every=EVERY, attempts=ATTEMPTS)
    # a brand-new Service: kube-proxy programs its ClusterIP a moment after the endpoints turn ready
    eventually(lambda: first_answer(c, "manual"), what="the new Service to answer", every=0.5, attempts=40)
    assert len(predict(c, "manual", records(3))) == 3

    # a worse challenger is rejected; the champion keeps serving
    c.patch("Model", "auto", {"spec": {"trainer": replacing(STUMP, WORSE)}})
    settled = eventually(lambda: settled_state(c, "auto", 2), what="v2 settled", every=EVERY, attempts=ATTEMPTS)
    v2 = next(v for v in c.status("Model", "auto")["versions"] if v["version"] == 2)
    assert settled == "Rejected", f"{v2.get('reason')}: {v2.get('message')}"
    record = next(v for v in c.status("Model", "auto")["versions"] if v["version"] == 2)
    assert record["gate"]["reason"] == "NotBetterThanChampion" and record["gate"]["delta"] < 0
    assert c.served_version("auto-server") == "1" and serving_version(c, "auto") == 1
    assert len(predict(c, "auto", records(2))) == 2

    # a better one is approved and rolled out under a steady client: zero failed requests
    with SteadyClient(c, "auto") as client_:
        c.patch("Model", "auto", {"spec": {"trainer": replacing(WORSE, BETTER)}})
        eventually(lambda: serving_version(c, "auto") == 3, what="auto serving v3", every=EVERY, attempts=ATTEMPTS)
        time.sleep(3)  # a little traffic on the new version only
    assert client_.failures == [], client_.failures[:5]
    assert client_.ok > 20
    states = {v["version"]: v["state"] for v in c.status("Model", "auto")["versions"]}
    assert states == {1: "Retired", 2: "Rejected", 3: "Serving"}

    # delete a Model while it trains: its Job, Pods, Deployment and Service all go
    c.patch(
        "Model",
        "auto",
        {"metadata": {"annotations": {contracts.ANNOTATION_RETRAIN_REQUESTED: "2026-01-01T00:00:00Z;e2e"}}},
    )
    eventually(
        lambda: c.status("Model", "auto").get("activeTraining"), what="training v4", every=EVERY, attempts=ATTEMPTS
    )
    assert owned(c, "auto")["Job"] and owned(c, "auto")["Deployment"]
    c.call("DELETE", MODEL, "auto", body={"propagationPolicy": "Background"})
    eventually(lambda: not any(owned(c, "auto").values()), what="nothing left of auto", every=1.0, attempts=120)
    assert owned(c, "auto") == {"Job": [], "Pod": [], "Deployment": [], "Service": []}
