"""Issue 4 on the real cluster: the installed operator SIGKILLed at 10 random points of a Model's life.

The operator runs in its Pod, installed by Helm from the local image; the test kills its process
from the node with SIGKILL (no shutdown code runs) while the Dataset profiles, versions train, roll
out and retrain on request, then asks: were Jobs duplicated, were versions lost, did everything
converge, and does the store's registry.json say what status says?
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sklearn.datasets import load_breast_cancer

from mlops_operator import contracts
from mlops_operator.api.v1alpha1.model import ModelVersion
from mlops_operator.builders import jobs as job_builders
from tests.e2e.conftest import Cluster, container_pid
from tests.e2e.test_install import Release

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
KILLS = 10
RETRAIN_AT = (2, 5, 8)  # kill rounds that also ask for a retrain (when the previous ask is answered)
MOUNT = "/var/lib/mlops"  # where workload pods mount the store claim


@pytest.fixture(scope="module")
def release(cluster: Cluster, image: str) -> Iterator[Release]:
    if not cluster.local:
        pytest.skip("killing the operator's process from the node needs the local cluster")
    rel = Release.fresh(cluster, image, "kill")
    rel.install()
    yield rel
    rel.uninstall()
    rel.remove_everything()


def operator_pods(rel: Release) -> list[dict[str, Any]]:
    selector = f"app.kubernetes.io/instance={rel.name},app.kubernetes.io/component=operator"
    items: list[dict[str, Any]] = rel.cluster.json("-n", rel.namespace, "get", "pods", "-l", selector)["items"]
    return items


def running_operator(rel: Release, not_named: str = "", timeout: float = 120) -> dict[str, Any]:
    """The one running operator Pod (other than `not_named`), with its container started."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pod in operator_pods(rel):
            statuses = pod["status"].get("containerStatuses") or []
            if (
                pod["metadata"]["name"] != not_named
                and not pod["metadata"].get("deletionTimestamp")
                and statuses
                and "running" in statuses[0]["state"]
            ):
                return pod
        time.sleep(0.2)
    raise AssertionError(
        f"no running operator Pod in {timeout:.0f} s: {[p['metadata']['name'] for p in operator_pods(rel)]}"
    )


def sigkill(rel: Release, pod: dict[str, Any]) -> None:
    """SIGKILL the operator's process from the node, then let the Deployment replace the Pod.

    A replacement Pod rather than an in-place restart: kubelet's crash-loop back-off would stretch
    ten kills over many minutes without testing anything more.
    """
    container_id = pod["status"]["containerStatuses"][0]["containerID"].split("://", 1)[1]
    os.kill(container_pid(container_id), signal.SIGKILL)
    name = pod["metadata"]["name"]
    rel.cluster.kubectl("-n", rel.namespace, "delete", "pod", name, "--grace-period=0", "--force", "--wait=false")


def manifests(namespace: str) -> list[dict[str, Any]]:
    meta = {"namespace": namespace}
    return [
        {
            "apiVersion": contracts.API_VERSION,
            "kind": "Dataset",
            "metadata": {"name": "cancer", **meta},
            "spec": {"source": {"uri": "sklearn://breast_cancer"}, "schema": {"target": "target"}},
        },
        {
            "apiVersion": contracts.API_VERSION,
            "kind": "Model",
            "metadata": {"name": "survivor", **meta},
            "spec": {
                "datasetRef": {"name": "cancer"},
                "trainer": {"estimator": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 2000}},
                # every version passes, so every retrain is approved and rolled out: the most transitions
                "validation": {"metric": "accuracy", "threshold": 0.8, "mustBeatChampion": False},
                "approval": {"policy": "Automatic"},
                "retrain": {"cooldownSeconds": 0},
            },
        },
    ]


def host_path_of(cluster: Cluster, namespace: str, uri: str) -> str:
    (pvc,) = cluster.json("-n", namespace, "get", "pvc")["items"]
    pv = cluster.json("get", "pv", pvc["spec"]["volumeName"])
    base = (pv["spec"].get("hostPath") or pv["spec"]["local"])["path"]
    return str(base).rstrip("/") + uri.removeprefix("file://").removeprefix(MOUNT)


def mirrored(status: dict[str, Any]) -> bool:
    versions = [ModelVersion.model_validate(v) for v in status.get("versions") or []]
    return (status.get("registry") or {}).get("digest") == job_builders.registry_digest(versions)


