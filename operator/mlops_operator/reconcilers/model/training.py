"""Training: which request is pending, its Job, adopting Jobs the status never recorded, results.

A request is handled when its Job is created; everything the decision depends on (the training
spec's hash, the dataset version, the handled retrain annotation, the cooldown clock) is persisted
in status, so a restart resumes exactly where the last run stopped.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from mlops_operator import conditions as cond
from mlops_operator import contracts
from mlops_operator.api.plans import ChampionRef
from mlops_operator.api.results import TrainResult
from mlops_operator.api.v1alpha1.dataset import Dataset
from mlops_operator.api.v1alpha1.model import ActiveTraining, Model, ModelStatus, ModelVersion, VersionState
from mlops_operator.builders import jobs
from mlops_operator.kube import ForeignObject, Rejected
from mlops_operator.reconcilers import annotated, approvals, gates, observe
from mlops_operator.reconcilers.context import EventSpec, normal, warning
from mlops_operator.reconcilers.model import versions
from mlops_operator.reconcilers.model.children import ModelRun

TRIGGER_INITIAL = "initial"
SHA256 = re.compile(r"^[0-9a-f]{64}$")


# --- pure -----------------------------------------------------------------------------------------
def job_version(job: dict[str, Any]) -> int | None:
    return annotated.version_number((job["metadata"].get("labels") or {}).get(contracts.LABEL_MODEL_VERSION))


def job_request(job: dict[str, Any]) -> dict[str, str]:
    raw = (job["metadata"].get("annotations") or {}).get(contracts.ANNOTATION_TRAINING_REQUEST, "{}")
    try:
        value = json.loads(raw)
        return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}
    except ValueError:
        return {}


def not_older(request: str, handled: str | None) -> bool:
    """Whether recording `request` as handled keeps the handled request monotonic.

    A request older than the one already handled must never replace it: the current annotation
    would then look unhandled and start a retraining nobody asked for.
    """
    if handled is None:
        return True
    new, old = annotated.request_time(request), annotated.request_time(handled)
    if new is None or old is None:
        return True  # not timestamped: nothing to compare, the caller's order stands
    return new >= old


def recover_jobs(work: ModelStatus, train_jobs: list[dict[str, Any]], now: datetime) -> list[EventSpec]:
    """Adopt training Jobs the status never recorded (the operator died between create and patch).

    Only a Job above every version the status ever recorded can be one. A Job at or below that
    whose version is not in status was recorded and later pruned (`maxVersions`) while the Job
    lives out its TTL: adopting it would bring the pruned version back and restore the old request
    it answered, so the current retrain annotation would look unhandled and retrain, forever.
    """
    events = []
    recorded = versions.highest_recorded(work.versions, work.latest_version)
    for job in sorted(train_jobs, key=lambda j: job_version(j) or 0):
        version = job_version(job)
        if version is None or version <= recorded:
            continue
        request = job_request(job)
        trigger = str((job["metadata"].get("annotations") or {}).get(contracts.ANNOTATION_TRIGGER, "recovered"))
        versions.start(
            work.versions,
            version=version,
            job=job["metadata"]["name"],
            trigger=trigger[:256],
            dataset_version=request.get("dataset", ""),
            estimator=None,
            params={},
            now=now,
        )
        work.latest_version = max(work.latest_version or 0, version)
        if request:  # the request this Job answers is handled, or it would be created again
            work.training_spec_hash = request.get("spec") or work.training_spec_hash
            work.trained_dataset_version = request.get("dataset") or work.trained_dataset_version
            retrain = request.get("retrain")
            if retrain and len(retrain) <= annotated.MAX_REQUEST and not_older(retrain, work.handled_retrain_request):
                work.handled_retrain_request = retrain
        events.append(normal("TrainingAdopted", f"adopted training Job {job['metadata']['name']} (version {version})"))
    return events


def result_problem(result: TrainResult) -> str | None:
    """What makes a successful result unfit for the ledger (a custom trainer may report anything).

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
        versions.fail(record, "InvalidResult", f"the training result cannot be registered: {problem}", now)
        return [warning("InvalidResult", f"version {record.version}: {problem}")]
    if outcome.phase != observe.JobPhase.SUCCEEDED and outcome.reason == cond.Reason.NO_NEW_DATA:
        work.versions.remove(record)  # a labels-only request that found none: no version (its number stays unused)
        return [warning(cond.Reason.NO_NEW_DATA, f"retrain not acted on: {outcome.message}")]
    if outcome.phase != observe.JobPhase.SUCCEEDED or result is None:
        versions.fail(record, outcome.reason or cond.Reason.JOB_FAILED, outcome.message, now)
        return [warning(record.reason or cond.Reason.JOB_FAILED, f"version {record.version} failed: {outcome.message}")]
    split = result.gate_split  # challenger and champion on the held-out rows the champion never saw
    verdict = gates.evaluate(
        model.spec.validation,
        result.metrics,
        champion_metrics=split.champion_metrics if split else result.champion_metrics,
        champion_version=champion_version,
        duel_metrics=split.metrics if split else None,
        duel_rows=split.rows_scored if split else None,
    )
    versions.trained(record, result, verdict, now)
    if verdict.passed:
        return [normal("Validated", f"version {record.version} passed validation: {verdict.message}")]
    return [warning("Rejected", f"version {record.version} rejected ({verdict.reason}): {verdict.message}")]


