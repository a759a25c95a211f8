"""Release events: settle the notify Jobs that finished, and start one for the events not yet sent.

The events are derived from the ledger (builders/events.py), so nothing has to be queued when a
transition happens: each run compares the ledger's event ids with the ids settled in
`status.events.settled` (delivered or dead-lettered). One notify Job runs at a time per Model and
carries a batch of up to MAX_BATCH events (their ids in an annotation); when it finished, its
result says which sinks failed from which event on: those (event, sink) pairs become dead letters
(bounded, with a Warning Event), the rest count as delivered. The Job is deleted once its batch is
settled and recorded, so a settled batch is never counted twice.

When events are first enabled, what the ledger already holds is history: it is settled unsent.
"""

from __future__ import annotations

from typing import Any

from mlops_operator import contracts
from mlops_operator.api.v1alpha1.events import (
    MAX_DEAD_LETTERS,
    MAX_RECENT_DELIVERED,
    MAX_SETTLED_IDS,
    DeadLetter,
    EventsResult,
    EventsStatus,
)
from mlops_operator.builders import events, jobs
from mlops_operator.reconcilers import observe
from mlops_operator.reconcilers.context import warning
from mlops_operator.reconcilers.model.children import ModelRun


def _ids_of(job: dict[str, Any]) -> list[str]:
    raw = (job["metadata"].get("annotations") or {}).get(events.ANNOTATION_EVENT_IDS, "")
    return [i for i in str(raw).split(",") if i]


def ledger_events(run: ModelRun) -> list[dict[str, Any]]:
    model = run.resource
    return [events.cloud_event(model, t, run.now) for t in events.transitions(model, run.work.versions)]


async def observe_events(run: ModelRun, events_jobs: list[dict[str, Any]]) -> None:
    """Settle every finished notify Job whose batch is not settled yet; keep `settled` to the ledger."""
    model, work = run.resource, run.work
    if model.spec.events is None:
        return
    current = [str(e["id"]) for e in ledger_events(run)]
    if work.events is None:
        work.events = EventsStatus(since=run.now, settled=current[-MAX_SETTLED_IDS:])
        return
    state = work.events
    for job in events_jobs:
        ids = _ids_of(job)
        if not ids or set(ids) <= set(state.settled) or observe.job_phase(job).active:
            continue
        pods = await run.ctx.kube.job_pods(job)
        outcome = observe.job_outcome(job, pods, EventsResult, jobs.WORKLOAD_CONTAINER)
        _settle(run, state, str(job["metadata"]["name"]), ids, outcome)
    # ids of transitions the ledger no longer holds (pruned versions) cannot come back: drop them
    known = set(current)
    state.settled = [i for i in state.settled if i in known][-MAX_SETTLED_IDS:]


def _settle(
    run: ModelRun, state: EventsStatus, job: str, ids: list[str], outcome: observe.JobOutcome[EventsResult]
) -> None:
    """Record a finished batch: delivered ids, and a dead letter per (event, sink) that failed."""
    by_id = {str(e["id"]): e for e in ledger_events(run)}
    result = outcome.result
    sinks = len(run.resource.spec.events.sinks) if run.resource.spec.events else 1
    if outcome.phase == observe.JobPhase.SUCCEEDED and result is not None:
        # a sink's later events were not attempted once one exhausted its retries: 0 attempts
        letters = [
            _letter(ids[p], by_id.get(ids[p]), f.sink, f.reason, f.attempts if p == f.first_failed else 0, f.error, run)
            for f in result.failures
            for p in range(f.first_failed, len(ids))
        ]
        state.message = None
    else:  # the batch was not attempted, or the pod died: every event of it, for every sink
        message = f"Job {job}: {outcome.reason}: {outcome.message}"[:1024]
        letters = [
            _letter(i, by_id.get(i), s, outcome.reason, 0, outcome.message, run) for i in ids for s in range(sinks)
        ]
        state.message = message
    dead = {letter.id for letter in letters}
    delivered = [i for i in ids if i not in dead]
    state.delivered += len(delivered)
    state.recent = (state.recent + delivered)[-MAX_RECENT_DELIVERED:]
    state.dead_letters = (state.dead_letters + letters)[-MAX_DEAD_LETTERS:]
    state.settled = (state.settled + [i for i in ids if i not in state.settled])[-MAX_SETTLED_IDS:]
    state.job = job
    for sink in sorted({letter.sink for letter in letters}):
        mine = [letter for letter in letters if letter.sink == sink]
        run.note(
            warning(
                "EventDeadLettered",
                f"sink {sink} did not take {len(mine)} release event(s) after {mine[0].attempts} attempt(s) "
                f"({mine[0].reason}); see status.events.deadLetters",
            )
        )


def _letter(
    event_id: str,
    event: dict[str, Any] | None,
    sink: int,
    reason: str | None,
    attempts: int,
    error: str | None,
    run: ModelRun,
) -> DeadLetter:
    subject = str(event.get("subject", "0")) if event else "0"
    return DeadLetter(
        id=event_id,
        type=str(event.get("type", "unknown"))[:256] if event else "unknown",
        version=int(subject) if subject.isdigit() else 0,
        sink=sink,
        reason=(reason or "Unknown")[:256],
        attempts=attempts,
        error=(error or "")[:1024] or None,
        at=run.now,
    )


async def start_events(run: ModelRun, events_jobs: list[dict[str, Any]]) -> None:
    """After the status patch: delete the settled Jobs, then start one for the next batch."""
    model, work, kube = run.resource, run.work, run.ctx.kube
    if model.spec.events is None or work.events is None:
        return
    settled = set(work.events.settled)
    running = False
    for job in events_jobs:
        if observe.job_phase(job).active:
            running = True
        elif set(_ids_of(job)) <= settled:
            await kube.delete_child(job, model.uid)
    pending = [e for e in ledger_events(run) if str(e["id"]) not in settled][: events.MAX_BATCH]
    if running or not pending:
        return
    await run.ctx.prepare_namespace(run.key.namespace)
    await kube.create_or_adopt(events.events_job(model, pending, run.ctx.settings))
    run.ctx.metrics.jobs_created.labels(contracts.Component.EVENTS).inc()


__all__ = ["ledger_events", "observe_events", "start_events"]
