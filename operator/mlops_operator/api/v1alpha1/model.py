"""Model: train, validate, register, approve and serve a model; retrain on new data or drift."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, ClassVar

from pydantic import Field, StringConstraints, model_validator

from mlops_operator.api.base import (
    ColumnName,
    Conditions,
    CRDMeta,
    CRModel,
    LocalObjectReference,
    Message,
    PrinterColumn,
    Resource,
    Resources,
    ResourceStatus,
    ShortText,
    Uri,
)
from mlops_operator.api.v1alpha1.approvals import Approval, ApprovalSpec
from mlops_operator.api.v1alpha1.approvals import ApprovalPolicy as ApprovalPolicy  # re-exported: imported from here
from mlops_operator.api.v1alpha1.events import EventsSpec, EventsStatus
from mlops_operator.api.v1alpha1.pods import DisruptionBudget, PodOptions
from mlops_operator.api.v1alpha1.production import ProductionLabelsSpec
from mlops_operator.api.v1alpha1.retention import StorePruned
from mlops_operator.api.v1alpha1.rollout import RolloutSpec, RolloutStatus
from mlops_operator.api.v1alpha1.serving_auth import ServingAuth
from mlops_operator.api.v1alpha1.serving_periods import MAX_SERVING_PERIODS, ServingPeriod

EstimatorPath = Annotated[
    str, StringConstraints(min_length=3, max_length=200, pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")
]
ParamName = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
ParamValue = int | float | bool | str | None
ImageRef = Annotated[str, StringConstraints(min_length=1, max_length=512)]


# enum.auto() in a StrEnum is the member's name in lower case: the value in the CRD and in YAML.
class Task(enum.StrEnum):
    CLASSIFICATION = enum.auto()
    REGRESSION = enum.auto()


class Metric(enum.StrEnum):
    ACCURACY = enum.auto()
    F1 = enum.auto()
    ROC_AUC = enum.auto()
    PRECISION = enum.auto()
    RECALL = enum.auto()
    R2 = enum.auto()
    RMSE = enum.auto()
    MAE = enum.auto()


CLASSIFICATION_METRICS: tuple[Metric, ...] = (
    Metric.ACCURACY,
    Metric.F1,
    Metric.ROC_AUC,
    Metric.PRECISION,
    Metric.RECALL,
)
REGRESSION_METRICS: tuple[Metric, ...] = (Metric.R2, Metric.RMSE, Metric.MAE)
LOWER_IS_BETTER: frozenset[str] = frozenset({Metric.RMSE, Metric.MAE})


class ImprovementMode(enum.StrEnum):
    ABSOLUTE = enum.auto()
    RELATIVE = enum.auto()


class TrainerSpec(PodOptions):
    """How a version is trained: an allowlisted scikit-learn estimator, or a custom image; and where
    its training pods run."""

    estimator: EstimatorPath | None = None
    """Dotted scikit-learn class path from the allowlist, e.g. sklearn.linear_model.LogisticRegression.
    Set exactly one of estimator and image."""
    params: Annotated[dict[ParamName, ParamValue], Field(max_length=64)] = Field(default_factory=dict)
    """Hyperparameters passed to the estimator (scalars only), checked against its own parameter
    rules before any data is read; random_state defaults to seed."""
    image: ImageRef | None = None
    """Custom training image; it receives the training plan as arguments and must honour the train
    contract (docs/workloads.md). Set exactly one of estimator and image."""
    command: Annotated[list[Annotated[str, StringConstraints(max_length=1024)]], Field(max_length=32)] | None = None
    """Entrypoint of the custom image; omitted: the image's own."""
    test_size: float = Field(default=0.2, gt=0.0, lt=0.9)
    """Share of the rows held out to evaluate the version (and the champion, on the same split)."""
    seed: int = Field(default=42, ge=0, le=2**31 - 1)
    """Seed of the train/test split and of the estimator's random_state."""
    resources: Resources = Field(default_factory=Resources)
    """CPU, memory and devices (e.g. nvidia.com/gpu) of the training Job."""
    active_deadline_seconds: int = Field(default=3600, ge=30, le=7 * 24 * 3600)
    """A training Job running longer than this fails the version (DeadlineExceeded)."""
    backoff_limit: int = Field(default=2, ge=0, le=10)
    """Retries of a failed training pod; data, spec and integrity errors are never retried."""

    @model_validator(mode="after")
    def _estimator_or_image(self) -> TrainerSpec:
        if (self.estimator is None) == (self.image is None):
            raise ValueError("set exactly one of trainer.estimator or trainer.image")
        return self


