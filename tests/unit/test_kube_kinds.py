"""Every object the builders render maps to a known API resource path."""

from __future__ import annotations

from datetime import UTC, datetime

from mlops_operator.api.v1alpha1.model import ModelVersion, VersionState
from mlops_operator.builders import jobs, namespace, serving
from mlops_operator.kube import kind_of
from mlops_operator.settings import Settings
from tests.unit import factories as f


def test_every_rendered_kind_has_a_path() -> None:
    tick = datetime(2026, 1, 1, tzinfo=UTC)
    served = ModelVersion(version=1, state=VersionState.APPROVED, artifact_uri="file:///a", sha256="a" * 64)
    model = f.model(serving={"autoscaling": {"minReplicas": 1, "maxReplicas": 2}})
    monitor = f.monitor(action={"webhook": {"secretRef": {"name": "s", "key": "k"}}})
    hpa = serving.hpa(model)
    assert hpa is not None
    rendered = [
        *namespace.prerequisites("team-a", Settings()),
        jobs.profile_job(f.dataset(), Settings(), 0),
        jobs.notify_job(monitor, {"text": "x"}, tick, Settings()),
        serving.deployment(model, served, Settings()),
        serving.service(model),
        hpa,
    ]
    paths = {kind_of(obj).path(obj["metadata"]["namespace"]) for obj in rendered}
    assert paths == {
        "/api/v1/namespaces/team-a/serviceaccounts",
        "/api/v1/namespaces/team-a/persistentvolumeclaims",
        "/apis/batch/v1/namespaces/team-a/jobs",
        "/apis/apps/v1/namespaces/team-a/deployments",
        "/api/v1/namespaces/team-a/services",
        "/apis/autoscaling/v2/namespaces/team-a/horizontalpodautoscalers",
    }
