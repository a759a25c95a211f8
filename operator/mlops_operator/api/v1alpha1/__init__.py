"""mlops.dev/v1alpha1: Dataset, Model, DriftMonitor, BatchScoring."""

from mlops_operator.api.v1alpha1.batchscoring import BatchScoring, BatchScoringSpec, BatchScoringStatus
from mlops_operator.api.v1alpha1.dataset import Dataset, DatasetSpec, DatasetStatus
from mlops_operator.api.v1alpha1.driftmonitor import DriftMonitor, DriftMonitorSpec, DriftMonitorStatus
from mlops_operator.api.v1alpha1.model import Model, ModelSpec, ModelStatus

ALL_KINDS = (Dataset, Model, DriftMonitor, BatchScoring)

__all__ = [
    "ALL_KINDS",
    "BatchScoring",
    "BatchScoringSpec",
    "BatchScoringStatus",
    "Dataset",
    "DatasetSpec",
    "DatasetStatus",
    "DriftMonitor",
    "DriftMonitorSpec",
    "DriftMonitorStatus",
    "Model",
    "ModelSpec",
    "ModelStatus",
]