@dataclass(frozen=True)
class TrainingDecision:
    trigger: str | None = None  # None: nothing to train
    retrain_request: str | None = None  # the annotation value this run answers
    deferred_for: float | None = None  # seconds until the cooldown ends
    deferred_message: str = ""
    no_new_data: bool = False  # a drift or quality request on the champion's data: handled, nothing trained
    # The same request with spec.retrain.productionLabels: the Job trains only if labels arrived since the
    # champion was trained (it alone reads the store), else answers NoNewData before fitting.
    labels_only: bool = False


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
    annotation, _ = annotated.retrain_request(model.annotations)  # a malformed one is ignored (and said so)
    if annotation and annotation != work.handled_retrain_request:
        same_data = no_new_data(annotation, work, dataset_version)
        if same_data and not model.spec.retrain.production_labels.enabled:
            return TrainingDecision(retrain_request=annotation, no_new_data=True)
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
        trigger = f"retrain: {retrain_reason(annotation)}"
        if same_data:
            return TrainingDecision(f"{trigger} (new production labels)"[:256], annotation, labels_only=True)
        return TrainingDecision(trigger[:256], retrain_request=annotation)
    return TrainingDecision()


def no_new_data(annotation: str, work: ModelStatus, dataset_version: str) -> bool:
    """A DriftMonitor's request (drift, prediction drift, quality: contracts.automatic_retrain) while the
    Dataset is still at the version the serving model was trained on: retraining on it cannot help. A
    person's request (`kubectl mlops retrain`) trains on the same data all the same."""
    champion = versions.find(work.versions, work.serving_version)
    return (
        contracts.automatic_retrain(annotation) and champion is not None and champion.dataset_version == dataset_version
    )


def no_new_data_state(model: Model, work: ModelStatus, dataset_version: str, fresh: bool = False) -> cond.State | None:
    """Trained's NoNewData state: for the request just answered so (`fresh`), and after that while
    Trained still says so (a training since would have said otherwise) and the data has not changed."""
    request = work.handled_retrain_request
    if not request or request != model.annotations.get(contracts.ANNOTATION_RETRAIN_REQUESTED):
        return None
    previous = cond.get(work.conditions, cond.Type.TRAINED)
    if not fresh and (previous is None or previous.reason != cond.Reason.NO_NEW_DATA):
        return None
    if not no_new_data(request, work, dataset_version):
        return None
    no_labels = ", and no labelled production row arrived since" if model.spec.retrain.production_labels.enabled else ""
    message = (
        f"retrain request {request!r} not acted on: the Dataset is still at version {dataset_version[:12]}, which "
        f"serving version {work.serving_version} was trained on{no_labels}; retraining on the same data cannot help"
    )
    return cond.State(cond.TRUE, cond.Reason.NO_NEW_DATA, message)


def _answered_no_new_data(run: ModelRun) -> bool:
    """Whether this reconcile read a labels-only training Job that found no new labels (finish_training)."""
    return any(e.reason == cond.Reason.NO_NEW_DATA for e in run.events)


def champion_of(work: ModelStatus) -> ChampionRef | None:
    record = versions.find(work.versions, work.serving_version)
    if record is None or not record.artifact_uri or not record.sha256:
        return None
    return ChampionRef(version=record.version, artifact_uri=record.artifact_uri, sha256=record.sha256)


