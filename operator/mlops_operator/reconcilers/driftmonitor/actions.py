"""What a fired trigger leads to: a webhook, then the Dataset's refresh, then a retrain only on new data.

    trigger fires (after consecutiveBreaches, outside the cooldown, not while the Model trains)
      └ refreshDataset: annotate the Dataset (mlops.dev/refresh-requested), status.pendingRefresh
          └ each reconcile reads the Dataset's status.lastRefresh (refresh.outcome):
              NewVersion → the Model retrains: by itself on a dataset change (retrain.onDatasetChange),
                           else the monitor writes the retrain annotation
              Unchanged  → NoNewData: condition, Events on the monitor and on the Model, no retrain
                           (with the Model's retrain.productionLabels: the retrain annotation, and
                           the Model trains if labels arrived since its serving version trained)
              Failed / no answer in refreshTimeoutSeconds → RefreshFailed / RefreshTimedOut
      └ refreshDataset false: the retrain annotation at once (the Model answers a drift or quality
        request on the data its serving version was trained on with NoNewData itself)

Every annotation value is derived from the check's tick, so writing it again after a crash between
the write and the status patch is the same request.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mlops_operator import conditions as cond
from mlops_operator import contracts
from mlops_operator.api.results import DriftResult
from mlops_operator.api.v1alpha1.driftmonitor import DriftMonitor, DriftMonitorStatus
from mlops_operator.api.v1alpha1.model import Model
from mlops_operator.builders import jobs
from mlops_operator.kube import DATASET, JOB, MODEL
from mlops_operator.reconcilers import observe
from mlops_operator.reconcilers.context import EventSpec, ReconcileContext, normal, warning
from mlops_operator.reconcilers.driftmonitor import checks, refresh, triggers
from mlops_operator.reconcilers.skeleton import Run

DriftMonitorRun = Run[DriftMonitor, DriftMonitorStatus]
REFRESH_POLL_SECONDS = 15.0


async def on_fired(run: DriftMonitorRun, model: Model, tick: datetime, result: DriftResult | None) -> list[EventSpec]:
    """A check whose triggers fired: notify, then (if the monitor acts now) refresh or retrain."""
    ctx, monitor, work = run.ctx, run.resource, run.work
    if monitor.spec.action.webhook is not None:
        await _notify(ctx, monitor, work, tick, result)
    wanted, why_not = triggers.should_retrain(work, monitor, run.now)
    reasons = triggers.evaluate(monitor, result).reasons
    if not wanted:
        message = f"{', '.join(work.fired)} fired, but no retrain request: {why_not}"
        return [normal("RetrainNotRequested", message)] if why_not else []
    if await training_active(ctx, model):
        message = f"{', '.join(work.fired)} fired, but Model {model.name} is training already (TrainingInProgress)"
        return [normal("RetrainSkipped", message)]
    value = triggers.request_value(tick, reasons)
    if not monitor.spec.action.refresh_dataset:
        return await request_retrain(run, model, value)
    dataset = model.spec.dataset_ref.name  # the data the Model retrains on
    body = await ctx.kube.get(DATASET, monitor.namespace, dataset)
    await ctx.kube.annotate(DATASET, monitor.namespace, dataset, {refresh.ANNOTATION_REFRESH_REQUESTED: value})
    work.pending_refresh = refresh.pending_for(dataset, value, tick, refresh.current_version(body), value)
    work.last_refresh_request = run.now
    message = f"asked Dataset {dataset} to refresh before a retrain ({value}); waiting for its outcome"
    checks.set_retrain_state(work, monitor, cond.State(cond.UNKNOWN, cond.Reason.REFRESH_PENDING, message), run.now)
    run.wake_in(REFRESH_POLL_SECONDS)
    return [normal("RefreshRequested", message)]


async def follow_refresh(run: DriftMonitorRun, model: Model, model_body: dict[str, Any]) -> list[EventSpec]:
    """The pending refresh's outcome, if the Dataset has answered (else wait)."""
    ctx, monitor, work = run.ctx, run.resource, run.work
    pending = work.pending_refresh
    if pending is None:
        return []
    body = await ctx.kube.get(DATASET, monitor.namespace, pending.dataset)
    found = refresh.outcome(pending, body, run.now, monitor.spec.action.refresh_timeout_seconds)
    if found.state == refresh.State.PENDING:
        run.wake_in(REFRESH_POLL_SECONDS)
        return []
    work.pending_refresh = None
    if found.state == refresh.State.NEW_DATA:
        return await _on_new_data(run, model, pending.request, found)
    if found.state == refresh.State.NO_NEW_DATA:
        if model.spec.retrain.production_labels.enabled:  # the Model trains if labels arrived since its champion
            return await request_retrain(run, model, pending.request)
        return await _on_no_new_data(run, model_body, pending.request, found)
    reason = cond.Reason.REFRESH_FAILED if found.state == refresh.State.FAILED else cond.Reason.REFRESH_TIMED_OUT
    message = f"no retrain for {pending.request!r}: {found.message}"
    checks.set_retrain_state(work, monitor, cond.State(cond.FALSE, reason, message), run.now)
    return [warning(reason, message)]


