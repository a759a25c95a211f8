"""BatchScoring's whole reconcile against the in-memory API server (the real Kube client): one Job per
run, its progress into status, idempotence, a schedule's runs and the trimming of old runs' Jobs."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from mlops_operator import contracts
from mlops_operator.kube import BATCH_SCORING, DATASET, JOB, MODEL, POD
from mlops_operator.kube.guards import LABEL_CONTROLLER_UID
from mlops_operator.metrics import Metrics
from mlops_operator.reconcilers import batch
from mlops_operator.reconcilers.batch_runs import ANNOTATION_COMPLETION_INDEX
from mlops_operator.reconcilers.context import Key, ReconcileContext
from tests.unit import factories as f
from tests.unit.reconcilers.fake_kube import FakeKube

NS = "team-a"
START = datetime(2026, 1, 2, 2, 30, tzinfo=UTC)
ARTIFACT = "file:///var/lib/mlops/team-a/models/iris-clf/v2/model.skops"


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def world(**spec: Any) -> tuple[FakeKube, Clock, ReconcileContext]:
    kube, clock = FakeKube(), Clock()
    model = f.model(
        status={
            "servingVersion": 2,
            "versions": [{"version": 2, "state": "Serving", "artifactUri": ARTIFACT, "sha256": "b" * 64}],
        }
    ).dump()
    kube.put(MODEL.path(NS), model)
    dataset = f.dataset().dump() | {"status": {"version": "d" * 64, "dataUri": "file:///var/lib/mlops/team-a/d"}}
    kube.put(DATASET.path(NS), dataset)
    body = {
        "apiVersion": "mlops.dev/v1alpha1",
        "kind": "BatchScoring",
        "metadata": {"name": "nightly", "namespace": NS, "generation": 1},
        "spec": {"modelRef": {"name": "iris-clf"}, "input": {"datasetRef": {"name": "iris"}}, "shards": 2, **spec},
    }
    kube.put(BATCH_SCORING.path(NS), body)
    ctx = ReconcileContext(settings=dataclasses.replace(f.SETTINGS), kube=kube, metrics=Metrics(), clock=clock)
    return kube, clock, ctx


def reconcile(ctx: ReconcileContext) -> None:
    asyncio.run(batch.reconcile(ctx, Key("BatchScoring", NS, "nightly")))


def status(kube: FakeKube) -> dict[str, Any]:
    return dict(kube.objects[f"{BATCH_SCORING.path(NS)}/nightly"].get("status") or {})


def jobs(kube: FakeKube) -> dict[str, dict[str, Any]]:
    prefix = JOB.path(NS) + "/"
    return {p.removeprefix(prefix): o for p, o in kube.objects.items() if p.startswith(prefix)}


def finish(kube: FakeKube, name: str, rows: int = 50) -> None:
    """Play the Job controller: every index done, a pod per index with its result."""
    job = kube.objects[f"{JOB.path(NS)}/{name}"]
    uid = job["metadata"]["uid"]
    for index in range(job["spec"]["completions"]):
        result = {"ok": True, "index": index, "rows": rows, "seconds": 2.0}
        kube.put(
            POD.path(NS),
            {
                "metadata": {
                    "name": f"{name}-{index}",
                    "labels": {LABEL_CONTROLLER_UID: uid},
                    "annotations": {ANNOTATION_COMPLETION_INDEX: str(index)},
                    "ownerReferences": [{"kind": "Job", "name": name, "uid": uid, "controller": True}],
                },
                "status": {
                    "containerStatuses": [
                        {"name": "main", "state": {"terminated": {"exitCode": 0, "message": json.dumps(result)}}}
                    ]
                },
            },
        )
    last = job["spec"]["completions"] - 1
    job["status"] = {
        "completedIndexes": f"0-{last}",
        "startTime": "2026-01-02T02:30:00Z",
        "completionTime": "2026-01-02T02:30:04Z",
        "conditions": [{"type": "Complete", "status": "True"}],
    }


def test_one_run_per_spec_from_job_to_status() -> None:
    kube, _, ctx = world()
    reconcile(ctx)
    (name,) = jobs(kube)
    job = jobs(kube)[name]
    assert (
        job["spec"]["completionMode"] == "Indexed"
        and job["metadata"]["labels"][contracts.LABEL_BATCH_SCORING] == "nightly"
    )
    plan = json.loads(job["spec"]["template"]["spec"]["containers"][0]["args"][2])
    assert (plan["version"], plan["artifactUri"], plan["inputUri"]) == (2, ARTIFACT, "file:///var/lib/mlops/team-a/d")
    first = status(kube)
    assert first["phase"] == "Pending" and first["runs"][0]["job"] == name and first["version"] == 2

    reconcile(ctx)  # nothing changed: no second Job
    assert list(jobs(kube)) == [name]

    finish(kube, name)
    reconcile(ctx)
    done = status(kube)
    assert (done["phase"], done["rows"], done["shardsSucceeded"], done["rowsPerSecond"]) == ("Succeeded", 100, 2, 25.0)
    assert {c["type"]: c["status"] for c in done["conditions"]}["Ready"] == "True"

    # a new serving version does not score the same spec again
    model = kube.objects[f"{MODEL.path(NS)}/iris-clf"]
    model["status"]["servingVersion"] = 3
    model["status"]["versions"].append({"version": 3, "state": "Serving", "artifactUri": "x", "sha256": "c" * 64})
    reconcile(ctx)
    assert list(jobs(kube)) == [name]


def test_a_schedule_starts_a_run_per_cron_time_and_keeps_the_newest() -> None:
    kube, clock, ctx = world(schedule="0 * * * *", runsToKeep=1)
    reconcile(ctx)
    (first,) = jobs(kube)
    assert status(kube)["lastScheduleTime"].startswith("2026-01-02T02:00:00")
    assert status(kube)["nextScheduleTime"].startswith("2026-01-02T03:00:00")
    clock.now = START + timedelta(hours=1)  # 03:30: the 03:00 run waits for the active 02:00 one
    reconcile(ctx)
    assert list(jobs(kube)) == [first]
    finish(kube, first)
    reconcile(ctx)  # the 02:00 run is recorded, the 03:00 run starts, the older finished run is dropped
    names = list(jobs(kube))
    runs = status(kube)["runs"]
    assert len(runs) == 1 and runs[0]["scheduledTime"].startswith("2026-01-02T03:00:00")
    assert first not in names and names == [runs[0]["job"]]
