"""Issue 12, the operator's reach: only its own children are patched, adopted or deleted; results are
read only from the Job's own pods; specs beyond the ceilings and children the API server refuses
become conditions, not retry loops."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from mlops_operator import conditions as cond
from mlops_operator import contracts
from mlops_operator.api.v1alpha1.model import Model, ModelStatus, ModelVersion, VersionState
from mlops_operator.builders import serving as manifests
from mlops_operator.kube import DEPLOYMENT, EVENT, JOB, MODEL, POD, SERVICE, ForeignObject, Rejected, guards
from mlops_operator.metrics import Metrics
from mlops_operator.reconcilers import observe
from mlops_operator.reconcilers.context import Key, ReconcileContext
from mlops_operator.reconcilers.model import serving
from mlops_operator.reconcilers.skeleton import KindReconciler, Run
from tests.unit import factories as f
from tests.unit.reconcilers.fake_kube import FakeKube, uid

NS = "team-a"
T = Any


def run_async(coro: Awaitable[T]) -> T:
    return asyncio.run(coro)  # type: ignore[arg-type]


def model_body(name: str = "iris-clf", **spec: Any) -> dict[str, Any]:
    return f.model(name, **spec).dump()


def owner_ref(kind: str, name: str, owner_uid: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": kind, "name": name, "uid": owner_uid, "controller": True}


def foreign_service(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": NS, "labels": {"team": "web"}},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 8080}]},
    }


# --- guards ---------------------------------------------------------------------------------------
def test_only_a_controller_reference_to_the_uid_counts() -> None:
    child = {"metadata": {"ownerReferences": [{"uid": "a", "controller": False}, {"uid": "b", "controller": True}]}}
    assert guards.controlled_by(child, "b") and not guards.controlled_by(child, "a")
    assert not guards.controlled_by({"metadata": {}}, "b") and not guards.controlled_by(child, None)


def test_url_query_strings_are_redacted() -> None:
    text = 'image "https://acct.blob.core.windows.net/c/m.skops?sv=2024&sig=SECRET%3D" and s3://b/k?X-Amz-Signature=abc'
    clean = guards.redact(text)
    assert "SECRET" not in clean and "abc" not in clean and "sv=" not in clean
    assert "https://acct.blob.core.windows.net/c/m.skops?<redacted>" in clean and "s3://b/k?<redacted>" in clean
    assert guards.redact("no url here? fine") == "no url here? fine"


def test_a_refused_body_is_held_back_with_a_doubling_backoff_until_it_changes() -> None:
    memo = guards.RejectionMemo()
    assert memo.remember("t", {"a": 1}, "bad", now=0) == 300
    assert memo.refused("t", {"a": 1}, now=299) == ("bad", 1)
    assert memo.refused("t", {"a": 2}, now=1) is None  # a changed body goes through at once
    assert memo.refused("t", {"a": 1}, now=300) is None  # the backoff ended: one more try
    assert memo.remember("t", {"a": 1}, "bad", now=300) == 600
    assert [memo.remember("t", {"a": 1}, "bad", now=0) for _ in range(5)][-1] == 3600
    memo.forget("t")
    assert memo.refused("t", {"a": 1}, now=1) is None


# --- kube: adopt, patch and delete only what the parent controls ------------------------------------
def test_ensure_never_patches_or_adopts_an_object_the_parent_does_not_control() -> None:
    kube, model = FakeKube(), f.model()
    before = kube.put(SERVICE.path(NS), foreign_service(model.name))
    with pytest.raises(ForeignObject) as refused:
        run_async(kube.ensure(manifests.service(model)))
    assert kube.writes() == [] and kube.objects[f"{SERVICE.path(NS)}/{model.name}"] == before
    assert f"Service {NS}/{model.name} already exists" in refused.value.message
    assert "its controller: no controller" in refused.value.message and "Rename or delete" in refused.value.message
    # another parent's child (same name, another uid) is foreign too
    other = manifests.service(f.model())
    other["metadata"]["ownerReferences"][0]["uid"] = uid()
    kube2 = FakeKube()
    kube2.put(SERVICE.path(NS), other)
    with pytest.raises(ForeignObject):
        run_async(kube2.ensure(manifests.service(model)))
    with pytest.raises(ForeignObject):  # create → 409 → not adopted
        run_async(kube2.create_or_adopt(manifests.service(model)))


def test_ensure_updates_and_adopts_the_parents_own_child() -> None:
    kube, model = FakeKube(), f.model()
    assert run_async(kube.ensure(manifests.service(model))) == "created"
    assert run_async(kube.ensure(manifests.service(model))) == "unchanged"
    obj, created = run_async(kube.create_or_adopt(manifests.service(model)))
    assert not created and obj["metadata"]["name"] == model.name


def test_deletes_go_by_uid_precondition_and_only_for_owned_children() -> None:
    model = f.model()
    theirs = FakeKube()
    theirs.put(SERVICE.path(NS), foreign_service(model.name))
    assert not run_async(theirs.delete_owned(SERVICE, NS, model.name, model.uid))
    assert f"{SERVICE.path(NS)}/{model.name}" in theirs.objects and theirs.writes() == []
    ours = FakeKube()
    mine = ours.put(SERVICE.path(NS), manifests.service(model))
    assert run_async(ours.delete_owned(SERVICE, NS, model.name, model.uid))
    method, _, options = ours.calls[-1]
    assert method == "DELETE" and options["preconditions"] == {"uid": mine["metadata"]["uid"]}
    assert options["propagationPolicy"] == "Background"
    ours.put(SERVICE.path(NS), manifests.service(model))  # re-created since `mine` was read: a new uid
    assert not run_async(ours.delete_child(mine, model.uid))  # the precondition fails: nothing deleted
    assert f"{SERVICE.path(NS)}/{model.name}" in ours.objects


# --- forged results ------------------------------------------------------------------------------
def test_results_are_read_only_from_pods_the_job_controls() -> None:
    kube = FakeKube()
    job = kube.put(
        JOB.path(NS), {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "m-train-1", "namespace": NS}}
    )
    job_uid = job["metadata"]["uid"]
    labels = {"job-name": "m-train-1", guards.LABEL_CONTROLLER_UID: job_uid}

    def pod(name: str, labels: dict[str, str], owners: list[dict[str, Any]]) -> None:
        kube.put(POD.path(NS), {"metadata": {"name": name, "labels": labels, "ownerReferences": owners}})

    pod("forged-by-name", {"job-name": "m-train-1"}, [])
    pod("forged-by-uid-label", labels, [])
    pod("forged-owner", labels, [owner_ref("Job", "m-train-1", job_uid) | {"controller": False}])
    pod("real", labels, [owner_ref("Job", "m-train-1", job_uid)])
    found = run_async(kube.job_pods(job))
    assert [p["metadata"]["name"] for p in found] == ["real"]
    assert kube.calls[-1] == ("GET", POD.path(NS), {"labelSelector": f"{guards.LABEL_CONTROLLER_UID}={job_uid}"})


# --- refused children: memo, redaction -----------------------------------------------------------
def test_a_rejected_child_is_not_sent_again_until_it_changes_and_its_message_is_redacted() -> None:
    kube, model = FakeKube(), f.model()
    kube.refuse["POST", SERVICE.path(NS)] = (422, 'spec.x: Invalid value: "https://h/p?token=SECRET"')
    with pytest.raises(Rejected) as first:
        run_async(kube.create(manifests.service(model)))
    assert "SECRET" not in first.value.message and first.value.retry_in == 300
    assert first.value.subject == f"Service {NS}/{model.name}"
    posts = len(kube.writes())
    with pytest.raises(Rejected) as again:
        run_async(kube.create(manifests.service(model)))
    assert len(kube.writes()) == posts and again.value.message == first.value.message  # not sent
    changed = manifests.service(model)
    changed["spec"]["ports"][0]["port"] = 81
    with pytest.raises(Rejected):
        run_async(kube.create(changed))
    assert len(kube.writes()) == posts + 1


def test_an_event_is_posted_once() -> None:
    kube, body = FakeKube(), model_body()
    for _ in range(3):
        run_async(kube.event(body, "Warning", "AnnotationIgnored", "bad", now=f.NOW))
    assert [m for m, p in kube.writes() if p == EVENT.path(NS)] == ["POST"]


# --- the skeleton: ceilings and refusals ---------------------------------------------------------
def context(kube: FakeKube, **settings: Any) -> ReconcileContext:
    return ReconcileContext(
        settings=dataclasses.replace(f.SETTINGS, **settings), kube=kube, metrics=Metrics(), clock=lambda: f.NOW
    )


def reconciler(steps: Callable[[Run[Model, ModelStatus]], Awaitable[None]]) -> KindReconciler[Model, ModelStatus]:
    return KindReconciler(MODEL, Model, steps, (cond.Type.TRAINED, cond.Type.READY))


def conditions_of(kube: FakeKube, name: str = "iris-clf") -> dict[str, tuple[str, str, str]]:
    body = kube.objects[f"{MODEL.path(NS)}/{name}"]
    return {c["type"]: (c["status"], c["reason"], c["message"]) for c in body["status"]["conditions"]}


def test_a_spec_beyond_the_ceilings_is_refused_before_any_step() -> None:
    kube, called = FakeKube(), []
    kube.put(MODEL.path(NS), model_body(serving={"replicas": 50}))

    async def steps(run: Run[Model, ModelStatus]) -> None:
        called.append(run)

    result = run_async(reconciler(steps).reconcile(context(kube), Key("Model", NS, "iris-clf")))
    assert called == [] and result.requeue_after is None
    status, reason, message = conditions_of(kube)["Ready"]
    assert (status, reason) == ("False", cond.Reason.EXCEEDS_LIMITS)
    assert "serving.replicas 50 exceeds the ceiling 20 (MLOPS_MAX_REPLICAS)" in message
    assert [p for m, p in kube.writes() if m == "POST"] == [EVENT.path(NS)]  # an Event, no child


@pytest.mark.parametrize("refusal", ["rejected", "foreign"])
def test_a_refused_child_becomes_a_condition_and_a_slow_retry(refusal: str) -> None:
    kube = FakeKube()
    kube.put(MODEL.path(NS), model_body())
    foreign = kube.put(SERVICE.path(NS), foreign_service("iris-clf"))

    async def steps(run: Run[Model, ModelStatus]) -> None:
        if refusal == "rejected":
            raise Rejected(422, "Invalid", "requests must be <= limits").with_subject("Job team-a/j", 300)
        await run.ctx.kube.ensure(manifests.service(run.resource))

    result = run_async(reconciler(steps).reconcile(context(kube), Key("Model", NS, "iris-clf")))
    status, reason, message = conditions_of(kube)["Ready"]
    assert status == "False"
    if refusal == "rejected":
        assert reason == cond.Reason.CHILD_REJECTED and "refused Job team-a/j: requests must be <= limits" in message
        assert result.requeue_after == 301
    else:
        assert reason == cond.Reason.NAME_CONFLICT and result.requeue_after == 300
        assert kube.objects[f"{SERVICE.path(NS)}/iris-clf"] == foreign


# --- the Model's serving ---------------------------------------------------------------------------
def serving_run(kube: FakeKube, model: Model) -> Run[Model, ModelStatus]:
    target = ModelVersion(version=1, state=VersionState.APPROVED, artifact_uri="file:///a/m.skops", sha256="a" * 64)
    work = ModelStatus(versions=[target])
    return Run(context(kube), Key("Model", NS, model.name), model.dump(), model, work, f.NOW)


def test_a_foreign_service_is_a_name_conflict_and_stays_byte_for_byte() -> None:
    kube, model = FakeKube(), f.model()
    before = kube.put(SERVICE.path(NS), foreign_service(model.name))
    run = serving_run(kube, model)
    state = run_async(serving.roll_out(run, run.work.versions[0]))
    assert state is not None and (state.status, state.reason) == (cond.FALSE, cond.Reason.NAME_CONFLICT)
    assert kube.objects[f"{SERVICE.path(NS)}/{model.name}"] == before
    assert f"{DEPLOYMENT.path(NS)}/{manifests.deployment_name(model)}" not in kube.objects  # nothing half-made
    assert [e.reason for e in run.events] == [cond.Reason.NAME_CONFLICT]
    run_async(serving.delete_serving(run))  # serving disabled / removed: the foreign Service stays
    assert kube.objects[f"{SERVICE.path(NS)}/{model.name}"] == before


def test_the_models_own_serving_objects_are_created_and_removed() -> None:
    kube, model = FakeKube(), f.model()
    run = serving_run(kube, model)
    state = run_async(serving.roll_out(run, run.work.versions[0]))
    assert state is not None and state.reason == cond.Reason.ROLLING_OUT
    assert f"{SERVICE.path(NS)}/{model.name}" in kube.objects
    run_async(serving.delete_serving(run))
    assert not [p for p in kube.objects if p.startswith((SERVICE.path(NS), DEPLOYMENT.path(NS)))]


def test_forged_server_pods_do_not_fail_a_rollout() -> None:
    deployment: dict[str, Any] = {"metadata": {"name": "m-server"}}
    pods: list[dict[str, Any]] = [
        {"metadata": {"name": "real", "ownerReferences": [owner_ref("ReplicaSet", "m-server-5d8f", "u")]}},
        {"metadata": {"name": "forged", "labels": {contracts.LABEL_MODEL: "m"}}},
        {"metadata": {"name": "other", "ownerReferences": [owner_ref("ReplicaSet", "web-5d8f", "u")]}},
    ]
    assert [p["metadata"]["name"] for p in observe.replica_set_pods(deployment, pods)] == ["real"]


def test_a_child_left_by_a_deleted_parent_of_the_same_name_is_waited_for_not_taken() -> None:
    kube, model = FakeKube(), f.model()
    old = manifests.service(model)
    old["metadata"]["ownerReferences"][0]["uid"] = uid()  # the Model deleted and created again
    before = kube.put(SERVICE.path(NS), old)
    with pytest.raises(ForeignObject) as refused:
        run_async(kube.ensure(manifests.service(model)))
    assert refused.value.predecessor and "still belongs to the deleted Model iris-clf" in refused.value.message
    assert kube.objects[f"{SERVICE.path(NS)}/{model.name}"] == before
    run = serving_run(kube, model)
    state = run_async(serving.roll_out(run, run.work.versions[0]))
    assert state is not None and state.reason == cond.Reason.NAME_CONFLICT and run.requeue == 10
