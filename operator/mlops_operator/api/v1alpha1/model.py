"""Model: train, validate, register, approve and serve a model; retrain on new data or drift."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, ClassVar

from pydantic import Field, StringConstraints, model_validator

from mlops_operator.api.base import (
    ColumnName,
    Condition,
    CRDMeta,
    CRModel,
    LocalObjectReference,
    Message,
    PrinterColumn,
    Resource,
    Resources,
    ShortText,
    Uri,
)

EstimatorPath = Annotated[
    str, StringConstraints(min_length=3, max_length=200, pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")
]
ParamName = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
ParamValue = int | float | bool | str | None
ImageRef = Annotated[str, StringConstraints(min_length=1, max_length=512)]


class Task(enum.StrEnum):
    CLASSIFICATION = "classification"
    REGRESSION = "regression"


class Metric(enum.StrEnum):
    ACCURACY = "accuracy"
    F1 = "f1"
    ROC_AUC = "roc_auc"
    PRECISION = "precision"
    RECALL = "recall"
    R2 = "r2"
    RMSE = "rmse"
    MAE = "mae"


CLASSIFICATION_METRICS: tuple[Metric, ...] = (
    Metric.ACCURACY,
    Metric.F1,
    Metric.ROC_AUC,
    Metric.PRECISION,
    Metric.RECALL,
)
REGRESSION_METRICS: tuple[Metric, ...] = (Metric.R2, Metric.RMSE, Metric.MAE)
LOWER_IS_BETTER: frozenset[str] = frozenset({Metric.RMSE, Metric.MAE})


class ApprovalPolicy(enum.StrEnum):
    AUTOMATIC = "Automatic"
    MANUAL = "Manual"


class ImprovementMode(enum.StrEnum):
    ABSOLUTE = "absolute"
    RELATIVE = "relative"


class TrainerSpec(CRModel):
    estimator: EstimatorPath | None = Field(
        default=None,
        description="Dotted scikit-learn class path from the allowlist, e.g. sklearn.linear_model.LogisticRegression.",
    )
    params: Annotated[dict[ParamName, ParamValue], Field(max_length=64)] = Field(
        default_factory=dict, description="Hyperparameters passed to the estimator (scalars only)."
    )
    image: ImageRef | None = Field(
        default=None, description="Custom training image; it must honour the train contract."
    )
    command: Annotated[list[Annotated[str, StringConstraints(max_length=1024)]], Field(max_length=32)] | None = None
    test_size: float = Field(default=0.2, gt=0.0, lt=0.9)
    seed: int = Field(default=42, ge=0, le=2**31 - 1)
    resources: Resources = Field(default_factory=Resources)
    active_deadline_seconds: int = Field(default=3600, ge=30, le=7 * 24 * 3600)
    backoff_limit: int = Field(default=2, ge=0, le=10)

    @model_validator(mode="after")
    def _estimator_or_image(self) -> TrainerSpec:
        if (self.estimator is None) == (self.image is None):
            raise ValueError("set exactly one of trainer.estimator or trainer.image")
        return self


class ValidationSpec(CRModel):
    metric: Metric = Metric.ACCURACY
    threshold: float | None = Field(
        default=None, description="Absolute bar: the metric must reach it (at most it, for rmse/mae)."
    )
    must_beat_champion: bool = True
    min_improvement: float = Field(default=0.0, ge=0.0, le=1e6)
    improvement_mode: ImprovementMode = ImprovementMode.ABSOLUTE


class ApprovalSpec(CRModel):
    policy: ApprovalPolicy = ApprovalPolicy.AUTOMATIC


class AutoscalingSpec(CRModel):
    min_replicas: int = Field(default=1, ge=1, le=100)
    max_replicas: int = Field(default=3, ge=1, le=100)
    target_cpu_utilization: int = Field(default=70, ge=10, le=100)


class CollectionSpec(CRModel):
    enabled: bool = True
    sample_rate: float = Field(default=1.0, ge=0.0, le=1.0)
    flush_interval_seconds: int = Field(default=10, ge=1, le=3600)
    flush_rows: int = Field(default=5000, ge=1, le=1_000_000)


class ServingSpec(CRModel):
    enabled: bool = True
    replicas: int = Field(default=1, ge=0, le=100)
    resources: Resources = Field(default_factory=Resources)
    autoscaling: AutoscalingSpec | None = None
    collection: CollectionSpec = Field(default_factory=CollectionSpec)
    progress_deadline_seconds: int = Field(default=180, ge=30, le=3600)


class RetrainSpec(CRModel):
    on_dataset_change: bool = True
    cooldown_seconds: int = Field(default=600, ge=0, le=30 * 24 * 3600)


class ModelSpec(CRModel):
    dataset_ref: LocalObjectReference
    task: Task = Task.CLASSIFICATION
    target: ColumnName | None = Field(default=None, description="Overrides the Dataset's schema.target.")
    trainer: TrainerSpec
    validation: ValidationSpec = Field(default_factory=ValidationSpec)
    approval: ApprovalSpec = Field(default_factory=ApprovalSpec)
    approved_version: int | None = Field(
        default=None, ge=1, description="Manual approval, declaratively: the version to serve (GitOps-friendly)."
    )
    serving: ServingSpec = Field(default_factory=ServingSpec)
    retrain: RetrainSpec = Field(default_factory=RetrainSpec)
    max_versions: int = Field(default=20, ge=2, le=100, description="Versions kept in status (the store keeps all).")

    @model_validator(mode="after")
    def _metric_fits_task(self) -> ModelSpec:
        allowed = CLASSIFICATION_METRICS if self.task == Task.CLASSIFICATION else REGRESSION_METRICS
        if self.validation.metric not in allowed:
            raise ValueError(f"metric {self.validation.metric} does not fit task {self.task}")
        return self


class VersionState(enum.StrEnum):
    TRAINING = "Training"
    FAILED = "Failed"
    REJECTED = "Rejected"
    VALIDATED = "Validated"
    APPROVED = "Approved"
    SERVING = "Serving"
    RETIRED = "Retired"
    ROLLED_BACK = "RolledBack"


class GateReason(enum.StrEnum):
    """Why the validation gate passed or refused a version: the one list the operator, the status
    and `kubectl mlops why` share."""

    PASSED = "Passed"
    METRIC_MISSING = "MetricMissing"
    BELOW_THRESHOLD = "BelowThreshold"
    ABOVE_THRESHOLD = "AboveThreshold"
    NOT_BETTER = "NotBetterThanChampion"
    INSUFFICIENT_IMPROVEMENT = "InsufficientImprovement"
    CHAMPION_NOT_SCORED = "ChampionNotScored"


class GateVerdict(CRModel):
    passed: bool
    reason: Annotated[str, StringConstraints(max_length=64)]
    message: Message
    metric: Metric
    score: float | None = None
    champion_score: float | None = None
    delta: float | None = None
    champion_version: int | None = None


class ModelVersion(CRModel):
    version: int
    state: VersionState
    reason: Annotated[str, StringConstraints(max_length=128)] | None = None
    message: Message | None = None
    trigger: Annotated[str, StringConstraints(max_length=256)] | None = None
    dataset_version: ShortText | None = None
    estimator: ShortText | None = None
    params: dict[str, ParamValue] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    gate: GateVerdict | None = None
    artifact_uri: Uri | None = None
    sha256: Annotated[str, StringConstraints(max_length=64)] | None = None
    job: ShortText | None = None
    created_at: datetime | None = None
    trained_at: datetime | None = None
    approved_at: datetime | None = None
    serving_at: datetime | None = None
    retired_at: datetime | None = None


class ActiveTraining(CRModel):
    job: ShortText
    version: int
    trigger: Annotated[str, StringConstraints(max_length=256)]
    dataset_version: ShortText
    started_at: datetime


class RegistryMirror(CRModel):
    """The store's copy of the registry (registry.json), written by a small Job per change."""

    digest: Annotated[str, StringConstraints(max_length=16)] | None = Field(
        default=None, description="Digest of the status.versions content last mirrored to the store."
    )
    job: ShortText | None = None
    synced_at: datetime | None = None
    stored: int | None = Field(default=None, description="Versions in the store's registry.json.")
    restored: int | None = Field(
        default=None, description="Versions rebuilt from the store when this Model had no status."
    )
    message: Message | None = None


