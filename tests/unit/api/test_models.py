"""The pydantic models: defaults, cross-field rules, and their CRD rendering."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from mlops_operator.api import crdgen
from mlops_operator.api.v1alpha1 import ALL_KINDS, DriftMonitor, Model


def model_body(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "datasetRef": {"name": "ds"},
        "trainer": {"estimator": "sklearn.linear_model.LogisticRegression"},
    }
    base.update(spec)
    return {"apiVersion": "mlops.dev/v1alpha1", "kind": "Model", "metadata": {"name": "m"}, "spec": base}


def test_defaults_are_applied_when_parsed() -> None:
    model = Model.model_validate(model_body())
    assert model.spec.approval.policy == "Automatic"
    assert model.spec.validation.metric == "accuracy"
    assert model.spec.serving.collection.sample_rate == 1.0


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ({"trainer": {}}, "exactly one of trainer.estimator or trainer.image"),
        ({"trainer": {"estimator": "a.B", "image": "x"}}, "exactly one"),
        ({"task": "regression"}, "does not fit task"),
        ({"trainer": {"estimator": "os.system; rm"}}, "String should match pattern"),
        ({"unknownField": 1}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_model_specs_are_rejected(spec: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        Model.model_validate(model_body(**spec))


def test_drift_monitor_defaults() -> None:
    dm = DriftMonitor.model_validate({"metadata": {"name": "d"}, "spec": {"modelRef": {"name": "m"}}})
    assert dm.spec.schedule.interval_seconds == 300
    assert dm.spec.drift_share == 0.5


def _walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        if "type" in node or "x-kubernetes-preserve-unknown-fields" in node:
            found.append((path, node))
        for key in ("properties",):
            for name, child in node.get(key, {}).items():
                found += _walk(child, f"{path}.{name}")
        if isinstance(node.get("items"), dict):
            found += _walk(node["items"], f"{path}[]")
        if isinstance(node.get("additionalProperties"), dict):
            found += _walk(node["additionalProperties"], f"{path}{{}}")
    return found


@pytest.mark.parametrize("kind", ALL_KINDS, ids=lambda k: k.crd.kind)
def test_crd_schema_is_structural_and_bounded(kind: Any) -> None:
    schema = crdgen.crd_for(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for section in ("spec", "status"):
        for path, node in _walk(schema["properties"][section], section):
            text = repr(node)
            assert "$ref" not in text and "anyOf" not in text and "patternProperties" not in text, path
            assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), path
            if node.get("type") == "string" and "enum" not in node and node.get("format") != "date-time":
                assert "maxLength" in node, f"unbounded string at {path}"
            if node.get("type") == "array":
                assert "maxItems" in node, f"unbounded list at {path}"
            if node.get("type") == "object" and "additionalProperties" in node:
                assert "maxProperties" in node, f"unbounded map at {path}"


def test_printer_columns_answer_what_is_going_on() -> None:
    columns = [c["name"] for c in crdgen.crd_for(Model)["spec"]["versions"][0]["additionalPrinterColumns"]]
    assert columns[:5] == ["Latest", "Serving", "Metric", "Phase", "Age"]
