"""`kubectl mlops` against the real cluster, as kubectl runs it (a `kubectl-mlops` on PATH).

Its own release, watching its own namespace: the Manual sample model, approved with the plugin, goes
to serving; the refusals (a gate-rejected version, nothing to roll back to, the serving version)
come back as exit code 1 with a message, and nothing is patched.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import KUBECTL, REPO, Cluster
from tests.e2e.test_install import SAMPLES, Release, breast_cancer_records, first_predictions, serving

pytestmark = pytest.mark.e2e

MODEL = "breast-cancer-rf"


@pytest.fixture(scope="module")
def release(cluster: Cluster, image: str) -> Iterator[Release]:
    rel = Release.fresh(cluster, image, "plugin")
    rel.install()
    monitor = yaml.safe_load((SAMPLES / "driftmonitor.yaml").read_text())
    monitor["metadata"]["name"] = monitor["spec"]["modelRef"]["name"] = MODEL
    cluster.kubectl(
        "apply", "-n", rel.workloads, "-f", str(SAMPLES / "dataset.yaml"), "-f", str(SAMPLES / "model-manual.yaml")
    )
    cluster.apply(monitor, namespace=rel.workloads)
    yield rel
    rel.uninstall()
    rel.remove_everything()


def mlops(cluster: Cluster, release: Release, *args: str) -> subprocess.CompletedProcess[str]:
    """`kubectl mlops ...` with the project's venv on PATH, exactly as a user would run it."""
    env = {
        **os.environ,
        "PATH": f"{REPO / '.venv' / 'bin'}:{os.environ.get('PATH', '')}",
        "KUBECONFIG": cluster.kubeconfig,
    }
    return subprocess.run(
        [KUBECTL, "mlops", *args, "-n", release.workloads], capture_output=True, text=True, timeout=60, env=env
    )


def mlops_json(cluster: Cluster, release: Release, *args: str) -> Any:
    done = mlops(cluster, release, *args, "-o", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def awaiting(model: dict[str, Any]) -> bool:
    return (model.get("status") or {}).get("phase") == "AwaitingApproval"


def test_status_history_and_why_of_a_model_awaiting_approval(cluster: Cluster, release: Release) -> None:
    release.wait_for("model", MODEL, "AwaitingApproval", awaiting)
    table = mlops(cluster, release, "status")
    assert table.returncode == 0, table.stderr
    assert "DATASETS" in table.stdout and "MODELS" in table.stdout and MODEL in table.stdout
    summary = mlops_json(cluster, release, "status", "model", MODEL)
    assert (summary["name"], summary["phase"], summary["approval"]) == (MODEL, "AwaitingApproval", "Manual")
    history = mlops_json(cluster, release, "history", MODEL)
    assert [(v["version"], v["state"]) for v in history] == [(1, "Validated")]
    assert history[0]["accuracy"] >= 0.9
    why = mlops(cluster, release, "why", "model", MODEL)
    assert why.returncode == 0 and f"kubectl mlops approve {MODEL} <version>" in why.stdout


def test_approve_drives_the_manual_model_to_serving(cluster: Cluster, release: Release) -> None:
    done = mlops(cluster, release, "approve", MODEL, "1")
    assert done.returncode == 0, done.stderr
    assert release.get("model", MODEL)["spec"]["approvedVersion"] == 1
    model = release.wait_for("model", MODEL, "Serving v1", serving)
    assert model["status"]["servingVersion"] == 1
    assert len(first_predictions(cluster, release.workloads, MODEL, breast_cancer_records(4))) == 4


def test_refusals_exit_1_and_patch_nothing(cluster: Cluster, release: Release) -> None:
    before = release.get("model", MODEL)
    cases = {
        ("rollback", MODEL): "has served no other version",
        ("reject", MODEL, "1", "--reason", "e2e"): "is serving; roll back first",
        ("approve", MODEL, "7"): "has no version 7",
        ("why", "model", "no-such-model"): "not found",
    }
    for args, message in cases.items():
        done = mlops(cluster, release, *args)
        assert done.returncode == 1 and message in done.stderr, (args, done.stderr)
    after = release.get("model", MODEL)
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert after["metadata"].get("annotations", {}).get("mlops.dev/rejected-versions") is None


def test_retrain_trains_a_new_version_which_the_gate_judges(cluster: Cluster, release: Release) -> None:
    done = mlops(cluster, release, "retrain", MODEL, "--reason", "e2e retrain")
    assert done.returncode == 0, done.stderr
    annotation = release.get("model", MODEL)["metadata"]["annotations"]["mlops.dev/retrain-requested"]
    assert annotation.endswith(";e2e retrain")
    model = release.wait_for(
        "model",
        MODEL,
        "version 2 trained and judged",
        lambda o: any(
            v["version"] == 2 and v["state"] not in ("Training",) for v in (o.get("status") or {}).get("versions", [])
        ),
    )
    v2 = next(v for v in model["status"]["versions"] if v["version"] == 2)
    assert model["status"]["servingVersion"] == 1  # Manual: nothing changes until someone approves
    history = mlops_json(cluster, release, "history", MODEL)
    assert [h["version"] for h in history] == [2, 1]
    if v2["state"] == "Validated":
        # It beat the champion: reject it, and the plugin records why.
        assert mlops(cluster, release, "reject", MODEL, "2", "--reason", "e2e says no").returncode == 0
        rejected = release.get("model", MODEL)["metadata"]["annotations"]["mlops.dev/rejected-versions"]
        assert json.loads(rejected) == {"2": "e2e says no"}
    else:
        # The gate turned it down (same data, same seed: not better than the champion).
        done = mlops(cluster, release, "approve", MODEL, "2")
        assert done.returncode == 1 and "only validated versions can be approved" in done.stderr


def test_drift_shows_the_monitor_of_the_model(cluster: Cluster, release: Release) -> None:
    release.wait_for("driftmonitor", MODEL, "a first status", lambda o: bool(o.get("status")), timeout=180)
    report = mlops_json(cluster, release, "drift", MODEL)
    assert (report["monitor"], report["model"]) == (MODEL, MODEL)
    assert isinstance(report["features"], list)
    table = mlops(cluster, release, "drift", MODEL)
    assert table.returncode == 0 and f"DriftMonitor {MODEL} (model {MODEL})" in table.stdout