class ValidationSpec(CRModel):
    """The gate every trained version must pass before it can be approved."""

    metric: Metric = Metric.ACCURACY
    """Metric on the held-out split: accuracy, f1, roc_auc, precision, recall (classification) or
    r2, rmse, mae (regression)."""
    threshold: float | None = None
    """Absolute bar: the metric must reach it (at most it, for rmse and mae). Omitted: no bar."""
    must_beat_champion: bool = True
    """The version must score better than the serving version (the champion) on the same split."""
    min_improvement: float = Field(default=0.0, ge=0.0, le=1e6)
    """With mustBeatChampion: the least improvement over the champion that counts as better."""
    improvement_mode: ImprovementMode = ImprovementMode.ABSOLUTE
    """minImprovement in metric units (absolute) or as a share of the champion's score (relative)."""


class AutoscalingSpec(CRModel):
    """A HorizontalPodAutoscaler on CPU for the model server; it then owns the replica count."""

    min_replicas: int = Field(default=1, ge=1, le=100)
    """The fewest server pods."""
    max_replicas: int = Field(default=3, ge=1, le=100)
    """The most server pods; at least minReplicas."""
    target_cpu_utilization: int = Field(default=70, ge=10, le=100)
    """Average CPU use, in percent of the request, the autoscaler aims for."""


class CollectionSpec(CRModel):
    """Collection of scoring inputs and outputs (Parquet in the store): what DriftMonitors read."""

    enabled: bool = True
    """Collect at all."""
    sample_rate: float = Field(default=1.0, ge=0.0, le=1.0)
    """Share of requests collected, decided per request."""
    flush_interval_seconds: int = Field(default=10, ge=1, le=3600)
    """Write the buffered rows at least this often."""
    flush_rows: int = Field(default=5000, ge=1, le=1_000_000)
    """Write the buffer once it holds this many rows."""
    retention_days: int = Field(default=30, ge=1, le=3650)
    """Collected rows and feedback labels older than this are deleted: after each drift check (never
    less than a DriftMonitor's window), or, for a Model no DriftMonitor checks, by its registry Job
    at least once a day."""


class ServingSpec(PodOptions):
    """The model server: a Deployment and a Service speaking the Open Inference Protocol V2; and where
    its pods run."""

    enabled: bool = True
    """Serve at all; false removes the server and Ready then follows Approved."""
    replicas: int = Field(default=1, ge=0, le=100)
    """Server pods, when autoscaling is not set."""
    resources: Resources = Field(default_factory=Resources)
    """CPU, memory and devices (e.g. nvidia.com/gpu) of each server pod."""
    autoscaling: AutoscalingSpec | None = None
    """Scale the server on CPU; omitted: a fixed number of replicas."""
    collection: CollectionSpec = Field(default_factory=CollectionSpec)
    """Collection of scoring inputs for drift checks."""
    auth: ServingAuth | None = None
    """A bearer token required on inference; omitted: any client the NetworkPolicy admits may infer."""
    progress_deadline_seconds: int = Field(default=180, ge=30, le=3600)
    """A rollout that makes no progress for this long fails, and the previous version serves again
    (RolledBack)."""
    disruption_budget: DisruptionBudget | None = None
    """A PodDisruptionBudget for the server pods; omitted: none."""
    rollout: RolloutSpec = Field(default_factory=RolloutSpec)
    """How a new version replaces the serving one: Replace, Canary or Shadow (docs/serving.md)."""


class RetrainSpec(CRModel):
    """When a new version is trained without a spec change."""

    on_dataset_change: bool = True
    """Train a new version whenever the Dataset has a new version."""
    cooldown_seconds: int = Field(default=600, ge=0, le=30 * 24 * 3600)
    """Least time between retrainings asked for by the retrain annotation (a DriftMonitor or
    `kubectl mlops retrain`); a request within it waits for the end of the cooldown."""
    production_labels: ProductionLabelsSpec = Field(default_factory=ProductionLabelsSpec)
    """Labelled production rows appended to the next version's training data (off by default)."""


