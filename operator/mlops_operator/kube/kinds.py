"""The API resources the operator reads and writes, and their REST paths."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlops_operator import contracts


@dataclass(frozen=True)
class Kind:
    group: str
    version: str
    plural: str
    kind: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None, name: str | None = None, subresource: str | None = None) -> str:
        root = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        parts = [root]
        if namespace is not None:
            parts.append(f"namespaces/{namespace}")
        parts.append(self.plural)
        if name is not None:
            parts.append(name)
        if subresource is not None:
            parts.append(subresource)
        return "/".join(parts)


JOB = Kind("batch", "v1", "jobs", "Job")
POD = Kind("", "v1", "pods", "Pod")
SERVICE = Kind("", "v1", "services", "Service")
EVENT = Kind("", "v1", "events", "Event")
SERVICE_ACCOUNT = Kind("", "v1", "serviceaccounts", "ServiceAccount")
PVC = Kind("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim")
DEPLOYMENT = Kind("apps", "v1", "deployments", "Deployment")
HPA = Kind("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler")
PDB = Kind("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget")
DATASET = Kind(contracts.GROUP, contracts.VERSION, "datasets", "Dataset")
MODEL = Kind(contracts.GROUP, contracts.VERSION, "models", "Model")
DRIFT_MONITOR = Kind(contracts.GROUP, contracts.VERSION, "driftmonitors", "DriftMonitor")
BATCH_SCORING = Kind(contracts.GROUP, contracts.VERSION, "batchscorings", "BatchScoring")

_BY_KIND = {
    (k.api_version, k.kind): k
    for k in (
        JOB,
        POD,
        SERVICE,
        EVENT,
        SERVICE_ACCOUNT,
        PVC,
        DEPLOYMENT,
        HPA,
        PDB,
        DATASET,
        MODEL,
        DRIFT_MONITOR,
        BATCH_SCORING,
    )
}


def kind_of(obj: dict[str, Any]) -> Kind:
    try:
        return _BY_KIND[(obj["apiVersion"], obj["kind"])]
    except KeyError as exc:
        raise ValueError(f"unknown kind {obj.get('apiVersion')}/{obj.get('kind')}") from exc
