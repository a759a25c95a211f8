"""Pure readings of a BatchScoring run's Indexed Job: shards done and failed, rows, throughput.

The Job controller records which indexes finished in `.status.completedIndexes` and which failed for
good in `.status.failedIndexes` (interval lists such as "0-2,5"); each pod that finished reports its
shard's rows and seconds in its termination message (api/batch.BatchScoreResult). A run's rows are
the sum over its succeeded shards; its throughput is rows over the Job's wall time (start to
completion), and `podRowsPerSecond` rows over the seconds the shards worked (one pod's rate).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from mlops_operator import conditions as cond
from mlops_operator.api.base import ConditionStatus
from mlops_operator.api.batch import BatchScoreResult
from mlops_operator.api.v1alpha1.batchscoring import BatchPhase, BatchRun, BatchScoringStatus
from mlops_operator.builders import jobs
from mlops_operator.reconcilers import observe

ANNOTATION_COMPLETION_INDEX: Final = "batch.kubernetes.io/job-completion-index"


def indexes(value: str | None) -> set[int]:
    """The indexes of an interval list ("0-2,5" → {0, 1, 2, 5}); "" or None → none."""
    found: set[int] = set()
    for part in (value or "").split(","):
        part = part.strip()
        if not part:
            continue
        first, _, last = part.partition("-")
        if first.isdigit() and (not last or last.isdigit()):
            found.update(range(int(first), int(last or first) + 1))
    return found


def pod_index(pod: dict[str, Any]) -> int | None:
    value = str(((pod.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_COMPLETION_INDEX, ""))
    return int(value) if value.isdigit() else None


def shard_results(pods: list[dict[str, Any]], ok: bool) -> dict[int, BatchScoreResult]:
    """Per index, the result of its newest pod that reported one with this `ok`."""
    out: dict[int, BatchScoreResult] = {}
    newest = sorted(pods, key=lambda p: str((p.get("metadata") or {}).get("creationTimestamp", "")))
    for pod in newest:
        index = pod_index(pod)
        term = observe.termination([pod], jobs.WORKLOAD_CONTAINER)
        result = observe.parse_result(BatchScoreResult, term.message) if term else None
        if index is not None and result is not None and result.ok == ok:
            out[index] = result
    return out


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _failure(job: dict[str, Any], pods: list[dict[str, Any]], state: observe.JobState) -> tuple[str, str]:
    """The reason and message of a failed run: a failed shard's own result where one reported, else
    the Job controller's."""
    failed = sorted(shard_results(pods, ok=False).items())
    failed_indexes = (job.get("status") or {}).get("failedIndexes") or ""
    where = f"shards {failed_indexes} failed" if failed_indexes else "the Job failed"
    if failed:
        index, result = failed[0]
        reason = result.reason if result.reason and result.reason[:1].isupper() else cond.Reason.JOB_FAILED
        return reason, f"{where}; shard {index}: {result.reason}: {result.error or 'no message'}"
    outcome = observe.job_outcome(job, pods, BatchScoreResult, jobs.WORKLOAD_CONTAINER)
    return outcome.reason or state.reason or cond.Reason.JOB_FAILED, f"{where}: {outcome.message or state.message}"


