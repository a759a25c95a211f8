"""Generate the CRDs from the pydantic models: `python -m mlops_operator.api.crdgen --write|--check`.

The pydantic classes are the only hand-written schema. This module turns their JSON Schema into a
structural OpenAPI v3 schema (inlined refs, no titles, bounds on every string, list and map, CEL rules
from each kind's CRDMeta) and wraps it in the CRD envelope. Output is deterministic.

- Descriptions: a field's `Field(description=...)`, else the docstring under it (read from the
  source here, not by pydantic at every import), else its class's docstring; whitespace is folded,
  so `kubectl explain` shows one paragraph.
- Defaults: the spec carries pydantic's defaults (a `default_factory` too: a model value is written
  as the fields that differ from that model's own defaults, which the API server then fills in one
  level down), so `kubectl explain` and `kubectl get -o yaml` show the values the operator uses. The
  status has none: only the operator writes it, from the same models.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import sys
import textwrap
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from mlops_operator import contracts
from mlops_operator.api.base import DNS_1035_LABEL, CRDMeta, PrinterColumn, Resource
from mlops_operator.api.v1alpha1 import ALL_KINDS

# Bounds applied where a model sets none, so every string/list/map is bounded (CEL cost and abuse).
DEFAULT_MAX_LENGTH = 1024
DEFAULT_MAX_ITEMS = 1000
DEFAULT_MAX_PROPERTIES = 256

REPO_ROOT = Path(__file__).resolve().parents[3]
OUTPUT_DIRS = (REPO_ROOT / "crds", REPO_ROOT / "charts" / "mlops-operator" / "crds")

_DROPPED_KEYS = {"title", "examples", "$defs", "discriminator"}


def field_docstrings(cls: type) -> dict[str, str]:
    """`{field: docstring}` for the string literals that follow annotated fields in the source of
    `cls` and of the classes it inherits fields from (a subclass's own docstring wins)."""
    docs: dict[str, str] = {}
    for base in reversed(cls.__mro__):
        if isinstance(base, type) and issubclass(base, BaseModel) and base is not BaseModel:
            docs |= _own_field_docstrings(base)
    return docs


def _own_field_docstrings(cls: type) -> dict[str, str]:
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    (node,) = ast.parse(source).body
    assert isinstance(node, ast.ClassDef)
    docs: dict[str, str] = {}
    for statement, following in zip(node.body, node.body[1:], strict=False):
        if (
            isinstance(statement, ast.AnnAssign)
            and isinstance(statement.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs[statement.target.id] = inspect.cleandoc(following.value.value)
    return docs


class CRDJsonSchema(GenerateJsonSchema):
    """pydantic's JSON Schema plus field docstrings as descriptions and `default_factory` defaults."""

    def model_schema(self, schema: core_schema.ModelSchema) -> JsonSchemaValue:
        json_schema = super().model_schema(schema)
        cls = schema["cls"]
        properties = json_schema.get("properties", {})
        for name, doc in field_docstrings(cls).items():
            field = cls.model_fields.get(name)
            prop = properties.get(field.alias or name) if field is not None else None
            if prop is not None:
                prop.setdefault("description", doc)
        return json_schema

    def get_default_value(self, schema: core_schema.WithDefaultSchema) -> Any:
        factory = schema.get("default_factory")
        if factory is None or schema.get("default_factory_takes_data"):
            return super().get_default_value(schema)
        value = factory()  # type: ignore[call-arg]
        if isinstance(value, BaseModel):
            return value.model_dump(by_alias=True, exclude_defaults=True, mode="json")
        return value


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_resolve(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _resolve(merged, defs)
    return {k: _resolve(v, defs) for k, v in node.items()}


def _structural(node: dict[str, Any], defaults: bool) -> dict[str, Any]:
    """Rewrite one resolved JSON Schema node into its structural OpenAPI v3 form."""
    node = {k: v for k, v in node.items() if k not in _DROPPED_KEYS}
    if not defaults or node.get("default", ...) is None:
        node.pop("default", None)
    if "description" in node:
        node["description"] = " ".join(node["description"].split())
    if "anyOf" in node:
        node = _union(node, defaults)
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if "x-kubernetes-validations" in node:  # rule, message, then the rest: as spec_rules read
        rank = {"rule": 0, "message": 1}
        node["x-kubernetes-validations"] = [
            dict(sorted(r.items(), key=lambda kv: rank.get(kv[0], 2))) for r in node["x-kubernetes-validations"]
        ]
    for bound in ("exclusiveMinimum", "exclusiveMaximum"):
        if bound in node and not isinstance(node[bound], bool):
            node["minimum" if bound == "exclusiveMinimum" else "maximum"] = node[bound]
            node[bound] = True
    kind = node.get("type")
    if kind == "object" or "properties" in node:
        node = _object(node, defaults)
    elif kind == "array":
        node["items"] = _structural(node.get("items", {}), defaults)
        node.setdefault("maxItems", DEFAULT_MAX_ITEMS)
    elif kind == "string" and "enum" not in node and node.get("format") != "date-time":
        node.setdefault("maxLength", DEFAULT_MAX_LENGTH)
    return _ordered(node)


def _union(node: dict[str, Any], defaults: bool) -> dict[str, Any]:
    """An `anyOf`: Optional[X] is X; int | float a number; int | str an IntOrString (each branch's
    bounds are the model's CEL rules); any other scalar union any JSON value, checked by pydantic."""
    branches = [b for b in node.pop("anyOf") if b.get("type") != "null"]
    types = {b.get("type") for b in branches}
    if len(branches) == 1:
        return {**_structural(branches[0], defaults), **node}
    if types <= {"integer", "number"}:
        return {**node, "type": "number"}
    if types == {"integer", "string"}:
        return {**node, "x-kubernetes-int-or-string": True}
    return {**node, "x-kubernetes-preserve-unknown-fields": True}


def _object(node: dict[str, Any], defaults: bool) -> dict[str, Any]:
    node["type"] = "object"
    # Kubernetes forbids patternProperties/propertyNames: keep the value schema, check keys in CEL.
    patterns = node.pop("patternProperties", None)
    names = node.pop("propertyNames", {})
    if patterns:
        (key_pattern, value_schema), *_ = patterns.items()
        node["additionalProperties"] = value_schema
        max_key = names.get("maxLength", DEFAULT_MAX_LENGTH)
        # CEL cannot type a map of untyped values; pydantic checks those keys instead.
        if "type" in _structural(value_schema, defaults):
            literal = key_pattern.replace("\\", "\\\\").replace("'", "\\'")  # a CEL string literal
            node["x-kubernetes-validations"] = [
                {
                    "rule": f"self.all(k, k.matches('{literal}') && size(k) <= {max_key})",
                    "message": f"keys must match {key_pattern} and be at most {max_key} characters",
                },
                *node.get("x-kubernetes-validations", []),
            ]
    props = node.get("properties", {})
    node["properties"] = {k: _structural(v, defaults) for k, v in props.items()}
    if not node["properties"]:
        node.pop("properties")
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        node["additionalProperties"] = _structural(extra, defaults)
        node.setdefault("maxProperties", DEFAULT_MAX_PROPERTIES)
    elif extra is False or extra is True:
        node.pop("additionalProperties")
    if "required" in node:
        node["required"] = sorted(node["required"])
    return node


_KEY_ORDER = (
    "description",
    "type",
    "format",
    "default",
    "enum",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "exclusiveMinimum",
    "maximum",
    "exclusiveMaximum",
    "minItems",
    "maxItems",
    "maxProperties",
    "required",
    "properties",
    "additionalProperties",
    "items",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-int-or-string",
    "x-kubernetes-validations",
)


def _ordered(node: dict[str, Any]) -> dict[str, Any]:
    rank = {k: i for i, k in enumerate(_KEY_ORDER)}
    return dict(sorted(node.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0])))


def _schema_of(cls: type[Resource], field: str, *, defaults: bool) -> dict[str, Any]:
    annotation = cls.model_fields[field].annotation
    model: type[BaseModel] = next(
        a for a in getattr(annotation, "__args__", (annotation,)) if isinstance(a, type) and issubclass(a, BaseModel)
    )
    raw = model.model_json_schema(by_alias=True, mode="validation", schema_generator=CRDJsonSchema)
    return _structural(_resolve(raw, raw.get("$defs", {})), defaults)


def name_rule(meta: CRDMeta) -> dict[str, Any]:
    """metadata.name: a DNS-1035 label short enough for every child name, checked on create only.

    A name becomes a Service's name (DNS-1035: lowercase letters, digits and '-', starting with a
    letter) and the head of child names `<name>-<suffix>` that must stay within 63 characters. Names
    are immutable, so the rule looks only at creates (`oldSelf` has no value then): an object created
    before the rule existed stays updatable, status included.
    """
    limit = meta.max_name_length
    return {
        "rule": f"oldSelf.hasValue() || (size(self.metadata.name) <= {limit} && "
        f"self.metadata.name.matches('{DNS_1035_LABEL}'))",
        "optionalOldSelf": True,
        "message": f"metadata.name must be at most {limit} characters of lowercase letters, digits and '-', "
        f"start with a letter and end with a letter or digit (a {meta.kind}'s name heads the names of the "
        "objects the operator creates for it, up to 63 characters)",
        "reason": "FieldValueInvalid",
        "fieldPath": ".metadata.name",  # the error names the field, not the object
    }


def _printer_column(column: PrinterColumn) -> dict[str, Any]:
    return {
        "name": column.name,
        "type": column.type,
        "jsonPath": column.json_path,
        **({"description": column.description} if column.description else {}),
        **({"priority": column.priority} if column.priority else {}),
    }


def crd_for(cls: type[Resource]) -> dict[str, Any]:
    meta = cls.crd
    spec_schema = _schema_of(cls, "spec", defaults=True)
    if meta.spec_rules:
        spec_schema["x-kubernetes-validations"] = [{"rule": r, "message": m} for r, m in meta.spec_rules]
    status_schema = _schema_of(cls, "status", defaults=False)
    doc = (cls.__doc__ or "").strip().splitlines()[0]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{meta.plural}.{contracts.GROUP}",
            "labels": {contracts.LABEL_PART_OF: "mlops-operator"},
        },
        "spec": {
            "group": contracts.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": meta.kind,
                "listKind": f"{meta.kind}List",
                "plural": meta.plural,
                "singular": meta.singular,
                "shortNames": list(meta.short_names),
                "categories": list(meta.categories),
            },
            "versions": [
                {
                    "name": contracts.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [_printer_column(c) for c in meta.printer_columns],
                    "schema": {
                        "openAPIV3Schema": {
                            "description": doc,
                            "type": "object",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                # `name` declared so the name rule's fieldPath exists in the schema
                                "metadata": {"type": "object", "properties": {"name": {"type": "string"}}},
                                "spec": spec_schema,
                                "status": status_schema,
                            },
                            "x-kubernetes-validations": [name_rule(meta)],
                        }
                    },
                }
            ],
        },
    }


