"""BatchScoring: runs of an Indexed Job that score a table with a Model version.

A run is identified by (spec, model version, input, cron time): builders.batch names its Job from
that, so a reconcile that retries finds the same Job. Without a schedule there is one run per spec:
its version and input are resolved when it starts (the serving version, the Dataset's current
version) and kept in status.runs, so a later rollout or a new Dataset version does not score the
table again; a spec change does. With a schedule, each cron time resolves them again and runs its own
Job (a time that comes while a run is active waits for it; only the latest missed time runs).

Each reconcile reads the run's Job and pods (batch_runs) into status; a started run whose Job has
disappeared before its outcome was recorded is Failed/JobLost. The newest spec.runsToKeep runs stay
in status; the Jobs of older ones are deleted (their predictions stay in the store).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from pydantic import ValidationError

from mlops_operator import conditions as cond
from mlops_operator import contracts
from mlops_operator.api.base import ConditionStatus
from mlops_operator.api.v1alpha1.batchscoring import BatchPhase, BatchRun, BatchScoring, BatchScoringStatus
from mlops_operator.api.v1alpha1.dataset import Dataset
from mlops_operator.api.v1alpha1.driftmonitor import Schedule
from mlops_operator.api.v1alpha1.model import Model, VersionState
from mlops_operator.builders import batch as build
from mlops_operator.kube import BATCH_SCORING, DATASET, JOB, MODEL
from mlops_operator.reconcilers import batch_runs, observe, schedule
from mlops_operator.reconcilers.context import Key, ReconcileContext, ReconcileResult, normal, warning
from mlops_operator.reconcilers.skeleton import KindReconciler, Run

BatchScoringRun = Run[BatchScoring, BatchScoringStatus]
FALSE = ConditionStatus.FALSE
UNSCORABLE = frozenset({VersionState.TRAINING, VersionState.FAILED})


class Scorer(NamedTuple):
    version: int
    artifact_uri: str
    sha256: str


class Rows(NamedTuple):
    uri: str
    dataset_version: str | None


def pick_version(model: Model, wanted: int | None) -> Scorer | cond.State:
    """The version that scores: `wanted`, else the serving one; or why there is none (yet)."""
    status = model.status
    version = wanted or (status.serving_version if status else None)
    if version is None:
        message = f"Model {model.name} serves no version yet: the run starts when one serves (or set spec.version)"
        return cond.State(cond.UNKNOWN, cond.Reason.NOT_TRAINED, message)
    record = next((v for v in (status.versions if status else []) if v.version == version), None)
    if record is None:
        message = f"Model {model.name} has no version {version} in status.versions: set spec.version to one it has"
        return cond.State(FALSE, cond.Reason.VERSION_NOT_FOUND, message)
    if record.state == VersionState.TRAINING:
        return cond.State(cond.UNKNOWN, cond.Reason.NOT_TRAINED, f"version {version} of {model.name} is training")
    if record.state in UNSCORABLE or not record.artifact_uri or not record.sha256:
        message = f"version {version} of Model {model.name} is {record.state} without a trained artifact: pick another"
        return cond.State(FALSE, cond.Reason.VERSION_NOT_FOUND, message)
    return Scorer(version, record.artifact_uri, record.sha256)


def pick_rows(dataset: Dataset, wanted: str | None) -> Rows | cond.State:
    """The Dataset version's snapshot: `wanted`, else the current version; or why there is none."""
    status = dataset.status
    if wanted:
        record = next((v for v in (status.versions if status else []) if v.version == wanted), None)
        if record is None or not record.data_uri:
            message = f"Dataset {dataset.name} has no version {wanted[:16]} in status.versions: set another"
            return cond.State(FALSE, cond.Reason.VERSION_NOT_FOUND, message)
        return Rows(record.data_uri, wanted)
    if status is None or not status.version or not status.data_uri:
        message = f"Dataset {dataset.name} has no version yet: the run starts when it has one"
        return cond.State(cond.UNKNOWN, cond.Reason.DATASET_NOT_READY, message)
    return Rows(status.data_uri, status.version)


async def resolve(ctx: ReconcileContext, batch: BatchScoring) -> tuple[Scorer, Rows] | cond.State:
    """Read the Model and the input's Dataset: what a new run would score with, or why it cannot start."""
    spec, ns = batch.spec, batch.namespace
    body = await ctx.kube.get(MODEL, ns, spec.model_ref.name)
    if body is None:
        return cond.State(FALSE, cond.Reason.MODEL_NOT_FOUND, f"Model {spec.model_ref.name} not found in {ns}")
    try:
        scorer = pick_version(Model.model_validate(body), spec.version)
    except ValidationError:
        return cond.State(FALSE, cond.Reason.MODEL_INVALID, f"Model {spec.model_ref.name} is invalid: fix it first")
    if isinstance(scorer, cond.State):
        return scorer
    ref = spec.input.dataset_ref
    if ref is None:
        return scorer, Rows(spec.input.uri or "", None)
    found = await ctx.kube.get(DATASET, ns, ref.name)
    if found is None:
        return cond.State(cond.UNKNOWN, cond.Reason.DATASET_NOT_FOUND, f"Dataset {ref.name} not found in {ns}")
    rows = pick_rows(Dataset.model_validate(found), spec.input.dataset_version)
    return rows if isinstance(rows, cond.State) else (scorer, rows)


def due_tick(batch: BatchScoring, work: BatchScoringStatus, now: datetime) -> datetime | None:
    """With a schedule: the cron time to run now (None: the latest one ran)."""
    if not batch.spec.schedule:
        return None
    return schedule.due(Schedule(cron=batch.spec.schedule), now, work.last_schedule_time)


