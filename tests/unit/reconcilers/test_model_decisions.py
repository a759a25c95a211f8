"""The Model reconciler's pure decisions: what to train, adopting orphaned Jobs, conditions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from mlops_operator import conditions as cond
from mlops_operator import contracts
from mlops_operator.api.results import GateSplit, TrainResult
from mlops_operator.api.v1alpha1.model import ModelStatus, ModelVersion, VersionState
from mlops_operator.builders import jobs, meta
from mlops_operator.reconcilers import observe
from mlops_operator.reconcilers.model import status as summary
from mlops_operator.reconcilers.model import training
from tests.unit import factories as f
from tests.unit.factories import NOW

RETRAIN = contracts.ANNOTATION_RETRAIN_REQUESTED


def trained_status(model_: Any, dataset_version: str = "v1", **kw: Any) -> ModelStatus:
    return ModelStatus(
        training_spec_hash=jobs.training_spec_hash(model_),
        trained_dataset_version=dataset_version,
        versions=[ModelVersion(version=1, state=VersionState.SERVING)],
        **kw,
    )


def test_first_training_then_nothing() -> None:
    model_ = f.model()
    assert training.decide_training(model_, ModelStatus(), "h", "v1", NOW).trigger == "initial"
    assert (
        training.decide_training(model_, trained_status(model_), jobs.training_spec_hash(model_), "v1", NOW).trigger
        is None
    )


def test_spec_change_and_dataset_change_retrain() -> None:
    model_ = f.model()
    status = trained_status(model_)
    assert "spec changed" in (training.decide_training(model_, status, "other", "v1", NOW).trigger or "")
    assert "dataset version v2" in (
        training.decide_training(model_, status, jobs.training_spec_hash(model_), "v2", NOW).trigger or ""
    )
    no_follow = f.model(retrain={"onDatasetChange": False})
    assert (
        training.decide_training(
            no_follow, trained_status(no_follow), jobs.training_spec_hash(no_follow), "v2", NOW
        ).trigger
        is None
    )


def test_retrain_annotation_is_honoured_once() -> None:
    model_ = f.model(annotations={RETRAIN: "2026-01-02T00:00:00Z;drift: petal_width"})
    h = jobs.training_spec_hash(model_)
    decision = training.decide_training(model_, trained_status(model_), h, "v1", NOW)
    assert decision.trigger == "retrain: drift: petal_width" and decision.retrain_request == model_.annotations[RETRAIN]
    handled = trained_status(model_, handled_retrain_request=model_.annotations[RETRAIN])
    assert training.decide_training(model_, handled, h, "v1", NOW).trigger is None


def test_retrain_within_cooldown_is_deferred_until_it_ends() -> None:
    model_ = f.model(annotations={RETRAIN: "2026-01-02T00:00:00Z;drift"}, retrain={"cooldownSeconds": 600})
    status = trained_status(model_, last_retrain_time=NOW - timedelta(seconds=200))
    decision = training.decide_training(model_, status, jobs.training_spec_hash(model_), "v1", NOW)
    assert (
        decision.trigger is None
        and decision.deferred_for == 400
        and "cooldownSeconds is 600" in decision.deferred_message
    )
    later = training.decide_training(
        model_, status, jobs.training_spec_hash(model_), "v1", NOW + timedelta(seconds=401)
    )
    assert later.trigger is not None


def _job(version: int, request: dict[str, str], trigger: str = "initial") -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"iris-clf-train-{version}",
            "labels": {contracts.LABEL_MODEL_VERSION: str(version)},
            "annotations": {
                contracts.ANNOTATION_TRAINING_REQUEST: meta.canonical_json(request),
                contracts.ANNOTATION_TRIGGER: trigger,
            },
        }
    }


def test_a_job_the_status_never_recorded_is_adopted_with_its_version_and_request() -> None:
    """The operator died between creating the Job and patching status: nothing is lost or redone."""
    model_ = f.model()
    request = jobs.training_request(jobs.training_spec_hash(model_), "v1", None)
    work = ModelStatus()
    events = training.recover_jobs(work, [_job(1, request)], NOW)
    assert [v.version for v in work.versions] == [1] and work.versions[0].state == VersionState.TRAINING
    assert work.latest_version == 1 and events[0].reason == "TrainingAdopted"
    # …and the request it answers is no longer pending, so no second Job is created
    assert training.decide_training(model_, work, jobs.training_spec_hash(model_), "v1", NOW).trigger is None
    assert training.recover_jobs(work, [_job(1, request)], NOW) == []  # idempotent


def test_finish_training_gates_against_the_champion() -> None:
    model_ = f.model()
    work = ModelStatus(versions=[ModelVersion(version=2, state=VersionState.TRAINING, job="j")])
    result = TrainResult(
        ok=True,
        metrics={"accuracy": 0.8},
        champion_metrics={"accuracy": 0.9},
        artifact_uri="file:///a",
        sha256="a" * 64,
    )
    events = training.finish_training(
        work, model_, work.versions[0], observe.JobOutcome(observe.JobPhase.SUCCEEDED, result=result), 1, NOW
    )
    assert work.versions[0].state == VersionState.REJECTED and events[0].reason == "Rejected"
    assert work.versions[0].gate is not None and work.versions[0].gate.champion_score == 0.9


def test_finish_training_gates_on_the_gate_split_when_the_result_has_one() -> None:
    model_ = f.model()
    work = ModelStatus(versions=[ModelVersion(version=2, state=VersionState.TRAINING, job="j")])
    result = TrainResult(
        ok=True,
        metrics={"accuracy": 0.68},
        champion_metrics={"accuracy": 0.73},  # the whole split, rows the champion trained on included
        gate_split=GateSplit(
            overlap_checked=True,
            rows_seen_by_champion=199,
            rows_scored=281,
            metrics={"accuracy": 0.62},
            champion_metrics={"accuracy": 0.54},
        ),
        artifact_uri="file:///a",
        sha256="a" * 64,
    )
    outcome = observe.JobOutcome(observe.JobPhase.SUCCEEDED, result=result)
    events = training.finish_training(work, model_, work.versions[0], outcome, 1, NOW)
    gate = work.versions[0].gate
    assert work.versions[0].state == VersionState.VALIDATED and events[0].reason == "Validated"
    assert gate is not None and (gate.score, gate.champion_score) == (0.62, 0.54)
    assert work.versions[0].metrics == {"accuracy": 0.68}  # the version's metrics stay on the whole split


NOT_APPROVED = cond.State(cond.UNKNOWN, "NoValidatedVersion", "")
NOT_SERVING = cond.State(cond.FALSE, "NothingToServe", "")


def summarize(
    work: ModelStatus,
    *,
    approval: cond.State = NOT_APPROVED,
    serving: cond.State = NOT_SERVING,
    blocked: cond.State | None = None,
) -> None:
    """The status summary of a Model whose Dataset resolved; by default nothing approved or served."""
    dataset = cond.State(cond.TRUE, "DatasetResolved", "")
    summary.summarize(
        work, f.model(), dataset=dataset, approval=approval, serving_=serving, now=NOW, blocked=blocked
    )


def test_failed_training_keeps_reason_and_message() -> None:
    work = ModelStatus(versions=[ModelVersion(version=1, state=VersionState.TRAINING, job="j")])
    outcome: observe.JobOutcome[TrainResult] = observe.JobOutcome(
        observe.JobPhase.FAILED, "EstimatorNotAllowed", "os.system is not allowed"
    )
    training.finish_training(work, f.model(), work.versions[0], outcome, None, NOW)
    assert (work.versions[0].state, work.versions[0].reason) == (VersionState.FAILED, "EstimatorNotAllowed")
    summarize(work)
    trained = cond.get(work.conditions, "Trained")
    ready = cond.get(work.conditions, "Ready")
    assert trained is not None and (trained.status, trained.reason) == (cond.FALSE, "EstimatorNotAllowed")
    assert ready is not None and (ready.status, ready.reason) == (cond.FALSE, "EstimatorNotAllowed")
    assert work.phase == "Failed" and work.observed_generation == 1


def test_summary_of_a_serving_model() -> None:
    gate = {"passed": True, "reason": "Passed", "message": "ok", "metric": "accuracy", "score": 0.9667}
    record = ModelVersion.model_validate({"version": 1, "state": "Serving", "gate": gate})
    work = ModelStatus(serving_version=1, versions=[record])
    summarize(work, approval=cond.State(cond.TRUE, "Approved", ""), serving=cond.State(cond.TRUE, "Serving", ""))
    assert work.phase == "Serving" and work.metric == "accuracy=0.9667"
    assert [c.type for c in work.conditions] == [
        "DatasetResolved",
        "Trained",
        "Validated",
        "Approved",
        "Serving",
        "Ready",
    ]
    assert all(c.status == cond.TRUE for c in work.conditions)


def test_a_missing_target_blocks_training_with_an_actionable_condition() -> None:
    work = ModelStatus()
    blocked = cond.State(cond.FALSE, "TargetMissing", "no target column: set spec.target on the Model")
    summarize(work, blocked=blocked)
    trained = cond.get(work.conditions, "Trained")
    ready = cond.get(work.conditions, "Ready")
    assert trained is not None and trained.reason == "TargetMissing"
    assert ready is not None and (ready.status, ready.reason) == (cond.FALSE, "TargetMissing")


def test_a_result_unfit_for_the_registry_fails_the_version_instead_of_every_status_patch() -> None:
    work = ModelStatus(versions=[ModelVersion(version=1, state=VersionState.TRAINING, job="j")])
    bad = TrainResult(ok=True, metrics={"accuracy": float("nan")}, artifact_uri="file:///a", sha256="A" * 80)
    outcome = observe.JobOutcome(observe.JobPhase.SUCCEEDED, result=bad)
    events = training.finish_training(work, f.model(), work.versions[0], outcome, None, NOW)
    assert (work.versions[0].state, work.versions[0].reason) == (VersionState.FAILED, "InvalidResult")
    assert "sha256" in (work.versions[0].message or "") and events[0].type == "Warning"
    good = bad.model_copy(update={"sha256": "a" * 64})
    assert training.result_problem(good) is not None  # the NaN metric
    assert training.result_problem(good.model_copy(update={"metrics": {"accuracy": 0.9}})) is None


def test_a_pruned_versions_job_is_never_adopted_again_and_the_handled_request_never_moves_back() -> None:
    """Issue 13.2: more training Jobs alive (within their TTL) than maxVersions retrained by itself.

    Versions 2 and 3 were pruned from status while their Jobs live on. Adopting them would bring
    them back and restore the request v2 answered, so the current annotation looked unhandled.
    """
    model_ = f.model(annotations={RETRAIN: "2026-01-01T04:00:00Z;manual"})
    h = jobs.training_spec_hash(model_)

    def job(version: int, hour: int) -> dict[str, Any]:
        retrain = f"2026-01-01T0{hour}:00:00Z;manual"
        return _job(version, {**jobs.training_request(h, "v1", retrain), "version": str(version)}, "retrain")

    work = trained_status(model_, latest_version=4, handled_retrain_request="2026-01-01T04:00:00Z;manual")
    work.versions.append(ModelVersion(version=4, state=VersionState.REJECTED))  # v2, v3 pruned
    assert training.decide_training(model_, work, h, "v1", NOW).trigger is None
    events = training.recover_jobs(work, [job(1, 1), job(2, 2), job(3, 3), job(4, 4)], NOW)
    assert events == [] and [v.version for v in work.versions] == [1, 4]
    assert work.handled_retrain_request == "2026-01-01T04:00:00Z;manual"
    assert training.decide_training(model_, work, h, "v1", NOW).trigger is None  # no self-triggered retrain


def test_an_adopted_job_never_rolls_the_handled_request_back() -> None:
    model_ = f.model()
    h = jobs.training_spec_hash(model_)
    work = ModelStatus(latest_version=1, handled_retrain_request="2026-01-01T05:00:00Z;drift: x")
    older = {**jobs.training_request(h, "v1", "2026-01-01T02:00:00Z;manual"), "version": "2"}
    training.recover_jobs(work, [_job(2, older)], NOW)  # adopted: the status never recorded version 2
    assert [v.version for v in work.versions] == [2] and work.latest_version == 2
    assert work.handled_retrain_request == "2026-01-01T05:00:00Z;drift: x"
    newer = {**jobs.training_request(h, "v1", "2026-01-01T06:00:00Z;manual"), "version": "3"}
    training.recover_jobs(work, [_job(3, newer)], NOW)
    assert work.handled_retrain_request == "2026-01-01T06:00:00Z;manual"


def test_request_times_compare_as_times_and_untimed_requests_keep_the_callers_order() -> None:
    assert training.not_older("2026-01-01T01:00:00Z;a", None)
    assert training.not_older("2026-01-01T01:00:00+00:00;a", "2026-01-01T01:00:00Z;b")
    assert not training.not_older("2026-01-01T00:59:59Z;a", "2026-01-01T01:00:00Z;b")
    assert training.not_older("please retrain", "2026-01-01T01:00:00Z;b")
