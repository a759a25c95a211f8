"""Workload pods are steered: each spec's placement over the operator's defaults; extended resources;
the model server's PodDisruptionBudget."""

from __future__ import annotations

from typing import Any

import pytest

from mlops_operator import contracts
from mlops_operator.api.base import Resources
from mlops_operator.builders import limits, meta, pods, serving
from mlops_operator.settings import Settings, pod_defaults_from_env
from tests.unit import factories as f
from tests.unit.builders import workloads as w

PLACEMENT_KEYS = ("imagePullSecrets", "nodeSelector", "tolerations", "affinity", "priorityClassName")
ZONE_AFFINITY = {
    "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["a"]}]}
            ]
        }
    }
}
DEFAULTS = {
    "IMAGE_PULL_SECRETS": "registry-creds",
    "NODE_SELECTOR": '{"kubernetes.io/os": "linux"}',
    "TOLERATIONS": '[{"key": "dedicated", "value": "ml", "effect": "NoSchedule"}]',
    "AFFINITY": '{"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": '
    '[{"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["a"]}]}]}}}',
    "PRIORITY_CLASS_NAME": "ml-batch",
}
OPERATOR = Settings(pod_defaults=pod_defaults_from_env(lambda name, default: DEFAULTS.get(name, default)))
EXPECTED_DEFAULTS = {
    "imagePullSecrets": [{"name": "registry-creds"}],
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}],
    "affinity": ZONE_AFFINITY,
    "priorityClassName": "ml-batch",
}
GPU = {
    "nodeSelector": {"nvidia.com/gpu.present": "true"},
    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    "priorityClassName": "ml-gpu",
}


def placement_of(template: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in template["spec"].items() if k in PLACEMENT_KEYS}


@pytest.mark.parametrize("role", w.ROLES)
def test_no_defaults_and_no_spec_placement_render_nothing(role: str) -> None:
    assert placement_of(w.render(Settings())[role]) == {}


@pytest.mark.parametrize("role", w.ROLES)
def test_every_pod_gets_the_operators_defaults_when_its_spec_says_nothing(role: str) -> None:
    assert placement_of(w.render(OPERATOR)[role]) == EXPECTED_DEFAULTS


@pytest.mark.parametrize("role", w.PLACED_ROLES)
def test_a_spec_field_replaces_the_default_for_that_field_only(role: str) -> None:
    got = placement_of(w.render(OPERATOR, placement=GPU)[role])
    assert got == {**EXPECTED_DEFAULTS, **GPU}


@pytest.mark.parametrize("role", ["registry", "notify"])
def test_the_registry_and_notify_pods_take_the_defaults_only(role: str) -> None:
    assert placement_of(w.render(OPERATOR, placement=GPU)[role]) == EXPECTED_DEFAULTS


@pytest.mark.parametrize("role", w.PLACED_ROLES)
def test_an_empty_spec_value_removes_the_default(role: str) -> None:
    empty = {"imagePullSecrets": [], "nodeSelector": {}, "tolerations": [], "affinity": {}, "priorityClassName": ""}
    assert placement_of(w.render(OPERATOR, placement=empty)[role]) == {}


def test_placement_is_the_spec_and_the_defaults_only() -> None:
    trainer = f.model(trainer={"estimator": "sklearn.tree.DecisionTreeClassifier", **GPU}).spec.trainer
    assert pods.placement(trainer, Settings()) == GPU
    assert pods.placement(None, OPERATOR) == EXPECTED_DEFAULTS


# --- resources ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        # a device requested without a limit gets the request as its limit (it cannot be overcommitted)
        (
            {"requests": {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "1"}},
            {"requests": {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "1"},
             "limits": {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "1"}},
        ),
        # the limit only: the API server takes it as the request too
        (
            {"requests": {"cpu": "500m"}, "limits": {"nvidia.com/gpu": "2", "memory": "2Gi"}},
            {"requests": {"cpu": "500m"}, "limits": {"cpu": "1", "memory": "2Gi", "nvidia.com/gpu": "2"}},
        ),
        (
            {"requests": {"ephemeral-storage": "1Gi", "hugepages-2Mi": "64Mi", "memory": "1Gi"}},
            {"requests": {"ephemeral-storage": "1Gi", "hugepages-2Mi": "64Mi", "memory": "1Gi"},
             "limits": {"cpu": "1", "memory": "1Gi", "hugepages-2Mi": "64Mi"}},
        ),
        # the reported bug: requests.memory 4Gi alone, once limited to the schema's 1Gi default
        ({"requests": {"memory": "4Gi"}}, {"requests": {"memory": "4Gi"}, "limits": {"cpu": "1", "memory": "4Gi"}}),
    ],
)  # fmt: skip
def test_extended_resources_are_rendered_with_a_limit(spec: dict[str, Any], expected: dict[str, Any]) -> None:
    assert pods.resources(Resources.model_validate(spec), Settings()) == expected


