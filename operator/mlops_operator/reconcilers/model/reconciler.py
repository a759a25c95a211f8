"""The Model's reconcile, step by step (the skeleton runs 1, 2 and 6; `steps` is 3 to 5).

Level-based: every run reads the Model, its Dataset, its training and mirror Jobs and its
Deployment, and drives them toward the spec. Side effects come before the status patch that
records them, and each can be found again by name or label: a crash in between is healed by the
next run.
"""

from __future__ import annotations

import contextlib

from prometheus_client import Gauge

from mlops_operator import conditions as cond
from mlops_operator.api.v1alpha1.model import Model
from mlops_operator.kube import MODEL
from mlops_operator.reconcilers import annotated
from mlops_operator.reconcilers.context import Key, ReconcileContext, ReconcileResult
from mlops_operator.reconcilers.model import children, mirror, serving, status, training, versions
from mlops_operator.reconcilers.model import events as release_events
from mlops_operator.reconcilers.model.children import ModelRun
from mlops_operator.reconcilers.skeleton import KindReconciler

READING_REGISTRY = cond.State(cond.UNKNOWN, cond.Reason.READING_REGISTRY, "reading the version registry from the store")


async def reconcile(ctx: ReconcileContext, key: Key) -> ReconcileResult:
    """1. fetch, 2. validate, 3.-5. `steps`, 6. record status and Events, then mirror the ledger."""
    return await RECONCILER.reconcile(ctx, key)


async def steps(run: ModelRun) -> None:
    model, work = run.resource, run.work
    run.note(*annotated.problems(model.annotations))  # malformed entries are ignored, and said so
    # 3. observe: the Dataset and the Jobs; settle finished trainings; read the store's ledger once
    found = await children.read(run)
    run.note(*training.recover_jobs(work, found.train_jobs, run.now))
    await training.observe_training(run, found.train_jobs)
    await mirror.observe_mirror(run, found.mirror_jobs)
    await release_events.observe_events(run, found.events_jobs)
    dataset_state, dataset = training.resolve_dataset(model, found.dataset)
    # 4. decide and 5. act: train when a request is pending (nothing trains before the store has
    # said which versions it already holds), then approve and serve
    blocked: cond.State | None = None
    if work.registry is None:
        blocked = READING_REGISTRY
    elif work.active_training is None and dataset is not None:
        blocked = await training.maybe_train(run, dataset, found.train_jobs)
    approval, serving_state = await serving.serve(run)
    # the summary step 6 records; then the mirror of what it recorded
    keep = [work.serving_version, work.active_training.version if work.active_training else None]
    work.versions = versions.prune(work.versions, model.spec.max_versions, keep=keep)
    status.summarize(
        work, model, dataset=dataset_state, approval=approval, serving_=serving_state, now=run.now, blocked=blocked
    )
    run.after_status(lambda: mirror.start_mirror(run, found.mirror_jobs, serving_state))
    run.after_status(lambda: release_events.start_events(run, found.events_jobs))
    run.after_status(lambda: _export_series(run, approval.reason))


async def _export_series(run: ModelRun, approval_reason: str) -> None:
    """The Model's series: the served version (none while nothing serves), since when a version
    waits for approval (none while none waits), and its failure counters from 0 (`increase` sees
    the first failure only when the series existed before it)."""
    metrics, labels = run.ctx.metrics, (run.key.namespace, run.key.name)
    metrics.training_failures.labels(*labels)
    metrics.rollout_failures.labels(*labels)
    _set_or_remove(metrics.serving_version, labels, run.work.serving_version)
    since = versions.awaiting_approval_since(run.work.versions, approval_reason)
    _set_or_remove(metrics.awaiting_approval_since, labels, since.timestamp() if since else None)


def _set_or_remove(gauge: Gauge, labels: tuple[str, str], value: float | None) -> None:
    if value is not None:
        gauge.labels(*labels).set(value)
    else:
        with contextlib.suppress(KeyError):
            gauge.remove(*labels)


RECONCILER = KindReconciler(
    kind=MODEL,
    resource=Model,
    steps=steps,
    invalid_conditions=(cond.Type.TRAINED, cond.Type.READY),
)