def resolve_dataset(model: Model, body: dict[str, Any] | None) -> tuple[cond.State, Dataset | None]:
    """The Dataset to train on, if it has a ready version, and the DatasetResolved condition."""
    name = model.spec.dataset_ref.name
    if body is None:
        missing = f"Dataset {name} does not exist in namespace {model.namespace}; create it or fix spec.datasetRef"
        return cond.State(cond.FALSE, cond.Reason.DATASET_NOT_FOUND, missing), None
    try:
        dataset = Dataset.model_validate(body)
    except ValidationError:
        return cond.State(cond.FALSE, cond.Reason.DATASET_NOT_READY, f"Dataset {name} has an invalid spec"), None
    status = dataset.status
    if (
        status is None
        or not status.version
        or not status.data_uri
        or not cond.is_true(status.conditions, cond.Type.READY)
    ):
        ready = cond.get(status.conditions, cond.Type.READY) if status else None
        why = f": {ready.reason}: {ready.message}" if ready is not None and ready.status == cond.FALSE else " yet"
        return cond.State(cond.FALSE, cond.Reason.DATASET_NOT_READY, f"Dataset {name} has no ready version{why}"), None
    resolved = f"Dataset {name} version {status.version[:12]}"
    return cond.State(cond.TRUE, cond.Reason.DATASET_RESOLVED, resolved), dataset


# --- with the API ---------------------------------------------------------------------------------
async def observe_training(run: ModelRun, train_jobs: list[dict[str, Any]]) -> None:
    """Settle every version still Training: finished Jobs are read, vanished ones are lost."""
    work = run.work
    jobs_by_name = {j["metadata"]["name"]: j for j in train_jobs}
    active: ModelVersion | None = None
    for record in [v for v in work.versions if v.state == VersionState.TRAINING]:
        job = jobs_by_name.get(record.job or "")
        if job is None:
            message = f"training Job {record.job} disappeared before its result was read"
            versions.fail(record, cond.Reason.JOB_LOST, message, run.now)
            run.note(warning(cond.Reason.JOB_LOST, f"version {record.version}: training Job {record.job} disappeared"))
        elif not observe.job_phase(job).active:
            await _read_result(run, record, job)
        elif _stale(run.resource, job):
            await run.ctx.kube.delete_child(job, run.resource.uid)
            superseded = "the training spec changed while this version trained"
            versions.fail(record, cond.Reason.SUPERSEDED, superseded, run.now)
            run.note(normal(cond.Reason.SUPERSEDED, f"stopped training version {record.version}: the spec changed"))
        elif active is None or record.version > active.version:
            active = record
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


async def _read_result(run: ModelRun, record: ModelVersion, job: dict[str, Any]) -> None:
    outcome = observe.job_outcome(job, await run.ctx.kube.job_pods(job), TrainResult, jobs.WORKLOAD_CONTAINER)
    champion = (job["metadata"].get("annotations") or {}).get(contracts.ANNOTATION_CHAMPION_VERSION, "")
    champion_version = annotated.version_number(champion)
    run.note(*finish_training(run.work, run.resource, record, outcome, champion_version, run.now))
    if record.state == VersionState.FAILED:
        run.ctx.metrics.training_failures.labels(run.key.namespace, run.key.name).inc()


def _stale(model: Model, job: dict[str, Any]) -> bool:
    """A running Job trained for a spec that has since changed (its output must never be promoted)."""
    spec_hash = job_request(job).get("spec")
    return bool(spec_hash) and spec_hash != jobs.training_spec_hash(model)


