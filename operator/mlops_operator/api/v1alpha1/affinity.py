"""Affinity of workload pods, shaped exactly like a pod's `affinity` (core/v1 Affinity), bounded.

The builders render a dump of these models as the pod's `affinity`, so every field keeps the name
and meaning it has in a pod spec. Each rule the API server would apply to the pod is also a CEL
rule here, so a wrong affinity is refused when the resource is applied, not when a Job is created.
"""

from __future__ import annotations

import enum
import re
from typing import Annotated

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from mlops_operator.api.base import DNS_SUBDOMAIN, QUALIFIED_NAME_PART, CRModel, Name, cel

# A label key: an optional DNS-subdomain prefix and a name of at most 63 characters.
LabelKey = Annotated[
    str, StringConstraints(min_length=1, max_length=253, pattern=rf"^({DNS_SUBDOMAIN}/)?{QUALIFIED_NAME_PART}$")
]
LabelValue = Annotated[str, StringConstraints(max_length=63, pattern=r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")]
LabelMap = Annotated[dict[LabelKey, LabelValue], Field(max_length=32)]
Weight = Annotated[int, Field(ge=1, le=100)]


class SelectorOperator(enum.StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


class NodeSelectorOperator(enum.StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"
    GT = "Gt"
    LT = "Lt"


_VALUES_FIT_OPERATOR = (
    "self.operator in ['In', 'NotIn'] ? (has(self.values) && size(self.values) > 0) : "
    "self.operator in ['Exists', 'DoesNotExist'] ? (!has(self.values) || size(self.values) == 0) : "
    "(has(self.values) && size(self.values) == 1 && self.values[0].matches('^-?[0-9]+$'))",
    "In and NotIn need values; Exists and DoesNotExist take none; Gt and Lt take one integer",
)


_INTEGER = re.compile(r"^-?[0-9]+$")


def _check_values(operator: str, values: list[str] | None) -> None:
    count = len(values or [])
    if operator in ("In", "NotIn") and not count:
        raise ValueError(f"operator {operator} needs values")
    if operator in ("Exists", "DoesNotExist") and count:
        raise ValueError(f"operator {operator} takes no values")
    if operator in ("Gt", "Lt") and (count != 1 or not _INTEGER.match((values or [""])[0])):
        raise ValueError(f"operator {operator} takes exactly one integer value")


class LabelSelectorRequirement(CRModel):
    """One condition on the labels of pods or namespaces."""

    model_config = ConfigDict(json_schema_extra=cel(_VALUES_FIT_OPERATOR))

    key: LabelKey
    """The label key."""
    operator: SelectorOperator
    """In, NotIn, Exists or DoesNotExist."""
    values: Annotated[list[LabelValue], Field(max_length=32)] | None = None
    """The label values, for In and NotIn."""

    @model_validator(mode="after")
    def _values_fit_operator(self) -> LabelSelectorRequirement:
        _check_values(self.operator, self.values)
        return self


class LabelSelector(CRModel):
    """Pods (or namespaces) whose labels match every entry; an empty selector matches all."""

    match_labels: LabelMap | None = None
    """Labels that must have exactly these values."""
    match_expressions: Annotated[list[LabelSelectorRequirement], Field(max_length=16)] | None = None
    """Conditions that must all hold."""


class NodeSelectorRequirement(CRModel):
    """One condition on a node's labels (or, in matchFields, on its metadata.name)."""

    model_config = ConfigDict(json_schema_extra=cel(_VALUES_FIT_OPERATOR))

    key: LabelKey
    """The node label key (matchFields: metadata.name)."""
    operator: NodeSelectorOperator
    """In, NotIn, Exists, DoesNotExist, Gt or Lt (Gt and Lt compare one integer value)."""
    values: Annotated[list[Annotated[str, StringConstraints(max_length=253)]], Field(max_length=32)] | None = None
    """The values, for In, NotIn, Gt and Lt."""

    @model_validator(mode="after")
    def _values_fit_operator(self) -> NodeSelectorRequirement:
        _check_values(self.operator, self.values)
        return self


class NodeSelectorTerm(CRModel):
    """Conditions on one node that must all hold."""

    match_expressions: Annotated[list[NodeSelectorRequirement], Field(max_length=16)] | None = None
    """Conditions on the node's labels."""
    match_fields: Annotated[list[NodeSelectorRequirement], Field(max_length=4)] | None = None
    """Conditions on the node's fields (metadata.name only)."""


class NodeSelector(CRModel):
    """Nodes that match at least one of the terms."""

    node_selector_terms: Annotated[list[NodeSelectorTerm], Field(min_length=1, max_length=8)]
    """The terms; a node matching any one of them qualifies."""


class PreferredSchedulingTerm(CRModel):
    """A node preference with its weight."""

    weight: Weight
    """1-100: added to a node's score when it matches."""
    preference: NodeSelectorTerm
    """The nodes preferred."""


class NodeAffinity(CRModel):
    """Which nodes the pod may, or prefers to, run on."""

    required_during_scheduling_ignored_during_execution: NodeSelector | None = None
    """Nodes the pod may run on; it stays Pending until one exists."""
    preferred_during_scheduling_ignored_during_execution: (
        Annotated[list[PreferredSchedulingTerm], Field(max_length=8)] | None
    ) = None
    """Nodes the scheduler prefers, by weight."""


class PodAffinityTerm(CRModel):
    """Pods, in a topology domain (a node, a zone), that the pod should or should not run beside."""

    label_selector: LabelSelector | None = None
    """The pods concerned."""
    namespaces: Annotated[list[Name], Field(max_length=16)] | None = None
    """The namespaces of those pods; omitted (and no namespaceSelector): the pod's own."""
    namespace_selector: LabelSelector | None = None
    """Namespaces of those pods, by label; an empty selector: every namespace."""
    topology_key: LabelKey
    """The node label that defines the domain: kubernetes.io/hostname (a node),
    topology.kubernetes.io/zone (a zone)."""


class WeightedPodAffinityTerm(CRModel):
    """A pod (anti-)affinity preference with its weight."""

    weight: Weight
    """1-100: added to a node's score when the term holds there."""
    pod_affinity_term: PodAffinityTerm
    """The term."""


class PodAffinity(CRModel):
    """Pods to run beside (podAffinity) or away from (podAntiAffinity)."""

    required_during_scheduling_ignored_during_execution: (
        Annotated[list[PodAffinityTerm], Field(max_length=8)] | None
    ) = None
    """Terms that must hold on the chosen node."""
    preferred_during_scheduling_ignored_during_execution: (
        Annotated[list[WeightedPodAffinityTerm], Field(max_length=8)] | None
    ) = None
    """Terms the scheduler prefers to hold, by weight."""


class Affinity(CRModel):
    """Node affinity, pod affinity and pod anti-affinity, as in a pod spec."""

    node_affinity: NodeAffinity | None = None
    """Nodes to run on, by their labels."""
    pod_affinity: PodAffinity | None = None
    """Pods to run beside."""
    pod_anti_affinity: PodAffinity | None = None
    """Pods to run away from, e.g. server replicas on different nodes."""
