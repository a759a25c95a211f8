"""Where workload pods run and how they pull their image (PodOptions), and the model server's
PodDisruptionBudget (DisruptionBudget).

PodOptions is a base of the specs whose pods it steers: the Model's trainer (training Jobs) and
serving (server pods), a Dataset (profile Jobs) and a DriftMonitor (drift-check Jobs). Its fields
are a pod spec's own, so the builders copy them into the pod as they are. Each field given replaces
the operator's default for it (MLOPS_IMAGE_PULL_SECRETS, MLOPS_NODE_SELECTOR, MLOPS_TOLERATIONS,
MLOPS_AFFINITY, MLOPS_PRIORITY_CLASS_NAME); an empty value (`nodeSelector: {}`) removes the default.
"""

from __future__ import annotations

import enum
from typing import Annotated

from pydantic import AfterValidator, ConfigDict, Field, StringConstraints, model_validator

from mlops_operator.api.base import DNS_SUBDOMAIN, CRModel, cel
from mlops_operator.api.v1alpha1.affinity import Affinity, LabelKey, LabelMap, LabelValue


class TolerationOperator(enum.StrEnum):
    EQUAL = "Equal"
    EXISTS = "Exists"


class TaintEffect(enum.StrEnum):
    NO_SCHEDULE = "NoSchedule"
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    NO_EXECUTE = "NoExecute"


class Toleration(CRModel):
    """A taint the pod tolerates, as in a pod spec (e.g. nvidia.com/gpu:NoSchedule on GPU nodes)."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                "has(self.key) || (has(self.operator) && self.operator == 'Exists')",
                "a toleration without a key needs operator Exists (it tolerates every taint)",
            ),
            (
                "!has(self.operator) || self.operator != 'Exists' || !has(self.value) || self.value == ''",
                "operator Exists takes no value",
            ),
            (
                "!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
                "tolerationSeconds is only for effect NoExecute",
            ),
        )
    )

    key: LabelKey | None = None
    """The taint's key; omitted (with operator Exists): every taint."""
    operator: TolerationOperator = TolerationOperator.EQUAL
    """Equal (the taint's value must be `value`) or Exists (any value)."""
    value: LabelValue | None = None
    """The taint's value, for operator Equal."""
    effect: TaintEffect | None = None
    """NoSchedule, PreferNoSchedule or NoExecute; omitted: every effect."""
    toleration_seconds: int | None = Field(default=None, ge=0, le=30 * 24 * 3600)
    """With effect NoExecute: how long the pod stays on a node after the taint appears; omitted:
    for ever."""

    @model_validator(mode="after")
    def _consistent(self) -> Toleration:
        if self.key is None and self.operator != TolerationOperator.EXISTS:
            raise ValueError("a toleration without a key needs operator Exists (it tolerates every taint)")
        if self.operator == TolerationOperator.EXISTS and self.value:
            raise ValueError("operator Exists takes no value")
        if self.toleration_seconds is not None and self.effect != TaintEffect.NO_EXECUTE:
            raise ValueError("tolerationSeconds is only for effect NoExecute")
        return self


class ImagePullSecret(CRModel):
    """A Secret of type kubernetes.io/dockerconfigjson in the resource's namespace."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=253, pattern=rf"^{DNS_SUBDOMAIN}$")]
    """The Secret's name."""


def _not_system(name: str) -> str:
    if name.startswith("system-"):
        raise ValueError("system- priority classes are for the cluster's own pods")
    return name


PriorityClassName = Annotated[
    str,
    StringConstraints(max_length=253, pattern=rf"^({DNS_SUBDOMAIN})?$"),
    AfterValidator(_not_system),
    Field(
        json_schema_extra=cel(
            ("!self.startsWith('system-')", "system- priority classes are for the cluster's own pods"),
        )
    ),
]


class PodOptions(CRModel):
    """Where the workload's pods run and how they pull their image, as in a pod spec."""

    image_pull_secrets: Annotated[list[ImagePullSecret], Field(max_length=8)] | None = None
    """Secrets to pull the image with (a custom training image in a private registry, say); they
    must exist in this namespace. Omitted: the operator's default (MLOPS_IMAGE_PULL_SECRETS)."""
    node_selector: LabelMap | None = None
    """Node labels the pods' node must have, e.g. {nvidia.com/gpu.present: "true"}. Omitted: the
    operator's default (MLOPS_NODE_SELECTOR); {}: none."""
    tolerations: Annotated[list[Toleration], Field(max_length=16)] | None = None
    """Taints the pods tolerate, e.g. a GPU node pool's. Omitted: the operator's default
    (MLOPS_TOLERATIONS); []: none."""
    affinity: Affinity | None = None
    """Node affinity, pod affinity and anti-affinity of the pods. Omitted: the operator's default
    (MLOPS_AFFINITY); {}: none."""
    priority_class_name: PriorityClassName | None = None
    """PriorityClass of the pods. Omitted: the operator's default (MLOPS_PRIORITY_CLASS_NAME); "":
    none."""


# minAvailable 100% and maxUnavailable 0 would let no server pod be evicted: every node drain
# would wait for ever. Neither type admits them.
MinAvailable = Annotated[
    Annotated[int, Field(ge=0, le=100)] | Annotated[str, StringConstraints(max_length=4, pattern=r"^[1-9]?[0-9]%$")],
    Field(
        json_schema_extra=cel(
            (
                "type(self) == int ? (self >= 0 && self <= 100) : self.matches('^[1-9]?[0-9]%$')",
                "minAvailable is a number of pods (0-100) or a percentage below 100%",
            )
        )
    ),
]
MaxUnavailable = Annotated[
    Annotated[int, Field(ge=1, le=100)]
    | Annotated[str, StringConstraints(max_length=4, pattern=r"^([1-9][0-9]?|100)%$")],
    Field(
        json_schema_extra=cel(
            (
                "type(self) == int ? (self >= 1 && self <= 100) : self.matches('^([1-9][0-9]?|100)%$')",
                "maxUnavailable is a number of pods (1-100) or a percentage from 1% to 100%",
            )
        )
    ),
]


class DisruptionBudget(CRModel):
    """A PodDisruptionBudget for the server pods: voluntary evictions (node drains, cluster upgrades)
    keep this many serving. Created only while at least two replicas run (replicas, or
    autoscaling.minReplicas) and the budget lets at least one of them go; otherwise none, since a
    budget that lets no pod go blocks every drain."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            ("has(self.minAvailable) != has(self.maxUnavailable)", "set exactly one of minAvailable or maxUnavailable")
        )
    )

    min_available: MinAvailable | None = None
    """Server pods that must stay available: a number (2) or a percentage of the replicas (50%)."""
    max_unavailable: MaxUnavailable | None = None
    """Server pods that may be unavailable at once: a number (1) or a percentage (25%)."""

    @model_validator(mode="after")
    def _exactly_one(self) -> DisruptionBudget:
        if (self.min_available is None) == (self.max_unavailable is None):
            raise ValueError("set exactly one of minAvailable or maxUnavailable")
        return self
