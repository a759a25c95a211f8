"""Dataset: one profile Job per (spec, refresh tick); a new content hash is a new version.

The profile workload computes the content hash itself, so the operator learns the version only
from the Job's result: the same hash as `status.version` changes nothing, a new one records a
version, posts a `NewVersion` Event and wakes the Models that train on this Dataset.
"""

from __future__ import annotations

from datetime import datetime

from mlops_operator import conditions as cond
from mlops_operator import contracts
from mlops_operator.api.results import ProfileResult
from mlops_operator.api.v1alpha1.dataset import Dataset, DatasetPhase, DatasetStatus, DatasetVersion
from mlops_operator.builders import jobs, meta
from mlops_operator.kube import DATASET, JOB, MODEL, POD
from mlops_operator.reconcilers import observe, schedule
from mlops_operator.reconcilers.context import EventSpec, Key, ReconcileContext, ReconcileResult, normal, warning
from mlops_operator.reconcilers.skeleton import KindReconciler, Run

DatasetRun = Run[Dataset, DatasetStatus]


def refresh_tick(dataset: Dataset, now: datetime) -> int:
    return schedule.interval_tick(dataset.spec.refresh_interval_seconds or 0, now)


def profile_handled(status: DatasetStatus, job_name: str) -> bool:
    """The result of `job_name` is already in status (so a TTL-deleted Job is not run again)."""
    profiled = cond.get(status.conditions, cond.Type.PROFILED)
    return status.profile_job == job_name and profiled is not None and profiled.status != cond.UNKNOWN


def start_profiling(status: DatasetStatus, job_name: str, generation: int, now: datetime) -> None:
    status.profile_job = job_name
    status.conditions = cond.set_condition(
        status.conditions,
        cond.Type.PROFILED,
        cond.UNKNOWN,
        cond.Reason.PROFILING,
        f"profile Job {job_name} is running",
        now=now,
        generation=generation,
    )
    if status.version is None:
        status.phase = DatasetPhase.PROFILING


def apply_profile_outcome(
    status: DatasetStatus,
    dataset: Dataset,
    job_name: str,
    outcome: observe.JobOutcome[ProfileResult],
    now: datetime,
    store_uri: str,
) -> tuple[list[EventSpec], bool]:
    """Record a finished profile Job in `status`. Returns (events, is_new_version)."""
    generation = dataset.generation
    status.profile_job = job_name
    status.last_refresh_time = now
    result = outcome.result
    if outcome.phase != observe.JobPhase.SUCCEEDED or result is None or not result.version:
        message = outcome.message or "the profile Job reported no version"
        status.conditions = cond.set_condition(
            status.conditions,
            cond.Type.PROFILED,
            cond.FALSE,
            outcome.reason or cond.Reason.JOB_FAILED,
            message,
            now=now,
            generation=generation,
        )
        status.phase = DatasetPhase.FAILED
        return [warning(outcome.reason or cond.Reason.JOB_FAILED, f"profiling failed: {message}")], False

    new_version = result.version != status.version
    status.conditions = cond.set_condition(
        status.conditions,
        cond.Type.PROFILED,
        cond.TRUE,
        cond.Reason.PROFILED,
        f"version {result.version[:12]}: {result.rows} rows, {result.columns} columns",
        now=now,
        generation=generation,
    )
    status.phase = DatasetPhase.READY
    status.findings = list(result.findings)
    status.target = result.target or status.target
    status.task_hint = result.task_hint or status.task_hint
    if not new_version:
        return [], False
    return record_version(status, dataset, result, now, store_uri), True


def record_version(
    status: DatasetStatus, dataset: Dataset, result: ProfileResult, now: datetime, store_uri: str
) -> list[EventSpec]:
    """A new content hash: the current version, appended to the newest `MAX_VERSIONS`."""
    assert result.version
    status.version = result.version
    status.rows = result.rows
    status.columns = result.columns
    ns, name = dataset.namespace, dataset.name
    status.profile_uri = result.profile_uri or contracts.dataset_profile_uri(store_uri, ns, name, result.version)
    status.data_uri = result.data_uri or contracts.dataset_data_uri(store_uri, ns, name, result.version)
    record = DatasetVersion(
        version=result.version,
        rows=result.rows or 0,
        columns=result.columns or 0,
        profile_uri=status.profile_uri,
        data_uri=status.data_uri,
        created_at=now,
    )
    status.versions = [*(v for v in status.versions if v.version != result.version), record][-Dataset.MAX_VERSIONS :]
    errors = [f for f in result.findings if f.severity == "error"]
    events = [normal("NewVersion", f"new version {result.version[:12]}: {result.rows} rows, {result.columns} columns")]
    if errors:
        events.append(warning("QualityFindings", "; ".join(f.message for f in errors[:3])))
    return events