class ModelSpec(CRModel):
    """The desired state of a Model: data, training, validation gate, approval, serving, retraining."""

    dataset_ref: LocalObjectReference
    """The Dataset (same namespace) to train on."""
    task: Task = Task.CLASSIFICATION
    """classification or regression."""
    target: ColumnName | None = None
    """Column to predict; overrides the Dataset's schema.target."""
    trainer: TrainerSpec
    """How versions are trained."""
    validation: ValidationSpec = Field(default_factory=ValidationSpec)
    """The gate a trained version must pass."""
    approval: ApprovalSpec = Field(default_factory=ApprovalSpec)
    """How validated versions are approved for serving."""
    approved_version: int | None = Field(default=None, ge=1)
    """Manual approval, declaratively (GitOps-friendly): the version to serve. An older validated or
    retired version is a rollback. Only with approval.policy Manual."""
    serving: ServingSpec = Field(default_factory=ServingSpec)
    """The model server."""
    retrain: RetrainSpec = Field(default_factory=RetrainSpec)
    """When to retrain without a spec change."""
    max_versions: int = Field(default=20, ge=2, le=100)
    """Versions kept in status.versions (never dropping the serving or training one). The store's
    registry.json keeps every record; the artifacts of versions dropped from status are deleted."""
    events: EventsSpec | None = None
    """Send registry transitions as signed CloudEvents to HTTP sinks."""

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
    """The validation gate's verdict on a version, with both scores."""

    passed: bool
    """Whether the version passed the gate."""
    reason: Annotated[str, StringConstraints(max_length=64)]
    """Passed, BelowThreshold, AboveThreshold, NotBetterThanChampion, InsufficientImprovement,
    MetricMissing or ChampionNotScored."""
    message: Message
    """The comparison, in words."""
    metric: Metric
    """The metric the gate compared."""
    score: float | None = None
    """This version's score on the held-out split."""
    champion_score: float | None = None
    """The champion's score on the same split."""
    delta: float | None = None
    """Improvement over the champion (positive is better, for every metric)."""
    champion_version: int | None = None
    """The version that was serving when this one was trained."""


class ModelVersion(CRModel):
    """One trained version in the registry, with its lineage."""

    version: int
    """Version number, from 1, never reused."""
    state: VersionState
    """Training, Failed, Rejected, Validated, Approved, Serving, Retired or RolledBack."""
    reason: Annotated[str, StringConstraints(max_length=128)] | None = None
    """Why the version is in its state (a failure's or the gate's reason)."""
    message: Message | None = None
    """The same, in words."""
    trigger: Annotated[str, StringConstraints(max_length=256)] | None = None
    """What started the training: initial, spec changed, dataset version, or a retrain request."""
    dataset_version: ShortText | None = None
    """The Dataset version it was trained on."""
    estimator: ShortText | None = None
    """The estimator (or custom image) that trained it."""
    params: dict[str, ParamValue] = Field(default_factory=dict)
    """The hyperparameters it was trained with."""
    metrics: dict[str, float] = Field(default_factory=dict)
    """Every metric on the held-out split."""
    gate: GateVerdict | None = None
    """The validation gate's verdict."""
    artifact_uri: Uri | None = None
    """The trained pipeline (skops) in the store."""
    sha256: Annotated[str, StringConstraints(max_length=64)] | None = None
    """sha256 of the artifact; the server verifies it before loading."""
    job: ShortText | None = None
    """The training Job."""
    created_at: datetime | None = None
    """When its training Job was created."""
    trained_at: datetime | None = None
    """When training finished."""
    approved_at: datetime | None = None
    """When it was approved."""
    approved_by: ShortText | None = None
    """Who approved it: the authenticated users whose approvals count, in order ("operator" for
    Automatic)."""
    approvals: Annotated[list[Approval], Field(max_length=20)] | None = None
    """Approvals and rejections recorded by the admission webhook, oldest first (at most 20)."""
    triggered_by: ShortText | None = None
    """Who last created or edited the spec or asked for a retrain before this version's training
    (the authenticated user, recorded by the admission webhook)."""
    serving_at: datetime | None = None
    """When its rollout completed."""
    retired_at: datetime | None = None
    """When a newer version replaced it."""
    serving_periods: Annotated[list[ServingPeriod], Field(max_length=MAX_SERVING_PERIODS)] | None = None
    """Every time it served, oldest first, never overwritten; the newest MAX_SERVING_PERIODS (10) in
    status, all of them in the store's registry.json."""
    earlier_periods: int | None = Field(default=None, ge=1)
    """Serving periods older than these, kept only in the store's registry.json."""


