"""The summary of a Model's status: conditions, phase, message and metric. Pure.

`Ready` is derived: `DatasetResolved` and `Serving` (or `Approved` when serving is disabled), plus
`Trained` while nothing serves and training failed or is blocked; the first that is not True
explains why. kstatus' `Reconciling` holds while a version trains or rolls out, `Stalled` while Ready
is False for a reason only a change heals.
"""

from __future__ import annotations

from datetime import datetime

from mlops_operator import conditions as cond
from mlops_operator.api.v1alpha1.model import Model, ModelPhase, ModelStatus, ModelVersion, VersionState
from mlops_operator.reconcilers.model import versions


def metric_text(record: ModelVersion | None) -> str | None:
    if record is None or record.gate is None or record.gate.score is None:
        return None
    return f"{record.gate.metric}={record.gate.score:.4g}"


def trained_state(newest: ModelVersion | None, blocked: cond.State | None) -> cond.State:
    """Trained: the newest version's training, or why no training can start."""
    if blocked is not None and (newest is None or newest.state != VersionState.TRAINING):
        return blocked
    if newest is None:
        return cond.State(cond.UNKNOWN, cond.Reason.NOT_TRAINED, "no version trained yet")
    if newest.state == VersionState.TRAINING:
        return cond.State(
            cond.UNKNOWN, cond.Reason.JOB_RUNNING, f"Job {newest.job} is training version {newest.version}"
        )
    if newest.state == VersionState.FAILED:
        return cond.State(cond.FALSE, newest.reason or cond.Reason.JOB_FAILED, newest.message or "")
    trained_on = f"version {newest.version} trained on dataset {str(newest.dataset_version)[:12]}"
    return cond.State(cond.TRUE, cond.Reason.SUCCEEDED, trained_on)


def validated_state(gated: ModelVersion | None) -> cond.State:
    """Validated: the gate's verdict on the newest version that trained to a result."""
    if gated is None or gated.gate is None:
        return cond.State(cond.UNKNOWN, cond.Reason.NOT_TRAINED, "no version has been validated yet")
    status = cond.TRUE if gated.gate.passed else cond.FALSE
    return cond.State(status, gated.gate.reason, f"version {gated.version}: {gated.gate.message}")


def working_state(work: ModelStatus, serving: cond.State, blocked: cond.State | None) -> cond.State | None:
    """What the Model is busy with (kstatus Reconciling): a rollout, a training, reading the registry."""
    if serving.reason == cond.Reason.ROLLING_OUT:
        return cond.State(cond.TRUE, cond.Reason.ROLLING_OUT, serving.message)
    if work.active_training is not None:
        training = f"Job {work.active_training.job} is training version {work.active_training.version}"
        return cond.State(cond.TRUE, cond.Reason.JOB_RUNNING, training)
    if blocked is not None and blocked.reason == cond.Reason.READING_REGISTRY:
        return cond.State(cond.TRUE, blocked.reason, blocked.message)
    return None


def phase_of(work: ModelStatus, approval: cond.State, serving: cond.State, ready: cond.State) -> ModelPhase:
    if serving.reason == cond.Reason.ROLLING_OUT:
        return ModelPhase.ROLLING_OUT
    if work.active_training is not None:
        return ModelPhase.TRAINING
    if approval.reason == cond.Reason.AWAITING_APPROVAL:
        return ModelPhase.AWAITING_APPROVAL
    if work.serving_version is not None and serving.status == cond.TRUE:
        return ModelPhase.SERVING
    if ready.status == cond.FALSE:
        return ModelPhase.FAILED
    return ModelPhase.PENDING


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
    """Conditions, phase and message from the working status."""
    gen = model.generation
    newest = versions.latest(work.versions)
    c = work.conditions
    c = cond.set_state(c, cond.Type.DATASET_RESOLVED, dataset, now=now, generation=gen)
    c = cond.set_state(c, cond.Type.TRAINED, trained_state(newest, blocked), now=now, generation=gen)
    validated = validated_state(versions.latest(work.versions, finished=True))
    c = cond.set_state(c, cond.Type.VALIDATED, validated, now=now, generation=gen)
    c = cond.set_state(c, cond.Type.APPROVED, approval, now=now, generation=gen)
    c = cond.set_state(c, cond.Type.SERVING, serving_, now=now, generation=gen)
    ready_deps = [
        cond.Type.DATASET_RESOLVED,
        cond.Type.SERVING if model.spec.serving.enabled else cond.Type.APPROVED,
    ]
    training_failed = newest is not None and newest.state == VersionState.FAILED
    if work.serving_version is None and (training_failed or blocked is not None):
        ready_deps.insert(1, cond.Type.TRAINED)  # nothing serves and training failed: that is the news
    ready = cond.ready_from(c, ready_deps)
    c = cond.set_state(c, cond.Type.READY, ready, now=now, generation=gen)
    working = working_state(work, serving_, blocked)
    # a failed training is not retried until the spec, the data or a retrain request changes
    failed = work.serving_version is None and training_failed
    work.conditions = cond.with_kstatus(c, working=working, failed=failed, now=now, generation=gen)
    work.observed_generation = gen
    work.phase = phase_of(work, approval, serving_, ready)
    work.message = ready.message[:1024] if ready.status != cond.TRUE else f"serving version {work.serving_version}"
    work.metric = metric_text(versions.find(work.versions, work.serving_version))
