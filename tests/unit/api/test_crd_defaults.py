"""The CRD's defaults are pydantic's: an object defaulted by the API server parses to the same spec.

The API server applies a schema's defaults top-down (a defaulted object gets its own fields'
defaults too), on every request and on every read from etcd. `apply_defaults` does the same here.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_operator.api import crdgen
from mlops_operator.api.base import Resource
from mlops_operator.api.v1alpha1 import ALL_KINDS, Dataset, DriftMonitor, Model

SAMPLES = Path(__file__).resolve().parents[3] / "manifests" / "samples"
KINDS: dict[str, type[Resource]] = {cls.crd.kind: cls for cls in ALL_KINDS}


def apply_defaults(schema: dict[str, Any], value: Any) -> Any:
    """Structural defaulting, as the API server does it."""
    if isinstance(value, dict) and "properties" in schema:
        for name, child in schema["properties"].items():
            if name not in value and "default" in child:
                value[name] = copy.deepcopy(child["default"])
            if name in value:
                value[name] = apply_defaults(child, value[name])
    elif isinstance(value, dict) and isinstance(schema.get("additionalProperties"), dict):
        for key in value:
            value[key] = apply_defaults(schema["additionalProperties"], value[key])
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        value = [apply_defaults(schema["items"], item) for item in value]
    return value


def spec_schema(cls: type[Resource]) -> dict[str, Any]:
    schema: dict[str, Any] = crdgen.crd_for(cls)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema["properties"]["spec"]


def body(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "mlops.dev/v1alpha1", "kind": kind, "metadata": {"name": "x"}, "spec": spec}


MINIMAL = [
    body("Dataset", {"source": {"uri": "sklearn://iris"}}),
    body("Model", {"datasetRef": {"name": "d"}, "trainer": {"estimator": "sklearn.tree.DecisionTreeClassifier"}}),
    body("DriftMonitor", {"modelRef": {"name": "m"}}),
]
PARTIAL = [  # nested objects given in part: the rest comes from the level below
    body(
        "Dataset",
        {
            "source": {"uri": "file:///data/x.csv"},
            "quality": {"outliers": {"method": "iqr"}},
            "resources": {"requests": {"cpu": "2"}},
        },
    ),
    body(
        "Model",
        {
            "datasetRef": {"name": "d"},
            "task": "regression",
            "trainer": {
                "image": "registry.example/trainer:1",
                "resources": {"limits": {"memory": "4Gi", "nvidia.com/gpu": "1"}},
                "tolerations": [{"key": "nvidia.com/gpu", "effect": "NoSchedule", "operator": "Exists"}, {"key": "a"}],
                "nodeSelector": {"nvidia.com/gpu.present": "true"},
            },
            "validation": {"metric": "rmse", "threshold": 3.5},
            "serving": {
                "autoscaling": {"maxReplicas": 5},
                "collection": {"sampleRate": 0.1},
                "disruptionBudget": {"maxUnavailable": "25%"},
                "affinity": {
                    "podAntiAffinity": {
                        "preferredDuringSchedulingIgnoredDuringExecution": [
                            {"weight": 50, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname"}}
                        ]
                    }
                },
            },
            "approval": {"policy": "Manual"},
            "approvedVersion": 2,
        },
    ),
    body(
        "DriftMonitor",
        {
            "modelRef": {"name": "m"},
            "schedule": {"cron": "*/5 * * * *"},
            "features": [{"name": "age", "threshold": 0.2}, {"name": "id", "ignore": True}],
            "action": {"webhook": {"secretRef": {"name": "hook", "key": "url"}}},
        },
    ),
]


def samples() -> list[dict[str, Any]]:
    return [doc for path in sorted(SAMPLES.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text())]


@pytest.mark.parametrize(
    "obj",
    MINIMAL + PARTIAL + samples(),
    ids=lambda o: f"{o['kind']}:{o['metadata']['name']}:{len(repr(o['spec']))}",
)
def test_an_object_defaulted_by_the_schema_parses_to_the_same_spec(obj: dict[str, Any]) -> None:
    cls = KINDS[obj["kind"]]
    defaulted = apply_defaults(spec_schema(cls), copy.deepcopy(obj["spec"]))
    assert defaulted == cls.model_validate(obj).spec.dump()  # nothing missing, nothing extra


def test_defaults_on_spec_only() -> None:
    for cls in ALL_KINDS:
        status = crdgen.crd_for(cls)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
        assert "default" not in repr(status), f"{cls.crd.kind}: the status schema has a default"


@pytest.mark.parametrize(
    ("cls", "path", "default"),
    [
        (Model, ("approval", "default"), {}),
        (Model, ("approval", "properties", "policy", "default"), "Automatic"),
        (
            Model,
            ("trainer", "properties", "resources", "properties", "requests", "default"),
            {"cpu": "100m", "memory": "256Mi"},
        ),
        (DriftMonitor, ("schedule", "default"), {"intervalSeconds": 300}),
        (Dataset, ("quality", "properties", "minRows", "default"), 10),
    ],
)
def test_kubectl_explain_shows_the_defaults(cls: type[Resource], path: tuple[str, ...], default: Any) -> None:
    node: Any = spec_schema(cls)["properties"]
    for key in path:
        node = node[key]
    assert node == default


def test_optional_fields_have_no_default() -> None:
    props = spec_schema(Model)["properties"]
    assert "default" not in props["approvedVersion"] and "default" not in props["target"]
    assert "default" not in props["serving"]["properties"]["autoscaling"]
    assert "default" not in props["serving"]["properties"]["disruptionBudget"]
    for section in ("trainer", "serving"):
        steering = props[section]["properties"]
        for name in ("imagePullSecrets", "nodeSelector", "tolerations", "affinity", "priorityClassName"):
            assert "default" not in steering[name], f"{section}.{name}: the operator's default applies"


def test_limits_have_no_default_so_a_request_alone_never_meets_a_lower_limit() -> None:
    """A schema default {cpu: 1, memory: 1Gi} made `requests.memory: 4Gi` a Job the API server refuses
    (requests above limits); without it the builder's fallback (the default, raised to the request) applies."""
    for cls in ALL_KINDS:
        text = repr(spec_schema(cls))
        assert "'limits': {'description'" in text
    obj = body(
        "Model",
        {"datasetRef": {"name": "d"}, "trainer": {"image": "x/y:1", "resources": {"requests": {"memory": "4Gi"}}}},
    )
    defaulted = apply_defaults(spec_schema(Model), copy.deepcopy(obj["spec"]))
    assert defaulted["trainer"]["resources"] == {"requests": {"memory": "4Gi"}}
    assert "limits" not in defaulted["serving"]["resources"]
