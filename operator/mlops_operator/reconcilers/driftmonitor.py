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
from mlops_operator.reconcilers.context import EventSpec, Key, ReconcileContext, ReconcileResult, normal, warning
from mlops_operator.reconcilers.skeleton import KindReconciler, Run

DriftMonitorRun = Run[DriftMonitor, DriftMonitorStatus]

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
    work.conditions = cond.set_state(work.conditions, cond.Type.READY, ready, now=now, generation=gen)
    verdict = work.last_verdict
    if verdict == "Drift":
        share = f"{work.drifted_share} of features drifted at the last check"
        detected = cond.State(cond.TRUE, cond.Reason.DRIFT, share)
    elif verdict == "NoDrift":
        detected = cond.State(cond.FALSE, cond.Reason.NO_DRIFT, "no drift at the last check")
    elif verdict is None:
        detected = cond.State(cond.UNKNOWN, cond.Reason.WAITING_FOR_SCHEDULE, "no check has finished yet")
    else:
        last = work.history[-1].message if work.history else ""
        detected = cond.State(cond.UNKNOWN, VERDICT_REASONS.get(verdict, cond.Reason.CHECK_FAILED), last or verdict)
    work.conditions = cond.set_state(work.conditions, cond.Type.DRIFT_DETECTED, detected, now=now, generation=gen)
    work.observed_generation = gen


async def reconcile(ctx: ReconcileContext, key: Key) -> ReconcileResult:
    return await RECONCILER.reconcile(ctx, key)


async def steps(run: DriftMonitorRun) -> None:
    """3. observe the Model and the running check, 4. decide whether a tick is due, 5. act: start its Job."""
    ctx, monitor, work, now = run.ctx, run.resource, run.work, run.now
    model, ready = await _read_model(ctx, monitor)
    if model is None:
        summarize(work, monitor, ready, now)
        run.wake_in(WAIT_FOR_DEPENDENCY)
        return
    if work.active_job:
        run.note(*await _observe_check(ctx, monitor, work, model, now))
    profile_uri = await _baseline(ctx, monitor, model)
    if profile_uri is None:
        ready = cond.State(
            cond.FALSE, cond.Reason.BASELINE_NOT_READY, "the baseline Dataset has no ready version (profile) yet"
        )
        run.wake_in(WAIT_FOR_DEPENDENCY)
    else:
        ready = cond.State(cond.TRUE, cond.Reason.READY, "checks run on schedule")
        if not work.active_job:
            await _start_due_check(run, profile_uri)
        work.next_check = schedule.next_tick(monitor.spec.schedule, max(now, work.last_check or now))
        if not work.active_job:  # a running check wakes us through its Job's events
            run.wake_in(schedule.seconds_until(work.next_check, now) + 0.5)
    _export_scores(ctx, monitor, work)
    summarize(work, monitor, ready, now)


async def _read_model(ctx: ReconcileContext, monitor: DriftMonitor) -> tuple[Model | None, cond.State]:
    """The monitored Model, typed; None with the Ready state that says why it cannot be used."""
    name, ns = monitor.spec.model_ref.name, monitor.namespace
    body = await ctx.kube.get(MODEL, ns, name)
    if body is None:
        missing = f"Model {name} does not exist in namespace {ns}"
        return None, cond.State(cond.FALSE, cond.Reason.MODEL_NOT_FOUND, missing)
    try:
        return Model.model_validate(body), cond.State(cond.TRUE, cond.Reason.READY, "")
    except ValidationError:
        return None, cond.State(cond.FALSE, cond.Reason.MODEL_INVALID, f"Model {name} has an invalid spec")


async def _start_due_check(run: DriftMonitorRun, profile_uri: str) -> None:
    """The drift Job of the tick that is due, if one is; `lastCheck` records the tick at creation."""
    ctx, monitor, work = run.ctx, run.resource, run.work
    tick = schedule.due(monitor.spec.schedule, run.now, work.last_check)
    if tick is None:
        return
    plan = jobs.drift_plan(monitor, tick=tick, profile_uri=profile_uri, settings=ctx.settings)
    await ctx.prepare_namespace(run.key.namespace)
    job, created = await ctx.kube.create_or_adopt(jobs.drift_job(monitor, plan, tick, ctx.settings))
    if created:
        ctx.metrics.jobs_created.labels(contracts.Component.DRIFT).inc()
    work.active_job = job["metadata"]["name"]
    work.last_check = tick


async def _observe_check(
    ctx: ReconcileContext, monitor: DriftMonitor, work: DriftMonitorStatus, model: Model, now: datetime
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
        if observe.job_phase(job).active:
            return []
        pods = await kube.list(POD, ns, {meta.LABEL_JOB_NAME_LEGACY: job_name})
        outcome = observe.job_outcome(job, pods, DriftResult, jobs.WORKLOAD_CONTAINER)
    events = record_check(work, monitor, job_name, tick, outcome, now)
    work.active_job = None
    if work.last_verdict == "Drift":
        events += await _act_on_drift(ctx, monitor, work, model, tick, outcome.result, now)
    return events


async def _act_on_drift(
    ctx: ReconcileContext,
    monitor: DriftMonitor,
    work: DriftMonitorStatus,
    model: Model,
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
    if await _training_active(ctx, model):
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


async def _training_active(ctx: ReconcileContext, model: Model) -> bool:
    if model.status is not None and model.status.active_training is not None:
        return True
    train_jobs = await ctx.kube.list(
        JOB,
        model.namespace,
        {contracts.LABEL_MODEL: model.name, contracts.LABEL_COMPONENT: str(contracts.Component.TRAIN)},
    )
    return any(observe.job_phase(j).active for j in train_jobs)


async def _baseline(ctx: ReconcileContext, monitor: DriftMonitor, model: Model) -> str | None:
    ref = monitor.spec.dataset_ref
    name = ref.name if ref is not None else model.spec.dataset_ref.name
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


def _export_scores(ctx: ReconcileContext, monitor: DriftMonitor, work: DriftMonitorStatus) -> None:
    ctx.metrics.record_drift(
        monitor.namespace,
        monitor.name,
        monitor.spec.model_ref.name,
        ((s.name, str(s.test), s.score, s.drifted) for s in work.feature_scores),
        work.drifted_share,
        work.last_verdict,
    )


RECONCILER = KindReconciler(
    kind=DRIFT_MONITOR,
    resource=DriftMonitor,
    status=DriftMonitorStatus,
    steps=steps,
    invalid_conditions=(cond.Type.READY,),
)
