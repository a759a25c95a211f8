"""The registry mirror: a small Job copies the ledger of versions to the store's `registry.json`.

The operator never mounts the store (each team's namespace does), so a Job writes it. The Job is
named after the content it writes (and the Model's uid), so a crash and retry finds it instead of
writing twice; one runs at a time per Model, later changes wait for it (its completion wakes the
Model) and are written together. The first mirror of a Model is also a read: a Model that has no
versions while the store has some (recreated, restored from a backup without status) is rebuilt.

The Job also applies retention (reconcilers/retention.py): it deletes the artifacts of versions status
no longer lists and, for a Model that collects and that no DriftMonitor checks, collected rows and
labels past retentionDays; for those the Job's name includes the day, so one runs at least daily
(status.registry.digest stays the digest of the versions' content).

While a training runs or a version rolls out the ledger is about to change again, so the mirror
waits for it to settle and writes it once per retrain cycle instead of once per transition (the
number of Jobs then no longer depends on how fast each one ran); it waits at most
SETTLE_SECONDS after the newest version began, so a long training or a stuck rollout is still
mirrored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mlops_operator import conditions as cond
from mlops_operator import contracts
from mlops_operator.api.results import RegistryResult
from mlops_operator.api.v1alpha1.model import RegistryMirror
from mlops_operator.builders import jobs
from mlops_operator.kube import DRIFT_MONITOR
from mlops_operator.reconcilers import observe, retention
from mlops_operator.reconcilers.context import normal, warning
from mlops_operator.reconcilers.model import versions
from mlops_operator.reconcilers.model.children import ModelRun

SETTLE_SECONDS = 600.0


def _name(job: dict[str, Any]) -> str:
    return str(job["metadata"]["name"])


async def collection_tick(run: ModelRun) -> int | None:
    """The day on which the registry Job prunes collected rows (None: it does not); asks for a wake-up
    at the next one."""
    model = run.resource
    if not (model.spec.serving.enabled and model.spec.serving.collection.enabled):
        return None
    monitors = await run.ctx.kube.list(DRIFT_MONITOR, run.key.namespace)
    monitored = any(((m.get("spec") or {}).get("modelRef") or {}).get("name") == model.name for m in monitors)
    tick = retention.collection_tick(model, monitored, run.now)
    if tick is not None:
        run.wake_in(retention.seconds_to_next_tick(tick, run.now))
    return tick


async def observe_mirror(run: ModelRun, mirror_jobs: list[dict[str, Any]]) -> None:
    """Record the mirror Job of the current versions once it finished; rebuild an empty status from it."""
    work, model = run.work, run.resource
    digest = jobs.registry_digest(work.versions)
    name = jobs.registry_job_name(model, digest, await collection_tick(run))
    await _count_superseded(run, mirror_jobs, {name, work.registry.job if work.registry else None})
    if _mirrored(run, digest, name):
        return
    job = next((j for j in mirror_jobs if _name(j) == name), None)
    if job is None or observe.job_phase(job).active:
        return
    pods = await run.ctx.kube.job_pods(job)
    outcome = observe.job_outcome(job, pods, RegistryResult, jobs.WORKLOAD_CONTAINER)
    previous = work.registry
    if outcome.phase != observe.JobPhase.SUCCEEDED or outcome.result is None:
        message = f"mirroring the registry to the store failed ({outcome.reason}): {outcome.message}"[:1024]
        if previous is None or previous.message != message:
            run.note(warning("RegistryMirrorFailed", f"Job {name}: {message}"))
        work.registry = (previous or RegistryMirror()).model_copy(update={"job": name, "message": message})
        return
    result = outcome.result
    run.note(*retention.record_model_pruned(work, result, run.now))
    work.registry = RegistryMirror(
        digest=digest,
        job=name,
        synced_at=run.now,
        stored=result.stored,
        restored=previous.restored if previous else None,
    )
    if previous is None and not work.versions and result.highest_version:
        _restore(run, result)


def _restore(run: ModelRun, result: RegistryResult) -> None:
    """Rebuild the versions of a Model without status from the store's newest records."""
    work = run.work
    assert work.registry is not None and result.highest_version
    work.versions, work.latest_version = versions.restore(
        result.versions, result.highest_version, run.resource.spec.max_versions, run.now
    )
    newest = versions.latest(work.versions, finished=True)
    work.trained_dataset_version = newest.dataset_version if newest else None
    work.registry.restored = len(work.versions)
    next_version = work.latest_version + 1 if work.latest_version else 1
    run.note(
        normal(
            "RegistryRestored",
            f"rebuilt {len(work.versions)} versions from the store (highest: {result.highest_version}); "
            f"the next version is {next_version}",
        )
    )


