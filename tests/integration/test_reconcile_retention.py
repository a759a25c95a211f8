"""Retention of dataset versions against a real kube-apiserver and a real file store: the operator
computes what must stay from the Models' status it reads there, the profile Job's plan carries it, and
the workload's retention (run here, as the Job's pod would) deletes the rest. A version a Model
references is kept past the bound, the current one too, and an unreferenced old one is deleted; the
Dataset's status counts it and drops it from status.versions, and a Pruned Event says so."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlops_operator import contracts, store
from mlops_operator.api.plans import ProfilePlan
from mlops_operator.api.results import ProfileResult
from mlops_operator.api.v1alpha1 import Dataset, Model
from mlops_operator.workloads import retention
from tests.integration.reconcile_harness import Cluster, eventually, resource, train_result
from tests.integration.test_reconcile_dataset_refresh import plan_of
from tests.integration.test_reconcile_model import model_spec, serving_first_version, training_job

pytestmark = pytest.mark.integration
A, B, C = "a" * 64, "b" * 64, "c" * 64


def _pending(c: Cluster) -> dict[str, Any] | None:
    jobs = c.jobs(**{contracts.LABEL_DATASET: "iris", contracts.LABEL_COMPONENT: "profile"})
    return next((j for j in jobs if not (j.get("status") or {}).get("conditions")), None)


def _run_profile_job(c: Cluster, version: str, *, unchanged: bool = False) -> ProfilePlan:
    """Play the profile Job's pod: the version's files in the store (unless unchanged), then the
    workload's own retention on the plan the operator wrote, then the result as the termination message."""
    job = eventually(lambda: _pending(c), what="a profile Job")
    plan = plan_of(job)
    directory = contracts.dataset_version_dir(plan.store_uri, plan.namespace, plan.dataset, version)
    if not unchanged:
        store.write_bytes_atomic(store.join(directory, "data.parquet/part-00000.parquet"), b"p" * 100)
        store.write_bytes_atomic(store.join(directory, "complete.json"), b"{}")
    uri = f"{directory}/"
    result = ProfileResult(
        ok=True,
        version=version,
        rows=150,
        columns=5,
        target="target",
        task_hint="classification",
        profile_uri=f"{uri}profile.json",
        data_uri=f"{uri}data.parquet",
        unchanged=unchanged or None,
        listing_fingerprint=f"listing-{version[0]}",
    )
    result = retention.after_profile(plan, result)
    c.finish_job(job, message=result.model_dump_json(by_alias=True, exclude_none=True))
    return plan


def _refresh(c: Cluster, when: str) -> None:
    value = f"2026-11-30T{when}:00Z;test"
    c.patch("Dataset", "iris", {"metadata": {"annotations": {contracts.ANNOTATION_REFRESH_REQUESTED: value}}})


def test_a_referenced_version_stays_and_an_unreferenced_old_one_goes(cluster: Cluster) -> None:
    c = cluster
    spec = {"source": {"uri": "sklearn://iris"}, "schema": {"target": "target"}, "retention": {"versions": 1}}
    c.create(resource(Dataset, "iris", spec))
    first = _run_profile_job(c, A)
    assert first.retention is not None and first.retention.keep == 1 and first.retention.referenced == []
    eventually(lambda: c.status("Dataset", "iris").get("version") == A, what="version a")

    c.create(resource(Model, "clf", model_spec(retrain={"onDatasetChange": False})))
    c.finish_job(training_job(c, "clf", 1), message=train_result(1, 0.95))
    eventually(lambda: (c.status("Model", "clf").get("registry") or {}).get("syncedAt"), what="registry read")
    eventually(lambda: c.status("Model", "clf").get("versions"), what="model v1")

    _refresh(c, "06:00")
    second = _run_profile_job(c, B)
    assert second.retention is not None and A in second.retention.referenced  # the Model's v1 trained on a
    eventually(lambda: c.status("Dataset", "iris").get("version") == B, what="version b")

    _refresh(c, "07:00")
    third = _run_profile_job(c, C)
    assert third.retention is not None and {A, B} <= set(third.retention.referenced)  # b was current
    eventually(lambda: c.status("Dataset", "iris").get("version") == C, what="version c")

    _refresh(c, "08:00")
    fourth = _run_profile_job(c, C, unchanged=True)
    assert fourth.retention is not None and B not in fourth.retention.referenced
    assert fourth.retention.recent[:3] == [C, B, A]
    pruned = eventually(lambda: c.status("Dataset", "iris").get("pruned"), what="status.pruned")
    assert (pruned["versions"], pruned["objects"], pruned["bytes"]) == (1, 2, 102)
    dataset_dir = Path(contracts.dataset_dir(fourth.store_uri, fourth.namespace, "iris").removeprefix("file://"))
    assert sorted(p.name for p in dataset_dir.iterdir()) == [A, C]  # b went; a: the Model's; c: current
    assert [v["version"] for v in c.status("Dataset", "iris")["versions"]] == [A, C]
    assert eventually(lambda: any(r == "Pruned" for r, _ in c.events("iris")), what="Pruned Event")


