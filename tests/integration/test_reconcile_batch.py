"""BatchScoring on a real kube-apiserver: the operator creates one Indexed Job that the API server
accepts (completionMode Indexed, backoffLimitPerIndex, maxFailedIndexes, FailIndex rules), follows
its completedIndexes and its pods' results into status, and never scores the same spec twice.

The test plays the Job controller and kubelet of an Indexed Job: one pod per index carrying the
batch.kubernetes.io/job-completion-index annotation, a failed first pod of index 2 and its retry
(the Job controller retries that index alone), then the Job's completedIndexes and Complete condition.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from mlops_operator import contracts
from mlops_operator.api.v1alpha1 import BatchScoring
from mlops_operator.kube import JOB, POD
from mlops_operator.kube.client import MERGE_PATCH
from mlops_operator.metrics import Metrics
from mlops_operator.reconcilers.batch_runs import ANNOTATION_COMPLETION_INDEX
from tests.integration.reconcile_harness import Cluster, eventually, resource
from tests.integration.test_reconcile_model import VERSION_A, serving_first_version

pytestmark = pytest.mark.integration


def batch_jobs(c: Cluster, name: str) -> list[dict[str, Any]]:
    return c.jobs(**{contracts.LABEL_BATCH_SCORING: name, contracts.LABEL_COMPONENT: "batch-score"})


def shard_pod(
    c: Cluster, job: dict[str, Any], index: int, attempt: int, result: dict[str, Any], exit_code: int
) -> None:
    """A pod of `job` for `index`, as the Job controller makes it, terminated with `result`."""
    name = job["metadata"]["name"]
    template = job["spec"]["template"]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{name}-{index}-{attempt}",
            "labels": {
                **template["metadata"]["labels"],
                "batch.kubernetes.io/controller-uid": job["metadata"]["uid"],
                "controller-uid": job["metadata"]["uid"],
                "job-name": name,
            },
            "annotations": {ANNOTATION_COMPLETION_INDEX: str(index)},
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "name": name,
                    "uid": job["metadata"]["uid"],
                    "controller": True,
                }
            ],
        },
        "spec": template["spec"],
    }
    c.call("POST", POD, body=pod)
    terminated = {
        "exitCode": exit_code,
        "reason": "Completed" if exit_code == 0 else "Error",
        "message": json.dumps(result),
        "startedAt": now(),
        "finishedAt": now(),
    }
    container = template["spec"]["containers"][0]
    status = {
        "phase": "Succeeded" if exit_code == 0 else "Failed",
        "containerStatuses": [
            {
                "name": container["name"],
                "image": container["image"],
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "state": {"terminated": terminated},
            }
        ],
    }
    c.call("PATCH", POD, pod["metadata"]["name"], sub="status", body={"status": status}, content_type=MERGE_PATCH)


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def job_status(c: Cluster, name: str, status: dict[str, Any]) -> None:
    c.call("PATCH", JOB, name, sub="status", body={"status": status}, content_type=MERGE_PATCH)


def test_an_indexed_job_scores_the_dataset_version_and_its_progress_reaches_status(
    running: tuple[Cluster, Metrics],
) -> None:
    c, _ = running
    serving_first_version(c, "clf")
    model = c.status("Model", "clf")
    served = next(v for v in model["versions"] if v["version"] == 1)
    spec = {
        "modelRef": {"name": "clf"},
        "input": {"datasetRef": {"name": "iris"}},
        "shards": 4,
        "backoffLimitPerIndex": 2,
    }
    c.create(resource(BatchScoring, "score", spec))

    job = eventually(lambda: next(iter(batch_jobs(c, "score")), None), what="the batch Job")
    body = job["spec"]
    assert (body["completionMode"], body["completions"], body["parallelism"]) == ("Indexed", 4, 4)
    assert (body["backoffLimitPerIndex"], body["maxFailedIndexes"]) == (2, 0)
    plan = json.loads(body["template"]["spec"]["containers"][0]["args"][2])
    assert (plan["version"], plan["artifactUri"], plan["sha256"]) == (1, served["artifactUri"], served["sha256"])
    assert plan["inputUri"] == c.status("Dataset", "iris")["dataUri"] and plan["shards"] == 4
    assert f"/{c.ns}/models/clf/batch/score/" in plan["outputDir"]
    (owner,) = job["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("BatchScoring", "score", True)

    name = job["metadata"]["name"]
    # as the Job controller does: the pods have terminated before it counts their indexes complete
    # (nothing watches a Job's pods, so a status that ran ahead of them would never be read again)
    for index in (0, 1):
        shard_pod(c, job, index, 0, {"ok": True, "index": index, "rows": 37, "seconds": 1.5}, 0)
    job_status(c, name, {"startTime": now(), "active": 2, "completedIndexes": "0-1"})
    status = eventually(
        lambda: s if (s := c.status("BatchScoring", "score")).get("shardsSucceeded") == 2 else None,
        what="two shards done in status",
    )
    assert (status["phase"], status["rows"], status["shards"], status["version"]) == ("Running", 74, 4, 1)
    reconciling = c.condition("BatchScoring", "score", "Reconciling")
    assert reconciling is not None and reconciling["status"] == "True"

    # index 2 fails once (the store was down) and its retry succeeds; index 3 succeeds at once
    shard_pod(c, job, 2, 0, {"ok": False, "index": 2, "reason": "StoreError", "error": "store unreachable"}, 12)
    shard_pod(c, job, 2, 1, {"ok": True, "index": 2, "rows": 38, "seconds": 1.5}, 0)
    shard_pod(c, job, 3, 0, {"ok": True, "index": 3, "rows": 38, "seconds": 1.5}, 0)
    stamp = {"lastTransitionTime": now(), "lastProbeTime": now()}
    done = [{"type": t, "status": "True", **stamp} for t in ("SuccessCriteriaMet", "Complete")]
    job_status(
        c,
        name,
        {
            "active": 0,
            "completedIndexes": "0-3",
            "succeeded": 4,
            "failed": 1,
            "completionTime": now(),
            "conditions": done,
        },
    )
    status = eventually(
        lambda: s if (s := c.status("BatchScoring", "score")).get("phase") == "Succeeded" else None, what="Succeeded"
    )
    assert (status["rows"], status["shardsSucceeded"], status["shardsFailed"]) == (150, 4, 0)
    (run,) = status["runs"]
    assert run["datasetVersion"] == VERSION_A and run["podRowsPerSecond"] == pytest.approx(150 / 6.0, abs=0.1)
    ready = c.condition("BatchScoring", "score", "Ready")
    assert ready is not None and ready["status"] == "True" and "150 rows scored by 4 shards" in ready["message"]
    assert c.condition("BatchScoring", "score", "Reconciling") is None
    reasons = [r for r, _ in c.events("score")]
    assert "RunStarted" in reasons and "RunSucceeded" in reasons

    # the same spec is not scored again; a changed spec is a new run with its own Job
    c.patch("BatchScoring", "score", {"metadata": {"annotations": {"touched": "yes"}}})
    c.patch("BatchScoring", "score", {"spec": {"shards": 2}})
    second = eventually(
        lambda: next((j for j in batch_jobs(c, "score") if j["metadata"]["name"] != name), None),
        what="a second Job for the new spec",
    )
    assert second["spec"]["completions"] == 2 and len(batch_jobs(c, "score")) == 2


def test_a_model_that_serves_nothing_holds_the_run_and_says_why(running: tuple[Cluster, Metrics]) -> None:
    c, _ = running
    spec = {"modelRef": {"name": "absent"}, "input": {"uri": f"file:///var/lib/mlops/{c.ns}/inputs/"}}
    c.create(resource(BatchScoring, "waiting", spec))
    ready = eventually(lambda: c.condition("BatchScoring", "waiting", "Ready"), what="Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ModelNotFound")
    assert batch_jobs(c, "waiting") == []


def test_an_input_outside_the_namespaces_prefix_is_refused(running: tuple[Cluster, Metrics]) -> None:
    c, _ = running
    spec = {"modelRef": {"name": "clf"}, "input": {"uri": "file:///etc/"}}
    c.create(resource(BatchScoring, "escape", spec))
    ready = eventually(lambda: c.condition("BatchScoring", "escape", "Ready"), what="Ready")
    assert (ready["status"], ready["reason"]) == ("False", "SourceNotAllowed")
    assert "spec.input.uri" in ready["message"] and batch_jobs(c, "escape") == []
