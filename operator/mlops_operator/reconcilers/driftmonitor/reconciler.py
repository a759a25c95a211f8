"""DriftMonitor: a drift-check Job per scheduled tick; on a fired trigger, refresh the data, then retrain.

The Job name carries the tick (`<monitor>-drift-<yyyymmddhhmmss>`) and `status.lastCheck` records
the tick when its Job is created, so a restarted operator neither re-fires a tick nor replays the
ticks it missed. The check compares with the profile of the dataset version the serving model was
trained on (baseline.py), scores prediction drift and live quality, and the triggers (triggers.py)
decide whether it is a breach; what a breach leads to is in actions.py.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from pydantic import ValidationError

from mlops_operator import conditions as cond
from mlops_operator import contracts
from mlops_operator.api.plans import DriftPlan, LiveQualityPlan, PredictionDriftPlan, QualityPoint, RetentionPlan
from mlops_operator.api.results import DriftResult
from mlops_operator.api.v1alpha1.dataset import Dataset
from mlops_operator.api.v1alpha1.driftmonitor import Baseline, DriftMonitor, DriftMonitorStatus
from mlops_operator.api.v1alpha1.model import Model
from mlops_operator.builders import jobs
from mlops_operator.kube import DATASET, DRIFT_MONITOR, JOB, MODEL, POD
from mlops_operator.reconcilers import observe, schedule
from mlops_operator.reconcilers.context import EventSpec, Key, ReconcileContext, ReconcileResult
from mlops_operator.reconcilers.driftmonitor import actions, baseline, checks, triggers
from mlops_operator.reconcilers.driftmonitor.actions import DriftMonitorRun
from mlops_operator.reconcilers.skeleton import KindReconciler

WAIT_FOR_DEPENDENCY = 30.0


async def reconcile(ctx: ReconcileContext, key: Key) -> ReconcileResult:
    return await RECONCILER.reconcile(ctx, key)


async def steps(run: DriftMonitorRun) -> None:
    """3. observe the Model, the running check and a pending refresh, 4. decide whether a tick is
    due, 5. act: start its Job."""
    ctx, monitor, work, now = run.ctx, run.resource, run.work, run.now
    model, model_body, ready = await _read_model(ctx, monitor)
    if model is None or model_body is None:
        checks.summarize(work, monitor, ready, now)
        run.wake_in(WAIT_FOR_DEPENDENCY)
        return
    if work.active_job:
        run.note(*await _observe_check(run, model))
    run.note(*await actions.follow_refresh(run, model, model_body))
    chosen = await _baseline(ctx, monitor, model)
    if chosen is None:
        ready = cond.State(
            cond.FALSE, cond.Reason.BASELINE_NOT_READY, "the baseline Dataset has no ready version (profile) yet"
        )
        run.wake_in(WAIT_FOR_DEPENDENCY)
    else:
        ready = cond.State(cond.TRUE, cond.Reason.READY, "checks run on schedule")
        work.baseline = chosen
        if not work.active_job:
            await _start_due_check(run, model, chosen)
        work.next_check = schedule.next_tick(monitor.spec.schedule, max(now, work.last_check or now))
        if not work.active_job:  # a running check wakes us through its Job's events
            run.wake_in(schedule.seconds_until(work.next_check, now) + 0.5)
    _export(ctx, monitor, work)
    checks.summarize(work, monitor, ready, now)


async def _read_model(
    ctx: ReconcileContext, monitor: DriftMonitor
) -> tuple[Model | None, dict[str, Any] | None, cond.State]:
    """The monitored Model, typed and as read; None with the Ready state that says why it cannot be used."""
    name, ns = monitor.spec.model_ref.name, monitor.namespace
    body = await ctx.kube.get(MODEL, ns, name)
    if body is None:
        missing = f"Model {name} does not exist in namespace {ns}"
        return None, None, cond.State(cond.FALSE, cond.Reason.MODEL_NOT_FOUND, missing)
    try:
        return Model.model_validate(body), body, cond.State(cond.TRUE, cond.Reason.READY, "")
    except ValidationError:
        return None, None, cond.State(cond.FALSE, cond.Reason.MODEL_INVALID, f"Model {name} has an invalid spec")


def check_plan(
    plan: DriftPlan, monitor: DriftMonitor, model: Model, work: DriftMonitorStatus, chosen: Baseline, store_uri: str
) -> DriftPlan:
    """The builder's plan plus what only the reconciler knows: live quality (task, metric, the
    history so far), prediction drift and why the baseline is not the serving version's data."""
    spec, tick = monitor.spec, plan.window_end
    metric = triggers.quality_metric(monitor, model)
    history = [
        QualityPoint(time=h.time, value=h.quality, labelled=h.labelled or 0)
        for h in work.history
        if h.quality_metric == metric and h.labelled
    ]
    labels = contracts.labels_prefix(store_uri, monitor.namespace, model.name)
    shadow = contracts.shadow_prefix(store_uri, monitor.namespace, model.name)
    quality = LiveQualityPlan(
        labels_prefix=labels,
        shadow_prefix=shadow,
        window_start=tick - timedelta(seconds=spec.quality_window_seconds or spec.window_seconds),
        task=model.spec.task,
        metric=metric,
        history=history[-100:],
    )
    prediction = PredictionDriftPlan(
        target=model.spec.target,
        test=spec.triggers.prediction_drift.test,
        threshold=spec.triggers.prediction_drift.threshold,
    )
    retention = retention_plan(monitor, model, [labels, shadow], plan)
    return plan.model_copy(
        update={
            "quality": quality,
            "prediction_drift": prediction,
            "baseline_note": chosen.message,
            "retention": retention,
        }
    )


