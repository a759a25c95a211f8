"""The Canary state machine, reconcile by reconcile, against the in-memory API server (the real
`Kube` client) with each pod's /metrics served by a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from mlops_operator import conditions as cond
from mlops_operator.api.v1alpha1.model import Model, ModelStatus, ModelVersion, VersionState
from mlops_operator.kube import DEPLOYMENT, POD
from mlops_operator.metrics import Metrics
from mlops_operator.reconcilers.context import Key, ReconcileContext
from mlops_operator.reconcilers.model import serving
from mlops_operator.reconcilers.skeleton import Run
from tests.metrics_server import MetricsServer as Pod
from tests.metrics_server import metrics_servers
from tests.unit import factories as f
from tests.unit.reconcilers.fake_kube import FakeKube

NS = "team-a"
ROLLOUT = {
    "strategy": "Canary",
    "steps": [50, 100],
    "stepDurationSeconds": 30,
    "analysis": {"maxErrorRate": 0.05, "maxP99LatencySeconds": 0.5, "minRequests": 20},
}


@pytest.fixture
def pods() -> Iterator[tuple[Pod, Pod]]:
    with metrics_servers() as pair:
        yield pair


def version(n: int, state: VersionState) -> ModelVersion:
    return ModelVersion(version=n, state=state, artifact_uri=f"file:///a/v{n}.skops", sha256=f"{n}" * 64)


class Loop:
    """Reconciles of one Model's serving, the status carried from one to the next, the clock moving."""

    def __init__(self, kube: FakeKube, model: Model) -> None:
        self.kube, self.model, self.now = kube, model, f.NOW
        self.work = ModelStatus(versions=[version(1, VersionState.SERVING), version(2, VersionState.APPROVED)])
        self.work.serving_version = 1
        self.events: list[tuple[str, str]] = []

    def reconcile(self, seconds: float = 1) -> cond.State:
        self.now += timedelta(seconds=seconds)
        ctx = ReconcileContext(settings=f.SETTINGS, kube=self.kube, metrics=Metrics(), clock=lambda: self.now)
        work = self.work.model_copy(deep=True)
        run = Run(ctx, Key("Model", NS, self.model.name), self.model.dump(), self.model, work, self.now)
        _, state = asyncio.run(serving.serve(run))
        self.work = run.work
        self.events += [(e.reason, e.message) for e in run.events]
        return state

    def deployment(self, name: str) -> dict[str, Any] | None:
        return self.kube.objects.get(f"{DEPLOYMENT.path(NS)}/{name}")

    def available(self, name: str, port: int) -> None:
        """Play the controllers and the kubelet: the Deployment complete, one pod of it at 127.0.0.1:port."""
        d = self.deployment(name)
        assert d is not None
        n = d["spec"].get("replicas", 1)
        d["status"] = {"replicas": n, "updatedReplicas": n, "availableReplicas": n, "readyReplicas": n}
        template = d["spec"]["template"]
        pod_name = f"{name}-v{template['metadata']['labels']['mlops.dev/model-version']}"
        for path in [p for p in self.kube.objects if p.startswith(f"{POD.path(NS)}/{name}-v")]:
            del self.kube.objects[path]
        containers = [{**template["spec"]["containers"][0], "ports": [{"name": "http", "containerPort": port}]}]
        owner = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": f"{pod_name}-rs",
            "uid": "x",
            "controller": True,
        }
        self.kube.put(
            POD.path(NS),
            {
                "metadata": {"name": pod_name, "labels": template["metadata"]["labels"], "ownerReferences": [owner]},
                "spec": {"containers": containers},
                "status": {"phase": "Running", "podIP": "127.0.0.1"},
            },
        )


def canary_loop(pods: tuple[Pod, Pod]) -> Loop:
    loop = Loop(FakeKube(), f.model(serving={"replicas": 2, "rollout": ROLLOUT}))
    loop.kube.put(f"/apis/mlops.dev/v1alpha1/namespaces/{NS}/models", loop.model.dump())  # the owner, for Events
    stable_pod, _ = pods
    assert loop.reconcile().reason == cond.Reason.ROLLING_OUT
    loop.available("iris-clf-server", stable_pod.port)
    return loop


