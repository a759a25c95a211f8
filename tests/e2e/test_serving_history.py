"""Issue 15 item 2 on the local cluster, with real training pods, real Deployments and the registry
mirror on the namespace's claim: serve v1 → v2 → roll back to v1 → v3, with an operator restart in the
middle, then delete the Model (the garbage collector takes its Deployment and Service) and create it
again; `kubectl mlops history --at` answers the same five instants throughout."""

from __future__ import annotations

import io
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mlops_operator import plugin
from mlops_operator.api.v1alpha1 import Dataset, Model
from mlops_operator.kube import MODEL
from mlops_operator.plugin.resources import parse_time, rfc3339
from tests.e2e.conftest import Cluster, operator_in_process
from tests.integration.reconcile_harness import Cluster as Live
from tests.integration.reconcile_harness import eventually, resource
from tests.integration.test_serving_history import NAME, mirrored, periods

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
EVERY, ATTEMPTS = 1.0, 480  # real pods: up to 8 min per step, bounded
# Three trainers, so each retrain is a different model (the gate is not what this test is about).
TRAINERS = {
    1: {"estimator": "sklearn.tree.DecisionTreeClassifier", "params": {"max_depth": 1, "random_state": 0}},
    2: {"estimator": "sklearn.tree.DecisionTreeClassifier", "params": {"max_depth": 2, "random_state": 0}},
    3: {"estimator": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 2000}},
}


def spec(version: int, **extra: Any) -> dict[str, Any]:
    return {
        "datasetRef": {"name": "cancer"},
        "trainer": TRAINERS[version],
        "validation": {"metric": "accuracy", "threshold": 0.5, "mustBeatChampion": False},
        "approval": {"policy": "Manual"},
        "retrain": {"cooldownSeconds": 0},
        **extra,
    }


def wait(check: Any, what: str) -> Any:
    return eventually(check, what=what, every=EVERY, attempts=ATTEMPTS)


def validated(c: Live, version: int) -> None:
    wait(
        lambda: any(
            v["version"] == version and v["state"] in ("Validated", "AwaitingApproval")
            for v in c.status("Model", NAME).get("versions") or []
        ),
        f"v{version} validated",
    )


def serve(c: Live, version: int) -> str:
    """Approve `version` and wait until it serves (the Deployment rolled out); its period's start."""
    c.patch("Model", NAME, {"spec": {"approvedVersion": version}})
    wait(lambda: c.status("Model", NAME).get("servingVersion") == version, f"serving v{version}")
    start = wait(
        lambda: next((p["from"] for v, p in reversed(periods(c)) if v == version and "to" not in p), None),
        f"v{version}'s open serving period",
    )
    # periods start in whole seconds: let the next transition fall in a later second
    while datetime.now(UTC) < parse_time(start) + timedelta(seconds=1):
        time.sleep(0.1)
    return str(start)


def retrain(c: Live, version: int) -> None:
    c.patch("Model", NAME, {"spec": {"trainer": {**TRAINERS[version], "params": replaced(version)}}})
    validated(c, version)


def replaced(version: int) -> dict[str, Any]:
    """A merge patch of the params: keys the new set lacks become null."""
    old, new = TRAINERS[version - 1]["params"], TRAINERS[version]["params"]
    assert isinstance(old, dict) and isinstance(new, dict)
    return {k: None for k in old if k not in new} | new


def served_at(cluster: Cluster, namespace: str, at: str) -> int | None:
    out, err = io.StringIO(), io.StringIO()
    argv = ["history", NAME, "--at", at, "-o", "json", "--kubeconfig", cluster.kubeconfig, "-n", namespace]
    assert plugin.main(argv, out=out, err=err) == 0, err.getvalue()
    answer = json.loads(out.getvalue())
    if answer["version"] is not None:  # the lineage comes with it
        assert len(answer["datasetVersion"]) == 64 and answer["approvedBy"]
        assert "accuracy" in answer["metrics"]
    return answer["version"]  # type: ignore[no-any-return]


def test_what_served_when_on_the_cluster_survives_a_restart_and_a_recreation(
    cluster: Cluster, image: str, namespace: str
) -> None:
    with operator_in_process(cluster, image, namespace, serving_service_account="mlops-serving") as c:
        c.create(
            resource(Dataset, "cancer", {"source": {"uri": "sklearn://breast_cancer"}, "schema": {"target": "target"}})
        )
        c.create(resource(Model, NAME, spec(1)))
        validated(c, 1)
        t1 = serve(c, 1)
        retrain(c, 2)
        t2 = serve(c, 2)
    # the operator restarted between v2 and the rollback
    with operator_in_process(cluster, image, namespace, serving_service_account="mlops-serving") as c:
        t3 = serve(c, 1)
        retrain(c, 3)
        t4 = serve(c, 3)
        wait(lambda: mirrored(c), "the history mirrored to the store")
    instants = {
        rfc3339(parse_time(t1) - timedelta(seconds=1)): None,  # before anything served
        t1: 1,
        t2: 2,  # a boundary: the instant v2 took over
        t3: 1,  # the rollback's instant is v1's, not v2's
        t4: 3,
    }
    assert [(v, p.get("endedBy")) for v, p in periods(c)] == [
        (1, "Superseded"),
        (2, "RolledBack"),
        (1, "Superseded"),
        (3, None),
    ]
    assert {at: served_at(cluster, namespace, at) for at in instants} == instants

    # delete the Model (the garbage collector takes its children) and create it again: its history
    # comes back from the registry mirror on the claim
    with operator_in_process(cluster, image, namespace, serving_service_account="mlops-serving") as c:
        c.call("DELETE", MODEL, NAME, body={"propagationPolicy": "Foreground"})
        wait(lambda: not c.call("GET", MODEL)["items"], "Model gone")
        wait(lambda: c.deployment(f"{NAME}-server") is None, "its Deployment collected")
        c.create(resource(Model, NAME, spec(3, approvedVersion=3)))
        wait(lambda: any(r == "RegistryRestored" for r, _ in c.events(NAME)), "RegistryRestored")
        assert {at: served_at(cluster, namespace, at) for at in instants} == instants
        v3_first = next(p for v, p in periods(c) if v == 3)
        assert v3_first["endedBy"] == "Deleted" and parse_time(v3_first["to"]) > parse_time(t4)
        wait(lambda: len([v for v, _ in periods(c) if v == 3]) == 2, "v3 serving again, a new period")
        assert {at: served_at(cluster, namespace, at) for at in instants} == instants
