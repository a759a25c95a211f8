"""A Shadow rollout's status shows the candidate's label-based scores beside its agreement: read from
this Model's DriftMonitors (their status.liveQuality.shadow), for this candidate, the latest check's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from mlops_operator import conditions as cond
from mlops_operator.api.v1alpha1.rollout import ShadowLiveQuality
from mlops_operator.kube import DRIFT_MONITOR
from mlops_operator.reconcilers.model.shadow_scores import latest_for
from tests.metrics_server import MetricsServer as Pod
from tests.metrics_server import metrics_servers
from tests.unit import factories as f
from tests.unit.reconcilers.fake_kube import FakeKube
from tests.unit.reconcilers.test_canary_reconcile import NS, Loop


def scores(version: str, value: float) -> dict[str, Any]:
    return {
        "version": version,
        "championVersion": "1",
        "metric": "accuracy",
        "value": value,
        "championValue": 0.8,
        "labelled": 50,
        "predictions": 120,
        "metrics": {"accuracy": value},
        "championMetrics": {"accuracy": 0.8},
    }


def monitor(name: str, model: str, time: str, shadow: dict[str, Any] | None) -> dict[str, Any]:
    live: dict[str, Any] = {"metric": "accuracy", "value": 0.8, "labelled": 60, "time": time}
    if shadow is not None:
        live["shadow"] = shadow
    return {
        "apiVersion": "mlops.dev/v1alpha1",
        "kind": "DriftMonitor",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"modelRef": {"name": model}},
        "status": {"liveQuality": live},
    }


def test_the_latest_check_of_this_models_monitors_for_this_candidate_wins() -> None:
    monitors = [
        monitor("old", "iris-clf", "2026-01-01T10:00:00Z", scores("2", 0.70)),
        monitor("new", "iris-clf", "2026-01-01T11:00:00Z", scores("2", 0.90)),
        monitor("other-candidate", "iris-clf", "2026-01-01T12:00:00Z", scores("3", 0.10)),
        monitor("other-model", "wine", "2026-01-01T12:00:00Z", scores("2", 0.20)),
        monitor("no-shadow", "iris-clf", "2026-01-01T12:00:00Z", None),
        monitor("garbled", "iris-clf", "2026-01-01T12:00:00Z", {"version": "2", "labelled": "many"}),
        monitor("no-time", "iris-clf", "", scores("2", 0.30)),
    ]
    found = latest_for("iris-clf", 2, monitors)
    assert found is not None and found.value == 0.90
    assert latest_for("iris-clf", 4, monitors) is None and latest_for("iris-clf", 2, []) is None


@pytest.fixture
def pods() -> Iterator[tuple[Pod, Pod]]:
    with metrics_servers() as pair:
        yield pair


def test_the_rollout_status_carries_the_scores_beside_the_agreement(pods: tuple[Pod, Pod]) -> None:
    champion_pod, candidate_pod = pods
    rollout = {"strategy": "Shadow", "shadow": {"minRequests": 30, "minAgreement": 0.9}}
    loop = Loop(FakeKube(), f.model(serving={"replicas": 2, "rollout": rollout}))
    loop.kube.put(f"/apis/mlops.dev/v1alpha1/namespaces/{NS}/models", loop.model.dump())
    assert loop.reconcile().reason == cond.Reason.ROLLING_OUT
    loop.available("iris-clf-server", champion_pod.port)
    loop.reconcile()
    loop.available("iris-clf-server-shadow", candidate_pod.port)
    loop.reconcile()
    loop.available("iris-clf-server", champion_pod.port)  # rolled with the mirror flags
    champion_pod.mirrored(requests=10, rows=10, agreed=9)
    loop.reconcile()
    record = loop.work.rollout
    assert record is not None and record.shadow is not None and record.shadow.mirrored == 10
    assert record.shadow.live_quality is None  # no DriftMonitor has scored the candidate yet

    loop.kube.put(DRIFT_MONITOR.path(NS), monitor("iris-watch", "iris-clf", "2026-01-01T11:00:00Z", scores("2", 0.9)))
    loop.reconcile()
    record = loop.work.rollout
    assert record is not None and record.shadow is not None
    assert record.shadow.live_quality == ShadowLiveQuality.model_validate(scores("2", 0.9))
    assert record.phase == "Progressing"  # informational: 10 of minRequests 30 compared, still waiting
    wire = loop.work.dump()["rollout"]["shadow"]
    assert (wire["agreedRows"], wire["liveQuality"]["value"], wire["liveQuality"]["championValue"]) == (9, 0.9, 0.8)