def summarize(status: DatasetStatus, generation: int, now: datetime) -> None:
    """Ready: a usable version exists and the latest profiling did not fail."""
    profiled = cond.get(status.conditions, cond.Type.PROFILED)
    if status.version and (profiled is None or profiled.status != cond.FALSE):
        ready = cond.State(cond.TRUE, cond.Reason.READY, f"version {status.version[:12]} is ready")
        status.phase = DatasetPhase.READY
    elif profiled is not None:
        ready = cond.State(profiled.status, profiled.reason, profiled.message)
    else:
        ready = cond.State(cond.UNKNOWN, cond.Reason.INITIALIZING, "not profiled yet")
    status.conditions = cond.set_state(status.conditions, cond.Type.READY, ready, now=now, generation=generation)
    status.observed_generation = generation


async def reconcile(ctx: ReconcileContext, key: Key) -> ReconcileResult:
    return await RECONCILER.reconcile(ctx, key)


async def steps(run: DatasetRun) -> None:
    """3. observe the profile Job of this refresh tick, 4. decide, 5. act: create it or read its result."""
    ctx, key, dataset, work, now = run.ctx, run.key, run.resource, run.work, run.now
    tick = refresh_tick(dataset, now)
    job_name = jobs.profile_job_name(dataset, tick)
    job = await ctx.kube.get(JOB, key.namespace, job_name)
    if job is None and not profile_handled(work, job_name):
        await ctx.prepare_namespace(key.namespace)
        job, created = await ctx.kube.create_or_adopt(jobs.profile_job(dataset, ctx.settings, tick))
        if created:
            ctx.metrics.jobs_created.labels(contracts.Component.PROFILE).inc()
        start_profiling(work, job_name, dataset.generation, now)
    if job is not None and not profile_handled(work, job_name):
        if observe.job_phase(job).active:
            start_profiling(work, job_name, dataset.generation, now)
        else:
            pods = await ctx.kube.list(POD, key.namespace, {meta.LABEL_JOB_NAME_LEGACY: job_name})
            outcome = observe.job_outcome(job, pods, ProfileResult, jobs.WORKLOAD_CONTAINER)
            found, new_version = apply_profile_outcome(work, dataset, job_name, outcome, now, ctx.settings.store_uri)
            run.note(*found)
            if new_version:
                ctx.logger.info("%s: new version %s", key, work.version)
    summarize(work, dataset.generation, now)
    interval = dataset.spec.refresh_interval_seconds
    if interval:
        run.wake_in(schedule.seconds_until(schedule.interval_start(interval, tick + 1), now) + 1)
    run.after_status(lambda: wake_dependent_models(run))


async def wake_dependent_models(run: DatasetRun) -> None:
    """Models waiting for this Dataset (or training on it) re-evaluate at once when its status changed."""
    if run.patched:
        run.also = await _dependent_models(run.ctx, run.key)


async def _dependent_models(ctx: ReconcileContext, key: Key) -> tuple[Key, ...]:
    models = await ctx.kube.list(MODEL, key.namespace)
    return tuple(
        Key("Model", key.namespace, m["metadata"]["name"])
        for m in models
        if ((m.get("spec") or {}).get("datasetRef") or {}).get("name") == key.name
    )


def _mark_failed(status: DatasetStatus, message: str) -> None:
    status.phase = DatasetPhase.FAILED


RECONCILER = KindReconciler(
    kind=DATASET,
    resource=Dataset,
    status=DatasetStatus,
    steps=steps,
    invalid_conditions=(cond.Type.PROFILED, cond.Type.READY),
    mark_failed=_mark_failed,
)
