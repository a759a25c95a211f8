"""Canary and Shadow manifests, compared with their golden YAML; Replace renders as it always did."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlops_operator.api.v1alpha1.model import ModelVersion, VersionState
from mlops_operator.builders import serving
from tests.unit import factories as f

Golden = Callable[[str, Any], None]
CANDIDATE = ModelVersion(
    version=4,
    state=VersionState.APPROVED,
    artifact_uri="file:///var/lib/mlops/team-a/models/iris-clf/v4/model.skops",
    sha256="b" * 64,
)
STABLE = ModelVersion(
    version=3,
    state=VersionState.SERVING,
    artifact_uri="file:///var/lib/mlops/team-a/models/iris-clf/v3/model.skops",
    sha256="a" * 64,
)
CANARY = {"serving": {"replicas": 4, "rollout": {"strategy": "Canary", "steps": [25, 50, 100]}}}


def test_canary_deployment(golden: Golden) -> None:
    model = f.model(**CANARY)
    golden("server-deployment-canary", serving.candidate_deployment(model, CANDIDATE, f.SETTINGS, "canary", 1))


def test_canary_pods_are_behind_the_service_and_apart_from_the_stable_deployment() -> None:
    model = f.model(**CANARY)
    canary = serving.candidate_deployment(model, CANDIDATE, f.SETTINGS, "canary", 1)
    stable = serving.deployment(model, STABLE, f.SETTINGS, replicas=3)
    service = serving.service(model)
    pod_labels = canary["spec"]["template"]["metadata"]["labels"]
    assert canary["metadata"]["name"] == "iris-clf-server-canary"
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert pod_labels[serving.LABEL_TRACK] == "canary"
    assert canary["spec"]["selector"]["matchLabels"][serving.LABEL_TRACK] == "canary"
    assert serving.LABEL_TRACK not in stable["spec"]["template"]["metadata"]["labels"]
    assert canary["metadata"]["ownerReferences"] == stable["metadata"]["ownerReferences"]
    assert (canary["spec"]["replicas"], stable["spec"]["replicas"]) == (1, 3)
    # the stable Deployment's selector is immutable: it never changes with the strategy
    assert stable["spec"]["selector"] == serving.deployment(f.model(), STABLE, f.SETTINGS)["spec"]["selector"]


def test_replace_renders_the_stable_deployment_unchanged_by_the_rollout_field() -> None:
    plain = serving.deployment(f.model(), STABLE, f.SETTINGS)
    with_canary_spec = serving.deployment(f.model(**CANARY), STABLE, f.SETTINGS)
    assert {k: v for k, v in plain["spec"].items() if k != "replicas"} == {
        k: v for k, v in with_canary_spec["spec"].items() if k != "replicas"
    }


def test_shadow_deployment_and_service(golden: Golden) -> None:
    model = f.model(serving={"rollout": {"strategy": "Shadow", "shadow": {"samplePercent": 25}}})
    shadow = serving.candidate_deployment(model, CANDIDATE, f.SETTINGS, "shadow", 1)
    service = serving.shadow_service(model)
    golden("server-deployment-shadow", shadow)
    golden("server-service-shadow", service)
    main = serving.service(model)
    pod_labels = shadow["spec"]["template"]["metadata"]["labels"]
    assert not main["spec"]["selector"].items() <= pod_labels.items()  # no client reaches it through the Service
    assert service["spec"]["selector"].items() <= pod_labels.items()
    # by the Service's ClusterIP, which needs no cluster DNS
    assert serving.shadow_url({**service, "spec": {**service["spec"], "clusterIP": "10.96.0.12"}}) == (
        "http://10.96.0.12:80"
    )
