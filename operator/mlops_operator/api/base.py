"""Shared pieces of the custom-resource models: the base class, conditions, references, CRD metadata.

Every field of a custom resource is documented by the docstring under it: crdgen turns those into
the CRD's descriptions, which is what `kubectl explain` shows. (pydantic's `use_attribute_docstrings`
would do the same at every import, for ~90 ms per process; crdgen reads them once, at generation.)
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

from mlops_operator import contracts

# DNS-1123 label names, as Kubernetes checks them.
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# DNS-1035 label names (a Service's name): DNS-1123 that starts with a letter.
DNS_1035_LABEL = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
Name = Annotated[str, StringConstraints(min_length=1, max_length=63, pattern=DNS_LABEL)]
ShortText = Annotated[str, StringConstraints(max_length=256)]
Message = Annotated[str, StringConstraints(max_length=1024)]
Uri = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
ColumnName = Annotated[str, StringConstraints(min_length=1, max_length=253)]
Quantity = Annotated[str, StringConstraints(max_length=32, pattern=r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")]


class CRModel(BaseModel):
    """camelCase on the wire, snake_case in Python, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=False, use_enum_values=True
    )

    def dump(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class ConditionStatus(enum.StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(CRModel):
    """One aspect of the resource's state, shaped like metav1.Condition (Kubernetes API conventions)."""

    type: Annotated[str, StringConstraints(max_length=64)]
    """What this condition is about, e.g. Ready; unique in the list."""
    status: ConditionStatus
    """True, False or Unknown (not decided yet, or in progress)."""
    reason: Annotated[str, StringConstraints(max_length=128)]
    """Why, in one CamelCase word (e.g. JobRunning, OOMKilled); `kubectl mlops why` explains each."""
    message: Message = ""
    """What happened, in words, with the next step where there is one."""
    last_transition_time: datetime
    """When `status` last changed (not when the condition was last written)."""
    observed_generation: int | None = None
    """The `metadata.generation` of the spec this condition was computed from."""


# A list used as a map keyed by `type` (Kubernetes API conventions): the API server refuses two
# conditions of one type, and server-side apply merges by type.
Conditions = Annotated[
    list[Condition],
    Field(
        max_length=16,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    ),
]


class LocalObjectReference(CRModel):
    """A resource of this kind in the same namespace."""

    name: Name
    """Its `metadata.name`."""


class SecretKeyReference(CRModel):
    """One key of a Secret in the same namespace; only the pod that needs it reads it, never the operator."""

    name: Name
    """The Secret's name."""
    key: Annotated[str, StringConstraints(min_length=1, max_length=253)]
    """The key in the Secret's data."""


class ResourceList(CRModel):
    """CPU and memory quantities (Kubernetes notation: 500m, 2, 256Mi, 1Gi)."""

    cpu: Quantity | None = None
    """CPU, in cores (1, 0.5) or millicores (500m)."""
    memory: Quantity | None = None
    """Memory, in bytes with a suffix (256Mi, 1Gi)."""


class Resources(CRModel):
    """Requests and limits of the workload container, as in a pod spec."""

    requests: ResourceList = Field(default_factory=lambda: ResourceList(cpu="100m", memory="256Mi"))
    """What the scheduler reserves for the container."""
    limits: ResourceList = Field(default_factory=lambda: ResourceList(cpu="1", memory="1Gi"))
    """The most the container may use; above the memory limit it is OOM-killed (reason OOMKilled)."""


@dataclass(frozen=True)
class PrinterColumn:
    name: str
    json_path: str
    type: Literal["string", "integer", "number", "boolean", "date"] = "string"
    description: str = ""
    priority: int = 0


@dataclass(frozen=True)
class CRDMeta:
    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    printer_columns: tuple[PrinterColumn, ...] = ()
    categories: tuple[str, ...] = ("mlops",)
    # CEL rules on spec: (rule, message)
    spec_rules: tuple[tuple[str, str], ...] = field(default=())
    # The longest metadata.name the operator can build every child name from without cutting it:
    # 63 minus the longest suffix it appends (tests/contract/test_child_names.py checks each kind
    # against the builders).
    max_name_length: int = 63


class Resource(CRModel):
    """Root of a custom resource. Subclasses set `crd` and narrow spec/status."""

    crd: ClassVar[CRDMeta]
    api_version: str = Field(default=contracts.API_VERSION, alias="apiVersion")
    kind: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", ""))

    @property
    def namespace(self) -> str:
        return str(self.metadata.get("namespace", "default"))

    @property
    def generation(self) -> int:
        return int(self.metadata.get("generation", 0) or 0)

    @property
    def uid(self) -> str:
        return str(self.metadata.get("uid", ""))

    @property
    def annotations(self) -> dict[str, str]:
        return dict(self.metadata.get("annotations") or {})
