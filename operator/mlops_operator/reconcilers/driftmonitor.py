"""DriftMonitor: a drift-check Job per scheduled tick; on drift, ask the Model to retrain.

The Job name carries the tick (`<monitor>-drift-<yyyymmddhhmmss>`) and `status.lastCheck` records
the tick when its Job is created, so a restarted operator neither re-fires a tick nor replays the
ticks it missed. The retrain request is an annotation on the Model whose value is derived from the
tick, so writing it twice (a crash between annotate and status patch) is the same request; the
Model's own cooldown and "one training at a time" rules still apply on its side.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from mlops_operator import conditions as cond
from mlops_operator import contracts
from mlops_operator.api.results import DriftResult
from mlops_operator.api.v1alpha1.dataset import Dataset
from mlops_operator.api.v1alpha1.driftmonitor import (
    CheckRecord,
    DriftMonitor,
    DriftMonitorStatus,
    FeatureScore,
)
from mlops_operator.api.v1alpha1.model import Model
from mlops_operator.builders import jobs, meta
from mlops_operator.kube import DATASET, DRIFT_MONITOR, JOB, MODEL, POD
from mlops_operator.reconcilers import observe, schedule
from mlops_operator.reconcilers.context import (
    Context,
    EventSpec,
    Key,
    Outcome,
    deleting,
    normal,
    status_patch,
    validation_message,
    warning,
)

WAIT_FOR_DEPENDENCY = 30.0
VERDICT_REASONS = {
    "Drift": cond.Reason.DRIFT,
    "NoDrift": cond.Reason.NO_DRIFT,
    "NotEnoughData": cond.Reason.NOT_ENOUGH_DATA,
    "SchemaMismatch": cond.Reason.SCHEMA_MISMATCH,
    "Failed": cond.Reason.CHECK_FAILED,
}


def tick_of(job: dict[str, Any]) -> datetime | None:
    raw = (job["metadata"].get("annotations") or {}).get(meta.ANNOTATION_TICK)
    try:
        return datetime.fromisoformat(raw) if raw else None
    except ValueError:
        return None


def retrain_annotation(tick: datetime, drifted: list[str]) -> str:
    features = ", ".join(drifted[:10]) + (f" and {len(drifted) - 10} more" if len(drifted) > 10 else "")
    return f"{tick.strftime('%Y-%m-%dT%H:%M:%SZ')};drift: {features or 'dataset drift'}"[:512]


def record_check(
    work: DriftMonitorStatus,
    monitor: DriftMonitor,
    job_name: str,
    tick: datetime,
    outcome: observe.JobOutcome[DriftResult],
    now: datetime,
) -> list[EventSpec]:
    """Fold a finished check into status: verdict, scores, bounded history, breach count. Pure."""
    result = outcome.result
    if outcome.phase == observe.JobPhase.SUCCEEDED and result is not None:
        verdict = result.verdict
        message = result.message or ""
    else:
        verdict = "Failed"
        message = outcome.message
        result = result if result is not None else DriftResult(ok=False, verdict="Failed", error=outcome.message)
    work.last_verdict = verdict
    if verdict in ("Drift", "NoDrift"):
        work.drifted_share = result.drifted_share
        work.feature_scores = [
            FeatureScore(name=s.name, test=s.test, score=s.score, threshold=s.threshold, drifted=s.drifted)
            for s in result.scores
        ]
        work.report_uri = result.report_uri or work.report_uri
        work.consecutive_breaches = work.consecutive_breaches + 1 if verdict == "Drift" else 0
    # NotEnoughData / SchemaMismatch / Failed are no verdict on drift: the breach count stands.
    record = CheckRecord(
        time=tick,
        verdict=verdict,
        drifted_share=result.drifted_share,
        drifted_features=list(result.drifted_features),
        samples=result.samples,
        report_uri=result.report_uri,
        job=job_name,
        message=(message or None) and message[:1024],
    )
    work.history = [*work.history, record][-monitor.spec.history_limit :]
    if verdict == "Drift":
        return [
            warning(
                "DriftDetected",
                f"drift at {tick.isoformat()}: {result.drifted_share} of features drifted "
                f"({', '.join(result.drifted_features[:10])})",
            )
        ]
    if verdict == "Failed":
        return [warning(outcome.reason or cond.Reason.CHECK_FAILED, f"drift check {job_name} failed: {message}")]
    if verdict in ("NotEnoughData", "SchemaMismatch"):
        return [warning(verdict, message or verdict)]
    return []


def should_retrain(work: DriftMonitorStatus, monitor: DriftMonitor, now: datetime) -> tuple[bool, str]:
    """Drift + retrain wanted + enough consecutive breaches + cooldown passed. Pure."""
    action = monitor.spec.action
    if work.last_verdict != "Drift" or not action.retrain:
        return False, ""
    if work.consecutive_breaches < action.consecutive_breaches:
        return False, f"{work.consecutive_breaches} of {action.consecutive_breaches} consecutive breaches"
    if work.last_retrain_request is not None and now < work.last_retrain_request + timedelta(
        seconds=action.cooldown_seconds
    ):
        return (
            False,
            f"cooldown until {(work.last_retrain_request + timedelta(seconds=action.cooldown_seconds)).isoformat()}",
        )
    return True, ""


def summarize(
    work: DriftMonitorStatus,
    monitor: DriftMonitor,
    ready: cond.State,
    now: datetime,
) -> None:
    gen = monitor.generation
    work.conditions = cond.set_condition(work.conditions, cond.Type.READY, *ready, now=now, generation=gen)
    verdict = work.last_verdict
    if verdict == "Drift":
        detected = (
            cond.TRUE,
            cond.Reason.DRIFT,
            f"{work.drifted_share} of features drifted at the last check",
        )
    elif verdict == "NoDrift":
        detected = (cond.FALSE, cond.Reason.NO_DRIFT, "no drift at the last check")
    elif verdict is None:
        detected = (cond.UNKNOWN, cond.Reason.WAITING_FOR_SCHEDULE, "no check has finished yet")
    else:
        last = work.history[-1].message if work.history else ""
        detected = (cond.UNKNOWN, VERDICT_REASONS.get(verdict, cond.Reason.CHECK_FAILED), last or verdict)
    work.conditions = cond.set_condition(work.conditions, cond.Type.DRIFT_DETECTED, *detected, now=now, generation=gen)
    work.observed_generation = gen


async def reconcile(ctx: Context, key: Key) -> Outcome:
    kube = ctx.kube
    body = await kube.get(DRIFT_MONITOR, key.namespace, key.name)
    if body is None or deleting(body):
        return Outcome()
    now = ctx.clock()
    try:
        monitor = DriftMonitor.model_validate(body)
    except ValidationError as exc:
        await _write(
            ctx,
            body,
            None,
            [warning(cond.Reason.INVALID_SPEC, validation_message(exc))],
            now,
            ready=(cond.FALSE, cond.Reason.INVALID_SPEC, validation_message(exc)),
        )
        return Outcome()
    work = (monitor.status or DriftMonitorStatus()).model_copy(deep=True)
    events: list[EventSpec] = []
    spec = monitor.spec

    model_body = await kube.get(MODEL, key.namespace, spec.model_ref.name)
    if model_body is None:
        msg = f"Model {spec.model_ref.name} does not exist in namespace {key.namespace}"
        await _write(
            ctx,
            body,
            work,
            events,
            now,
            ready=(cond.FALSE, cond.Reason.MODEL_NOT_FOUND, msg),
            monitor=monitor,
        )
        return Outcome(requeue_after=WAIT_FOR_DEPENDENCY)

    if work.active_job:
        events += await _observe_check(ctx, monitor, work, model_body, now)

    profile_uri = await _baseline(ctx, monitor, model_body)
    ready: cond.State
    requeue: float | None = None
    if profile_uri is None:
        ready = (
            cond.FALSE,
            cond.Reason.BASELINE_NOT_READY,
            "the baseline Dataset has no ready version (profile) yet",
        )
        requeue = WAIT_FOR_DEPENDENCY
    else:
        ready = (cond.TRUE, cond.Reason.READY, "checks run on schedule")
        if not work.active_job:
            tick = schedule.due(spec.schedule, now, work.last_check)
            if tick is not None:
                plan = jobs.drift_plan(monitor, tick=tick, profile_uri=profile_uri, settings=ctx.settings)
                await ctx.prepare_namespace(key.namespace)
                job, created = await kube.create_or_adopt(jobs.drift_job(monitor, plan, tick, ctx.settings))
                if created:
                    ctx.metrics.jobs_created.labels(contracts.Component.DRIFT).inc()
                work.active_job = job["metadata"]["name"]
                work.last_check = tick
        work.next_check = schedule.next_tick(spec.schedule, max(now, work.last_check or now))
        if not work.active_job:  # a running check wakes us through its Job's events
            requeue = schedule.seconds_until(work.next_check, now) + 0.5
    _export_scores(ctx, monitor, work)
    await _write(ctx, body, work, events, now, ready=ready, monitor=monitor)
    return Outcome(requeue_after=requeue)


async def _observe_check(
    ctx: Context, monitor: DriftMonitor, work: DriftMonitorStatus, model_body: dict[str, Any], now: datetime
) -> list[EventSpec]:
    kube, ns, job_name = ctx.kube, monitor.namespace, work.active_job or ""
    job = await kube.get(JOB, ns, job_name)
    tick = (tick_of(job) if job else None) or work.last_check or now
    if job is None:
        outcome: observe.JobOutcome[DriftResult] = observe.JobOutcome(
            observe.JobPhase.FAILED,
            cond.Reason.JOB_LOST,
            f"drift Job {job_name} disappeared before its result was read",
        )
    else:
        if observe.job_phase(job)[0] == observe.JobPhase.ACTIVE:
            return []
        pods = await kube.list(POD, ns, {meta.LABEL_JOB_NAME_LEGACY: job_name})
        outcome = observe.job_outcome(job, pods, DriftResult, jobs.WORKLOAD_CONTAINER)
    events = record_check(work, monitor, job_name, tick, outcome, now)
    work.active_job = None
    if work.last_verdict == "Drift":
        events += await _act_on_drift(ctx, monitor, work, model_body, tick, outcome.result, now)
    return events


async def _act_on_drift(
    ctx: Context,
    monitor: DriftMonitor,
    work: DriftMonitorStatus,
    model_body: dict[str, Any],
    tick: datetime,
    result: DriftResult | None,
    now: datetime,
) -> list[EventSpec]:
    events: list[EventSpec] = []
    drifted = list(result.drifted_features) if result else []
    spec, ns = monitor.spec, monitor.namespace
    if spec.action.webhook is not None:
        payload = jobs.webhook_payload(
            monitor,
            verdict="Drift",
            drifted_features=drifted,
            drifted_share=work.drifted_share,
            report_uri=work.report_uri,
            tick=tick,
        )
        await ctx.kube.create_or_adopt(jobs.notify_job(monitor, payload, tick, ctx.settings))
    wanted, why_not = should_retrain(work, monitor, now)
    if not wanted:
        if why_not:
            events.append(normal("RetrainNotRequested", f"drift, but no retrain request: {why_not}"))
        return events
    if await _training_active(ctx, model_body):
        events.append(
            normal(
                "RetrainSkipped",
                f"drift, but Model {spec.model_ref.name} is training already (TrainingInProgress)",
            )
        )
        return events
    value = retrain_annotation(tick, drifted)
    await ctx.kube.annotate(MODEL, ns, spec.model_ref.name, {contracts.ANNOTATION_RETRAIN_REQUESTED: value})
    work.last_retrain_request = now
    ctx.metrics.retrain_requests.labels(ns, monitor.name, spec.model_ref.name).inc()
    events.append(normal("RetrainRequested", f"asked Model {spec.model_ref.name} to retrain: {value}"))
    return events


async def _training_active(ctx: Context, model_body: dict[str, Any]) -> bool:
    if (model_body.get("status") or {}).get("activeTraining"):
        return True
    name = model_body["metadata"]["name"]
    train_jobs = await ctx.kube.list(
        JOB,
        model_body["metadata"]["namespace"],
        {contracts.LABEL_MODEL: name, contracts.LABEL_COMPONENT: str(contracts.Component.TRAIN)},
    )
    return any(observe.job_phase(j)[0] == observe.JobPhase.ACTIVE for j in train_jobs)


async def _baseline(ctx: Context, monitor: DriftMonitor, model_body: dict[str, Any]) -> str | None:
    ref = monitor.spec.dataset_ref
    name = ref.name if ref is not None else ((model_body.get("spec") or {}).get("datasetRef") or {}).get("name")
    if not name:
        return None
    body = await ctx.kube.get(DATASET, monitor.namespace, name)
    if body is None:
        return None
    try:
        status = Dataset.model_validate(body).status
    except ValidationError:
        return None
    return status.profile_uri if status is not None and status.version else None


def _export_scores(ctx: Context, monitor: DriftMonitor, work: DriftMonitorStatus) -> None:
    ctx.metrics.record_drift(
        monitor.namespace,
        monitor.name,
        monitor.spec.model_ref.name,
        ((s.name, str(s.test), s.score, s.drifted) for s in work.feature_scores),
        work.drifted_share,
        work.last_verdict,
    )


async def _write(
    ctx: Context,
    body: dict[str, Any],
    work: DriftMonitorStatus | None,
    events: list[EventSpec],
    now: datetime,
    *,
    ready: cond.State,
    monitor: DriftMonitor | None = None,
) -> None:
    if work is None:
        try:
            work = DriftMonitorStatus.model_validate(body.get("status") or {})
        except ValidationError:
            work = DriftMonitorStatus()
    if monitor is not None:
        summarize(work, monitor, ready, now)
    else:
        generation = int(body["metadata"].get("generation") or 0)
        work.conditions = cond.set_condition(work.conditions, cond.Type.READY, *ready, now=now, generation=generation)
        work.observed_generation = generation
    patch = status_patch(body.get("status"), work.dump())
    meta_ = body["metadata"]
    if patch:
        await ctx.kube.patch_status(DRIFT_MONITOR, meta_["namespace"], meta_["name"], patch)
    for event in events:
        await ctx.kube.event(body, event.type, event.reason, event.message, now=now)


__all__ = ["Model", "reconcile"]
