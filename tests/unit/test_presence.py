"""The presence cache: no request that is bound to fail, once the watches have listed our objects."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf

from mlops_operator import contracts
from mlops_operator.builders import namespace as prerequisites
from mlops_operator.builders import serving as manifests
from mlops_operator.handlers import children, lifecycle
from mlops_operator.kube import HPA, JOB, SERVICE, kind_of
from mlops_operator.kube.presence import Presence
from tests.unit import factories as f
from tests.unit.reconcilers.fake_kube import FakeKube

MANAGED = f"{contracts.LABEL_MANAGED_BY}={contracts.MANAGED_BY}"


def ours(kind: str, name: str, api_version: str = "v1", **meta: Any) -> dict[str, Any]:
    labels = {contracts.LABEL_MANAGED_BY: contracts.MANAGED_BY}
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": name, "namespace": "ns", "uid": "u", "labels": labels, **meta},
    }


def test_the_cache_follows_the_watch_and_keeps_only_what_kube_reads() -> None:
    presence = Presence()
    service = ours("Service", "m", annotations={contracts.ANNOTATION_SPEC_HASH: "abc", "other": "x"})
    service["spec"] = {"ports": [{"port": 80}]}
    presence.observe(None, service)
    cached = presence.get(SERVICE, "ns", "m")
    assert cached is not None and "spec" not in cached
    assert cached["metadata"]["annotations"] == {contracts.ANNOTATION_SPEC_HASH: "abc"}
    presence.observe("DELETED", service)
    assert presence.get(SERVICE, "ns", "m") is None
    presence.observe("ADDED", {**ours("Job", "j", "batch/v1")})  # not a kind it holds
    unlabelled = ours("Service", "admins")
    unlabelled["metadata"]["labels"] = {}
    presence.observe("ADDED", unlabelled)  # an administrator's: looked up every time instead
    assert len(presence) == 0


def test_every_read_is_a_fresh_copy() -> None:
    presence = Presence()
    owner = {"apiVersion": "mlops.dev/v1alpha1", "kind": "Model", "name": "m", "uid": "m1", "controller": True}
    presence.observe(None, ours("Service", "m", ownerReferences=[owner]))
    first = presence.get(SERVICE, "ns", "m")
    assert first is not None
    first["metadata"]["ownerReferences"][0]["uid"] = "changed"
    first["metadata"]["labels"].clear()
    again = presence.get(SERVICE, "ns", "m")
    assert again is not None and again["metadata"]["ownerReferences"] == [owner]
    assert again["metadata"]["labels"] == {contracts.LABEL_MANAGED_BY: contracts.MANAGED_BY}


def test_a_miss_means_absent_only_once_trusted_and_only_for_the_kinds_it_holds() -> None:
    presence = Presence()
    assert not presence.holds(SERVICE)
    presence.trust()
    assert presence.holds(SERVICE) and presence.holds(HPA)
    assert not presence.holds(JOB)  # Jobs are the children whose events wake parents, read fresh


def run(kube: FakeKube, *steps: Any) -> list[tuple[str, str]]:
    """Run the steps; the requests they sent, (method, path)."""

    async def scenario() -> None:
        for step in steps:
            await step()

    kube.calls.clear()
    asyncio.run(scenario())
    return [(method, path) for method, path, _ in kube.calls]


def test_prerequisites_and_serving_children_cost_no_request_once_cached() -> None:
    kube = FakeKube()
    model = f.model()
    needed = prerequisites.prerequisites(model.namespace, f.SETTINGS)
    objects = [*needed, manifests.service(model)]

    async def ensure_all() -> None:
        for obj in needed:  # what ReconcileContext.prepare_namespace does before every child
            await kube.create_or_adopt(obj)
        await kube.ensure(manifests.service(model))

    async def drop_hpa() -> None:
        await kube.delete_owned(HPA, model.namespace, manifests.deployment_name(model), model.uid)

    first = run(kube, ensure_all, drop_hpa)  # not trusted yet: asked the API server, as before
    assert [m for m, _ in first].count("POST") == len(objects)
    assert ("GET", HPA.path(model.namespace, manifests.deployment_name(model))) in first
    for obj in objects:  # what the watches deliver
        kube.presence.observe("ADDED", kube.objects[_path(obj)])
    kube.presence.trust()
    assert run(kube, ensure_all, drop_hpa) == []


def test_an_object_deleted_behind_the_operators_back_is_created_again() -> None:
    kube = FakeKube()
    kube.presence.trust()
    service = manifests.service(f.model())

    async def ensure() -> None:
        await kube.ensure(service)

    assert [m for m, _ in run(kube, ensure)] == ["POST"]  # a miss: created, and cached from the answer
    assert run(kube, ensure) == []
    kube.presence.observe("DELETED", kube.objects[_path(service)])
    del kube.objects[_path(service)]
    assert [m for m, _ in run(kube, ensure)] == ["POST"]


def test_a_delete_removes_the_object_from_the_cache() -> None:
    kube = FakeKube()
    kube.presence.trust()
    model = f.model()
    service = manifests.service(model)

    async def create() -> None:
        await kube.ensure(service)

    async def delete() -> None:
        await kube.delete_owned(SERVICE, model.namespace, manifests.service_name(model), model.uid)

    assert [m for m, _ in run(kube, create, delete)] == ["POST", "DELETE"]
    assert kube.presence.get(SERVICE, model.namespace, manifests.service_name(model)) is None
    assert run(kube, delete) == []  # absent: no GET that would answer 404


def test_the_presence_watches_are_selected_server_side() -> None:
    settings = kopf.OperatorSettings()
    lifecycle.configure(settings)
    for group, version, plural in children.PRESENCE:
        resource = kopf.Resource(group, version, plural)
        assert list(settings.watching.label_selectors.collect(resource)) == [MANAGED], plural


def _path(obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    return kind_of(obj).path(meta["namespace"], meta["name"])