def _mirrored(run: ModelRun, digest: str, name: str) -> bool:
    """The store holds this content; and, on a collection day, that day's Job (the one named) ran."""
    registry = run.work.registry
    if registry is None or registry.digest != digest:
        return False
    return registry.job == name or name == jobs.registry_job_name(run.resource, digest)


async def _count_superseded(run: ModelRun, mirror_jobs: list[dict[str, Any]], recorded: set[str | None]) -> None:
    """What superseded mirror Jobs deleted (the versions changed again before their result was read):
    added to status.pruned now, as start_mirror removes them once this status is written."""
    for job in mirror_jobs:
        if _name(job) in recorded or job["metadata"].get("deletionTimestamp") or observe.job_phase(job).active:
            continue  # recorded, counted by an earlier run (being deleted), or still running
        outcome = observe.job_outcome(job, await run.ctx.kube.job_pods(job), RegistryResult, jobs.WORKLOAD_CONTAINER)
        if outcome.phase == observe.JobPhase.SUCCEEDED and outcome.result is not None:
            run.note(*retention.record_model_pruned(run.work, outcome.result, run.now))


def settle_seconds(run: ModelRun, serving_state: cond.State) -> float:
    """How long the mirror still waits for the ledger to settle (0: write it now). The first mirror
    never waits: it is also the read that rebuilds a recreated Model."""
    work = run.work
    in_flight = work.active_training is not None or serving_state.reason == cond.Reason.ROLLING_OUT
    if work.registry is None or not in_flight:
        return 0.0
    began = [v.created_at for v in work.versions if v.created_at is not None]
    newest: datetime | None = max(began, default=None)
    if newest is None:
        return 0.0
    return max(0.0, SETTLE_SECONDS - (run.now - newest).total_seconds())


async def start_mirror(run: ModelRun, mirror_jobs: list[dict[str, Any]], serving_state: cond.State) -> None:
    """After the status patch: a Job that writes the recorded versions to the store, one at a time,
    once the ledger settled. Superseded finished mirror Jobs are removed."""
    work, model, kube, ns = run.work, run.resource, run.ctx.kube, run.key.namespace
    tick = await collection_tick(run)
    digest = jobs.registry_digest(work.versions)
    wanted = jobs.registry_job_name(model, digest, tick)
    keep = {wanted, work.registry.job if work.registry else None}
    for job in mirror_jobs:
        if _name(job) not in keep and not observe.job_phase(job).active:
            await kube.delete_child(job, model.uid)
    if _mirrored(run, digest, wanted):
        return
    if (wait := settle_seconds(run, serving_state)) > 0:
        run.wake_in(wait)  # the run that ends the training or the rollout comes first, as a rule
        return
    if any(_name(j) == wanted for j in mirror_jobs):
        return
    if any(observe.job_phase(j).active for j in mirror_jobs):
        return
    await run.ctx.prepare_namespace(ns)
    plan = retention.model_plan(model, work, run.ctx.settings.store_uri, tick)
    await kube.create_or_adopt(jobs.registry_job(model, work.versions, run.ctx.settings, plan, tick))
    run.ctx.metrics.jobs_created.labels(contracts.Component.REGISTRY).inc()