@pytest.mark.parametrize("role", w.PLACED_ROLES)
def test_a_gpu_reaches_every_pod_whose_spec_asks_for_it(role: str) -> None:
    rendered = w.container(w.render(Settings(), {"requests": {"nvidia.com/gpu": "1"}})[role])["resources"]
    assert rendered["requests"] == {"nvidia.com/gpu": "1"}
    assert rendered["limits"] == {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": "1"}


def test_hashes_of_specs_without_limits_are_those_of_the_old_schema_default() -> None:
    assert limits.hashable_resources({"requests": {"cpu": "1"}}) == {
        "requests": {"cpu": "1"},
        "limits": {"cpu": "1", "memory": "1Gi"},
    }
    assert limits.hashable_resources({"limits": {}}) == {"limits": {}}
    from mlops_operator.builders import jobs

    implicit = f.model(trainer={"estimator": "sklearn.tree.DecisionTreeClassifier"})
    explicit = f.model(
        trainer={
            "estimator": "sklearn.tree.DecisionTreeClassifier",
            "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
        }
    )
    assert jobs.training_spec_hash(implicit) == jobs.training_spec_hash(explicit)
    assert jobs.profile_job_name(f.dataset(), 0) == jobs.profile_job_name(
        f.dataset(resources={"limits": {"cpu": "1", "memory": "1Gi"}}), 0
    )


# --- the PodDisruptionBudget --------------------------------------------------------------------


def budget(**serving_spec: Any) -> dict[str, Any] | None:
    return serving.disruption_budget(f.model(serving=serving_spec))


def test_no_budget_unless_asked_for() -> None:
    assert budget(replicas=3) is None


@pytest.mark.parametrize(
    ("serving_spec", "rendered"),
    [
        ({"replicas": 1, "disruptionBudget": {"maxUnavailable": 1}}, False),  # one pod: nothing to keep
        ({"replicas": 0, "disruptionBudget": {"minAvailable": 0}}, False),
        ({"replicas": 2, "disruptionBudget": {"maxUnavailable": 1}}, True),
        ({"replicas": 2, "disruptionBudget": {"minAvailable": 2}}, False),  # would let none go
        ({"replicas": 3, "disruptionBudget": {"minAvailable": 2}}, True),
        ({"replicas": 2, "disruptionBudget": {"minAvailable": "51%"}}, False),  # rounds up to 2 of 2
        ({"replicas": 2, "disruptionBudget": {"minAvailable": "50%"}}, True),
        ({"replicas": 2, "disruptionBudget": {"maxUnavailable": "10%"}}, True),  # rounds up to 1
        ({"autoscaling": {"minReplicas": 1, "maxReplicas": 5}, "disruptionBudget": {"maxUnavailable": 1}}, False),
        ({"autoscaling": {"minReplicas": 2, "maxReplicas": 5}, "disruptionBudget": {"minAvailable": 1}}, True),
        ({"enabled": False, "replicas": 3, "disruptionBudget": {"minAvailable": 1}}, False),
    ],
)
def test_a_budget_only_while_it_can_let_a_server_pod_go(serving_spec: dict[str, Any], rendered: bool) -> None:
    assert (budget(**serving_spec) is not None) == rendered


def test_the_budget_selects_the_server_pods_and_is_owned_and_labelled_like_the_other_serving_children() -> None:
    model = f.model(serving={"replicas": 3, "disruptionBudget": {"minAvailable": 2}})
    pdb = serving.disruption_budget(model)
    assert pdb is not None
    hpa = serving.hpa(f.model(serving={"autoscaling": {"minReplicas": 2}}))
    assert hpa is not None
    assert pdb["apiVersion"] == "policy/v1" and pdb["kind"] == "PodDisruptionBudget"
    assert pdb["metadata"]["name"] == serving.deployment_name(model) == hpa["metadata"]["name"]
    assert pdb["metadata"]["labels"] == hpa["metadata"]["labels"]
    assert pdb["metadata"]["ownerReferences"] == [meta.owner_reference(model)]
    assert contracts.ANNOTATION_SPEC_HASH in pdb["metadata"]["annotations"]
    assert pdb["spec"]["selector"] == {"matchLabels": serving.selector(model)}
    deployment = serving.deployment(model, w.SERVED, Settings())
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


def test_switching_between_min_available_and_max_unavailable_clears_the_other_on_a_merge_patch() -> None:
    minimum = budget(replicas=3, disruptionBudget={"minAvailable": 2})
    maximum = budget(replicas=3, disruptionBudget={"maxUnavailable": "34%"})
    assert minimum is not None and maximum is not None
    assert (minimum["spec"]["minAvailable"], minimum["spec"]["maxUnavailable"]) == (2, None)
    assert (maximum["spec"]["minAvailable"], maximum["spec"]["maxUnavailable"]) == (None, "34%")
    assert minimum["metadata"]["annotations"] != maximum["metadata"]["annotations"]  # a new spec hash: patched
