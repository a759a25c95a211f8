"""kube.accounting: every request `Kube` sends is counted by verb and resource, in total and per
reconcile; and the work queue says how long a run waited in its lane."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from kubernetes.client import ApiClient

from mlops_operator.kube import JOB, MODEL, Kube, accounting
from mlops_operator.reconcilers.context import Key, ReconcileResult
from mlops_operator.reconcilers.queue import Lane, WorkQueue


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/apis/mlops.dev/v1alpha1/namespaces/ns/models/m", ("get", "models")),
        ("GET", "/apis/batch/v1/namespaces/ns/jobs?labelSelector=a%3Db", ("list", "jobs")),
        ("PATCH", "/apis/mlops.dev/v1alpha1/namespaces/ns/models/m/status", ("patch", "models/status")),
        ("POST", "/api/v1/namespaces/ns/events", ("create", "events")),
        ("DELETE", "/apis/batch/v1/namespaces/ns/jobs/j", ("delete", "jobs")),
        ("GET", "/api/v1/namespaces/ns", ("get", "namespaces")),
        ("GET", "/apis/mlops.dev/v1alpha1/models", ("list", "models")),
    ],
)
def test_a_request_is_named_by_verb_and_resource(method: str, path: str, expected: tuple[str, str]) -> None:
    assert accounting.kind_of_request(method, path) == expected


def test_kube_counts_each_request_in_total_and_in_the_reconcile_in_progress() -> None:
    kube = Kube(cast(ApiClient, object()))
    sent: list[tuple[str, str]] = []

    def request_sync(method: str, path: str, **_: Any) -> Any:
        sent.append((method, path))
        return {"items": []} if path.endswith("jobs") else {"metadata": {"name": "m"}}

    kube.request_sync = request_sync  # type: ignore[method-assign]

    async def scenario() -> accounting.Requests:
        await kube.get(MODEL, "ns", "m")  # outside any reconcile: only in the totals
        with accounting.counting() as counted:
            await asyncio.gather(kube.list(JOB, "ns", {"a": "b"}), kube.get(MODEL, "ns", "m"))
        return counted

    counted = asyncio.run(scenario())
    assert len(sent) == 3
    assert counted == {("list", "jobs"): 1, ("get", "models"): 1}
    assert kube.requests == {("list", "jobs"): 1, ("get", "models"): 2}
    assert accounting.describe(counted) in ("2 (list jobs 1, get models 1)", "2 (get models 1, list jobs 1)")
    assert accounting.describe(accounting.Requests()) == "0"


def test_the_queue_says_how_long_a_run_waited_in_its_lane() -> None:
    """A clock of our own: waited is from the first trigger to the start of the run."""
    clock = [100.0]
    key = Key("Model", "ns", "m")
    seen: list[float] = []

    async def scenario() -> None:
        async def reconcile(k: Key) -> ReconcileResult:
            seen.append(queue.waited(k))
            return ReconcileResult()

        queue = WorkQueue(reconcile, workers=1, reserved_for_high=0, clock=lambda: clock[0])
        queue.trigger(key, Lane.LOW)
        clock[0] = 102.5
        queue.trigger(key, Lane.HIGH)  # promoted: still waiting since the first trigger
        clock[0] = 103.0
        await queue.reconcile(key)  # the waiter joins the queued run
        await queue.close()

    asyncio.run(scenario())
    assert seen == [3.0]
    assert WorkQueue(lambda k: asyncio.sleep(0, ReconcileResult())).waited(key) == 0.0