class ModelPhase(enum.StrEnum):
    PENDING = "Pending"
    TRAINING = "Training"
    AWAITING_APPROVAL = "AwaitingApproval"
    ROLLING_OUT = "RollingOut"
    SERVING = "Serving"
    FAILED = "Failed"


class ModelStatus(CRModel):
    phase: ModelPhase = ModelPhase.PENDING
    observed_generation: int | None = None
    latest_version: int | None = None
    serving_version: int | None = None
    metric: ShortText | None = Field(
        default=None, description="Serving version's validation metric, e.g. accuracy=0.961"
    )
    endpoint: ShortText | None = None
    active_training: ActiveTraining | None = None
    trained_dataset_version: ShortText | None = None
    trained_generation: int | None = None
    training_spec_hash: Annotated[str, StringConstraints(max_length=64)] | None = Field(
        default=None, description="Hash of the training-relevant spec of the last training request."
    )
    handled_retrain_request: Annotated[str, StringConstraints(max_length=512)] | None = None
    last_retrain_time: datetime | None = None
    versions: Annotated[list[ModelVersion], Field(max_length=100)] = Field(default_factory=list)
    registry: RegistryMirror | None = None
    conditions: Annotated[list[Condition], Field(max_length=16)] = Field(default_factory=list)
    message: Message | None = None