class ActiveTraining(CRModel):
    """The training Job that is running now (at most one per Model)."""

    job: ShortText
    """The training Job."""
    version: int
    """The version it trains."""
    trigger: Annotated[str, StringConstraints(max_length=256)]
    """What started it."""
    dataset_version: ShortText
    """The Dataset version it trains on."""
    started_at: datetime
    """When the Job was created."""


class RegistryMirror(CRModel):
    """The store's copy of the registry (registry.json), written by a small Job per change."""

    digest: Annotated[str, StringConstraints(max_length=16)] | None = None
    """Digest of the status.versions content last mirrored to the store."""
    job: ShortText | None = None
    """The latest registry Job."""
    synced_at: datetime | None = None
    """When the store's copy was last written."""
    stored: int | None = None
    """Versions in the store's registry.json."""
    restored: int | None = None
    """Versions rebuilt from the store when this Model had no status."""
    message: Message | None = None
    """Why the latest mirror failed, if it did."""


class ModelPhase(enum.StrEnum):
    PENDING = "Pending"
    TRAINING = "Training"
    AWAITING_APPROVAL = "AwaitingApproval"
    ROLLING_OUT = "RollingOut"
    SERVING = "Serving"
    FAILED = "Failed"


class ModelStatus(ResourceStatus):
    """The observed state of a Model, written by the operator only."""

    phase: ModelPhase = ModelPhase.PENDING
    """Pending, Training, AwaitingApproval, RollingOut, Serving or Failed."""
    latest_version: int | None = None
    """The newest version number handed out."""
    serving_version: int | None = None
    """The version the endpoint serves (set when its rollout completed)."""
    metric: ShortText | None = None
    """Serving version's validation metric, e.g. accuracy=0.961."""
    endpoint: ShortText | None = None
    """In-cluster URL of the model server."""
    active_training: ActiveTraining | None = None
    """The training that is running now."""
    trained_dataset_version: ShortText | None = None
    """The Dataset version the last training Job trains on."""
    trained_generation: int | None = None
    """The `metadata.generation` the last training Job was created for."""
    training_spec_hash: Annotated[str, StringConstraints(max_length=64)] | None = None
    """Hash of the training-relevant spec of the last training request."""
    handled_retrain_request: Annotated[str, StringConstraints(max_length=512)] | None = None
    """The last mlops.dev/retrain-requested annotation acted on."""
    last_retrain_time: datetime | None = None
    """When the last training other than the initial one started (retrain.cooldownSeconds counts from it)."""
    versions: Annotated[list[ModelVersion], Field(max_length=100)] = Field(default_factory=list)
    """The registry: the newest spec.maxVersions versions with their lineage, oldest first."""
    registry: RegistryMirror | None = None
    """The state of the registry's copy in the store."""
    events: EventsStatus | None = None
    """Release events sent, and the dead letters."""
    pruned: StorePruned | None = None
    """What retention has deleted from the store: artifacts of versions beyond spec.maxVersions, and
    collected rows and labels when no DriftMonitor prunes them; omitted: nothing yet."""
    rollout: RolloutStatus | None = None
    """The latest Canary or Shadow rollout: its steps, traffic split and analysis."""
    conditions: Conditions = Field(default_factory=list)
    """DatasetResolved, Trained, Validated, Approved, Serving, and Ready (derived from them)."""
    message: Message | None = None
    """Why the Model is not Ready, or what it serves."""

    def mark_invalid_spec(self, message: str) -> None:
        self.phase = ModelPhase.FAILED
        self.message = message[:1024]


class Model(Resource):
    """Trains, validates, registers, approves and serves a model; retrains on new data or drift."""

    crd: ClassVar[CRDMeta] = CRDMeta(
        kind="Model",
        short_names=("mdl",),
        max_name_length=45,  # 63 - len("-registry-<hash8>"); also "-train-<hash8>", "-server", the Service
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