def observe_run(run: BatchRun, job: dict[str, Any], pods: list[dict[str, Any]], shards: int) -> BatchRun:
    """The run as its Job and pods show it now."""
    status = job.get("status") or {}
    done = indexes(status.get("completedIndexes"))
    results = {i: r for i, r in shard_results(pods, ok=True).items() if i in done}
    rows = sum(r.rows or 0 for r in results.values())
    worked = sum(r.seconds or 0.0 for r in results.values())
    update: dict[str, Any] = {
        "shards_succeeded": len(done),
        "shards_failed": len(indexes(status.get("failedIndexes"))),
        "rows": rows,
        "pod_rows_per_second": round(rows / worked, 1) if worked > 0 else None,
        "started_at": _time(status.get("startTime")) or run.started_at,
    }
    state = observe.job_phase(job)
    if state.active:
        phase = BatchPhase.RUNNING if status.get("active") or done else BatchPhase.PENDING
        update |= {"phase": phase, "message": f"{len(done)} of {shards} shards done, {rows} rows"}
        return run.model_copy(update=update)
    finished = _time(status.get("completionTime")) or _condition_time(job) or run.started_at
    start = update["started_at"]
    wall = (finished - start).total_seconds() if finished and start else 0.0
    update |= {"finished_at": finished, "rows_per_second": round(rows / wall, 1) if wall > 0 else None}
    if state.phase == observe.JobPhase.SUCCEEDED:
        missing = len(done) - len(results)
        note = f"; the rows of {missing} shards are not counted (their pods are gone)" if missing else ""
        message = f"{rows} rows scored by {len(done)} shards{note}"
        return run.model_copy(update=update | {"phase": BatchPhase.SUCCEEDED, "message": message})
    reason, message = _failure(job, pods, state)
    return run.model_copy(update=update | {"phase": BatchPhase.FAILED, "message": f"{reason}: {message}"[:1024]})


def _condition_time(job: dict[str, Any]) -> datetime | None:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            return _time(condition.get("lastTransitionTime"))
    return None


def lost(run: BatchRun, now: datetime) -> BatchRun:
    """A started run whose Job is gone before its outcome was recorded (deleted, or its TTL ran out
    while the operator was down)."""
    message = f"{cond.Reason.JOB_LOST}: Job {run.job} is gone and its outcome was never recorded"
    return run.model_copy(update={"phase": BatchPhase.FAILED, "finished_at": now, "message": message})


def run_reason(run: BatchRun) -> str:
    """The CamelCase reason a failed run's message starts with."""
    head = (run.message or "").split(":", 1)[0]
    return head if head[:1].isupper() and head.isalnum() else cond.Reason.JOB_FAILED


def summarize(
    work: BatchScoringStatus, shards: int, waiting: cond.State | None, generation: int, now: datetime
) -> None:
    """The top-level status from the latest run, Ready from it (or from what a new run waits for), and
    kstatus' Reconciling and Stalled."""
    latest = work.runs[-1] if work.runs else None
    if latest is not None:
        work.phase, work.version, work.rows, work.output = latest.phase, latest.version, latest.rows, latest.output
        work.shards, work.shards_succeeded, work.shards_failed = shards, latest.shards_succeeded, latest.shards_failed
        work.rows_per_second = latest.rows_per_second
        work.message = latest.message
    ready = _ready(latest, waiting)
    if waiting is not None and latest is None:
        work.message = waiting.message
    conditions = cond.set_state(work.conditions, cond.Type.READY, ready, now=now, generation=generation)
    active = latest is not None and latest.phase in (BatchPhase.PENDING, BatchPhase.RUNNING)
    working = cond.State(cond.TRUE, cond.Reason.JOB_RUNNING, ready.message) if active else None
    failed = latest is not None and latest.phase == BatchPhase.FAILED and waiting is None
    work.conditions = cond.with_kstatus(conditions, working=working, failed=failed, now=now, generation=generation)
    work.observed_generation = generation


def _ready(latest: BatchRun | None, waiting: cond.State | None) -> cond.State:
    if waiting is not None and (latest is None or latest.phase != BatchPhase.SUCCEEDED):
        return waiting
    if latest is None:
        return cond.State(cond.UNKNOWN, cond.Reason.INITIALIZING, "no run yet")
    if latest.phase == BatchPhase.SUCCEEDED:
        return cond.State(cond.TRUE, cond.Reason.SUCCEEDED, f"run {latest.job}: {latest.message}")
    if latest.phase == BatchPhase.FAILED:
        return cond.State(ConditionStatus.FALSE, run_reason(latest), f"run {latest.job}: {latest.message}")
    return cond.State(cond.UNKNOWN, cond.Reason.JOB_RUNNING, f"run {latest.job}: {latest.message or 'starting'}")