class Model(Resource):
    """Trains, validates, registers, approves and serves a model; retrains on new data or drift."""

    crd: ClassVar[CRDMeta] = CRDMeta(
        kind="Model",
        plural="models",
        singular="model",
        short_names=("mdl",),
        printer_columns=(
            PrinterColumn("Latest", ".status.latestVersion", "integer", "Newest trained version"),
            PrinterColumn("Serving", ".status.servingVersion", "integer", "Version the endpoint serves"),
            PrinterColumn("Metric", ".status.metric", description="Serving version's validation metric"),
            PrinterColumn("Phase", ".status.phase"),
            PrinterColumn("Age", ".metadata.creationTimestamp", "date"),
            PrinterColumn("Message", ".status.message", priority=1),
        ),
        spec_rules=(
            (
                "has(self.trainer.estimator) != has(self.trainer.image)",
                "set exactly one of trainer.estimator or trainer.image",
            ),
            (
                "!has(self.approvedVersion) || !has(self.approval) || !has(self.approval.policy) || "
                "self.approval.policy == 'Manual'",
                "spec.approvedVersion is only meaningful with approval.policy Manual",
            ),
            (
                "!has(self.validation) || !has(self.validation.metric) || "
                "((!has(self.task) || self.task == 'classification') ? "
                "self.validation.metric in ['accuracy', 'f1', 'roc_auc', 'precision', 'recall'] : "
                "self.validation.metric in ['r2', 'rmse', 'mae'])",
                "validation.metric must fit the task: accuracy, f1, roc_auc, precision, recall for classification; "
                "r2, rmse, mae for regression",
            ),
            (
                "!has(self.serving) || !has(self.serving.autoscaling) || "
                "!has(self.serving.autoscaling.minReplicas) || !has(self.serving.autoscaling.maxReplicas) || "
                "self.serving.autoscaling.maxReplicas >= self.serving.autoscaling.minReplicas",
                "serving.autoscaling.maxReplicas must be >= minReplicas",
            ),
        ),
    )
    spec: ModelSpec
    status: ModelStatus | None = None