def test_a_good_candidate_is_promoted_step_by_step(pods: tuple[Pod, Pod]) -> None:
    stable_pod, canary_pod = pods
    loop = canary_loop(pods)
    canary = loop.deployment("iris-clf-server-canary")
    assert canary is not None and canary["spec"]["replicas"] == 1
    assert loop.deployment("iris-clf-server")["spec"]["replicas"] == 1  # type: ignore[index]
    loop.available("iris-clf-server-canary", canary_pod.port)
    stable_pod.answered(ok=50)
    canary_pod.answered(ok=40)
    waiting = loop.reconcile()
    assert waiting.reason == cond.Reason.ROLLING_OUT and "judged in 30s" in waiting.message
    assert loop.work.rollout is not None and loop.work.rollout.weight == 50
    assert loop.deployment("iris-clf-server")["spec"]["template"]["metadata"]["annotations"] == {  # type: ignore[index]
        "mlops.dev/served-version": "1"
    }
    loop.reconcile(seconds=31)  # the step is judged: promoted, and the last step (100) is the rolling update
    step = loop.work.rollout.steps[0]
    assert (step.verdict, step.candidate.requests, step.champion.requests) == ("Promoted", 40, 50)  # type: ignore[union-attr]
    loop.reconcile()
    stable = loop.deployment("iris-clf-server")
    assert (
        stable is not None and stable["spec"]["template"]["metadata"]["annotations"]["mlops.dev/served-version"] == "2"
    )
    assert stable["spec"]["replicas"] == 2
    loop.available("iris-clf-server", stable_pod.port)
    state = loop.reconcile()
    assert state.status == cond.TRUE and loop.work.serving_version == 2
    assert loop.deployment("iris-clf-server-canary") is None
    assert loop.work.rollout.phase == "Promoted"
    assert "CanaryStepPromoted" in [r for r, _ in loop.events]


def test_a_candidate_answering_5xx_is_rolled_back_at_the_first_step(pods: tuple[Pod, Pod]) -> None:
    stable_pod, canary_pod = pods
    loop = canary_loop(pods)
    loop.available("iris-clf-server-canary", canary_pod.port)
    canary_pod.answered(ok=10, errors=10)
    loop.reconcile()  # at once: no need to wait for the step's end
    assert loop.work.serving_version == 1
    record = loop.work.versions[1]
    assert (record.state, record.reason) == (VersionState.ROLLED_BACK, cond.Reason.ANALYSIS_FAILED)
    assert "error rate 50.00% over maxErrorRate 5.00% (20 requests, 10 5xx)" in (record.message or "")
    assert loop.deployment("iris-clf-server-canary") is None
    assert loop.deployment("iris-clf-server")["spec"]["replicas"] == 2  # type: ignore[index]
    assert loop.work.rollout is not None and loop.work.rollout.phase == "RolledBack"
    warnings = [m for r, m in loop.events if r == cond.Reason.ROLLED_BACK]
    assert warnings and "version 1 keeps serving" in warnings[0]
    loop.available("iris-clf-server", stable_pod.port)  # the stable Deployment back at 2 replicas
    state = loop.reconcile()
    assert (state.status, loop.work.serving_version) == (cond.TRUE, 1)
    assert loop.reconcile(seconds=120).status == cond.TRUE  # v2 is never tried again
    assert loop.deployment("iris-clf-server-canary") is None


def test_a_slow_candidate_is_rolled_back_and_an_unreadable_pod_only_waits(pods: tuple[Pod, Pod]) -> None:
    _, canary_pod = pods
    loop = canary_loop(pods)
    loop.available("iris-clf-server-canary", 1)  # nothing listens on port 1: the pod is left out
    loop.reconcile()  # the step starts: its candidate pod is available
    assert loop.reconcile(seconds=60).reason == cond.Reason.ROLLING_OUT
    assert "waiting for minRequests" in (loop.work.rollout.message or "")  # type: ignore[union-attr]
    loop.available("iris-clf-server-canary", canary_pod.port)
    canary_pod.answered(ok=25, seconds=0.8)
    loop.reconcile()
    assert loop.work.versions[1].state == VersionState.ROLLED_BACK
    assert "p99 latency 1s over maxP99LatencySeconds 0.5s" in (loop.work.versions[1].message or "")


def test_a_spec_change_mid_rollout_neither_breaks_nor_leaves_a_candidate_behind(pods: tuple[Pod, Pod]) -> None:
    _, canary_pod = pods
    loop = canary_loop(pods)
    loop.available("iris-clf-server-canary", canary_pod.port)
    canary_pod.answered(ok=30)
    loop.reconcile()
    loop.reconcile(seconds=31)  # step 1 promoted: the record is at step 2 (100)
    assert loop.work.rollout is not None and loop.work.rollout.step == 1
    # the owner shortens the steps to one: the record's step is past the end, which means promote
    loop.model = f.model(serving={"replicas": 2, "rollout": {**ROLLOUT, "steps": [100]}})
    loop.reconcile()
    assert loop.deployment("iris-clf-server")["spec"]["template"]["metadata"]["annotations"] == {  # type: ignore[index]
        "mlops.dev/served-version": "2"
    }
    # a Canary switched to Shadow mid-way: the canary Deployment goes, the shadow one comes
    loop2 = canary_loop(pods)
    assert loop2.deployment("iris-clf-server-canary") is not None
    loop2.model = f.model(serving={"replicas": 2, "rollout": {"strategy": "Shadow"}})
    loop2.reconcile()
    assert loop2.deployment("iris-clf-server-canary") is None
    assert loop2.deployment("iris-clf-server-shadow") is not None
    assert loop2.work.rollout is not None and loop2.work.rollout.strategy == "Shadow"
