"""What the operator hands a workload: one plan per Job, the whole of what the Job is asked to do.

A builder renders a plan as the JSON value of the workload's `--spec` flag (contracts.PLAN_FLAG); the
workload parses exactly that, nothing else. What a workload hands back is in api/results.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from pydantic import Field

from mlops_operator.api.base import CRModel
from mlops_operator.api.profile import OfDataset
from mlops_operator.api.v1alpha1.dataset import DatasetSpec
from mlops_operator.api.v1alpha1.driftmonitor import DriftTest, FeatureOverride
from mlops_operator.api.v1alpha1.model import Metric, ModelVersion, ParamValue, Task


class DatasetRetentionPlan(CRModel):
    """Which of a Dataset's stored versions its profile Job deletes after the run (workloads/retention.py).

    The operator computes what must stay from what it reads (status of the Dataset and of every Model
    in the namespace); the Job, which holds the store credentials, lists the store and deletes.
    """

    keep: int = Field(ge=1)  # the newest versions kept (spec.retention.versions)
    recent: list[str] = Field(default_factory=list)  # Dataset status.versions, newest first: their order
    referenced: list[str] = Field(default_factory=list)  # never deleted: the current one, every Model's


class ProfilePlan(OfDataset):
    """Version, validate and profile one Dataset's source into the store under `store_uri`."""

    spec: DatasetSpec
    store_uri: str
    # The Dataset's current version and the fingerprint of the listing that gave it (status): a listing
    # with the same fingerprint is answered `unchanged` at once, without reading data.
    current_version: str | None = None
    current_listing_fingerprint: str | None = None
    as_of: datetime | None = None  # the end of a `last` window; omitted: the pod's clock
    retention: DatasetRetentionPlan | None = None  # None: delete nothing this time


class ChampionRef(CRModel):
    """The serving version a training run scores on the same test split."""

    version: int
    artifact_uri: str
    sha256: str


class ProductionRowsPlan(CRModel):
    """Labelled production rows appended to the snapshot before the split (docs/production-labels.md):
    the collected rows predicted in [window_start, window_end) joined by id to the labels that arrived
    before window_end."""

    collected_prefix: str  # contracts.collected_prefix(): <prefix>/date=YYYY-MM-DD/hour=HH/<part>.parquet
    labels_prefix: str  # contracts.labels_prefix(): <prefix>/date=YYYY-MM-DD/<part>.parquet
    window_start: datetime
    window_end: datetime
    max_rows: int = Field(default=100_000, ge=1)
    # Labels that arrived at or after this are new to the champion (the time its training started);
    # None: every label is new.
    new_since: datetime | None = None
    # A retrain on the champion's own dataset version: without a new labelled row, end with NoNewData
    # before fitting anything.
    require_new: bool = False


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
    production: ProductionRowsPlan | None = None  # None: the snapshot only (spec.retrain.productionLabels off)


# The DriftPlan fields a DriftMonitor's spec gives as they are (same names, same meaning).
DRIFT_SPEC_FIELDS: Final = frozenset(
    {"min_samples", "numeric_test", "categorical_test", "threshold", "drift_share", "bonferroni", "features"}
)


class QualityPoint(CRModel):
    """One earlier check's live quality, for the report's history."""

    time: datetime
    value: float | None = None
    labelled: int = 0


class LiveQualityPlan(CRModel):
    """Join ground truth to the collected predictions by id and score them (docs/drift.md)."""

    labels_prefix: str  # contracts.labels_prefix(): <prefix>/date=YYYY-MM-DD/<part>.parquet
    # contracts.shadow_prefix(): a Shadow rollout's recorded answers, scored with the same labels; None:
    # not read (a plan from before shadow scoring).
    shadow_prefix: str | None = None
    window_start: datetime  # predictions scored: window_start <= time < DriftPlan.window_end
    task: Task
    metric: Metric  # the headline metric (all of the task's metrics are computed)
    history: list[QualityPoint] = Field(default_factory=list, max_length=100)  # earlier checks, oldest first


class PredictionDriftPlan(CRModel):
    """Drift of the collected prediction column against the target's distribution in the profile."""

    target: str | None = None  # the profile column to compare with; None: the profile's target
    test: DriftTest = DriftTest.AUTO  # auto: jensenshannon (classes) or wasserstein (numbers)
    threshold: float | None = None


class RetentionPlan(CRModel):
    """What a drift Job deletes after its check (workloads/retention.py)."""

    partition_prefixes: list[str]  # collected rows and labels: date=/hour= partitions
    max_age_days: int
    runs_dir: str  # the monitor's drift runs
    keep_runs: int


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
    # Optional parts (the operator fills them in after builders.jobs.drift_plan); absent: not done.
    quality: LiveQualityPlan | None = None
    prediction_drift: PredictionDriftPlan | None = None
    baseline_note: str | None = None  # why the baseline is not the serving version's dataset version
    retention: RetentionPlan | None = None


class ModelRetentionPlan(CRModel):
    """What a registry Job deletes after the mirror (workloads/retention.py)."""

    model_dir: str  # contracts.model_version_dir's parent: <root>/<ns>/models/<model>
    keep_versions: list[int]  # status.versions (the newest maxVersions, the serving and training ones)
    # Collected rows and labels of a Model no DriftMonitor checks (else its check prunes them); empty: none.
    partition_prefixes: list[str] = Field(default_factory=list)
    max_age_days: int = Field(default=30, ge=1)
    now: datetime | None = None  # what the age counts back from; omitted: the pod's clock


class RegistryPlan(CRModel):
    """Mirror a Model's `status.versions` into the store's registry.json (and read back what is there)."""

    namespace: str
    model: str
    registry_uri: str
    versions: list[ModelVersion] = Field(default_factory=list)
    retention: ModelRetentionPlan | None = None  # None: delete nothing


class NotifyPlan(CRModel):
    """POST `payload` as JSON to the webhook URL in the pod's environment (contracts.ENV_WEBHOOK_URL).

    The URL is a secret and never part of a plan. By default only https is used, and a host that
    resolves to a private, loopback or link-local address is refused; the operator's settings can
    allow either (a receiver inside the cluster, a test on 127.0.0.1).
    """

    payload: dict[str, Any]
    allow_http: bool = False
    allow_private: bool = False
    timeout_seconds: float = Field(default=10.0, gt=0, le=60)


__all__ = [
    "DRIFT_SPEC_FIELDS",
    "ChampionRef",
    "DatasetRetentionPlan",
    "DriftPlan",
    "LiveQualityPlan",
    "ModelRetentionPlan",
    "NotifyPlan",
    "PredictionDriftPlan",
    "ProductionRowsPlan",
    "ProfilePlan",
    "QualityPoint",
    "RegistryPlan",
    "TrainingPlan",
]
