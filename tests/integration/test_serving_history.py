"""Issue 15 item 2 against a real kube-apiserver: serve v1 → v2 → roll back to v1 → v3, with an operator
restart in the middle, then delete the Model and re-create it from the registry mirror; `kubectl
mlops history --at` answers the same five instants throughout."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mlops_operator import contracts, plugin
from mlops_operator.api.v1alpha1 import Model
from mlops_operator.api.v1alpha1.model import ModelVersion
from mlops_operator.builders import jobs
from mlops_operator.kube import DEPLOYMENT, MODEL, SERVICE
from mlops_operator.plugin.resources import parse_time, rfc3339
from tests.integration import apiserver
from tests.integration.reconcile_harness import Cluster, eventually, operator, resource, train_result
from tests.integration.test_reconcile_model import model_spec, ready_dataset, training_job

pytestmark = pytest.mark.integration
NAME = "audited"
SPEC = {"approval": {"policy": "Manual"}, "retrain": {"cooldownSeconds": 0}}


@pytest.fixture
def kubeconfig(apiserver_instance: apiserver.ApiServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KUBECONFIG", str(apiserver_instance.kubeconfig))  # kopf's own login reads it
    return apiserver_instance.kubeconfig


@pytest.fixture
def store(tmp_path: Path) -> Iterator[str]:
    """One store for every operator run of the test: the registry mirror outlives restarts."""
    yield (tmp_path / "store").as_uri()


def periods(c: Cluster) -> list[tuple[int, dict[str, Any]]]:
    return sorted(
        (
            (v["version"], p)
            for v in c.status("Model", NAME).get("versions") or []
            for p in v.get("servingPeriods") or []
        ),
        key=lambda vp: vp[1]["from"],
    )


def serve(c: Cluster, version: int) -> str:
    """Approve `version`, play the Deployment controller, wait until it serves; its period's start."""
    c.patch("Model", NAME, {"spec": {"approvedVersion": version}})
    eventually(lambda: c.served_version(f"{NAME}-server") == str(version), what=f"Deployment of v{version}")
    c.roll_out(f"{NAME}-server")
    eventually(lambda: c.status("Model", NAME).get("servingVersion") == version, what=f"serving v{version}")
    start = next(p["from"] for v, p in reversed(periods(c)) if v == version and "to" not in p)
    # periods start in whole seconds: let the next transition fall in a later second
    while datetime.now(UTC) < parse_time(start) + timedelta(seconds=1):
        time.sleep(0.1)
    return str(start)


def train(c: Cluster, version: int, accuracy: float, champion: float) -> None:
    stamp = f"2026-03-0{version}T00:00:00Z;v{version}"
    c.patch("Model", NAME, {"metadata": {"annotations": {contracts.ANNOTATION_RETRAIN_REQUESTED: stamp}}})
    c.finish_job(training_job(c, NAME, version), message=train_result(version, accuracy, champion))
    eventually(
        lambda: any(v["version"] == version and v["state"] == "Validated" for v in c.status("Model", NAME)["versions"]),
        what=f"v{version} validated",
    )


def served_at(kubeconfig: Path, namespace: str, at: str) -> int | None:
    out, err = io.StringIO(), io.StringIO()
    argv = ["history", NAME, "--at", at, "-o", "json", "--kubeconfig", str(kubeconfig), "-n", namespace]
    assert plugin.main(argv, out=out, err=err) == 0, err.getvalue()
    answer = json.loads(out.getvalue())
    if answer["version"] is not None:  # the lineage comes with it
        assert answer["datasetVersion"] == "a" * 64 and answer["approvedBy"] == "spec.approvedVersion"
        assert set(answer["metrics"]) == {"accuracy", "f1"}
    return answer["version"]  # type: ignore[no-any-return]


def mirrored(c: Cluster) -> bool:
    status = c.status("Model", NAME)
    versions = [ModelVersion.model_validate(v) for v in status.get("versions") or []]
    return (status.get("registry") or {}).get("digest") == jobs.registry_digest(versions)


def test_what_served_when_survives_a_restart_and_a_recreation(
    api_client: Any, kubeconfig: Path, namespace: str, current_crds: None, store: str
) -> None:
    c = Cluster(api_client, namespace)
    with operator(kubeconfig, namespace, store_uri=store):
        ready_dataset(c)
        c.create(resource(Model, NAME, model_spec(**SPEC)))
        c.finish_job(training_job(c, NAME, 1), message=train_result(1, 0.90))
        t1 = serve(c, 1)
        train(c, 2, 0.93, champion=0.90)
        t2 = serve(c, 2)
    with operator(kubeconfig, namespace, store_uri=store):  # the operator restarted between v2 and the rollback
        t3 = serve(c, 1)
        train(c, 3, 0.95, champion=0.90)
        t4 = serve(c, 3)
        eventually(lambda: mirrored(c), what="the history mirrored to the store")
    one_second = timedelta(seconds=1)
    instants = {
        rfc3339(parse_time(t1) - one_second): None,  # before anything served
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
    assert {at: served_at(kubeconfig, namespace, at) for at in instants} == instants

    # delete the Model and create it again: its history comes back from the registry mirror
    with operator(kubeconfig, namespace, store_uri=store):
        c.call("DELETE", MODEL, NAME)
        eventually(lambda: not c.call("GET", MODEL)["items"], what="Model gone")
        c.call("DELETE", DEPLOYMENT, f"{NAME}-server")  # no garbage collector on an API-only server
        c.call("DELETE", SERVICE, NAME)
        c.create(resource(Model, NAME, model_spec(**SPEC, approvedVersion=3)))
        eventually(lambda: any(r == "RegistryRestored" for r, _ in c.events(NAME)), what="RegistryRestored")
        assert {at: served_at(kubeconfig, namespace, at) for at in instants} == instants
        v3_first = next(p for v, p in periods(c) if v == 3)
        assert v3_first["endedBy"] == "Deleted" and parse_time(v3_first["to"]) > parse_time(t4)
        eventually(lambda: c.deployment(f"{NAME}-server"), what="v3's Deployment again", attempts=900)
        c.roll_out(f"{NAME}-server")
        eventually(lambda: len([v for v, _ in periods(c) if v == 3]) == 2, what="v3 serving again, a new period")
        assert {at: served_at(kubeconfig, namespace, at) for at in instants} == instants
