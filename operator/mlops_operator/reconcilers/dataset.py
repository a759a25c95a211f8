"""Dataset: profile Jobs, one at a time; a new content address is a new version.

A profile Job is identified by (spec, refresh tick, refresh request): the spec changed, a refresh
interval ticked, or someone annotated `mlops.dev/refresh-requested: "<RFC3339>;<reason>"`. At most one
profile Job of a Dataset runs at a time: while one runs no other is started (a refresh interval shorter
than profiling skips the ticks it overran), and its result is recorded when it ends.

The operator holds no store credentials, so it cannot list the source itself: the Job lists it in
the Dataset's own namespace. The plan carries the current version's listing fingerprint; an equal
listing comes back `unchanged` (no data read, no version, no Model woken to train). Otherwise the
workload computes the content address, so the operator learns the version only from the result:
the same address as `status.version` changes nothing, a new one records a version, posts a
`NewVersion` Event and wakes the Models that train on this Dataset. A refresh asked for with the
annotation is recorded in `status.lastRefresh` (NewVersion, Unchanged or Failed) once its Job ends,
which is what a DriftMonitor waits for before it retrains.

Retention (spec.retention.versions): the plan also says which stored versions must stay, computed from
the status of every Model in the namespace (reconcilers/retention.py); the Job deletes the others after
its run, and what it deleted is added to `status.pruned`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from mlops_operator import conditions as cond
from mlops_operator import contracts
from mlops_operator.api.base import ConditionStatus
from mlops_operator.api.results import ProfileResult
from mlops_operator.api.v1alpha1.dataset import Dataset, DatasetPhase, DatasetStatus, DatasetVersion
from mlops_operator.api.v1alpha1.source import LastRefresh, RefreshOutcome
from mlops_operator.builders import jobs, meta
from mlops_operator.kube import DATASET, JOB, MODEL, POD
from mlops_operator.reconcilers import annotated, observe, retention, schedule
from mlops_operator.reconcilers.context import EventSpec, Key, ReconcileContext, ReconcileResult, normal, warning
from mlops_operator.reconcilers.skeleton import KindReconciler, Run

DatasetRun = Run[Dataset, DatasetStatus]

# status.lastRefresh.request holds at most this many characters.
MAX_REFRESH_REQUEST: Final = 256
REFRESH_FORMAT: Final = '"<RFC3339 time>;<reason>", e.g. "2026-11-30T06:00:00Z;drift"'


def refresh_tick(dataset: Dataset, now: datetime) -> int:
    return schedule.interval_tick(dataset.spec.refresh_interval_seconds or 0, now)


def refresh_request(dataset: Dataset) -> tuple[str, EventSpec | None]:
    """The refresh request in force ("" for none) and, for one that is ignored, a Warning saying why."""
    value = dataset.annotations.get(contracts.ANNOTATION_REFRESH_REQUESTED, "").strip()
    key = contracts.ANNOTATION_REFRESH_REQUESTED
    if not value:
        return "", None
    if len(value) > MAX_REFRESH_REQUEST:
        why = f"{key} is {len(value)} characters long, at most {MAX_REFRESH_REQUEST} are read: the request is ignored"
        return "", warning(annotated.IGNORED, why)
    if annotated.request_time(value) is None:
        return "", warning(annotated.IGNORED, f"{key} must be {REFRESH_FORMAT}; {value[:60]!r} is ignored")
    return value, None


def job_identity(status: DatasetStatus, request: str) -> str:
    """The request that names the wanted profile Job: the one in force, else the last one handled (so
    removing a handled request's annotation starts no Job of its own)."""
    return request or (status.last_refresh.request if status.last_refresh else "")


def refresh_pending(status: DatasetStatus, request: str) -> bool:
    """A request not answered yet (nor being answered)."""
    return bool(request) and (status.last_refresh is None or status.last_refresh.request != request)


def profile_handled(status: DatasetStatus, job_name: str) -> bool:
    """The result of `job_name` is already in status (so a TTL-deleted Job is not run again)."""
    profiled = cond.get(status.conditions, cond.Type.PROFILED)
    return status.profile_job == job_name and profiled is not None and profiled.status != cond.UNKNOWN


def start_profiling(status: DatasetStatus, job_name: str, generation: int, now: datetime, request: str = "") -> None:
    """`job_name` runs; with a pending `request` it answers that request (status.lastRefresh)."""
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
    if refresh_pending(status, request):
        _, _, reason = request.partition(";")
        status.last_refresh = LastRefresh(
            request=request,
            requested_at=annotated.request_time(request),
            reason=reason.strip()[:256] or None,
            job=job_name,
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
    status.profile_job = job_name
    status.last_refresh_time = now
    result = outcome.result
    if outcome.phase != observe.JobPhase.SUCCEEDED or result is None or not result.version:
        message = outcome.message or "the profile Job reported no version"
        reason = outcome.reason or cond.Reason.JOB_FAILED
        _set_profiled(status, dataset, cond.FALSE, reason, message, now)
        status.phase = DatasetPhase.FAILED
        _answer_refresh(status, job_name, RefreshOutcome.FAILED, now, f"{reason}: {message}")
        return [warning(reason, f"profiling failed: {message}")], False
    status.phase = DatasetPhase.READY
    status.listing_fingerprint = result.listing_fingerprint or status.listing_fingerprint
    if result.unchanged or result.version == status.version:
        return _unchanged(status, dataset, job_name, result, now), False
    _set_profiled(
        status,
        dataset,
        cond.TRUE,
        cond.Reason.PROFILED,
        f"version {result.version[:12]}: {result.rows} rows, {result.columns} columns",
        now,
    )
    status.findings = list(result.findings)
    status.target = result.target or status.target
    status.task_hint = result.task_hint or status.task_hint
    events = record_version(status, dataset, result, now, store_uri)
    _answer_refresh(status, job_name, RefreshOutcome.NEW_VERSION, now, f"new version {result.version[:12]}")
    return events, True


def _unchanged(
    status: DatasetStatus, dataset: Dataset, job_name: str, result: ProfileResult, now: datetime
) -> list[EventSpec]:
    """The listing (or the content) is the current version's: no version, no findings change."""
    why = "the source listing is unchanged" if result.unchanged else "the source content is unchanged"
    message = f"version {(result.version or '')[:12]}: {why}"
    _set_profiled(status, dataset, cond.TRUE, cond.Reason.PROFILED, message, now)
    if status.last_refresh is not None and status.last_refresh.job == job_name and status.last_refresh.outcome is None:
        _answer_refresh(status, job_name, RefreshOutcome.UNCHANGED, now, f"no new data: {message}")
        return [normal("RefreshUnchanged", f"refresh {status.last_refresh.request}: no new data ({message})")]
    return []


def _set_profiled(
    status: DatasetStatus, dataset: Dataset, state: ConditionStatus, reason: str, message: str, now: datetime
) -> None:
    status.conditions = cond.set_condition(
        status.conditions, cond.Type.PROFILED, state, reason, message, now=now, generation=dataset.generation
    )


def _answer_refresh(status: DatasetStatus, job_name: str, outcome: RefreshOutcome, now: datetime, message: str) -> None:
    """Record the outcome of the requested refresh that `job_name` answers (if it answers one)."""
    last = status.last_refresh
    if last is None or last.job != job_name or last.outcome is not None:
        return
    status.last_refresh = last.model_copy(
        update={"finished_at": now, "outcome": outcome, "version": status.version, "message": message[:1024]}
    )


def record_version(
    status: DatasetStatus, dataset: Dataset, result: ProfileResult, now: datetime, store_uri: str
) -> list[EventSpec]:
    """A new content address: the current version, appended to the newest `MAX_VERSIONS`."""
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
        lineage=result.lineage,
    )
    status.versions = [*(v for v in status.versions if v.version != result.version), record][-Dataset.MAX_VERSIONS :]
    errors = [f for f in result.findings if f.severity == "error"]
    events = [normal("NewVersion", f"new version {result.version[:12]}: {result.rows} rows, {result.columns} columns")]
    if errors:
        events.append(warning("QualityFindings", "; ".join(f.message for f in errors[:3])))
    return events


def summarize(status: DatasetStatus, generation: int, now: datetime) -> None:
    """Ready: a usable version exists and the latest profiling did not fail; Reconciling while a
    profile Job runs (a refresh too), Stalled while Ready is False for a permanent reason."""
    profiled = cond.get(status.conditions, cond.Type.PROFILED)
    if status.version and (profiled is None or profiled.status != cond.FALSE):
        ready = cond.State(cond.TRUE, cond.Reason.READY, f"version {status.version[:12]} is ready")
        status.phase = DatasetPhase.READY
    elif profiled is not None:
        ready = cond.State(profiled.status, profiled.reason, profiled.message)
    else:
        ready = cond.State(cond.UNKNOWN, cond.Reason.INITIALIZING, "not profiled yet")
    conditions = cond.set_state(status.conditions, cond.Type.READY, ready, now=now, generation=generation)
    profiling = profiled is not None and profiled.reason == cond.Reason.PROFILING
    working = cond.State(cond.TRUE, profiled.reason, profiled.message) if profiled and profiling else None
    status.conditions = cond.with_kstatus(conditions, working=working, now=now, generation=generation)
    status.observed_generation = generation


def to_settle(status: DatasetStatus, job_name: str, profile_jobs: dict[str, dict[str, Any]]) -> list[str]:
    """The finished profile Jobs whose results are not in status yet: the one status names (it ran
    before this tick or request), then the one wanted now."""
    names = [n for n in dict.fromkeys([status.profile_job or "", job_name]) if n in profile_jobs]
    return [n for n in names if not observe.job_phase(profile_jobs[n]).active and not profile_handled(status, n)]


def running_job(profile_jobs: dict[str, dict[str, Any]]) -> str | None:
    """The profile Job that is running, if one is (at most one is ever started at a time)."""
    active = sorted(n for n, job in profile_jobs.items() if observe.job_phase(job).active)
    return active[0] if active else None


def wants_job(status: DatasetStatus, job_name: str, profile_jobs: dict[str, dict[str, Any]]) -> bool:
    """Start `job_name` now: it is not handled, does not exist, and no other profile Job runs."""
    return running_job(profile_jobs) is None and job_name not in profile_jobs and not profile_handled(status, job_name)


async def reconcile(ctx: ReconcileContext, key: Key) -> ReconcileResult:
    return await RECONCILER.reconcile(ctx, key)


async def steps(run: DatasetRun) -> None:
    """3. observe the Dataset's profile Jobs, 4. decide, 5. act: settle finished ones, start at most one."""
    ctx, key, dataset, work, now = run.ctx, run.key, run.resource, run.work, run.now
    tick = refresh_tick(dataset, now)
    request, ignored = refresh_request(dataset)
    run.note(*([ignored] if ignored else []))
    request = job_identity(work, request)
    job_name = jobs.profile_job_name(dataset, tick, request)
    labels = {contracts.LABEL_DATASET: key.name, contracts.LABEL_COMPONENT: str(contracts.Component.PROFILE)}
    profile_jobs = {j["metadata"]["name"]: j for j in await ctx.kube.list(JOB, key.namespace, labels)}
    for name in to_settle(work, job_name, profile_jobs):
        pods = await ctx.kube.list(POD, key.namespace, {meta.LABEL_JOB_NAME_LEGACY: name})
        outcome = observe.job_outcome(profile_jobs[name], pods, ProfileResult, jobs.WORKLOAD_CONTAINER)
        found, new_version = apply_profile_outcome(work, dataset, name, outcome, now, ctx.settings.store_uri)
        run.note(*found)
        if outcome.phase == observe.JobPhase.SUCCEEDED and outcome.result is not None:
            keep = dataset.spec.retention.versions
            run.note(*retention.record_dataset_pruned(work, outcome.result, keep, now))
        if new_version:
            ctx.logger.info("%s: new version %s", key, work.version)
    running = running_job(profile_jobs)
    if running is not None:
        start_profiling(work, running, dataset.generation, now, request if running == job_name else "")
    elif wants_job(work, job_name, profile_jobs):
        await ctx.prepare_namespace(key.namespace)
        # The plan carries the current version as this run leaves it (a Job settled above may have made one).
        current = dataset.model_copy(update={"status": work})
        keeps = retention.dataset_plan(dataset, work, await ctx.kube.list(MODEL, key.namespace))
        _, created = await ctx.kube.create_or_adopt(jobs.profile_job(current, ctx.settings, tick, request, keeps))
        if created:
            ctx.metrics.jobs_created.labels(contracts.Component.PROFILE).inc()
        start_profiling(work, job_name, dataset.generation, now, request)
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


RECONCILER = KindReconciler(
    kind=DATASET,
    resource=Dataset,
    steps=steps,
    invalid_conditions=(cond.Type.PROFILED, cond.Type.READY),
)