def test_sigkill_at_random_points_neither_duplicates_jobs_nor_loses_versions(release: Release) -> None:
    rel, cluster, ns = release, release.cluster, release.workloads
    rng = random.Random(20261129)
    cluster.apply(*manifests(ns), namespace=ns)
    asked: list[str] = []
    pod = running_operator(rel)
    for round_ in range(KILLS):
        time.sleep(rng.uniform(0.3, 4.0))  # a random point of whatever the operator is doing
        status = rel.get("model", "survivor").get("status") or {}
        if (
            round_ in RETRAIN_AT
            and status.get("versions")
            and status.get("handledRetrainRequest") == (asked[-1] if asked else None)
        ):
            asked.append(f"2026-11-29T00:00:{round_:02d}Z;chaos round {round_}")
            annotation = f"{contracts.ANNOTATION_RETRAIN_REQUESTED}={asked[-1]}"
            cluster.kubectl("-n", ns, "annotate", "--overwrite", "model", "survivor", annotation)
            time.sleep(rng.uniform(0.0, 1.0))  # kill between the change and its Job, or just after
        sigkill(rel, pod)
        pod = running_operator(rel, not_named=pod["metadata"]["name"])
    assert asked, "no retrain was asked for: the kills came before anything was trained"

    def converged(model: dict[str, Any]) -> bool:
        status = model.get("status") or {}
        versions = status.get("versions") or []
        return (
            status.get("handledRetrainRequest") == asked[-1]
            and not status.get("activeTraining")
            and status.get("phase") == "Serving"
            and status.get("servingVersion") == status.get("latestVersion") == len(versions)
            and mirrored(status)
        )

    status = rel.wait_for("model", "survivor", "convergence after the last kill", converged, timeout=600)["status"]

    # no duplicate Jobs: one profile Job; one training Job per version, each answering its own request
    all_jobs = cluster.json("-n", ns, "get", "jobs")["items"]
    by_component: dict[str, list[dict[str, Any]]] = {}
    for job in all_jobs:
        by_component.setdefault(job["metadata"]["labels"][contracts.LABEL_COMPONENT], []).append(job)
    assert len(by_component["profile"]) == 1, [j["metadata"]["name"] for j in by_component["profile"]]
    train = by_component["train"]
    versions = sorted(int(j["metadata"]["labels"][contracts.LABEL_MODEL_VERSION]) for j in train)
    requests = [j["metadata"]["annotations"]["mlops.dev/training-request"] for j in train]
    assert len(set(requests)) == len(requests), requests
    assert versions == list(range(1, len(asked) + 2)), (versions, asked)
    failed = [
        j["metadata"]["name"]
        for j in all_jobs
        if any(c["type"] == "Failed" for c in j["status"].get("conditions") or [])
    ]
    assert failed == []

    # no lost versions: status and the store's registry.json both hold every one
    recorded = [(v["version"], v["state"]) for v in status["versions"]]
    assert recorded == [(n, "Retired") for n in versions[:-1]] + [(versions[-1], "Serving")], recorded
    uri = contracts.model_registry_uri("file://" + MOUNT, ns, "survivor")
    stored = json.loads(Path(host_path_of(cluster, ns, uri)).read_text())
    assert [(e["version"], e["state"]) for e in stored["versions"]] == recorded

    # converged for real: the newest version answers over HTTP, and the last operator's log is clean
    deployment = cluster.json("-n", ns, "get", "deployment", "survivor-server")
    assert deployment["spec"]["template"]["metadata"]["labels"][contracts.LABEL_MODEL_VERSION] == str(versions[-1])
    svc = cluster.json("-n", ns, "get", "service", "survivor")
    rows = load_breast_cancer(as_frame=True).frame.drop(columns=["target"]).head(3).to_dict(orient="records")
    request = urllib.request.Request(
        f"http://{svc['spec']['clusterIP']}:{svc['spec']['ports'][0]['port']}/predict",
        data=json.dumps({"records": rows}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert len(json.loads(response.read())["predictions"]) == 3
    log = rel.operator_log()
    assert "Traceback" not in log and "[ERROR" not in log, log[-3000:]
    print(f"{KILLS} kills, retrains asked: {len(asked)}, versions {versions}, jobs {sorted(by_component)}")
