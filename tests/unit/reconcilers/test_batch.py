"""BatchScoring decisions: which version and rows a run takes, when a run starts, and how an Indexed
Job's status and its pods' results become the run's shards, rows and throughput."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from mlops_operator import conditions as cond
from mlops_operator.api.v1alpha1 import BatchScoring, Dataset
from mlops_operator.api.v1alpha1.batchscoring import BatchPhase, BatchRun, BatchScoringStatus
from mlops_operator.reconcilers import batch, batch_runs
from tests.unit import factories as f

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
ARTIFACT = "file:///var/lib/mlops/team-a/models/iris-clf/v{}/model.skops"


def scoring(**spec: Any) -> BatchScoring:
    return BatchScoring.model_validate(
        {
            "apiVersion": "mlops.dev/v1alpha1",
            "kind": "BatchScoring",
            "metadata": {"name": "nightly", "namespace": "team-a", "uid": "u", "generation": 2},
            "spec": {"modelRef": {"name": "iris-clf"}, "input": {"datasetRef": {"name": "iris"}}, **spec},
        }
    )


def version(n: int, state: str, artifact: bool = True) -> dict[str, Any]:
    return {"version": n, "state": state} | (
        {"artifactUri": ARTIFACT.format(n), "sha256": "a" * 64} if artifact else {}
    )


def test_without_a_version_the_serving_one_scores() -> None:
    model = f.model(status={"servingVersion": 2, "versions": [version(1, "Retired"), version(2, "Serving")]})
    assert batch.pick_version(model, None) == batch.Scorer(2, ARTIFACT.format(2), "a" * 64)
    assert batch.pick_version(model, 1) == batch.Scorer(1, ARTIFACT.format(1), "a" * 64)


@pytest.mark.parametrize(
    ("status", "wanted", "reason", "state"),
    [
        ({"versions": []}, None, cond.Reason.NOT_TRAINED, cond.UNKNOWN),  # nothing serves yet: wait
        ({"versions": [version(1, "Serving")]}, 7, cond.Reason.VERSION_NOT_FOUND, cond.FALSE),
        ({"versions": [version(1, "Training", artifact=False)]}, 1, cond.Reason.NOT_TRAINED, cond.UNKNOWN),
        ({"versions": [version(1, "Failed", artifact=False)]}, 1, cond.Reason.VERSION_NOT_FOUND, cond.FALSE),
    ],
)
def test_a_version_that_cannot_score_says_why(
    status: dict[str, Any], wanted: int | None, reason: str, state: str
) -> None:
    found = batch.pick_version(f.model(status=status), wanted)
    assert isinstance(found, cond.State) and found.reason == reason and found.status == state


def test_the_rows_are_the_datasets_current_or_named_version() -> None:
    record = {"rows": 10, "columns": 3, "profileUri": "p", "createdAt": NOW.isoformat()}
    body = f.dataset().model_dump(by_alias=True) | {
        "status": {
            "version": "b" * 64,
            "dataUri": "file:///d/b",
            "versions": [
                record | {"version": "a" * 64, "dataUri": "file:///d/a"},
                record | {"version": "b" * 64, "dataUri": "file:///d/b"},
            ],
        }
    }
    dataset = Dataset.model_validate(body)
    assert batch.pick_rows(dataset, None) == batch.Rows("file:///d/b", "b" * 64)
    assert batch.pick_rows(dataset, "a" * 64) == batch.Rows("file:///d/a", "a" * 64)
    missing = batch.pick_rows(dataset, "c" * 64)
    assert isinstance(missing, cond.State) and missing.reason == cond.Reason.VERSION_NOT_FOUND
    unprofiled = batch.pick_rows(f.dataset(), None)
    assert isinstance(unprofiled, cond.State) and unprofiled.reason == cond.Reason.DATASET_NOT_READY


def run(phase: BatchPhase, spec_hash: str, job: str = "nightly-batch-1") -> BatchRun:
    return BatchRun(job=job, phase=phase, version=1, input="i", output="o", spec_hash=spec_hash)


def test_one_run_per_spec_and_never_two_at_once() -> None:
    resource = scoring()
    current = batch.build.spec_hash(resource)
    status = BatchScoringStatus()
    assert batch.wants_run(resource, status, None)
    status.runs = [run(BatchPhase.SUCCEEDED, current)]
    assert not batch.wants_run(resource, status, None)  # done for this spec: a new serving version changes nothing
    status.runs = [run(BatchPhase.FAILED, "0ld5pec0")]
    assert batch.wants_run(resource, status, None)  # the spec changed
    status.runs = [run(BatchPhase.RUNNING, "0ld5pec0")]
    assert not batch.wants_run(resource, status, None)  # wait for the active run


def test_a_schedule_runs_each_cron_time_once() -> None:
    resource = scoring(schedule="0 2 * * *")
    status = BatchScoringStatus()
    tick = batch.due_tick(resource, status, NOW)
    assert tick == datetime(2026, 1, 2, 2, 0, tzinfo=UTC)
    assert batch.wants_run(resource, status, tick)
    status.last_schedule_time = tick
    assert batch.due_tick(resource, status, NOW) is None
    assert batch.due_tick(resource, status, datetime(2026, 1, 3, 2, 0, 1, tzinfo=UTC)) == datetime(
        2026, 1, 3, 2, 0, tzinfo=UTC
    )


def test_interval_lists_of_indexes() -> None:
    assert batch_runs.indexes("0-2,5,7-8") == {0, 1, 2, 5, 7, 8}
    assert batch_runs.indexes("") == set() and batch_runs.indexes(None) == set()


def pod(
    index: int, result: dict[str, Any], exit_code: int = 0, created: str = "2026-01-02T03:00:00Z"
) -> dict[str, Any]:
    terminated = {"exitCode": exit_code, "message": json.dumps(result)}
    return {
        "metadata": {
            "name": f"p{index}-{created}",
            "creationTimestamp": created,
            "annotations": {batch_runs.ANNOTATION_COMPLETION_INDEX: str(index)},
        },
        "status": {"containerStatuses": [{"name": "main", "state": {"terminated": terminated}}]},
    }


def job(status: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "nightly-batch-1", "uid": "j"}, "spec": {}, "status": status}


def test_a_running_job_counts_its_done_shards_and_their_rows() -> None:
    pods = [
        pod(0, {"ok": True, "index": 0, "rows": 250, "seconds": 2.0}),
        pod(2, {"ok": True, "index": 2, "rows": 250, "seconds": 3.0}),
    ]
    seen = batch_runs.observe_run(run(BatchPhase.PENDING, "h"), job({"active": 2, "completedIndexes": "0,2"}), pods, 4)
    assert seen.phase == BatchPhase.RUNNING
    assert (seen.shards_succeeded, seen.shards_failed, seen.rows) == (2, 0, 500)
    assert seen.pod_rows_per_second == 100.0 and seen.rows_per_second is None


def test_a_complete_job_reports_rows_over_its_wall_time() -> None:
    pods = [pod(i, {"ok": True, "index": i, "rows": 1000, "seconds": 4.0}) for i in range(4)]
    status = {
        "completedIndexes": "0-3",
        "startTime": "2026-01-02T03:00:00Z",
        "completionTime": "2026-01-02T03:00:10Z",
        "conditions": [{"type": "Complete", "status": "True"}],
    }
    seen = batch_runs.observe_run(run(BatchPhase.RUNNING, "h"), job(status), pods, 4)
    assert seen.phase == BatchPhase.SUCCEEDED and seen.rows == 4000 and seen.shards_succeeded == 4
    assert seen.rows_per_second == 400.0 and seen.pod_rows_per_second == 250.0
    assert seen.finished_at == datetime(2026, 1, 2, 3, 0, 10, tzinfo=UTC)


def test_a_retried_shard_counts_once_from_its_pod_that_succeeded() -> None:
    pods = [
        pod(
            1,
            {"ok": False, "index": 1, "reason": "StoreError", "error": "down"},
            exit_code=12,
            created="2026-01-02T03:00:00Z",
        ),
        pod(1, {"ok": True, "index": 1, "rows": 300, "seconds": 3.0}, created="2026-01-02T03:00:30Z"),
        pod(0, {"ok": True, "index": 0, "rows": 300, "seconds": 3.0}),
    ]
    seen = batch_runs.observe_run(run(BatchPhase.RUNNING, "h"), job({"completedIndexes": "0-1", "active": 0}), pods, 2)
    assert seen.rows == 600 and seen.shards_succeeded == 2


def test_a_failed_shard_explains_the_failed_run() -> None:
    pods = [
        pod(0, {"ok": True, "index": 0, "rows": 300, "seconds": 3.0}),
        pod(
            1, {"ok": False, "index": 1, "reason": "SchemaMismatch", "error": "lacks the columns ['x3']"}, exit_code=10
        ),
    ]
    status = {
        "completedIndexes": "0",
        "failedIndexes": "1",
        "conditions": [{"type": "Failed", "status": "True", "reason": "FailedIndexes"}],
    }
    seen = batch_runs.observe_run(run(BatchPhase.RUNNING, "h"), job(status), pods, 2)
    assert seen.phase == BatchPhase.FAILED and seen.shards_failed == 1 and seen.rows == 300
    assert batch_runs.run_reason(seen) == "SchemaMismatch" and "shards 1 failed" in (seen.message or "")
    work = BatchScoringStatus(runs=[seen])
    batch_runs.summarize(work, 2, None, 2, NOW)
    ready = cond.get(work.conditions, cond.Type.READY)
    assert ready is not None and ready.status == cond.FALSE and ready.reason == "SchemaMismatch"
    assert cond.is_true(work.conditions, cond.Type.STALLED) and work.phase == BatchPhase.FAILED


def test_status_follows_the_latest_run_and_ready_means_it_succeeded() -> None:
    work = BatchScoringStatus()
    batch_runs.summarize(work, 4, cond.State(cond.UNKNOWN, cond.Reason.NOT_TRAINED, "no version serves"), 2, NOW)
    assert cond.is_true(work.conditions, cond.Type.RECONCILING) and work.message == "no version serves"
    done = run(BatchPhase.SUCCEEDED, "h").model_copy(update={"rows": 10, "shards_succeeded": 4, "message": "10 rows"})
    work.runs = [done]
    batch_runs.summarize(work, 4, None, 2, NOW)
    assert cond.is_true(work.conditions, cond.Type.READY) and not cond.get(work.conditions, cond.Type.RECONCILING)
    assert (work.phase, work.rows, work.shards, work.shards_succeeded, work.observed_generation) == (
        BatchPhase.SUCCEEDED,
        10,
        4,
        4,
        2,
    )
    work.runs = [done, run(BatchPhase.RUNNING, "h", job="nightly-batch-2")]
    batch_runs.summarize(work, 4, None, 2, NOW)
    assert cond.is_true(work.conditions, cond.Type.RECONCILING) and work.phase == BatchPhase.RUNNING


def test_a_started_run_whose_job_vanished_is_lost() -> None:
    lost = batch_runs.lost(run(BatchPhase.RUNNING, "h"), NOW)
    assert lost.phase == BatchPhase.FAILED and batch_runs.run_reason(lost) == cond.Reason.JOB_LOST