def wants_run(batch: BatchScoring, work: BatchScoringStatus, tick: datetime | None) -> bool:
    """A new run: none is active, and the schedule is due or (without one) no run has this spec."""
    if any(r.phase in (BatchPhase.PENDING, BatchPhase.RUNNING) for r in work.runs):
        return False
    if batch.spec.schedule:
        return tick is not None
    return not any(r.spec_hash == build.spec_hash(batch) for r in work.runs)


def new_run(batch: BatchScoring, scorer: Scorer, rows: Rows, tick: datetime | None, ctx: ReconcileContext) -> BatchRun:
    identity = build.run_identity(
        batch, version=scorer.version, input_uri=rows.uri, dataset_version=rows.dataset_version, tick=tick
    )
    name = build.job_name(batch, identity)
    return BatchRun(
        job=name,
        version=scorer.version,
        input=rows.uri,
        dataset_version=rows.dataset_version,
        output=build.output_dir(batch, name, ctx.settings),
        scheduled_time=tick,
        spec_hash=identity["spec"],
    )


async def observe_runs(run: BatchScoringRun, jobs: dict[str, dict[str, Any]]) -> None:
    """Bring every unfinished run in status up to date with its Job."""
    work, shards = run.work, run.resource.spec.shards
    for i, recorded in enumerate(work.runs):
        if recorded.phase not in (BatchPhase.PENDING, BatchPhase.RUNNING):
            continue
        job = jobs.get(recorded.job)
        if job is None:
            if recorded.started_at is not None:
                work.runs[i] = batch_runs.lost(recorded, run.now)
                run.note(warning(cond.Reason.JOB_LOST, work.runs[i].message or ""))
            continue
        updated = batch_runs.observe_run(recorded, job, await run.ctx.kube.job_pods(job), shards)
        work.runs[i] = updated
        if updated.phase == BatchPhase.SUCCEEDED:
            rate = f", {updated.rows_per_second} rows/s" if updated.rows_per_second else ""
            run.note(normal("RunSucceeded", f"run {updated.job}: {updated.message}{rate}"))
        elif updated.phase == BatchPhase.FAILED:
            run.note(warning(batch_runs.run_reason(updated), f"run {updated.job}: {updated.message}"))


async def start(run: BatchScoringRun, scorer: Scorer, rows: Rows, tick: datetime | None) -> None:
    ctx, batch = run.ctx, run.resource
    record = new_run(batch, scorer, rows, tick, ctx)
    plan = build.batch_plan(
        batch,
        version=scorer.version,
        artifact_uri=scorer.artifact_uri,
        sha256=scorer.sha256,
        input_uri=rows.uri,
        output=record.output,
        settings=ctx.settings,
    )
    await ctx.prepare_namespace(batch.namespace)
    _, created = await ctx.kube.create_or_adopt(build.batch_job(batch, plan, record.job, ctx.settings, tick))
    if created:
        ctx.metrics.jobs_created.labels(contracts.Component.BATCH_SCORE).inc()
    record = record.model_copy(update={"started_at": run.now, "message": "starting"})
    run.work.runs = [*(r for r in run.work.runs if r.job != record.job), record]
    if tick is not None:
        run.work.last_schedule_time = tick
    source = f"Dataset version {rows.dataset_version[:12]}" if rows.dataset_version else rows.uri
    run.note(
        normal(
            "RunStarted", f"run {record.job}: version {scorer.version} scores {source} in {batch.spec.shards} shards"
        )
    )


async def trim(run: BatchScoringRun, jobs: dict[str, dict[str, Any]]) -> None:
    """Keep the newest runsToKeep runs (never an active one); delete the Jobs of the others."""
    keep = run.resource.spec.runs_to_keep
    work = run.work
    while len(work.runs) > keep and work.runs[0].phase in (BatchPhase.SUCCEEDED, BatchPhase.FAILED):
        dropped = work.runs.pop(0)
        if dropped.job in jobs:
            await run.ctx.kube.delete_child(jobs[dropped.job], run.resource.uid)
    live = {r.job for r in work.runs}
    for name, job in jobs.items():
        finished = not observe.job_phase(job).active
        if name not in live and finished:
            await run.ctx.kube.delete_child(job, run.resource.uid)


async def steps(run: BatchScoringRun) -> None:
    """3. observe the runs' Jobs, 4. decide whether a run starts, 5. start it; trim; summarise."""
    ctx, key, batch, work, now = run.ctx, run.key, run.resource, run.work, run.now
    labels = {contracts.LABEL_BATCH_SCORING: key.name, contracts.LABEL_COMPONENT: str(contracts.Component.BATCH_SCORE)}
    jobs = {j["metadata"]["name"]: j for j in await ctx.kube.list(JOB, key.namespace, labels)}
    await observe_runs(run, jobs)
    tick = due_tick(batch, work, now)
    waiting: cond.State | None = None
    if wants_run(batch, work, tick):
        resolved = await resolve(ctx, batch)
        if isinstance(resolved, cond.State):
            waiting = resolved
        else:
            await start(run, *resolved, tick)
    await trim(run, jobs)
    batch_runs.summarize(work, batch.spec.shards, waiting, batch.generation, now)
    if batch.spec.schedule:
        nxt = schedule.next_tick(Schedule(cron=batch.spec.schedule), now)
        work.next_schedule_time = nxt
        run.wake_in(schedule.seconds_until(nxt, now) + 1)


async def reconcile(ctx: ReconcileContext, key: Key) -> ReconcileResult:
    return await RECONCILER.reconcile(ctx, key)


RECONCILER = KindReconciler(
    kind=BATCH_SCORING,
    resource=BatchScoring,
    steps=steps,
    invalid_conditions=(cond.Type.READY,),
)