def retention_plan(monitor: DriftMonitor, model: Model, prefixes: list[str], plan: DriftPlan) -> RetentionPlan:
    """Collected rows, labels and recorded shadow rows past the Model's retention (never less than this
    monitor's windows reach back), and check runs past the monitor's bound."""
    reach = max(monitor.spec.window_seconds, monitor.spec.quality_window_seconds or 0)
    days = max(model.spec.serving.collection.retention_days, math.ceil(reach / 86400))
    return RetentionPlan(
        partition_prefixes=[plan.collected_prefix, *prefixes],
        max_age_days=days,
        runs_dir=plan.output_dir.rstrip("/").rsplit("/", 1)[0],
        keep_runs=max(monitor.spec.retention.reports, monitor.spec.history_limit),  # status links to them
    )


async def _start_due_check(run: DriftMonitorRun, model: Model, chosen: Baseline) -> None:
    """The drift Job of the tick that is due, if one is; `lastCheck` records the tick at creation."""
    ctx, monitor, work = run.ctx, run.resource, run.work
    tick = schedule.due(monitor.spec.schedule, run.now, work.last_check)
    if tick is None:
        return
    plan = jobs.drift_plan(monitor, tick=tick, profile_uri=chosen.profile_uri, settings=ctx.settings)
    plan = check_plan(plan, monitor, model, work, chosen, ctx.settings.store_uri)
    await ctx.prepare_namespace(run.key.namespace)
    job, created = await ctx.kube.create_or_adopt(jobs.drift_job(monitor, plan, tick, ctx.settings))
    if created:
        ctx.metrics.jobs_created.labels(contracts.Component.DRIFT).inc()
    work.active_job = job["metadata"]["name"]
    work.last_check = tick


async def _observe_check(run: DriftMonitorRun, model: Model) -> list[EventSpec]:
    ctx, monitor, work, now = run.ctx, run.resource, run.work, run.now
    kube, ns, job_name = ctx.kube, monitor.namespace, work.active_job or ""
    job = await kube.get(JOB, ns, job_name)
    tick = (checks.tick_of(job) if job else None) or work.last_check or now
    if job is None:
        outcome: observe.JobOutcome[DriftResult] = observe.JobOutcome(
            observe.JobPhase.FAILED,
            cond.Reason.JOB_LOST,
            f"drift Job {job_name} disappeared before its result was read",
        )
    else:
        if observe.job_phase(job).active:
            return []
        pods = await kube.list(POD, ns, {contracts.LABEL_JOB_NAME_LEGACY: job_name})
        outcome = observe.job_outcome(job, pods, DriftResult, jobs.WORKLOAD_CONTAINER)
    events = checks.record_check(work, monitor, job_name, tick, outcome, now, work.baseline)
    work.active_job = None
    if work.fired:
        events += await actions.on_fired(run, model, tick, outcome.result)
    return events


async def _baseline(ctx: ReconcileContext, monitor: DriftMonitor, model: Model) -> Baseline | None:
    body = await ctx.kube.get(DATASET, monitor.namespace, baseline.dataset_name(monitor, model))
    if body is None:
        return None
    try:
        dataset = Dataset.model_validate(body)
    except ValidationError:
        return None
    return baseline.choose(monitor, model, dataset)


def _export(ctx: ReconcileContext, monitor: DriftMonitor, work: DriftMonitorStatus) -> None:
    ns, name, model = monitor.namespace, monitor.name, monitor.spec.model_ref.name
    ctx.metrics.record_drift(
        ns,
        name,
        model,
        ((s.name, str(s.test), s.score, s.drifted) for s in work.feature_scores),
        work.drifted_share,
        work.last_verdict,
    )
    quality, prediction = work.live_quality, work.prediction_drift
    ctx.metrics.record_live_quality(
        ns,
        name,
        model,
        quality=(quality.metric, quality.value, quality.labelled) if quality is not None else None,
        prediction_drift=(str(prediction.test), prediction.score) if prediction is not None else None,
        fired=work.fired if work.history else None,
    )


RECONCILER = KindReconciler(
    kind=DRIFT_MONITOR,
    resource=DriftMonitor,
    steps=steps,
    invalid_conditions=(cond.Type.READY,),
)
