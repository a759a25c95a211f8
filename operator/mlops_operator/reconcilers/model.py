"""Model: training request → training Job → gate → registry → approval → serving → rollback.

Level-based: every run reads the Model, its Dataset, its training Jobs and its Deployment, and
drives them toward the spec. Everything a decision depends on is persisted in status (handled
training request, handled retrain request, cooldown clock, serving version), so a restart resumes
exactly where the last run stopped. Side effects come before the status patch that records them,
and each can be found again by name or label: a crash in between is healed by the next run.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from mlops_operator import conditions as cond
from mlops_operator import contracts
from mlops_operator.api.results import ChampionRef, RegistryResult, TrainResult
from mlops_operator.api.v1alpha1.dataset import Dataset
from mlops_operator.api.v1alpha1.model import (
    ActiveTraining,
    ApprovalPolicy,
    Model,
    ModelPhase,
    ModelStatus,
    ModelVersion,
    RegistryMirror,
    VersionState,
)
from mlops_operator.builders import jobs, meta, serving
from mlops_operator.kube import DATASET, DEPLOYMENT, HPA, JOB, MODEL, POD, SERVICE
from mlops_operator.reconcilers import gates, observe, registry
from mlops_operator.reconcilers.context import (
    Context,
    EventSpec,
    Key,
    Outcome,
    deleting,
    normal,
    record_invalid_spec,
    status_patch,
    validation_message,
    warning,
)

TRIGGER_INITIAL = "initial"
MAX_ROLLBACKS_PER_RUN = 3


# --- pure steps ---------------------------------------------------------------------------------
def job_version(job: dict[str, Any]) -> int | None:
    value = (job["metadata"].get("labels") or {}).get(contracts.LABEL_MODEL_VERSION, "")
    return int(value) if value.isdigit() else None


def job_request(job: dict[str, Any]) -> dict[str, str]:
    raw = (job["metadata"].get("annotations") or {}).get(meta.ANNOTATION_REQUEST, "{}")
    try:
        value = json.loads(raw)
        return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}
    except ValueError:
        return {}


def recover_jobs(work: ModelStatus, train_jobs: list[dict[str, Any]], now: datetime) -> list[EventSpec]:
    """Adopt training Jobs the status does not know (the operator died between create and patch)."""
    events = []
    for job in sorted(train_jobs, key=lambda j: job_version(j) or 0):
        version = job_version(job)
        if version is None or registry.find(work.versions, version) is not None:
            continue
        request = job_request(job)
        annotations = job["metadata"].get("annotations") or {}
        registry.start(
            work.versions,
            version=version,
            job=job["metadata"]["name"],
            trigger=annotations.get(contracts.ANNOTATION_TRIGGER, "recovered"),
            dataset_version=request.get("dataset", ""),
            estimator=None,
            params={},
            now=now,
        )
        work.latest_version = max(work.latest_version or 0, version)
        if request:  # the request this Job answers is handled, or it would be created again
            work.training_spec_hash = request.get("spec") or work.training_spec_hash
            work.trained_dataset_version = request.get("dataset") or work.trained_dataset_version
            if request.get("retrain"):
                work.handled_retrain_request = request["retrain"]
        events.append(normal("TrainingAdopted", f"adopted training Job {job['metadata']['name']} (version {version})"))
    return events


SHA256 = re.compile(r"^[0-9a-f]{64}$")


def result_problem(result: TrainResult) -> str | None:
    """What makes a successful result unfit for the registry (a custom trainer may report anything).

    Without this check a bad value would make every status patch fail validation, forever.
    """
    if not result.sha256 or not SHA256.match(result.sha256):
        return f"sha256 must be 64 lowercase hex characters, got {str(result.sha256)[:80]!r}"
    if not result.artifact_uri or len(result.artifact_uri) > 1024:
        return "artifactUri is missing or longer than 1024 characters"
    bad = [k for k, v in result.metrics.items() if not math.isfinite(v)]
    if bad or len(result.metrics) > 64:
        return f"metrics must be at most 64 finite numbers (not finite: {', '.join(bad[:5])})"
    return None


def finish_training(
    work: ModelStatus,
    model: Model,
    record: ModelVersion,
    outcome: observe.JobOutcome[TrainResult],
    champion_version: int | None,
    now: datetime,
) -> list[EventSpec]:
    """Record a finished training Job: Failed, or gated into Validated / Rejected."""
    result = outcome.result
    problem = result_problem(result) if outcome.phase == observe.JobPhase.SUCCEEDED and result else None
    if problem is not None:
        registry.fail(record, "InvalidResult", f"the training result cannot be registered: {problem}", now)
        return [warning("InvalidResult", f"version {record.version}: {problem}")]
    if outcome.phase != observe.JobPhase.SUCCEEDED or result is None:
        registry.fail(record, outcome.reason or cond.Reason.JOB_FAILED, outcome.message, now)
        return [warning(record.reason or cond.Reason.JOB_FAILED, f"version {record.version} failed: {outcome.message}")]
    verdict = gates.evaluate(
        model.spec.validation,
        result.metrics,
        champion_metrics=result.champion_metrics,
        champion_version=champion_version,
    )
    registry.trained(record, result, verdict, now)
    if verdict.passed:
        return [normal("Validated", f"version {record.version} passed validation: {verdict.message}")]
    return [warning("Rejected", f"version {record.version} rejected ({verdict.reason}): {verdict.message}")]


@dataclass(frozen=True)
class TrainingDecision:
    trigger: str | None = None  # None: nothing to train
    retrain_request: str | None = None  # the annotation value this run answers
    deferred_for: float | None = None  # seconds until the cooldown ends
    deferred_message: str = ""


def retrain_reason(annotation: str) -> str:
    _, _, reason = annotation.partition(";")
    return reason.strip() or "requested"


def decide_training(
    model: Model, work: ModelStatus, spec_hash: str, dataset_version: str, now: datetime
) -> TrainingDecision:
    """Whether a new training request is pending, in priority order. Pure."""
    if work.training_spec_hash is None:
        # No versions: the first training. Versions but no hash: a status written before the field
        # existed; adopt the current spec rather than retrain everything after an upgrade.
        return TrainingDecision(TRIGGER_INITIAL) if not work.versions else TrainingDecision()
    if spec_hash != work.training_spec_hash:
        return TrainingDecision(f"spec changed (generation {model.generation})")
    if model.spec.retrain.on_dataset_change and dataset_version != work.trained_dataset_version:
        return TrainingDecision(f"dataset version {dataset_version[:12]}")
    annotation = model.annotations.get(contracts.ANNOTATION_RETRAIN_REQUESTED)
    if annotation and annotation != work.handled_retrain_request:
        cooldown = timedelta(seconds=model.spec.retrain.cooldown_seconds)
        if work.last_retrain_time is not None and now < work.last_retrain_time + cooldown:
            remaining = (work.last_retrain_time + cooldown - now).total_seconds()
            return TrainingDecision(
                deferred_for=remaining,
                deferred_message=(
                    f"retrain request {annotation!r} deferred: the last retraining started at "
                    f"{work.last_retrain_time.isoformat()} and retrain.cooldownSeconds is "
                    f"{model.spec.retrain.cooldown_seconds}"
                ),
            )
        return TrainingDecision(f"retrain: {retrain_reason(annotation)}"[:256], retrain_request=annotation)
    return TrainingDecision()


def champion_of(work: ModelStatus) -> ChampionRef | None:
    record = registry.find(work.versions, work.serving_version)
    if record is None or not record.artifact_uri or not record.sha256:
        return None
    return ChampionRef(version=record.version, artifact_uri=record.artifact_uri, sha256=record.sha256)


def latest(work: ModelStatus, *, finished: bool = False) -> ModelVersion | None:
    candidates = [
        v for v in work.versions if not finished or v.state not in (VersionState.TRAINING, VersionState.FAILED)
    ]
    return max(candidates, key=lambda v: v.version, default=None)


def metric_text(record: ModelVersion | None) -> str | None:
    if record is None or record.gate is None or record.gate.score is None:
        return None
    return f"{record.gate.metric}={record.gate.score:.4g}"


def summarize(
    work: ModelStatus,
    model: Model,
    *,
    dataset: cond.State,
    approval: cond.State,
    serving_: cond.State,
    now: datetime,
    blocked: cond.State | None = None,
) -> None:
    """Conditions, phase and message from the working status. Pure."""
    gen = model.generation
    c = work.conditions
    c = cond.set_condition(c, cond.Type.DATASET_RESOLVED, *dataset, now=now, generation=gen)

    newest = latest(work)
    trained: cond.State
    if blocked is not None and (newest is None or newest.state != VersionState.TRAINING):
        trained = blocked
    elif newest is None:
        trained = (cond.UNKNOWN, cond.Reason.NOT_TRAINED, "no version trained yet")
    elif newest.state == VersionState.TRAINING:
        trained = (
            cond.UNKNOWN,
            cond.Reason.JOB_RUNNING,
            f"Job {newest.job} is training version {newest.version}",
        )
    elif newest.state == VersionState.FAILED:
        trained = (cond.FALSE, newest.reason or cond.Reason.JOB_FAILED, newest.message or "")
    else:
        trained = (
            cond.TRUE,
            cond.Reason.SUCCEEDED,
            f"version {newest.version} trained on dataset {str(newest.dataset_version)[:12]}",
        )
    c = cond.set_condition(c, cond.Type.TRAINED, *trained, now=now, generation=gen)

    gated = latest(work, finished=True)
    if gated is None or gated.gate is None:
        validated: cond.State = (cond.UNKNOWN, cond.Reason.NOT_TRAINED, "no version has been validated yet")
    elif gated.gate.passed:
        validated = (cond.TRUE, gated.gate.reason, f"version {gated.version}: {gated.gate.message}")
    else:
        validated = (cond.FALSE, gated.gate.reason, f"version {gated.version}: {gated.gate.message}")
    c = cond.set_condition(c, cond.Type.VALIDATED, *validated, now=now, generation=gen)
    c = cond.set_condition(c, cond.Type.APPROVED, *approval, now=now, generation=gen)
    c = cond.set_condition(c, cond.Type.SERVING, *serving_, now=now, generation=gen)
    ready_deps = [
        cond.Type.DATASET_RESOLVED,
        cond.Type.SERVING if model.spec.serving.enabled else cond.Type.APPROVED,
    ]
    training_failed = newest is not None and newest.state == VersionState.FAILED
    if work.serving_version is None and (training_failed or blocked is not None):
        ready_deps.insert(1, cond.Type.TRAINED)  # nothing serves and training failed: that is the news
    ready = cond.ready_from(c, ready_deps)
    c = cond.set_condition(c, cond.Type.READY, *ready, now=now, generation=gen)
    work.conditions = c
    work.observed_generation = gen

    if serving_[1] == cond.Reason.ROLLING_OUT:
        work.phase = ModelPhase.ROLLING_OUT
    elif work.active_training is not None:
        work.phase = ModelPhase.TRAINING
    elif approval[1] == cond.Reason.AWAITING_APPROVAL:
        work.phase = ModelPhase.AWAITING_APPROVAL
    elif work.serving_version is not None and serving_[0] == cond.TRUE:
        work.phase = ModelPhase.SERVING
    elif ready[0] == cond.FALSE:
        work.phase = ModelPhase.FAILED
    else:
        work.phase = ModelPhase.PENDING
    work.message = ready[2][:1024] if ready[0] != cond.TRUE else f"serving version {work.serving_version}"
    work.metric = metric_text(registry.find(work.versions, work.serving_version))


# --- the reconcile ------------------------------------------------------------------------------
@dataclass
class _Run:
    ctx: Context
    key: Key
    body: dict[str, Any]
    model: Model
    work: ModelStatus
    now: datetime
    events: list[EventSpec]
    requeue: float | None = None
    blocked: cond.State | None = None  # why no training can start (shown on Trained)

    def note(self, event: EventSpec) -> None:
        self.events.append(event)

    def wake_in(self, seconds: float) -> None:
        self.requeue = seconds if self.requeue is None else min(self.requeue, seconds)


async def reconcile(ctx: Context, key: Key) -> Outcome:
    kube = ctx.kube
    body = await kube.get(MODEL, key.namespace, key.name)
    if body is None or deleting(body):
        return Outcome()
    now = ctx.clock()
    try:
        model = Model.model_validate(body)
    except ValidationError as exc:
        await _invalid(ctx, body, validation_message(exc), now)
        return Outcome()
    old = model.status or ModelStatus()
    run = _Run(ctx, key, body, model, old.model_copy(deep=True), now, [])

    dataset_body, model_jobs = await asyncio.gather(
        kube.get(DATASET, key.namespace, model.spec.dataset_ref.name),
        kube.list(JOB, key.namespace, {contracts.LABEL_MODEL: key.name}),
    )
    # A Model deleted and created again under the same name finds its predecessor's Jobs until the
    # garbage collector has removed them: they are not this object's history.
    model_jobs = [j for j in model_jobs if _owned_by(j, body["metadata"].get("uid"))]
    train_jobs = [j for j in model_jobs if _component(j) == contracts.Component.TRAIN]
    registry_jobs = [j for j in model_jobs if _component(j) == contracts.Component.REGISTRY]
    run.events += recover_jobs(run.work, train_jobs, now)
    await _observe_training(run, {j["metadata"]["name"]: j for j in train_jobs})
    await _observe_registry(run, registry_jobs)
    dataset_state, dataset = _resolve_dataset(model, dataset_body)
    if run.work.registry is None:
        # Nothing trains before the store has said which versions it already holds.
        run.blocked = (cond.UNKNOWN, cond.Reason.READING_REGISTRY, "reading the version registry from the store")
    elif run.work.active_training is None and dataset is not None:
        await _maybe_train(run, dataset, train_jobs)
    approval, serving_state = await _serve(run)

    work = run.work
    work.versions = registry.prune(
        work.versions,
        model.spec.max_versions,
        keep=[work.serving_version, work.active_training.version if work.active_training else None],
    )
    summarize(
        work, model, dataset=dataset_state, approval=approval, serving_=serving_state, now=now, blocked=run.blocked
    )

    patch = status_patch(body.get("status"), work.dump())
    if patch:
        await kube.patch_status(MODEL, key.namespace, key.name, patch)
    for event in run.events:
        await kube.event(body, event.type, event.reason, event.message, now=now)
    await _mirror_registry(run, registry_jobs)
    if work.serving_version is not None:
        ctx.metrics.serving_version.labels(key.namespace, key.name).set(work.serving_version)
    return Outcome(requeue_after=run.requeue)


def _resolve_dataset(model: Model, body: dict[str, Any] | None) -> tuple[cond.State, Dataset | None]:
    name = model.spec.dataset_ref.name
    if body is None:
        return (
            cond.FALSE,
            cond.Reason.DATASET_NOT_FOUND,
            f"Dataset {name} does not exist in namespace {model.namespace}; create it or fix spec.datasetRef",
        ), None
    try:
        dataset = Dataset.model_validate(body)
    except ValidationError:
        return (cond.FALSE, cond.Reason.DATASET_NOT_READY, f"Dataset {name} has an invalid spec"), None
    status = dataset.status
    if (
        status is None
        or not status.version
        or not status.data_uri
        or not cond.is_true(status.conditions, cond.Type.READY)
    ):
        ready = cond.get(status.conditions, cond.Type.READY) if status else None
        why = f": {ready.reason}: {ready.message}" if ready is not None and ready.status == cond.FALSE else " yet"
        return (cond.FALSE, cond.Reason.DATASET_NOT_READY, f"Dataset {name} has no ready version{why}"), None
    return (cond.TRUE, cond.Reason.DATASET_RESOLVED, f"Dataset {name} version {status.version[:12]}"), dataset


async def _observe_training(run: _Run, jobs_by_name: dict[str, dict[str, Any]]) -> None:
    """Settle every version still Training: finished Jobs are read, vanished ones are lost."""
    kube, work = run.ctx.kube, run.work
    active: ModelVersion | None = None
    for record in [v for v in work.versions if v.state == VersionState.TRAINING]:
        job = jobs_by_name.get(record.job or "")
        if job is None:
            registry.fail(
                record,
                cond.Reason.JOB_LOST,
                f"training Job {record.job} disappeared before its result was read",
                run.now,
            )
            run.note(warning(cond.Reason.JOB_LOST, f"version {record.version}: training Job {record.job} disappeared"))
            continue
        phase, _, _ = observe.job_phase(job)
        if phase == observe.JobPhase.ACTIVE:
            if _stale(run, job):
                await kube.delete(JOB, run.key.namespace, record.job or "")
                registry.fail(
                    record,
                    cond.Reason.SUPERSEDED,
                    "the training spec changed while this version trained",
                    run.now,
                )
                run.note(normal(cond.Reason.SUPERSEDED, f"stopped training version {record.version}: the spec changed"))
                continue
            active = record if active is None or record.version > active.version else active
            continue
        pods = await kube.list(POD, run.key.namespace, {meta.LABEL_JOB_NAME_LEGACY: record.job or ""})
        outcome = observe.job_outcome(job, pods, TrainResult, jobs.WORKLOAD_CONTAINER)
        champion = (job["metadata"].get("annotations") or {}).get(meta.ANNOTATION_CHAMPION_VERSION)
        run.events += finish_training(work, run.model, record, outcome, int(champion) if champion else None, run.now)
        if record.state == VersionState.FAILED:
            run.ctx.metrics.training_failures.labels(run.key.namespace, run.key.name).inc()
    if active is None:
        work.active_training = None
    elif work.active_training is None or work.active_training.version != active.version:
        work.active_training = ActiveTraining(
            job=active.job or "",
            version=active.version,
            trigger=active.trigger or "",
            dataset_version=active.dataset_version or "",
            started_at=active.created_at or run.now,
        )


def _stale(run: _Run, job: dict[str, Any]) -> bool:
    """A running Job trained for a spec that has since changed (its output must never be promoted)."""
    spec_hash = job_request(job).get("spec")
    return bool(spec_hash) and spec_hash != jobs.training_spec_hash(run.model)


async def _maybe_train(run: _Run, dataset: Dataset, train_jobs: list[dict[str, Any]]) -> None:
    model, work, now = run.model, run.work, run.now
    ds_status = dataset.status
    assert ds_status is not None and ds_status.version and ds_status.data_uri
    target = model.spec.target or dataset.spec.schema_.target or ds_status.target
    if not target:
        message = "no target column: set spec.target on the Model or spec.schema.target on the Dataset"
        run.blocked = (cond.FALSE, cond.Reason.TARGET_MISSING, message)
        run.note(
            warning(
                cond.Reason.TARGET_MISSING,
                "no target column: set spec.target on the Model or spec.schema.target on the Dataset",
            )
        )
        return
    spec_hash = jobs.training_spec_hash(model)
    if work.training_spec_hash is None and work.versions:
        work.training_spec_hash = spec_hash
    decision = decide_training(model, work, spec_hash, ds_status.version, now)
    if decision.deferred_for is not None:
        run.note(normal("RetrainDeferred", decision.deferred_message))
        run.wake_in(decision.deferred_for + 1)
        return
    if decision.trigger is None:
        return
    version = registry.next_version(
        work.versions, (v for j in train_jobs if (v := job_version(j))), work.latest_version
    )
    request = jobs.training_request(spec_hash, ds_status.version, decision.retrain_request)
    request["version"] = str(version)  # an A→B→A spec flip must not collide with a Job still in its TTL
    plan = jobs.training_plan(
        model,
        version=version,
        target=target,
        dataset_version=ds_status.version,
        data_uri=ds_status.data_uri,
        champion=champion_of(work),
        trigger=decision.trigger,
        settings=run.ctx.settings,
    )
    await run.ctx.prepare_namespace(run.key.namespace)
    job, created = await run.ctx.kube.create_or_adopt(jobs.training_job(model, plan, request, run.ctx.settings))
    if created:
        run.ctx.metrics.jobs_created.labels(contracts.Component.TRAIN).inc()
    version = job_version(job) or version
    job_name = job["metadata"]["name"]
    registry.start(
        work.versions,
        version=version,
        job=job_name,
        trigger=decision.trigger,
        dataset_version=ds_status.version,
        estimator=model.spec.trainer.estimator or model.spec.trainer.image,
        params=dict(model.spec.trainer.params),
        now=now,
    )
    work.active_training = ActiveTraining(
        job=job_name,
        version=version,
        trigger=decision.trigger,
        dataset_version=ds_status.version,
        started_at=now,
    )
    work.latest_version = max(work.latest_version or 0, version)
    work.training_spec_hash = spec_hash
    work.trained_dataset_version = ds_status.version
    work.trained_generation = model.generation
    if decision.retrain_request is not None:
        work.handled_retrain_request = decision.retrain_request
    if decision.trigger != TRIGGER_INITIAL:
        work.last_retrain_time = now
    run.note(normal("TrainingStarted", f"training version {version} in Job {job_name} ({decision.trigger})"))


async def _serve(
    run: _Run,
) -> tuple[cond.State, cond.State]:
    """Approve, pick the version to serve, render it, watch the rollout, roll back on failure."""
    model, work, now, kube, ns = run.model, run.work, run.now, run.ctx.kube, run.key.namespace
    policy = model.spec.approval.policy
    for record in registry.reject_by_user(work.versions, contracts.rejected_versions(model.annotations)):
        run.note(warning(cond.Reason.REJECTED_BY_USER, f"version {record.version}: {record.message}"))
    if policy == ApprovalPolicy.AUTOMATIC:
        for record in registry.auto_approve(work.versions, now):
            run.note(normal("Approved", f"version {record.version} approved automatically"))

    approval: cond.State = (cond.UNKNOWN, cond.Reason.NO_VALIDATED_VERSION, "")
    for _ in range(MAX_ROLLBACKS_PER_RUN):
        target, reason, message = registry.candidate(work.versions, policy, model.spec.approved_version)
        if (
            target is not None
            and policy == ApprovalPolicy.MANUAL
            and target.state in (VersionState.VALIDATED, VersionState.RETIRED)
        ):
            registry.approve(target, now, "Manual")
            run.note(normal("Approved", f"version {target.version} approved (spec.approvedVersion)"))
        if target is not None:
            approval = (cond.TRUE, cond.Reason.APPROVED, f"version {target.version} approved ({policy})")
        else:
            status_ = (
                cond.FALSE
                if reason
                in (
                    cond.Reason.AWAITING_APPROVAL,
                    cond.Reason.VERSION_NOT_FOUND,
                    cond.Reason.VERSION_NOT_APPROVABLE,
                )
                else cond.UNKNOWN
            )
            approval = (status_, reason, message)
            target = registry.find(work.versions, work.serving_version)  # keep serving what serves
        if not model.spec.serving.enabled:
            await _delete_serving(run)
            return approval, (cond.FALSE, cond.Reason.SERVING_DISABLED, "spec.serving.enabled is false")
        if target is None:
            if work.serving_version is None:
                await kube.delete(DEPLOYMENT, ns, serving.deployment_name(model))
            return approval, (
                cond.FALSE,
                cond.Reason.NOTHING_TO_SERVE,
                approval[2] or "no approved version yet",
            )
        state = await _roll_out(run, target)
        if state is not None:
            return approval, state
        # the rollout of `target` failed and was rolled back: choose again
    return approval, (
        cond.FALSE,
        cond.Reason.ROLLOUT_FAILED,
        "several versions failed their rollout in a row",
    )


async def _roll_out(run: _Run, target: ModelVersion) -> cond.State | None:
    """Ensure the serving objects for `target`; None when its rollout failed and it was rolled back."""
    model, work, kube, ns = run.model, run.work, run.ctx.kube, run.key.namespace
    settings = run.ctx.settings
    deployment = serving.deployment(model, target, settings)
    existing = await kube.get(DEPLOYMENT, ns, deployment["metadata"]["name"])
    await run.ctx.prepare_namespace(ns)
    action = await kube.ensure(deployment, existing)
    await kube.ensure(serving.service(model))
    hpa = serving.hpa(model)
    if hpa is not None:
        await kube.ensure(hpa)
    else:
        await kube.delete(HPA, ns, serving.deployment_name(model))
    if action != "unchanged" or existing is None:
        return (cond.UNKNOWN, cond.Reason.ROLLING_OUT, f"rolling out version {target.version}")
    pods = await kube.list(POD, ns, serving.selector(model))
    rollout = observe.rollout(existing, pods)
    if rollout.version != target.version:  # a stale read; the Deployment's own event brings the next one
        return (cond.UNKNOWN, cond.Reason.ROLLING_OUT, f"rolling out version {target.version}")
    if rollout.state == observe.RolloutState.COMPLETE:
        if work.serving_version != target.version:
            retired = registry.mark_serving(work.versions, target.version, run.now)
            work.serving_version = target.version
            work.endpoint = serving.endpoint(model)
            run.note(normal("Serving", f"version {target.version} is serving at {work.endpoint}"))
            for record in retired:
                run.note(normal("Retired", f"version {record.version} retired (replaced by {target.version})"))
        else:
            registry.mark_serving(work.versions, target.version, run.now)
        return (cond.TRUE, cond.Reason.SERVING, f"version {target.version} serving: {rollout.message}")
    if rollout.state == observe.RolloutState.PROGRESSING:
        return (cond.UNKNOWN, cond.Reason.ROLLING_OUT, f"version {target.version}: {rollout.message}")
    # Failed.
    if target.version == work.serving_version:  # nothing older to go back to from here
        return (
            cond.FALSE,
            rollout.reason or cond.Reason.ROLLOUT_FAILED,
            f"version {target.version}: {rollout.message}",
        )
    registry.roll_back(target, rollout.reason or cond.Reason.ROLLOUT_FAILED, rollout.message, run.now)
    previous = f"; back to version {work.serving_version}" if work.serving_version else "; no previous version to serve"
    run.note(
        warning(
            cond.Reason.ROLLED_BACK,
            f"version {target.version} failed its rollout ({rollout.reason}): {rollout.message}{previous}",
        )
    )
    return None


async def _delete_serving(run: _Run) -> None:
    kube, ns, model = run.ctx.kube, run.key.namespace, run.model
    await kube.delete(HPA, ns, serving.deployment_name(model))
    await kube.delete(DEPLOYMENT, ns, serving.deployment_name(model))
    await kube.delete(SERVICE, ns, serving.service_name(model))
    run.work.serving_version = None
    run.work.endpoint = None


def _owned_by(child: dict[str, Any], uid: str | None) -> bool:
    return any(ref.get("uid") == uid for ref in child["metadata"].get("ownerReferences") or [])


def _component(job: dict[str, Any]) -> str:
    return str((job["metadata"].get("labels") or {}).get(contracts.LABEL_COMPONENT, ""))


async def _observe_registry(run: _Run, registry_jobs: list[dict[str, Any]]) -> None:
    """Record the mirror Job of the current versions once it finished; rebuild an empty status from it.

    The first mirror of a Model is also a read: when the Model has no versions but the store has
    (recreated, or restored from a backup without status), the registry is rebuilt from the store.
    """
    work, model = run.work, run.model
    digest = jobs.registry_digest(work.versions)
    if work.registry is not None and work.registry.digest == digest:
        return
    name = jobs.registry_job_name(model, digest)
    job = next((j for j in registry_jobs if j["metadata"]["name"] == name), None)
    if job is None or observe.job_phase(job)[0] == observe.JobPhase.ACTIVE:
        return
    pods = await run.ctx.kube.list(POD, run.key.namespace, {meta.LABEL_JOB_NAME_LEGACY: name})
    outcome = observe.job_outcome(job, pods, RegistryResult, jobs.WORKLOAD_CONTAINER)
    previous = work.registry
    if outcome.phase != observe.JobPhase.SUCCEEDED or outcome.result is None:
        message = f"mirroring the registry to the store failed ({outcome.reason}): {outcome.message}"[:1024]
        if previous is None or previous.message != message:
            run.note(warning("RegistryMirrorFailed", f"Job {name}: {message}"))
        work.registry = (previous or RegistryMirror()).model_copy(update={"job": name, "message": message})
        return
    result = outcome.result
    work.registry = RegistryMirror(
        digest=digest,
        job=name,
        synced_at=run.now,
        stored=result.stored,
        restored=previous.restored if previous else None,
    )
    if previous is None and not work.versions and result.highest_version:
        work.versions, work.latest_version = registry.restore(
            result.versions, result.highest_version, model.spec.max_versions, run.now
        )
        newest = latest(work, finished=True)
        work.trained_dataset_version = newest.dataset_version if newest else None
        work.registry.restored = len(work.versions)
        run.note(
            normal(
                "RegistryRestored",
                f"rebuilt {len(work.versions)} versions from the store (highest: {result.highest_version}); "
                f"the next version is {work.latest_version + 1 if work.latest_version else 1}",
            )
        )


async def _mirror_registry(run: _Run, registry_jobs: list[dict[str, Any]]) -> None:
    """Start a Job that writes the current versions to the store's registry.json, one at a time.

    The Job is named after the content it writes, so a crash and retry finds it instead of writing
    twice; while one runs, later changes wait for it (its completion wakes this Model) and are
    written together. Superseded finished mirror Jobs are removed.
    """
    work, model, kube, ns = run.work, run.model, run.ctx.kube, run.key.namespace
    digest = jobs.registry_digest(work.versions)
    wanted = jobs.registry_job_name(model, digest)
    keep = {wanted, work.registry.job if work.registry else None}
    for job in registry_jobs:
        if job["metadata"]["name"] not in keep and observe.job_phase(job)[0] != observe.JobPhase.ACTIVE:
            await kube.delete(JOB, ns, job["metadata"]["name"])
    if work.registry is not None and work.registry.digest == digest:
        return
    if any(j["metadata"]["name"] == wanted for j in registry_jobs):
        return
    if any(observe.job_phase(j)[0] == observe.JobPhase.ACTIVE for j in registry_jobs):
        return
    await run.ctx.prepare_namespace(ns)
    await kube.create_or_adopt(jobs.registry_job(model, work.versions, run.ctx.settings))
    run.ctx.metrics.jobs_created.labels(contracts.Component.REGISTRY).inc()


async def _invalid(ctx: Context, body: dict[str, Any], message: str, now: datetime) -> None:
    def mark_failed(work: ModelStatus) -> None:
        work.phase = ModelPhase.FAILED
        work.message = message[:1024]

    types = (cond.Type.TRAINED, cond.Type.READY)
    await record_invalid_spec(ctx, MODEL, body, message, now, ModelStatus, types, mark_failed)
