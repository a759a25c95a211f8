"""Shared pieces of the custom-resource models: the base class, conditions, references, CRD metadata."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

# DNS-1123 subdomain/label names, as Kubernetes checks them.
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
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
    """Shaped like metav1.Condition (Kubernetes API conventions)."""

    type: Annotated[str, StringConstraints(max_length=64)]
    status: ConditionStatus
    reason: Annotated[str, StringConstraints(max_length=128)]
    message: Message = ""
    last_transition_time: datetime
    observed_generation: int | None = None


class LocalObjectReference(CRModel):
    name: Name


class SecretKeyReference(CRModel):
    name: Name
    key: Annotated[str, StringConstraints(min_length=1, max_length=253)]


class ResourceList(CRModel):
    cpu: Quantity | None = None
    memory: Quantity | None = None


class Resources(CRModel):
    requests: ResourceList = Field(default_factory=lambda: ResourceList(cpu="100m", memory="256Mi"))
    limits: ResourceList = Field(default_factory=lambda: ResourceList(cpu="1", memory="1Gi"))


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


class Resource(CRModel):
    """Root of a custom resource. Subclasses set `crd` and narrow spec/status."""

    crd: ClassVar[CRDMeta]
    api_version: str = Field(default="mlops.dev/v1alpha1", alias="apiVersion")
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
