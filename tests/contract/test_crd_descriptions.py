"""Every field of the generated CRDs says what it is: `kubectl explain` is the API's manual."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from mlops_operator.api import crdgen


def properties(node: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every property under `node`, through objects, list items and map values."""
    for name, child in node.get("properties", {}).items():
        yield f"{path}.{name}", child
        yield from properties(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from properties(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from properties(node["additionalProperties"], f"{path}{{}}")


def generated() -> dict[str, dict[str, Any]]:
    """The CRDs as committed (crds/), which test_crds_in_sync.py ties to the models."""
    return {name: yaml.safe_load((crdgen.OUTPUT_DIRS[0] / name).read_text()) for name in crdgen.rendered_files()}


@pytest.mark.parametrize("name", sorted(crdgen.rendered_files()))
def test_every_spec_and_status_property_has_a_description(name: str) -> None:
    schema = generated()[name]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert schema.get("description"), f"{name}: the kind has no description"
    bare = []
    for section in ("spec", "status"):
        root = schema["properties"][section]
        if not root.get("description"):
            bare.append(section)
        bare += [path for path, node in properties(root, section) if not str(node.get("description", "")).strip()]
    assert not bare, (
        f"{name}: {len(bare)} properties without a description (add a docstring under the field in "
        f"operator/mlops_operator/api, then `make crds`): {', '.join(bare)}"
    )


def test_descriptions_are_single_paragraphs() -> None:
    for name, crd in generated().items():
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        for path, node in properties(schema, name):
            text = node.get("description", "")
            assert "\n" not in text and "  " not in text, f"{path}: {text!r}"


def test_the_check_would_catch_a_bare_field() -> None:
    schema = {"properties": {"spec": {"description": "s", "properties": {"a": {"type": "string"}}}}}
    assert [p for p, n in properties(schema["properties"]["spec"], "spec") if not n.get("description")] == ["spec.a"]