async def _on_new_data(run: DriftMonitorRun, model: Model, request: str, found: refresh.Outcome) -> list[EventSpec]:
    monitor, work = run.resource, run.work
    if model.spec.retrain.on_dataset_change:
        # The Model trains on every new dataset version by itself; a retrain request on top would
        # train a second time on the same data.
        message = f"{found.message}: Model {model.name} retrains on it (retrain.onDatasetChange)"
        checks.set_retrain_state(work, monitor, cond.State(cond.TRUE, cond.Reason.NEW_DATA, message), run.now)
        return [normal(cond.Reason.NEW_DATA, message)]
    if await training_active(run.ctx, model):
        message = f"{found.message}, but Model {model.name} is training already: no retrain request"
        return [normal("RetrainSkipped", message)]
    return await request_retrain(run, model, request)


async def _on_no_new_data(
    run: DriftMonitorRun, model_body: dict[str, Any], request: str, found: refresh.Outcome
) -> list[EventSpec]:
    ctx, monitor, work = run.ctx, run.resource, run.work
    _, _, reason = request.partition(";")
    message = (
        f"{reason} — but {found.message}: no retrain (the serving model was trained on this data). "
        "Add fresh data to the Dataset's source."
    )
    checks.set_retrain_state(work, monitor, cond.State(cond.FALSE, cond.Reason.NO_NEW_DATA, message), run.now)
    await ctx.kube.event(
        model_body, "Warning", cond.Reason.NO_NEW_DATA, f"DriftMonitor {monitor.name}: {message}", now=run.now
    )
    return [warning(cond.Reason.NO_NEW_DATA, message)]


async def request_retrain(run: DriftMonitorRun, model: Model, value: str) -> list[EventSpec]:
    """The retrain annotation on the Model (today's request), recorded in status and metrics."""
    ctx, monitor, work = run.ctx, run.resource, run.work
    await ctx.kube.annotate(MODEL, monitor.namespace, model.name, {contracts.ANNOTATION_RETRAIN_REQUESTED: value})
    work.last_retrain_request = run.now
    ctx.metrics.retrain_requests.labels(monitor.namespace, monitor.name, model.name).inc()
    message = f"asked Model {model.name} to retrain: {value}"
    checks.set_retrain_state(work, monitor, cond.State(cond.TRUE, cond.Reason.RETRAIN_REQUESTED, message), run.now)
    return [normal("RetrainRequested", message)]


async def _notify(
    ctx: ReconcileContext, monitor: DriftMonitor, work: DriftMonitorStatus, tick: datetime, result: DriftResult | None
) -> None:
    payload = jobs.webhook_payload(
        monitor,
        verdict=work.last_verdict or "",
        drifted_features=list(result.drifted_features) if result else [],
        drifted_share=work.drifted_share,
        report_uri=work.report_uri,
        tick=tick,
    )
    if work.fired != [triggers.INPUT_DRIFT]:
        reasons = "; ".join(triggers.evaluate(monitor, result).reasons)
        payload["text"] = (
            f"DriftMonitor {monitor.namespace}/{monitor.name} on model {monitor.spec.model_ref.name} at "
            f"{tick.isoformat()}: {reasons}." + (f" Report: {work.report_uri}" if work.report_uri else "")
        )
    payload["triggers"] = list(work.fired)
    if work.live_quality is not None:
        payload["liveQuality"] = work.live_quality.dump()
    await ctx.kube.create_or_adopt(jobs.notify_job(monitor, payload, tick, ctx.settings))


async def training_active(ctx: ReconcileContext, model: Model) -> bool:
    if model.status is not None and model.status.active_training is not None:
        return True
    train_jobs = await ctx.kube.list(
        JOB,
        model.namespace,
        {contracts.LABEL_MODEL: model.name, contracts.LABEL_COMPONENT: str(contracts.Component.TRAIN)},
    )
    return any(observe.job_phase(j).active for j in train_jobs)


__all__ = ["follow_refresh", "on_fired", "request_retrain", "training_active"]
