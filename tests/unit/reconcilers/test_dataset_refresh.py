"""The Dataset reconciler's steps against an in-memory API: one profile Job at a time, a refresh request
answered once, the plan carrying the current listing fingerprint, and an unchanged refresh waking no
training."""

from __future__ import annotations

import asyncio
import copy
import json
from datetime import datetime, timedelta
from typing import Any

from mlops_operator import contracts
from mlops_operator.api.plans import ProfilePlan
from mlops_operator.api.results import ProfileResult
from mlops_operator.kube import Kind
from mlops_operator.metrics import Metrics
from mlops_operator.reconcilers import dataset as d
from mlops_operator.reconcilers.context import Key, ReconcileContext, status_patch
from tests.unit.factories import NOW, SETTINGS

KEY = Key("Dataset", "team-a", "events")
REQUEST = "2026-01-02T03:10:00Z;drift: amount"


def merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7386, as the API server applies a merge patch: objects merge, null removes."""
    merged = dict(target)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_patch(merged[key], value)
        else:
            merged[key] = value
    return merged


class FakeApi:
    """What the Dataset reconciler reads and writes, in memory."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {("Dataset", body["metadata"]["name"]): body}
        self.events: list[tuple[str, str]] = []
        self.created: list[str] = []

    async def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        found = self.objects.get((kind.kind, name))
        return copy.deepcopy(found) if found else None

    async def list(
        self, kind: Kind, namespace: str | None, labels: dict[str, str] | None = None
    ) -> list[dict[str, Any]]:
        def matches(obj: dict[str, Any]) -> bool:
            have = obj["metadata"].get("labels") or {}
            return all(have.get(k) == v for k, v in (labels or {}).items())

        return [copy.deepcopy(o) for (k, _), o in self.objects.items() if k == kind.kind and matches(o)]

    async def create_or_adopt(self, obj: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        key = (obj["kind"], obj["metadata"]["name"])
        if key in self.objects:
            return self.objects[key], False
        self.objects[key] = copy.deepcopy(obj) | {"metadata": {**obj["metadata"], "uid": f"uid-{key[1]}"}}
        if obj["kind"] == "Job":
            self.created.append(key[1])
        return self.objects[key], True

    async def patch_status(self, kind: Kind, namespace: str, name: str, patch: dict[str, Any]) -> None:
        body = self.objects[(kind.kind, name)]
        body["status"] = merge_patch(body.get("status") or {}, patch)

    async def event(self, involved: dict[str, Any], type_: str, reason: str, message: str, *, now: datetime) -> None:
        self.events.append((reason, message))

    # --- playing the Job controller and the kubelet -------------------------------------------------
    def finish(self, job_name: str, result: ProfileResult) -> None:
        job = self.objects[("Job", job_name)]
        job["status"] = {"conditions": [{"type": "Complete", "status": "True"}]}
        pod = {
            "kind": "Pod",
            "metadata": {
                "name": f"{job_name}-pod",
                "labels": {"job-name": job_name},
                "ownerReferences": [{"controller": True, "uid": job["metadata"]["uid"]}],
            },
            "status": {"containerStatuses": [{"name": "main", "state": {"terminated": {
                "exitCode": 0, "message": result.model_dump_json(by_alias=True, exclude_none=True)}}}]},
        }
        self.objects[("Pod", pod["metadata"]["name"])] = pod

    def delete_job(self, job_name: str) -> None:  # the TTL controller
        self.objects.pop(("Job", job_name))

    def annotate(self, value: str | None) -> None:
        metadata = self.objects[("Dataset", KEY.name)]["metadata"]
        annotations = dict(metadata.get("annotations") or {})
        if value is None:
            annotations.pop(contracts.ANNOTATION_REFRESH_REQUESTED, None)
        else:
            annotations[contracts.ANNOTATION_REFRESH_REQUESTED] = value
        metadata["annotations"] = annotations

    @property
    def status(self) -> dict[str, Any]:
        return dict(self.objects[("Dataset", KEY.name)].get("status") or {})


def dataset_body(interval: int | None = 600) -> dict[str, Any]:
    spec: dict[str, Any] = {"source": {"uri": "file:///var/lib/mlops/sales/events/", "window": {"last": "30d"}},
                            "schema": {"target": "amount"}}
    if interval:
        spec["refreshIntervalSeconds"] = interval
    return {
        "apiVersion": "mlops.dev/v1alpha1",
        "kind": "Dataset",
        "metadata": {"name": KEY.name, "namespace": KEY.namespace, "uid": "ds-uid", "generation": 1},
        "spec": spec,
    }


def reconcile(api: FakeApi, now: datetime) -> None:
    ctx = ReconcileContext(settings=SETTINGS, kube=api, metrics=Metrics(), clock=lambda: now)  # type: ignore[arg-type]
    asyncio.run(d.reconcile(ctx, KEY))


def plan_of(api: FakeApi, job_name: str) -> ProfilePlan:
    args = api.objects[("Job", job_name)]["spec"]["template"]["spec"]["containers"][0]["args"]
    return ProfilePlan.model_validate(json.loads(args[args.index(contracts.PLAN_FLAG) + 1]))


def new_version(version: str, listing: str) -> ProfileResult:
    return ProfileResult(ok=True, version=version, rows=10, columns=3, listing_fingerprint=listing)


def test_one_job_at_a_time_even_when_profiling_outlasts_the_interval() -> None:
    api = FakeApi(dataset_body(interval=600))
    reconcile(api, NOW)
    (first,) = api.created
    assert plan_of(api, first).current_listing_fingerprint is None
    later = NOW + timedelta(seconds=1300)  # two ticks later, the first Job still runs
    reconcile(api, later)
    reconcile(api, later)
    assert api.created == [first] and api.status["profileJob"] == first
    api.finish(first, new_version("a" * 64, "l1"))
    reconcile(api, later)
    assert api.status["version"] == "a" * 64 and api.status["listingFingerprint"] == "l1"
    assert len(api.created) == 2  # now the current tick's Job, and only it
    plan = plan_of(api, api.created[1])
    assert (plan.current_version, plan.current_listing_fingerprint) == ("a" * 64, "l1")


def test_a_refresh_request_is_answered_once_and_unchanged_wakes_no_training() -> None:
    api = FakeApi(dataset_body(interval=None))
    reconcile(api, NOW)
    api.finish(api.created[0], new_version("a" * 64, "l1"))
    reconcile(api, NOW)
    versions_before = api.status["versions"]
    api.annotate(REQUEST)
    reconcile(api, NOW + timedelta(minutes=10))
    refresh_job = api.created[-1]
    assert len(api.created) == 2 and api.status["lastRefresh"]["request"] == REQUEST
    assert "outcome" not in api.status["lastRefresh"]
    api.annotate("2026-01-02T03:20:00Z;drift again")  # a newer request while the first one runs: it waits
    reconcile(api, NOW + timedelta(minutes=11))
    assert len(api.created) == 2
    api.annotate(REQUEST)
    api.finish(refresh_job, ProfileResult(ok=True, unchanged=True, version="a" * 64, listing_fingerprint="l1"))
    reconcile(api, NOW + timedelta(minutes=12))
    last = api.status["lastRefresh"]
    assert (last["outcome"], last["version"], last["requestedAt"]) == ("Unchanged", "a" * 64, "2026-01-02T03:10:00Z")
    assert api.status["version"] == "a" * 64 and api.status["versions"] == versions_before
    assert ("RefreshUnchanged", f"refresh {REQUEST}: no new data (version {'a' * 12}: the source listing is "
            "unchanged)") in api.events
    assert not any(reason == "NewVersion" for reason, _ in api.events[1:])
    api.delete_job(refresh_job)  # its TTL ends
    for minutes in (13, 14):
        reconcile(api, NOW + timedelta(minutes=minutes))
    api.annotate(None)
    reconcile(api, NOW + timedelta(minutes=15))
    assert len(api.created) == 2  # handled once: neither the TTL nor removing the annotation runs it again
    api.annotate("2026-01-02T04:00:00Z;drift")
    reconcile(api, NOW + timedelta(minutes=60))
    assert len(api.created) == 3
    assert api.status["lastRefresh"] == {  # nothing of the last outcome is left in the merged status
        "request": "2026-01-02T04:00:00Z;drift", "requestedAt": "2026-01-02T04:00:00Z", "reason": "drift",
        "job": api.created[2],
    }


def test_a_status_patch_clears_what_an_object_in_status_no_longer_has() -> None:
    old = {"lastRefresh": {"request": "r1", "outcome": "Unchanged", "finishedAt": "t"}, "version": "a", "rows": 3}
    new = {"lastRefresh": {"request": "r2", "job": "j"}, "version": "a"}
    patch = status_patch(old, new)
    assert patch == {"lastRefresh": {"request": "r2", "job": "j", "outcome": None, "finishedAt": None}, "rows": None}
    assert merge_patch(old, patch) == new
    assert status_patch(new, new) == {}


def test_an_ignored_request_starts_nothing_and_says_why() -> None:
    api = FakeApi(dataset_body(interval=None))
    reconcile(api, NOW)
    api.finish(api.created[0], new_version("a" * 64, "l1"))
    api.annotate("soon;please")
    reconcile(api, NOW)
    assert len(api.created) == 1 and "lastRefresh" not in api.status
    assert any(reason == "AnnotationIgnored" and "refresh-requested" in message for reason, message in api.events)
