"""The placement, resources and disruption-budget models refuse what the API server would refuse in
the pod (tests/integration/test_crd_admission.py checks the same cases against the CRDs' CEL rules)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from mlops_operator.api import crdgen
from mlops_operator.api.base import Resources
from mlops_operator.api.v1alpha1 import ALL_KINDS, Model
from mlops_operator.api.v1alpha1.affinity import Affinity
from mlops_operator.api.v1alpha1.pods import DisruptionBudget, PodOptions


@pytest.mark.parametrize(
    "spec",
    [
        {"requests": {"nvidia.com/gpu": "1"}},
        {"requests": {"cpu": "2", "amd.com/gpu": "2"}, "limits": {"amd.com/gpu": "2", "cpu": "4"}},
        {"limits": {"example.com/fpga": "1", "memory": "8Gi"}},
        {"requests": {"ephemeral-storage": "2Gi", "hugepages-1Gi": "2Gi"}, "limits": {"hugepages-1Gi": "2Gi"}},
        {"requests": {"memory": "4Gi"}},  # no limit: the operator's default, raised to the request
        {"requests": {"memory": "1.5Pi"}, "limits": {"memory": "2Pi"}},
    ],
)
def test_resources_accept_extended_resources_and_kubernetes_quantities(spec: dict[str, Any]) -> None:
    Resources.model_validate(spec)


@pytest.mark.parametrize(
    ("spec", "complaint"),
    [
        ({"requests": {"GPU": "1"}}, "should match pattern"),
        ({"requests": {"nvidia.com/": "1"}}, "should match pattern"),
        ({"requests": {"storage": "1Gi"}}, "should match pattern"),  # not a container resource
        ({"limits": {"example.kubernetes.io/x": "1"}}, "kubernetes.io names"),
        ({"requests": {"nvidia.com/gpu": "0.5"}}, "whole number of devices"),
        ({"requests": {"nvidia.com/gpu": "500m"}}, "whole number of devices"),
        ({"requests": {"memory": "4GB"}}, "should match pattern"),
        ({"requests": {"memory": "4Gi"}, "limits": {"memory": "1Gi"}}, "exceeds its limit"),
        ({"requests": {"nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "2"}}, "cannot be overcommitted"),
        ({"requests": {"hugepages-2Mi": "2Mi"}, "limits": {"hugepages-2Mi": "4Mi"}}, "cannot be overcommitted"),
        ({"requests": {f"example.com/r{i}": "1" for i in range(17)}}, "at most 16"),
    ],
)
def test_resources_refuse_what_a_pod_could_not_have(spec: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValidationError, match=complaint):
        Resources.model_validate(spec)


def test_limits_are_optional_and_default_to_nothing() -> None:
    resources = Resources()
    assert resources.limits is None and resources.requests == {"cpu": "100m", "memory": "256Mi"}
    assert Resources.model_validate({"requests": {"memory": "4Gi"}}).dump() == {"requests": {"memory": "4Gi"}}


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        ({"tolerations": [{"value": "x"}]}, "without a key needs operator Exists"),
        ({"tolerations": [{"key": "a", "operator": "Exists", "value": "x"}]}, "Exists takes no value"),
        ({"tolerations": [{"key": "a", "tolerationSeconds": 5}]}, "only for effect NoExecute"),
        ({"tolerations": [{"key": "a", "effect": "NoEvict"}]}, "Input should be"),
        ({"nodeSelector": {"bad key": "x"}}, "should match pattern"),
        ({"nodeSelector": {"pool": "not a value"}}, "should match pattern"),
        ({"priorityClassName": "system-cluster-critical"}, "system- priority classes"),
        ({"priorityClassName": "Not_A_Name"}, "should match pattern"),
        ({"imagePullSecrets": [{"name": "UPPER"}]}, "should match pattern"),
        ({"imagePullSecrets": [{"name": f"s{i}"} for i in range(9)]}, "at most 8"),
    ],
)
def test_placement_refuses_what_a_pod_could_not_have(options: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValidationError, match=complaint):
        PodOptions.model_validate(options)


def _node_requirement(operator: str, values: list[str] | None) -> dict[str, Any]:
    expression: dict[str, Any] = {"key": "gpu-memory", "operator": operator}
    if values is not None:
        expression["values"] = values
    terms = [{"matchExpressions": [expression]}]
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}


@pytest.mark.parametrize(
    ("operator", "values", "ok"),
    [
        ("In", ["a"], True),
        ("In", [], False),
        ("NotIn", None, False),
        ("Exists", None, True),
        ("DoesNotExist", ["a"], False),
        ("Gt", ["16000"], True),
        ("Lt", ["-1"], True),
        ("Gt", ["lots"], False),
        ("Lt", ["1", "2"], False),
        ("Gt", ["--5"], False),
    ],
)
def test_affinity_values_fit_their_operator(operator: str, values: list[str] | None, ok: bool) -> None:
    if ok:
        Affinity.model_validate(_node_requirement(operator, values))
    else:
        with pytest.raises(ValidationError, match="operator"):
            Affinity.model_validate(_node_requirement(operator, values))


def test_affinity_dumps_as_a_pod_spec_writes_it() -> None:
    body = {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "podAffinityTerm": {
                        "labelSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["x"]}]},
                        "namespaces": ["team-a"],
                        "topologyKey": "topology.kubernetes.io/zone",
                    },
                }
            ]
        }
    }
    assert Affinity.model_validate(body).dump() == body


@pytest.mark.parametrize(
    ("budget", "complaint"),
    [
        ({}, "exactly one"),
        ({"minAvailable": 1, "maxUnavailable": 1}, "exactly one"),
        ({"minAvailable": "100%"}, "should match pattern"),
        ({"minAvailable": 101}, "less than or equal to 100"),
        ({"maxUnavailable": 0}, "greater than or equal to 1"),
        ({"maxUnavailable": "0%"}, "should match pattern"),
        ({"maxUnavailable": "half"}, "should match pattern"),
    ],
)
def test_a_budget_that_could_never_let_a_pod_go_or_is_ambiguous_is_refused(
    budget: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(ValidationError, match=complaint):
        DisruptionBudget.model_validate(budget)


def test_placement_fields_are_on_every_spec_that_runs_pods() -> None:
    fields = {"image_pull_secrets", "node_selector", "tolerations", "affinity", "priority_class_name"}
    model = Model.model_validate(
        {"metadata": {"name": "m"}, "spec": {"datasetRef": {"name": "d"}, "trainer": {"estimator": "a.B"}}}
    )
    assert fields <= set(type(model.spec.trainer).model_fields) and fields <= set(type(model.spec.serving).model_fields)
    for kind in ALL_KINDS:
        if kind is not Model:
            assert fields <= set(kind.model_fields["spec"].annotation.model_fields), kind  # type: ignore[union-attr]


def test_int_or_string_fields_are_int_or_string_in_the_crd() -> None:
    spec = crdgen.crd_for(Model)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    budget = spec["properties"]["serving"]["properties"]["disruptionBudget"]["properties"]
    for name in ("minAvailable", "maxUnavailable"):
        assert budget[name]["x-kubernetes-int-or-string"] is True and "type" not in budget[name]
        assert budget[name]["x-kubernetes-validations"][0]["rule"].startswith("type(self) == int")
