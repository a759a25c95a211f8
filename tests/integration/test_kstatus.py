"""kstatus conditions written by the real operator, read by the real `kubectl wait`: Reconciling while
a Dataset profiles and a Model trains and rolls out, gone once Ready; Stalled on a failed training."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mlops_operator import contracts
from mlops_operator.api.v1alpha1 import Dataset, Model
from tests.integration import apiserver
from tests.integration.reconcile_harness import Cluster, eventually, profile_result, resource, train_result
from tests.integration.test_reconcile_model import model_spec, training_job

pytestmark = pytest.mark.integration
KUBECTL = Path("/var/cache/mlops-operator/bin/kubectl")


def reason_of(c: Cluster, kind: str, name: str, type_: str) -> str | None:
    found = c.condition(kind, name, type_)
    return str(found["reason"]) if found is not None and found["status"] == "True" else None


def kubectl_wait(kubeconfig: Path, namespace: str, target: str, condition: str) -> subprocess.CompletedProcess[str]:
    wait = ["wait", target, f"--for=condition={condition}", "--timeout=30s"]
    return subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(kubeconfig), "-n", namespace, *wait],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_reconciling_while_working_then_ready_and_stalled_on_a_failed_training(
    cluster: Cluster, apiserver_instance: apiserver.ApiServer
) -> None:
    if not KUBECTL.exists():
        pytest.skip("kubectl is not built yet: run `make binaries`")
    c, kubeconfig = cluster, apiserver_instance.kubeconfig
    c.create(resource(Dataset, "iris", {"source": {"uri": "sklearn://iris"}, "schema": {"target": "target"}}))
    profile = eventually(lambda: c.jobs(**{contracts.LABEL_DATASET: "iris"})[0], what="profile Job")
    eventually(lambda: reason_of(c, "Dataset", "iris", "Reconciling") == "Profiling", what="Dataset Reconciling")
    c.finish_job(profile, message=profile_result("a" * 64))
    eventually(lambda: reason_of(c, "Dataset", "iris", "Ready"), what="Dataset Ready")
    assert c.condition("Dataset", "iris", "Reconciling") is None

    c.create(resource(Model, "clf", model_spec()))
    job = training_job(c, "clf", 1)
    eventually(lambda: reason_of(c, "Model", "clf", "Reconciling") == "JobRunning", what="Reconciling: training")
    c.finish_job(job, message=train_result(1, 0.95))
    eventually(lambda: reason_of(c, "Model", "clf", "Reconciling") == "RollingOut", what="Reconciling: rollout")
    assert c.condition("Model", "clf", "Ready")["status"] != "True"  # type: ignore[index]
    c.roll_out("clf-server")
    waited = kubectl_wait(kubeconfig, c.ns, "model/clf", "Ready")
    assert waited.returncode == 0, waited.stderr
    eventually(lambda: c.condition("Model", "clf", "Reconciling") is None, what="Reconciling gone")
    assert c.condition("Model", "clf", "Stalled") is None

    c.create(resource(Model, "oom", model_spec()))
    c.finish_job(training_job(c, "oom", 1), message="", exit_code=137, reason="OOMKilled")
    waited = kubectl_wait(kubeconfig, c.ns, "model/oom", "Stalled")
    assert waited.returncode == 0, waited.stderr
    assert reason_of(c, "Model", "oom", "Stalled") == "OOMKilled"
    assert c.condition("Model", "oom", "Reconciling") is None
    assert c.condition("Model", "oom", "Ready")["status"] == "False"  # type: ignore[index]
