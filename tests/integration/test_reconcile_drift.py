"""DriftMonitor on a real kube-apiserver: a check Job per tick, results into status and metrics, and
a retrain request on the Model that honours the cooldown (the Model answers it NoNewData: its Dataset
has no version v1 was not trained on)."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from mlops_operator import contracts
from mlops_operator.api.v1alpha1 import DriftMonitor
from mlops_operator.metrics import Metrics
from tests.integration import apiserver
from tests.integration.reconcile_harness import (
    Cluster,
    drift_result,
    eventually,
    monitor_spec,
    operator,
    resource,
)
from tests.integration.test_reconcile_model import serving_first_version

pytestmark = pytest.mark.integration


def drift_jobs(c: Cluster, monitor: str) -> list[dict[str, Any]]:
    return c.jobs(**{contracts.LABEL_DRIFT_MONITOR: monitor, contracts.LABEL_COMPONENT: "drift"})


def test_drift_check_on_schedule_requests_one_retrain_within_the_cooldown(running: tuple[Cluster, Metrics]) -> None:
    c, metrics = running
    serving_first_version(c, "clf", retrain={"cooldownSeconds": 0})

    # ask the Model at once (the refresh-first path: test_reconcile_quality.py)
    action = {"retrain": True, "cooldownSeconds": 3600, "refreshDataset": False}
    c.create(resource(DriftMonitor, "watch", monitor_spec("clf", 10, windowSeconds=600, action=action)))
    first = eventually(lambda: drift_jobs(c, "watch")[0], what="first drift Job")
    # the Job is created before the status patch that records it (a crash in between finds it by name)
    status = eventually(
        lambda: s if (s := c.status("DriftMonitor", "watch")).get("activeJob") else None, what="activeJob in status"
    )
    stamp = first["metadata"]["name"].removeprefix("watch-drift-")
    assert status["activeJob"] == first["metadata"]["name"] and len(stamp) == 14
    assert status["lastCheck"].replace("-", "").replace(":", "").replace("T", "").startswith(stamp)
    spec_json = first["spec"]["template"]["spec"]["containers"][0]["args"][2]
    assert '"profileUri":"file:///var/lib/mlops/p/' in spec_json and '"collectedPrefix":' in spec_json

    c.finish_job(first, message=drift_result("Drift", ["petal_width"]))
    annotation = eventually(
        lambda: c.get("Model", "clf")["metadata"].get("annotations", {}).get(contracts.ANNOTATION_RETRAIN_REQUESTED),
        what="retrain request on the Model",
    )
    assert annotation.endswith(";drift: petal_width")
    # the Dataset is still at the version v1 was trained on: the Model answers NoNewData, trains nothing
    eventually(
        lambda: (c.condition("Model", "clf", "Trained") or {}).get("reason") == "NoNewData", what="NoNewData"
    )
    status = eventually(lambda: (s := c.status("DriftMonitor", "watch")).get("lastVerdict") and s, what="verdict")
    assert status["consecutiveBreaches"] == 1 and status["lastRetrainRequest"] and status["reportUri"]
    assert [h["verdict"] for h in status["history"]] == ["Drift"]
    detected = c.condition("DriftMonitor", "watch", "DriftDetected")
    assert detected is not None and detected["status"] == "True"
    value = metrics.registry.get_sample_value(
        "mlops_drift_feature_score",
        {"namespace": c.ns, "monitor": "watch", "model": "clf", "feature": "petal_width", "test": "ks"},
    )
    assert value == pytest.approx(0.0001)
    detected_gauge = {"namespace": c.ns, "monitor": "watch", "model": "clf"}
    assert metrics.registry.get_sample_value("mlops_drift_detected", detected_gauge) == 1.0

    # the next tick drifts again: within the monitor's cooldown there is no second request
    second = eventually(
        lambda: next((j for j in drift_jobs(c, "watch") if j["metadata"]["name"] != first["metadata"]["name"]), None),
        what="second drift Job",
        attempts=300,
    )
    c.finish_job(second, message=drift_result("Drift", ["petal_width", "sepal_length"]))
    eventually(lambda: len(c.status("DriftMonitor", "watch").get("history") or []) == 2, what="second check recorded")
    assert c.get("Model", "clf")["metadata"]["annotations"][contracts.ANNOTATION_RETRAIN_REQUESTED] == annotation
    assert c.status("DriftMonitor", "watch")["consecutiveBreaches"] == 2
    eventually(  # events follow the status patch
        lambda: any(r == "RetrainNotRequested" and "cooldown" in m for r, m in c.events("watch")),
        what="RetrainNotRequested event",
    )
    assert len(c.model_jobs("clf")) == 1


@pytest.mark.slow
def test_drift_storm_with_operator_restarts_retrains_no_more_than_the_cooldown_allows(
    api_client: client.ApiClient, namespace: str, current_crds: None, apiserver_instance: apiserver.ApiServer
) -> None:
    """Drift on every check, a short interval, and the operator restarted after every check: the
    cooldown (persisted in status) still allows exactly one retrain, and no check is fired twice."""
    c = Cluster(api_client, namespace)
    checks = 4
    finished: list[str] = []
    with operator(apiserver_instance.kubeconfig, namespace):
        serving_first_version(c, "storm", retrain={"cooldownSeconds": 0})
        action = {"retrain": True, "cooldownSeconds": 3600, "refreshDataset": False}
        c.create(resource(DriftMonitor, "storm", monitor_spec("storm", 10, action=action)))
    for _ in range(checks):
        with operator(apiserver_instance.kubeconfig, namespace):
            job = eventually(
                lambda: next((j for j in drift_jobs(c, "storm") if j["metadata"]["name"] not in finished), None),
                what="the next drift Job",
                attempts=300,
            )
            c.finish_job(job, message=drift_result("Drift", ["petal_width"]))
            finished.append(job["metadata"]["name"])
            eventually(
                lambda: len(c.status("DriftMonitor", "storm").get("history") or []) == len(finished),
                what="the check recorded",
            )
        # the operator is gone between checks: a restart must not reset the cooldown or re-fire a tick

    names = [j["metadata"]["name"] for j in drift_jobs(c, "storm")]
    assert len(names) == len(set(names)) >= checks
    history = c.status("DriftMonitor", "storm")["history"]
    assert [h["verdict"] for h in history] == ["Drift"] * checks
    # exactly one retrain request (the first check's), which the Model answers NoNewData: no Job
    requested = c.get("Model", "storm")["metadata"]["annotations"][contracts.ANNOTATION_RETRAIN_REQUESTED]
    assert requested.endswith(";drift: petal_width")
    assert [j["metadata"]["labels"].get(contracts.LABEL_MODEL_VERSION) for j in c.model_jobs("storm")] == ["1"]
    # (repeated identical Events are aggregated by the API server, so one is enough to see)
    eventually(  # events follow the status patch
        lambda: any(r == "RetrainNotRequested" and "cooldown" in m for r, m in c.events("storm")),
        what="RetrainNotRequested event",
    )