def test_artifacts_of_versions_dropped_from_status_go_and_the_serving_ones_stay(cluster: Cluster) -> None:
    """maxVersions 2: v1 serves (pinned), v2 and v3 are rejected retrains; v2 leaves status and the
    registry Job (run for real against the store) deletes its directory, its record stays."""
    c = cluster
    serving_first_version(c, "art", maxVersions=2, retrain={"cooldownSeconds": 0})
    first = training_job(c, "art", 1)
    output = Path(_training_output(first).removeprefix("file://"))
    models_dir = output.parent
    for n in (1, 2, 3):
        (models_dir / f"v{n}").mkdir(parents=True, exist_ok=True)
        (models_dir / f"v{n}" / "model.skops").write_bytes(b"m" * 50)
    for version, request in ((2, "2026-01-01T01:00:00Z;manual"), (3, "2026-01-01T02:00:00Z;manual")):
        annotations = {contracts.ANNOTATION_RETRAIN_REQUESTED: request}
        c.patch("Model", "art", {"metadata": {"annotations": annotations}})
        c.finish_job(training_job(c, "art", version), message=train_result(version, 0.90, champion=0.95))
    eventually(
        lambda: [v["version"] for v in c.status("Model", "art").get("versions") or []] == [1, 3], what="v2 pruned"
    )
    pruned = eventually(lambda: c.status("Model", "art").get("pruned"), what="Model status.pruned")
    assert (pruned["versions"], pruned["objects"], pruned["bytes"]) == (1, 1, 50)
    assert sorted(p.name for p in models_dir.iterdir() if p.is_dir()) == ["v1", "v3"]
    document = json.loads((models_dir / "registry.json").read_text())
    assert document["artifactsPruned"] == [2] and [e["version"] for e in document["versions"]] == [1, 2, 3]
    assert eventually(lambda: any(r == "Pruned" for r, _ in c.events("art")), what="Pruned Event")
    # no DriftMonitor checks "art" and it collects: its registry Jobs prune collected rows, labels and a
    # Shadow rollout's recorded answers too
    labels = {contracts.LABEL_MODEL: "art", contracts.LABEL_COMPONENT: str(contracts.Component.REGISTRY)}
    mirror = eventually(lambda: c.jobs(**labels)[-1], what="a registry Job")
    args = mirror["spec"]["template"]["spec"]["containers"][0]["args"]
    plan = json.loads(args[args.index(contracts.PLAN_FLAG) + 1])["retention"]
    assert [p.rsplit("/", 2)[-2] for p in plan["partitionPrefixes"]] == ["collected", "labels", "shadow"]
    assert plan["maxAgeDays"] == 30


def _training_output(job: dict[str, Any]) -> str:
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    return str(json.loads(args[args.index(contracts.PLAN_FLAG) + 1])["outputDir"])
