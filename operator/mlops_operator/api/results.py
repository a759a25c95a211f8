"""What the operator hands a workload (plans) and what a workload hands back (results).

A plan travels as the JSON value of the workload's `--spec` flag; a result is printed on stdout and
written to the termination-message file (at most 4 KiB, see contracts.TERMINATION_MESSAGE_LIMIT).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from mlops_operator.api.base import CRModel
from mlops_operator.api.v1alpha1.dataset import DatasetSpec, QualityFinding
from mlops_operator.api.v1alpha1.driftmonitor import DriftTest, FeatureOverride
from mlops_operator.api.v1alpha1.model import Metric, ModelVersion, ParamValue, Task


class ProfilePlan(CRModel):
    namespace: str
    dataset: str
    spec: DatasetSpec
    store_uri: str


class ProfileResult(CRModel):
    ok: bool
    version: str | None = None  # sha256 of the source bytes
    rows: int | None = None
    columns: int | None = None
    target: str | None = None
    task_hint: Literal["classification", "regression"] | None = None
    profile_uri: str | None = None
    data_uri: str | None = None
    findings: Annotated[list[QualityFinding], Field(max_length=20)] = Field(default_factory=list)
    error: str | None = None
    reason: str | None = None


class ChampionRef(CRModel):
    version: int
    artifact_uri: str
    sha256: str


class TrainingPlan(CRModel):
    namespace: str
    model: str
    version: int
    task: Task
    target: str
    estimator: str
    params: dict[str, ParamValue] = Field(default_factory=dict)
    test_size: float = 0.2
    seed: int = 42
    dataset_version: str
    data_uri: str
    output_dir: str
    champion: ChampionRef | None = None
    image: str = ""
    trigger: str = ""


class TrainResult(CRModel):
    ok: bool
    version: int | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    champion_metrics: dict[str, float] | None = None
    artifact_uri: str | None = None
    sha256: str | None = None
    rows_train: int | None = None
    rows_test: int | None = None
    features: int | None = None
    seconds: float | None = None
    error: str | None = None
    reason: str | None = None


class DriftPlan(CRModel):
    namespace: str
    monitor: str
    model: str
    profile_uri: str
    collected_prefix: str
    window_start: datetime
    window_end: datetime
    min_samples: int = 100
    numeric_test: DriftTest = DriftTest.AUTO
    categorical_test: DriftTest = DriftTest.AUTO
    threshold: float | None = None
    drift_share: float = 0.5
    bonferroni: bool = False
    features: list[FeatureOverride] = Field(default_factory=list)
    output_dir: str


class DriftFeatureResult(CRModel):
    name: str
    test: DriftTest
    score: float | None = None
    threshold: float
    drifted: bool


class DriftResult(CRModel):
    ok: bool
    verdict: Literal["Drift", "NoDrift", "NotEnoughData", "SchemaMismatch", "Failed"]
    samples: int = 0
    drifted_share: float | None = None
    drifted_features: list[str] = Field(default_factory=list)
    scores: list[DriftFeatureResult] = Field(default_factory=list)
    report_uri: str | None = None
    result_uri: str | None = None
    message: str | None = None
    error: str | None = None
    reason: str | None = None


class RegistryPlan(CRModel):
    """Mirror a Model's `status.versions` into the store's registry.json (and read back what is there)."""

    namespace: str
    model: str
    registry_uri: str
    versions: list[ModelVersion] = Field(default_factory=list)


class RegistryResult(CRModel):
    ok: bool
    stored: int = 0  # versions in registry.json after the merge
    highest_version: int | None = None
    # The newest stored records, newest first, as many as fit the termination message: what the
    # operator rebuilds status from when a Model comes back without one.
    versions: list[ModelVersion] = Field(default_factory=list)
    error: str | None = None
    reason: str | None = None


__all__ = [
    "ChampionRef",
    "DriftFeatureResult",
    "DriftPlan",
    "DriftResult",
    "Metric",
    "ProfilePlan",
    "ProfileResult",
    "RegistryPlan",
    "RegistryResult",
    "TrainResult",
    "TrainingPlan",
]
