"""Shared pieces of the custom-resource models: the base class, conditions, references, CRD metadata.

Every field of a custom resource is documented by the docstring under it: crdgen turns those into
the CRD's descriptions, which is what `kubectl explain` shows. (pydantic's `use_attribute_docstrings`
would do the same at every import, for ~90 ms per process; crdgen reads them once, at generation.)
"""

from __future__ import annotations

import enum
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

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
Quantity = Annotated[str, StringConstraints(max_length=32, pattern=r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|Ki|Mi|Gi|Ti|Pi)?$")]


def cel(*rules: tuple[str, str]) -> JsonDict:
    """CEL rules `(rule, message)` of the CRD, as a model's or a field's `json_schema_extra`."""
    return {"x-kubernetes-validations": [{"rule": rule, "message": message} for rule, message in rules]}


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


class ResourceStatus(CRModel):
    """What the status of every kind has, and its own part of recording an invalid spec."""

    observed_generation: int | None = None
    """The `metadata.generation` the operator last reconciled."""

    def mark_invalid_spec(self, message: str) -> None:
        """What an invalid spec changes besides the conditions (the reconciler sets those): for a kind
        with a phase, Failed."""


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


# --- quantities and container resources -------------------------------------------------------
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m|k|M|G|T|P|Ki|Mi|Gi|Ti|Pi)?$")
_SUFFIX: Final[Mapping[str, Decimal]] = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
}


def parse_quantity(quantity: str) -> Decimal:
    """A quantity (500m, 2, 256Mi, 1.5Gi) as a number of cores, bytes or devices."""
    match = _QUANTITY.match(quantity.strip())
    if match is None:
        raise ValueError(f"not a Kubernetes quantity: {quantity!r} (e.g. 500m, 2, 256Mi, 1Gi)")
    return Decimal(match.group(1)) * _SUFFIX[match.group(2) or ""]


# What a container may ask for, as Kubernetes checks it: the standard cpu, memory,
# ephemeral-storage and hugepages-<size>, or an extended resource (a qualified name with a domain
# outside kubernetes.io: nvidia.com/gpu, amd.com/gpu). No backslash in these patterns: crdgen puts
# key patterns into CEL string literals.
OVERCOMMITTABLE: Final = ("cpu", "memory", "ephemeral-storage")
DNS_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
QUALIFIED_NAME_PART = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
RESOURCE_NAME = rf"^(cpu|memory|ephemeral-storage|hugepages-[0-9]+(Ki|Mi|Gi)|{DNS_SUBDOMAIN}/{QUALIFIED_NAME_PART})$"
ResourceName = Annotated[str, StringConstraints(min_length=1, max_length=253, pattern=RESOURCE_NAME)]


def _whole_devices(resources: dict[str, str]) -> dict[str, str]:
    for name, value in resources.items():
        if "kubernetes.io/" in name:
            raise ValueError(f"{name}: kubernetes.io names are Kubernetes' own, not extended resources")
        if "/" in name and not value.isdigit():
            raise ValueError(f"{name}: an extended resource is a whole number of devices, got {value!r}")
    return resources


_RESOURCE_LIST_RULES = cel(
    ("self.all(k, !k.contains('kubernetes.io/'))", "kubernetes.io names are Kubernetes' own, not extended resources"),
    (
        "self.all(k, !k.contains('/') || self[k].matches('^[0-9]+$'))",
        "an extended resource (a name with a domain, e.g. nvidia.com/gpu) is a whole number of devices",
    ),
)
# cpu, memory, ephemeral-storage, hugepages-<size> and extended resources (nvidia.com/gpu), as in a
# container's resources.
ResourceList = Annotated[
    dict[ResourceName, Quantity],
    Field(max_length=16, json_schema_extra=_RESOURCE_LIST_RULES),
    AfterValidator(_whole_devices),
]
_RESOURCES_RULES = cel(
    (
        "!has(self.requests) || !has(self.limits) || self.requests.all(k, !(k in self.limits) || "
        "quantity(self.requests[k]).compareTo(quantity(self.limits[k])) <= 0)",
        "a request may not exceed its limit",
    ),
    (
        "!has(self.requests) || !has(self.limits) || self.requests.all(k, k in "
        "['cpu', 'memory', 'ephemeral-storage'] || !(k in self.limits) || "
        "quantity(self.requests[k]).compareTo(quantity(self.limits[k])) == 0)",
        "hugepages and extended resources (e.g. nvidia.com/gpu) cannot be overcommitted: "
        "give the same request and limit, or the limit only",
    ),
)


class Resources(CRModel):
    """Requests and limits of the workload container, as in a pod spec. A limit left out is the
    operator's default limit (MLOPS_DEFAULT_LIMIT_CPU/MEMORY) for cpu and memory, raised to the request
    when the request is higher; an extended resource (nvidia.com/gpu) requested without a limit gets
    the request as its limit."""

    model_config = ConfigDict(json_schema_extra=_RESOURCES_RULES)

    requests: ResourceList = Field(default_factory=lambda: {"cpu": "100m", "memory": "256Mi"})
    """What the scheduler reserves for the container: cpu (cores: 1, 0.5, 500m), memory (bytes:
    256Mi, 1Gi), ephemeral-storage, hugepages-<size>, or extended resources such as nvidia.com/gpu
    (whole devices)."""
    limits: ResourceList | None = None
    """The most the container may use; above the memory limit it is OOM-killed (reason OOMKilled).
    Omitted cpu or memory: the operator's default limit, raised to the request."""

    @model_validator(mode="after")
    def _requests_within_limits(self) -> Resources:
        for name, request in self.requests.items():
            limit = (self.limits or {}).get(name)
            if limit is None:
                continue
            if parse_quantity(request) > parse_quantity(limit):
                raise ValueError(f"the request {name} {request} exceeds its limit {limit}")
            if name not in OVERCOMMITTABLE and parse_quantity(request) != parse_quantity(limit):
                raise ValueError(f"{name} cannot be overcommitted: give the same request and limit, or the limit only")
        return self


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
    short_names: tuple[str, ...]
    printer_columns: tuple[PrinterColumn, ...] = ()
    categories: tuple[str, ...] = ("mlops",)
    # CEL rules on spec: (rule, message)
    spec_rules: tuple[tuple[str, str], ...] = field(default=())
    # The longest metadata.name the operator can build every child name from without cutting it:
    # 63 minus the longest suffix it appends (tests/contract/test_child_names.py checks each kind
    # against the builders).
    max_name_length: int = 63

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def plural(self) -> str:
        return f"{self.singular}s"  # every kind here is a regular noun


class Resource(CRModel):
    """Root of a custom resource. Subclasses set `crd` and narrow spec/status."""

    crd: ClassVar[CRDMeta]
    api_version: str = Field(default=contracts.API_VERSION, alias="apiVersion")
    kind: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def status_model(cls) -> type[ResourceStatus]:
        """The kind's status model, as its `status: <Status> | None` field declares it."""
        annotation = cls.model_fields["status"].annotation
        return next(a for a in typing.get_args(annotation) if isinstance(a, type) and issubclass(a, ResourceStatus))

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