def render(cls: type[Resource]) -> str:
    header = "# GENERATED by `make crds` from operator/mlops_operator/api: do not edit.\n"
    return header + yaml.safe_dump(crd_for(cls), sort_keys=False, width=120, allow_unicode=True)


def rendered_files() -> dict[str, str]:
    return {f"{cls.crd.plural}.{contracts.GROUP}.yaml": render(cls) for cls in ALL_KINDS}


def stale_files() -> list[Path]:
    expected = rendered_files()
    stale = []
    for out_dir in OUTPUT_DIRS:
        for name, text in expected.items():
            path = out_dir / name
            if not path.exists() or path.read_text() != text:
                stale.append(path)
        if out_dir.exists():
            stale += [p for p in out_dir.glob("*.yaml") if p.name not in expected]
    return stale


def write() -> None:
    for out_dir in OUTPUT_DIRS:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, text in rendered_files().items():
            (out_dir / name).write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="crdgen", description=__doc__)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", action="store_true", help="regenerate crds/ and the chart's copy")
    group.add_argument("--check", action="store_true", help="fail when crds/ is stale")
    args = parser.parse_args(argv)
    if args.write:
        write()
        return 0
    stale = stale_files()
    for path in stale:
        print(f"stale: {path}", file=sys.stderr)
    if stale:
        print("CRDs are out of date with the pydantic models: run `make crds`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
