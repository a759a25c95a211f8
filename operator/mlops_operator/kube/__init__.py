"""The only code that talks to the Kubernetes API server."""

from mlops_operator.kube.client import ApiError, Conflict, Kube, NotFound
from mlops_operator.kube.kinds import (
    DATASET,
    DEPLOYMENT,
    DRIFT_MONITOR,
    EVENT,
    HPA,
    JOB,
    MODEL,
    POD,
    SERVICE,
    Kind,
    kind_of,
)

__all__ = [
    "DATASET",
    "DEPLOYMENT",
    "DRIFT_MONITOR",
    "EVENT",
    "HPA",
    "JOB",
    "MODEL",
    "POD",
    "SERVICE",
    "ApiError",
    "Conflict",
    "Kind",
    "Kube",
    "NotFound",
    "kind_of",
]
