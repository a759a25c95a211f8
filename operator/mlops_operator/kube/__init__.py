"""The only code that talks to the Kubernetes API server: `Kube` for the operator (async),
`BlockingKube` for command-line tools (kubectl-mlops)."""

from mlops_operator.kube.blocking import BlockingKube, KubeconfigError, Unreachable, kubeconfig_namespace
from mlops_operator.kube.client import ApiError, Conflict, ForeignObject, Kube, NotFound, Rejected
from mlops_operator.kube.kinds import (
    BATCH_SCORING,
    DATASET,
    DEPLOYMENT,
    DRIFT_MONITOR,
    EVENT,
    HPA,
    JOB,
    MODEL,
    PDB,
    POD,
    SERVICE,
    Kind,
    kind_of,
)

__all__ = [
    "BATCH_SCORING",
    "DATASET",
    "DEPLOYMENT",
    "DRIFT_MONITOR",
    "EVENT",
    "HPA",
    "JOB",
    "MODEL",
    "PDB",
    "POD",
    "SERVICE",
    "ApiError",
    "BlockingKube",
    "Conflict",
    "ForeignObject",
    "Kind",
    "Kube",
    "KubeconfigError",
    "NotFound",
    "Rejected",
    "Unreachable",
    "kind_of",
    "kubeconfig_namespace",
]
