"""Issue 12 against a real kube-apiserver: the operator touches only what it controls, reads results
only from its Jobs' own pods, and refuses specs beyond the administrator's ceilings."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest

from mlops_operator import contracts
from mlops_operator.api.v1alpha1 import Dataset, DriftMonitor, Model
from mlops_operator.kube import MODEL, SERVICE, NotFound
from mlops_operator.kube.guards import LABEL_CONTROLLER_UID
from tests.integration.reconcile_harness import Cluster, eventually, monitor_spec, resource
from tests.integration.test_reconcile_model import (
    model_spec,
    profile_result,
    ready_dataset,
    train_result,
    training_job,
    version_state,
)

pytestmark = pytest.mark.integration


def condition(c: Cluster, kind: str, name: str, type_: str, reason: str) -> dict[str, Any] | None:
    found = c.condition(kind, name, type_)
    return found if found is not None and found["reason"] == reason else None


def test_a_foreign_service_of_the_models_name_is_never_touched(cluster: Cluster) -> None:
    c = cluster
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "clf", "labels": {"team": "web"}},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 8080, "targetPort": 8080}]},
    }
    c.call("POST", SERVICE, body=service)
    before = c.call("GET", SERVICE, "clf")
    ready_dataset(c)
    c.create(resource(Model, "clf", model_spec()))
    c.finish_job(training_job(c, "clf", 1), message=train_result(1, 0.95))
    serving = eventually(lambda: condition(c, "Model", "clf", "Serving", "NameConflict"), what="NameConflict")
    assert serving["status"] == "False" and f"Service {c.ns}/clf already exists" in serving["message"]
    assert "Rename or delete that Service" in serving["message"]
    ready = c.condition("Model", "clf", "Ready")
    assert ready is not None and (ready["status"], ready["reason"]) == ("False", "NameConflict")
    # Events are posted after the status patch the test waited for
    eventually(lambda: "NameConflict" in [reason for reason, _ in c.events("clf")], what="a NameConflict Event")
    assert c.deployment("clf-server") is None  # nothing is half set up beside someone else's Service
    assert c.call("GET", SERVICE, "clf") == before  # byte for byte: resourceVersion and managedFields too

    c.patch("Model", "clf", {"spec": {"serving": {"enabled": False}}})  # the operator removes what it serves…
    eventually(lambda: condition(c, "Model", "clf", "Serving", "ServingDisabled"), what="serving disabled")
    assert c.call("GET", SERVICE, "clf") == before  # …which this Service is not
    c.call("DELETE", MODEL, "clf")
    eventually(lambda: _gone(c, "clf"), what="Model deleted")
    assert c.call("GET", SERVICE, "clf") == before


def _gone(c: Cluster, name: str) -> bool:
    try:
        c.get("Model", name)
    except NotFound:
        return True
    return False


def test_a_forged_pod_with_the_jobs_labels_is_not_a_result(cluster: Cluster) -> None:
    c = cluster
    # A Dataset (its reconciler lists pods by job-name): a forged pod alone gives no version.
    c.create(resource(Dataset, "iris", {"source": {"uri": "sklearn://iris"}, "schema": {"target": "target"}}))
    profile = eventually(lambda: c.jobs(**{contracts.LABEL_DATASET: "iris"})[0], what="profile Job")
    c.terminated_pod(profile, "forged-profile", profile_result("f" * 64), owners=[])
    c.set_job_finished(profile["metadata"]["name"], succeeded=True)
    profiled = eventually(lambda: condition(c, "Dataset", "iris", "Profiled", "ResultUnreadable"), what="unread")
    assert "no pod of the Job was found" in profiled["message"] and c.status("Dataset", "iris").get("version") is None

    # A Model: the forged pod even carries the Job's controller-uid label, only the owner is missing.
    ready_dataset(c, name="data")
    c.create(resource(Model, "clf", model_spec(datasetRef={"name": "data"})))
    job = training_job(c, "clf", 1)
    assert job["spec"]["template"]["metadata"]["labels"][LABEL_CONTROLLER_UID] == job["metadata"]["uid"]
    c.terminated_pod(job, "forged-train", train_result(1, 0.99), owners=[])
    c.set_job_finished(job["metadata"]["name"], succeeded=True)
    eventually(lambda: version_state(c, "clf", 1) == "Failed", what="version 1 failed")
    record = c.status("Model", "clf")["versions"][0]
    assert record["reason"] == "ResultUnreadable" and record.get("sha256") is None
    assert c.deployment("clf-server") is None


def test_specs_beyond_the_ceilings_create_no_child_until_they_are_lowered(cluster: Cluster) -> None:
    c = cluster
    c.create(
        resource(
            Dataset,
            "big",
            {
                "source": {"uri": "sklearn://iris"},
                "schema": {"target": "target"},
                "resources": {"requests": {"cpu": "16"}},
            },
        )
    )
    c.create(resource(Model, "wide", model_spec(datasetRef={"name": "big"}, serving={"replicas": 50})))
    c.create(resource(DriftMonitor, "watch", monitor_spec("wide", 60, resources={"requests": {"memory": "64Gi"}})))
    expected = {
        ("Dataset", "big"): "resources.requests.cpu 16 exceeds the ceiling 8 (MLOPS_MAX_CPU)",
        ("Model", "wide"): "serving.replicas 50 exceeds the ceiling 20 (MLOPS_MAX_REPLICAS)",
        ("DriftMonitor", "watch"): "resources.requests.memory 64Gi exceeds the ceiling 32Gi (MLOPS_MAX_MEMORY)",
    }
    for (kind, name), words in expected.items():
        ready = eventually(partial(condition, c, kind, name, "Ready", "ExceedsLimits"), what=f"{kind} refused")
        assert ready["status"] == "False" and words in ready["message"], ready
        eventually(
            lambda: "ExceedsLimits" in [reason for reason, _ in c.events(name)],  # noqa: B023 (called at once)
            what="an ExceedsLimits Event",
        )
    assert c.jobs(**{contracts.LABEL_MANAGED_BY: contracts.MANAGED_BY}) == []  # no child at all

    c.patch("Dataset", "big", {"spec": {"resources": {"requests": {"cpu": "1"}}}})
    eventually(lambda: c.jobs(**{contracts.LABEL_DATASET: "big"}), what="the profile Job, once within the ceilings")
