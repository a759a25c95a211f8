"""SIGKILL the operator at random points of a Model's life: no duplicate Jobs, no lost versions.

The operator runs as a real `mlops-operator run` process. Between kills the test plays kubelet and
controllers (finishes training Jobs, rolls Deployments out) and asks for retrains, so kills land
before a Job is created, between create and status patch, mid-patch, during rollouts.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from mlops_operator import contracts
from mlops_operator.api.v1alpha1 import Model
from mlops_operator.api.v1alpha1.model import ModelVersion
from mlops_operator.builders import jobs as job_builders
from tests.integration import apiserver
from tests.integration.reconcile_harness import (
    Cluster,
    RegistryJobRunner,
    eventually,
    resource,
)
from tests.integration.test_reconcile_model import model_spec, ready_dataset, train_result

pytestmark = [pytest.mark.integration, pytest.mark.slow]
KILLS = 10


def start_operator(kubeconfig: Path, namespace: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "MLOPS_IMAGE": "localhost/mlops:it",
        "MLOPS_RESYNC_SECONDS": "30",
        "MLOPS_STORE_URI": (log.parent / "store").as_uri(),
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlops_operator",
            "run",
            "--kubeconfig",
            str(kubeconfig),
            "-n",
            namespace,
            "--no-liveness",
            "--metrics-port",
            "0",
        ],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def registry_digest(status: dict[str, Any]) -> str:
    versions = [ModelVersion.model_validate(v) for v in status.get("versions") or []]
    return job_builders.registry_digest(versions)


def wait_started(log: Path, starts: int) -> None:
    """Until the operator has logged its `starts`-th start-up (so a kill lands in a live reconcile)."""
    eventually(lambda: log.read_text(errors="replace").count("mlops-operator started") >= starts, what="operator start")


def step(c: Cluster, rng: random.Random, accuracy: list[float]) -> None:
    """One move of the world: finish a running Job, roll a Deployment out, or ask for a retrain."""
    unfinished = [j for j in c.model_jobs("crash") if not (j.get("status") or {}).get("conditions")]
    if unfinished:
        job = unfinished[0]
        version = int(job["metadata"]["labels"][contracts.LABEL_MODEL_VERSION])
        accuracy.append(accuracy[-1] + 0.001)
        c.finish_job(job, message=train_result(version, accuracy[-1], champion=accuracy[-2]))
    elif c.deployment("crash-server") is not None and rng.random() < 0.5:
        c.roll_out("crash-server")
    else:
        stamp = f"2026-01-01T00:{len(accuracy):02d}:{rng.randrange(60):02d}Z"
        c.patch(
            "Model", "crash", {"metadata": {"annotations": {contracts.ANNOTATION_RETRAIN_REQUESTED: f"{stamp};chaos"}}}
        )


def test_sigkill_at_random_points_neither_duplicates_jobs_nor_loses_versions(
    api_client: client.ApiClient,
    namespace: str,
    current_crds: None,
    apiserver_instance: apiserver.ApiServer,
    tmp_path: Path,
) -> None:
    c = Cluster(api_client, namespace)
    rng = random.Random(20260101)
    log = tmp_path / "operator.log"
    proc = start_operator(apiserver_instance.kubeconfig, namespace, log)
    starts = 1
    mirror = RegistryJobRunner(apiserver_instance.kubeconfig, namespace).__enter__()
    try:
        wait_started(log, starts)
        ready_dataset(c)
        c.create(resource(Model, "crash", model_spec(retrain={"cooldownSeconds": 0})))
        eventually(lambda: c.model_jobs("crash"), what="first training Job")
        accuracy = [0.90]
        for _ in range(KILLS):
            wait_started(log, starts)
            step(c, rng, accuracy)
            time.sleep(rng.uniform(0.0, 0.5))  # a random point of the reconcile that follows
            proc.kill()
            proc.wait(10)
            step(c, rng, accuracy)  # the world moves on while the operator is down
            proc = start_operator(apiserver_instance.kubeconfig, namespace, log)
            starts += 1

        # converge: finish whatever still runs, complete the rollout (the registry mirror waits for
        # the ledger to settle), and let the operator settle
        def settled() -> bool:
            for job in c.model_jobs("crash"):
                if not (job.get("status") or {}).get("conditions"):
                    step(c, rng, accuracy)
            server = c.deployment("crash-server")
            if server is not None and (server.get("status") or {}).get("observedGeneration") != server["metadata"].get(
                "generation"
            ):
                c.roll_out("crash-server")
            status = c.status("Model", "crash")
            wanted = (
                c.get("Model", "crash")["metadata"].get("annotations", {}).get(contracts.ANNOTATION_RETRAIN_REQUESTED)
            )
            if wanted != status.get("handledRetrainRequest"):
                return False
            versions = {v["version"]: v["state"] for v in status.get("versions") or []}
            mirrored = (status.get("registry") or {}).get("digest") == registry_digest(status)
            return (
                not status.get("activeTraining") and bool(versions) and "Training" not in versions.values() and mirrored
            )

        eventually(settled, what="convergence after the last restart", attempts=600)
    finally:
        proc.kill()
        proc.wait(10)
        mirror.__exit__()

    jobs = c.model_jobs("crash")
    job_versions = sorted(int(j["metadata"]["labels"][contracts.LABEL_MODEL_VERSION]) for j in jobs)
    requests = [json.loads(j["metadata"]["annotations"][contracts.ANNOTATION_TRAINING_REQUEST]) for j in jobs]
    answered = [(r["spec"], r["dataset"], r["retrain"]) for r in requests]
    status = c.status("Model", "crash")
    recorded = sorted(v["version"] for v in status["versions"])
    assert len(set(job_versions)) == len(job_versions), f"two Jobs share a version: {job_versions}"
    assert len(set(answered)) == len(answered), f"a training request was answered twice: {answered}"
    assert recorded == job_versions == list(range(1, len(jobs) + 1)), (recorded, job_versions)
    assert status["latestVersion"] == len(jobs)
    states = [v["state"] for v in status["versions"]]
    print(f"{KILLS} kills: {len(jobs)} training Jobs, versions {recorded}, states {states}")
    assert len(jobs) >= 2  # the kills really interleaved with retraining
    # the store's registry.json holds every version, in the state status ended with
    stored = json.loads((tmp_path / "store" / namespace / "models" / "crash" / "registry.json").read_text())
    assert [(e["version"], e["state"]) for e in stored["versions"]] == [
        (v["version"], v["state"]) for v in status["versions"]
    ]
    assert mirror.runs >= 2 and len(c.jobs(**{contracts.LABEL_COMPONENT: "registry"})) <= 2  # superseded ones removed
    assert "Traceback" not in log.read_text(errors="replace").replace("CancelledError", "")