async def maybe_train(run: ModelRun, dataset: Dataset, train_jobs: list[dict[str, Any]]) -> cond.State | None:
    """Start the training Job of a pending request, if there is one; the Trained state when blocked."""
    model, work, now = run.resource, run.work, run.now
    ds_status = dataset.status
    assert ds_status is not None and ds_status.version and ds_status.data_uri
    target = model.spec.target or dataset.spec.schema_.target or ds_status.target
    if not target:
        message = "no target column: set spec.target on the Model or spec.schema.target on the Dataset"
        run.note(warning(cond.Reason.TARGET_MISSING, message))
        return cond.State(cond.FALSE, cond.Reason.TARGET_MISSING, message)
    spec_hash = jobs.training_spec_hash(model)
    if work.training_spec_hash is None and work.versions:
        work.training_spec_hash = spec_hash
    decision = decide_training(model, work, spec_hash, ds_status.version, now)
    if decision.no_new_data and decision.retrain_request is not None:
        work.handled_retrain_request = decision.retrain_request  # handled: no Job, and not asked again
        state = no_new_data_state(model, work, ds_status.version, fresh=True)
        run.note(warning(cond.Reason.NO_NEW_DATA, state.message if state else decision.retrain_request))
        return state
    if decision.trigger is None and decision.deferred_for is None:
        return no_new_data_state(model, work, ds_status.version, fresh=_answered_no_new_data(run))
    if decision.deferred_for is not None:
        run.note(normal("RetrainDeferred", decision.deferred_message))
        run.wake_in(decision.deferred_for + 1)
    elif decision.trigger is not None:
        return await _start_training(run, decision, spec_hash, target, dataset, train_jobs)
    return None


async def _start_training(
    run: ModelRun,
    decision: TrainingDecision,
    spec_hash: str,
    target: str,
    dataset: Dataset,
    train_jobs: list[dict[str, Any]],
) -> cond.State | None:
    """Create (or find) the Job of `decision`, then record it and the request it answers as handled.

    A Job the API server refuses (or a foreign object of its name) leaves the request pending: the
    Trained state says why, and the same Job is not sent again until the spec changes or its
    backoff ends (kube.Rejected.retry_in).
    """
    model, work, ctx = run.resource, run.work, run.ctx
    ds_status = dataset.status
    assert ds_status is not None and ds_status.version and ds_status.data_uri and decision.trigger
    job_versions = (v for j in train_jobs if (v := job_version(j)))
    version = versions.next_version(work.versions, job_versions, work.latest_version)
    request = jobs.training_request(spec_hash, ds_status.version, decision.retrain_request)
    request["version"] = str(version)  # an A→B→A spec flip must not collide with a Job still in its TTL
    champion = versions.find(work.versions, work.serving_version)
    production = jobs.production_rows_plan(
        model,
        ctx.settings,
        now=run.now,
        new_since=(champion.created_at or champion.trained_at) if champion else None,
        require_new=decision.labels_only,
    )
    plan = jobs.training_plan(
        model,
        version=version,
        target=target,
        dataset_version=ds_status.version,
        data_uri=ds_status.data_uri,
        champion=champion_of(work),
        trigger=decision.trigger,
        settings=ctx.settings,
        production=production,
    )
    await ctx.prepare_namespace(run.key.namespace)
    try:
        job, created = await ctx.kube.create_or_adopt(jobs.training_job(model, plan, request, ctx.settings))
    except (ForeignObject, Rejected) as exc:
        return run.refused(exc)
    if created:
        ctx.metrics.jobs_created.labels(contracts.Component.TRAIN).inc()
    _record_started(run, decision, job, job_version(job) or version, spec_hash, ds_status.version)
    return None


def _record_started(
    run: ModelRun, decision: TrainingDecision, job: dict[str, Any], version: int, spec_hash: str, dataset_version: str
) -> None:
    model, work, now = run.resource, run.work, run.now
    assert decision.trigger
    job_name = job["metadata"]["name"]
    record = versions.start(
        work.versions,
        version=version,
        job=job_name,
        trigger=decision.trigger,
        dataset_version=dataset_version,
        estimator=model.spec.trainer.estimator or model.spec.trainer.image,
        params=dict(model.spec.trainer.params),
        now=now,
    )
    record.triggered_by = approvals.trigger_user(model.annotations)
    work.active_training = ActiveTraining(
        job=job_name, version=version, trigger=decision.trigger, dataset_version=dataset_version, started_at=now
    )
    work.latest_version = max(work.latest_version or 0, version)
    work.training_spec_hash = spec_hash
    work.trained_dataset_version = dataset_version
    work.trained_generation = model.generation
    if decision.retrain_request is not None:
        work.handled_retrain_request = decision.retrain_request
    if decision.trigger != TRIGGER_INITIAL:
        work.last_retrain_time = now
    run.note(normal("TrainingStarted", f"training version {version} in Job {job_name} ({decision.trigger})"))
