"""kube.cache: the watch cache's rules, and `Kube` reading it instead of asking the API server.

`FakeKube` (an in-memory API server behind the real `Kube`) records every request it is sent, so
each test says exactly which reads reach the server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import orjson
import pytest

from mlops_operator import contracts
from mlops_operator.kube import DATASET, DEPLOYMENT, JOB, MODEL, POD, Kind, accounting
from mlops_operator.kube import cache as cache_module
from mlops_operator.kube.cache import ObjectCache, essentials
from tests.unit.reconcilers.fake_kube import FakeKube

MANAGED = {contracts.LABEL_MANAGED_BY: contracts.MANAGED_BY}


def job(name: str, version: str, uid: str = "u1", **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": uid,
            "resourceVersion": version,
            "labels": {**MANAGED, **labels},
            "managedFields": [{"manager": "x"}],
        },
        "spec": {"activeDeadlineSeconds": 60, "template": {"spec": {"containers": [{"name": "w", "image": "i"}]}}},
        "status": {"active": 1},
    }


def model(name: str, version: str, uid: str = "m1") -> dict[str, Any]:
    return {
        "apiVersion": MODEL.api_version,
        "kind": "Model",
        "metadata": {"name": name, "namespace": "ns", "uid": uid, "resourceVersion": version},
        "spec": {"datasetRef": {"name": "d"}},
    }


def test_a_job_is_kept_without_its_pod_template_and_managed_fields() -> None:
    kept = essentials(JOB, job("j", "5"))
    assert "template" not in kept["spec"] and kept["spec"]["activeDeadlineSeconds"] == 60
    assert "managedFields" not in kept["metadata"] and kept["status"] == {"active": 1}


def test_a_pod_keeps_its_containers_and_status_only() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {"containers": [{"name": "server", "image": "i", "resources": {"limits": {"memory": "1Gi"}}}]},
        "status": {"phase": "Running"},
    }
    kept = essentials(POD, pod)
    assert kept["spec"] == {"containers": pod["spec"]["containers"]}  # ports and limits are read
    assert kept["status"] == {"phase": "Running"}


def test_every_read_is_a_copy_and_the_watched_object_is_never_changed() -> None:
    watched = job("j", "5", **{contracts.LABEL_MODEL: "m"})
    cache = ObjectCache()
    cache.observe(None, watched)
    assert watched["spec"]["template"] and watched["metadata"]["managedFields"]  # kept out, not popped
    got = cache.get(JOB, "ns", "j")
    assert got is not None
    got["status"]["active"] = 0
    got["metadata"]["labels"].clear()
    listed = cache.list(JOB, "ns", {contracts.LABEL_MODEL: "m"})  # labels still select it
    assert [j["status"] for j in listed] == [{"active": 1}]


def test_never_backwards_and_a_deleted_object_is_not_brought_back_by_a_late_event() -> None:
    cache = ObjectCache()
    cache.observe(None, job("j", "7"))
    cache.observe("MODIFIED", job("j", "6"))  # a late event, older than our write's answer
    assert cache.get(JOB, "ns", "j")["metadata"]["resourceVersion"] == "7"  # type: ignore[index]
    cache.deleted(JOB, "ns", "j", "u1")
    cache.observe("MODIFIED", job("j", "8"))  # the late event of the object the operator deleted
    assert cache.get(JOB, "ns", "j") is None
    cache.observe(None, job("j", "9", uid="u2"))  # a new object of that name
    cache.deleted(JOB, "ns", "j", "u1")  # deleting the old uid leaves the successor alone
    assert cache.get(JOB, "ns", "j")["metadata"]["uid"] == "u2"  # type: ignore[index]
    cache.observe("DELETED", job("j", "10", uid="u2"))
    assert cache.get(JOB, "ns", "j") is None and len(cache) == 0


def test_an_object_seen_again_at_the_same_version_is_not_stored_again(monkeypatch: pytest.MonkeyPatch) -> None:
    stored: list[str] = []
    original = cache_module._Held.of

    def counting(kind: Kind, obj: Mapping[str, Any]) -> Any:
        stored.append(str(obj["metadata"]["resourceVersion"]))
        return original(kind, obj)

    monkeypatch.setattr(cache_module._Held, "of", counting)
    cache = ObjectCache()
    cache.observe(None, job("j", "5"))  # the index handler
    cache.observe("ADDED", job("j", "5"))  # the event handler, same event
    cache.observe(None, job("j", "5"))  # kopf's relist when its watch reconnects
    cache.observe("MODIFIED", job("j", "6"))
    assert stored == ["5", "6"]
    assert cache.get(JOB, "ns", "j")["metadata"]["resourceVersion"] == "6"  # type: ignore[index]


def test_an_object_is_held_deflated_and_read_back_whole() -> None:
    served = model("m", "7")
    served["status"] = {
        "conditions": [
            {"type": t, "status": "True", "reason": "Succeeded", "message": f"{t} finished", "lastTransitionTime": "x"}
            for t in ("Trained", "Evaluated", "Approved", "Serving", "Ready")
        ],
        "versions": [{"version": v, "metrics": {"accuracy": 0.95, "f1": 0.94}, "phase": "Retired"} for v in range(20)],
    }
    held = cache_module._Held.of(MODEL, served)
    assert len(held.packed) < len(orjson.dumps(essentials(MODEL, served))) / 2
    assert held.object() == essentials(MODEL, served)


def test_a_listing_drops_what_is_gone_or_older_than_listed() -> None:
    cache = ObjectCache()
    for name, version in (("kept", "5"), ("gone", "5"), ("stale", "5")):
        cache.observe(None, model(name, version, uid=name))
    cache.listed(MODEL, "ns", {("ns", "kept"): "5", ("ns", "stale"): "9"})
    assert [m["metadata"]["name"] for m in cache.list(MODEL, "ns", None)] == ["kept"]


def test_lists_are_answered_only_for_what_the_watches_select() -> None:
    cache = ObjectCache()
    assert not cache.answers(JOB, {contracts.LABEL_MODEL: "m"})  # not trusted yet
    cache.trust()
    assert cache.answers(JOB, {contracts.LABEL_MODEL: "m"})
    assert cache.answers(POD, {contracts.LABEL_MODEL: "m", contracts.LABEL_COMPONENT: "serve"})
    assert not cache.answers(POD, {"controller-uid": "u"})  # a Job's pods are not watched


def test_kube_reads_the_cache_once_trusted_and_writes_through() -> None:
    kube = FakeKube()
    kube.put(JOB.path("ns"), job("j1", "3", **{contracts.LABEL_MODEL: "m"}))
    kube.put(MODEL.path("ns"), model("m", "4"))

    async def scenario() -> tuple[list[Any], accounting.Requests]:
        before_jobs = await kube.list(JOB, "ns", {contracts.LABEL_MODEL: "m"})
        before_model = await kube.get(MODEL, "ns", "m")
        asked = len(kube.calls)
        kube.cache.trust()
        kube.cache.observe(None, job("j1", "3", **{contracts.LABEL_MODEL: "m"}))
        with accounting.counting() as counted:
            listed = await kube.list(JOB, "ns", {contracts.LABEL_MODEL: "m"})  # from the cache
            got = await kube.get(MODEL, "ns", "m")  # read before: cached by that GET
            missing_deployment = await kube.get(DEPLOYMENT, "ns", "nothing")  # a miss: absent, not asked
            missing_dataset = await kube.get(DATASET, "ns", "d")  # a custom resource's miss is asked
            await kube.patch_status(MODEL, "ns", "m", {"phase": "Training"})
            patched = await kube.get(MODEL, "ns", "m")  # our own write, at once
        assert [len(before_jobs), asked] == [1, 2] and before_model is not None
        assert [j["metadata"]["name"] for j in listed] == ["j1"] and got is not None
        assert missing_deployment is None and missing_dataset is None
        assert patched is not None and patched["status"] == {"phase": "Training"}
        return kube.calls[asked:], counted

    calls, _ = asyncio.run(scenario())
    assert [(method, path) for method, path, _ in calls] == [
        ("GET", DATASET.path("ns", "d")),
        ("PATCH", MODEL.path("ns", "m", "status")),
    ]


def test_a_conflict_is_looked_up_fresh_not_in_the_cache() -> None:
    kube = FakeKube()
    owner = {"apiVersion": "v1", "kind": "Model", "name": "m", "uid": "m1", "controller": True}
    existing = job("j1", "3")
    existing["metadata"]["ownerReferences"] = [owner]
    kube.put(JOB.path("ns"), existing)
    kube.cache.trust()  # but the watch has not delivered j1 yet

    async def scenario() -> tuple[dict[str, Any], bool]:
        wanted = job("j1", "")
        wanted["metadata"].update(ownerReferences=[owner], resourceVersion=None, uid=None)
        return await kube.create_or_adopt(wanted)

    found, created = asyncio.run(scenario())
    assert not created and found["metadata"]["uid"] == "u1"
    assert kube.cache.get(JOB, "ns", "j1") is not None  # and the cache holds it now


def test_a_jobs_pods_are_always_asked_for() -> None:
    """The cache cannot tell whether it holds every pod of a Job (an Indexed Job's shards) in its
    final state: the pods that hold a Job's result are read from the API server."""
    kube = FakeKube()
    owner = {"apiVersion": "batch/v1", "kind": "Job", "name": "j1", "uid": "u1", "controller": True}
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "j1-pod",
            "namespace": "ns",
            "uid": "p1",
            "resourceVersion": "4",
            "labels": {**MANAGED, "batch.kubernetes.io/controller-uid": "u1"},
            "ownerReferences": [owner],
        },
        "spec": {"containers": [{"name": "workload"}]},
        "status": {"containerStatuses": [{"name": "workload", "state": {"terminated": {"message": "result"}}}]},
    }
    kube.put(POD.path("ns"), pod)
    kube.cache.trust()
    kube.cache.observe("MODIFIED", {**pod, "status": {"containerStatuses": [{"name": "workload", "state": {}}]}})
    pods = asyncio.run(kube.job_pods(job("j1", "3")))
    assert pods[0]["status"]["containerStatuses"][0]["state"]["terminated"]["message"] == "result"
    assert [m for m, _, _ in kube.calls] == ["GET"]
