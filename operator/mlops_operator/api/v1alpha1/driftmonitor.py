"""DriftMonitor: scheduled drift checks of a Model's scoring inputs against its Dataset's profile."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, ClassVar

from pydantic import Field, StringConstraints

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
    SecretKeyReference,
    ShortText,
    Uri,
)
from mlops_operator.api.v1alpha1.model import Metric
from mlops_operator.api.v1alpha1.pods import PodOptions
from mlops_operator.api.v1alpha1.rollout import ShadowLiveQuality

CronExpr = Annotated[str, StringConstraints(min_length=9, max_length=128, pattern=r"^(\S+\s+){4}\S+$")]


class DriftTest(enum.StrEnum):
    AUTO = "auto"
    KS = "ks"
    CHI_SQUARE = "chisquare"
    PSI = "psi"
    WASSERSTEIN = "wasserstein"
    JENSEN_SHANNON = "jensenshannon"
    Z_TEST = "ztest"


class Schedule(CRModel):
    """When checks run: exactly one of intervalSeconds and cron."""

    interval_seconds: int | None = Field(default=None, ge=10, le=30 * 24 * 3600)
    """Check at every multiple of this many seconds since the epoch (UTC)."""
    cron: CronExpr | None = None
    """Check at the times of this five-field cron expression (UTC)."""


class FeatureOverride(CRModel):
    """Settings for one feature; they win over the monitor-wide ones."""

    name: ColumnName
    """The feature (column) name."""
    test: DriftTest = DriftTest.AUTO
    """The test for this feature; auto: the monitor's numericTest or categoricalTest."""
    threshold: float | None = Field(default=None, gt=0, le=100)
    """The threshold for this feature: a p-value for ks, chisquare and ztest, a distance for the others."""
    ignore: bool = False
    """Leave this feature out of the checks."""


class WebhookSpec(CRModel):
    """A webhook notified when drift is detected, from a small Job that reads the URL from a Secret."""

    secret_ref: SecretKeyReference
    """Secret key holding the webhook URL (never put it in the spec)."""
    format: Annotated[str, StringConstraints(pattern=r"^(slack|teams|generic)$")] = "slack"
    """slack, teams or generic: the body's shape (all carry `text` and structured fields)."""


class DriftAction(CRModel):
    """What happens when a check finds drift."""

    retrain: bool = True
    """Act on a fired trigger: refresh the Dataset, then ask the Model to retrain on new data (the
    mlops.dev/retrain-requested annotation); never while it trains."""
    cooldown_seconds: int = Field(default=3600, ge=0, le=30 * 24 * 3600)
    """Least time between two actions of this monitor (a Dataset refresh or a retrain request)."""
    consecutive_breaches: int = Field(default=1, ge=1, le=100)
    """Checks in a row in which a trigger must fire before the monitor acts."""
    webhook: WebhookSpec | None = None
    """Notify a webhook when a trigger fires; omitted: no notification."""
    refresh_dataset: bool = True
    """Before asking for a retrain, ask the Model's Dataset to re-read its source (the
    mlops.dev/refresh-requested annotation) and wait for the outcome: only a new dataset version leads
    to a retrain; no new data is recorded as NoNewData and nothing is trained. false: ask the Model at
    once, as before (the Model itself still refuses a drift retrain on the data its serving version was
    trained on)."""
    refresh_timeout_seconds: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    """How long to wait for the Dataset's refresh outcome before giving up (RefreshTimedOut, no retrain)."""


class PredictionDriftTrigger(CRModel):
    """Drift of the model's own predictions (the collected prediction column) against the distribution
    of the target in the baseline profile."""

    enabled: bool = False
    """Fire when the predictions drift; false: the score is still computed and reported."""
    test: DriftTest = DriftTest.AUTO
    """The test; auto: jensenshannon for classes, wasserstein for numbers (distances: a model's
    predictions never match the target's distribution exactly, and a p-value test on a large window
    would flag that bias every time)."""
    threshold: float | None = Field(default=None, gt=0, le=100)
    """The test's threshold; omitted: its default (0.1 for distances, 0.05 for p-values)."""


class PerformanceTrigger(CRModel):
    """Quality decay: the live metric, on predictions whose ground truth has arrived (labels joined by
    prediction id), is worse than a threshold."""

    metric: Metric | None = None
    """The metric; omitted: the Model's spec.validation.metric."""
    threshold: float = Field(ge=-1e9, le=1e9)
    """Fire when the metric is below this (above it for the error metrics rmse and mae)."""
    min_labels: int = Field(default=100, ge=1, le=10**9)
    """Fewer labelled predictions than this in the quality window is no verdict: the trigger does not
    fire."""


class Triggers(CRModel):
    """Which findings of a check count as a breach (and, after action.consecutiveBreaches, act)."""

    input_drift: bool = True
    """Fire when the scoring inputs drift (the Drift verdict)."""
    prediction_drift: PredictionDriftTrigger = Field(default_factory=PredictionDriftTrigger)
    """Fire when the predictions drift from the target's training distribution."""
    performance: PerformanceTrigger | None = None
    """Fire when the live metric decays; omitted: live quality is reported, never acted on."""


class DriftRetention(CRModel):
    """Bounds on what the checks leave in the store."""

    reports: int = Field(default=200, ge=1, le=100_000)
    """Check runs (report.html and result.json) kept in the store, newest first; older ones are deleted."""


class DriftMonitorSpec(PodOptions):
    """The desired state of a DriftMonitor: which Model, how often, which tests, what to do on drift;
    and where its drift-check pods run."""

    model_ref: LocalObjectReference
    """The Model (same namespace) whose collected scoring inputs are checked."""
    dataset_ref: LocalObjectReference | None = None
    """The Dataset whose profile is the baseline; defaults to the Model's dataset."""
    schedule: Schedule = Field(default_factory=lambda: Schedule(interval_seconds=300))
    """When checks run."""
    window_seconds: int = Field(default=3600, ge=10, le=90 * 24 * 3600)
    """Each check reads the inputs collected in this many seconds before its scheduled time."""
    quality_window_seconds: int | None = Field(default=None, ge=10, le=90 * 24 * 3600)
    """Live quality scores the predictions made in this many seconds before the check, with the labels
    that arrived by then; omitted: windowSeconds. Ground truth usually arrives later than inputs, so this
    is often longer."""
    triggers: Triggers = Field(default_factory=Triggers)
    """What fires an action: input drift, prediction drift, quality decay."""
    min_samples: int = Field(default=100, ge=1, le=10**9)
    """Fewer collected rows than this in the window is no verdict (NotEnoughData)."""
    numeric_test: DriftTest = DriftTest.AUTO
    """Test for every numeric feature. auto: ks up to 1000 reference rows, wasserstein above (a feature
    with at most 5 distinct values is tested like a categorical one)."""
    categorical_test: DriftTest = DriftTest.AUTO
    """Test for every categorical feature. auto: chisquare (ztest for two values) up to 1000 reference
    rows, jensenshannon above."""
    threshold: float | None = Field(default=None, gt=0, le=100)
    """Threshold for every test: a p-value for ks, chisquare and ztest, a distance for psi,
    wasserstein and jensenshannon. Omitted: each test's default (0.05 or 0.1)."""
    drift_share: float = Field(default=0.5, gt=0, le=1)
    """The verdict is Drift when at least this share of the tested features drifted."""
    bonferroni: bool = False
    """Divide every p-value threshold by the number of features tested."""
    features: Annotated[list[FeatureOverride], Field(max_length=1000)] = Field(default_factory=list)
    """Per-feature test, threshold or ignore."""
    action: DriftAction = Field(default_factory=DriftAction)
    """What happens on drift."""
    resources: Resources = Field(default_factory=Resources)
    """CPU, memory and devices of the drift-check Job."""
    history_limit: int = Field(default=20, ge=1, le=100)
    """Checks kept in status.history."""
    retention: DriftRetention = Field(default_factory=DriftRetention)
    """What the drift Job deletes after each check."""


class FeatureScore(CRModel):
    """One feature's result at the last check."""

    name: ColumnName
    """The feature."""
    test: DriftTest
    """The test that ran."""
    score: float | None = None
    """The p-value or distance; omitted when it could not be computed (no values)."""
    threshold: float
    """The threshold it was compared with."""
    drifted: bool
    """Whether the feature drifted."""


class CheckRecord(CRModel):
    """One finished check."""

    time: datetime
    """The scheduled time the check covers (the end of its window)."""
    verdict: Annotated[str, StringConstraints(max_length=32)]
    """Drift, NoDrift, NotEnoughData, SchemaMismatch or Failed."""
    drifted_share: float | None = None
    """Share of the tested features that drifted."""
    drifted_features: Annotated[list[ColumnName], Field(max_length=1000)] = Field(default_factory=list)
    """The features that drifted."""
    samples: int | None = None
    """Rows in the window."""
    report_uri: Uri | None = None
    """The check's HTML report."""
    job: ShortText | None = None
    """The drift-check Job."""
    message: Message | None = None
    """What went wrong, for NotEnoughData, SchemaMismatch and Failed."""
    fired: Annotated[list[Annotated[str, StringConstraints(max_length=32)]], Field(max_length=3)] = Field(
        default_factory=list
    )
    """The triggers that fired: inputDrift, predictionDrift, performance."""
    quality_metric: Annotated[str, StringConstraints(max_length=32)] | None = None
    """The live-quality metric."""
    quality: float | None = None
    """The live metric on the labelled predictions of the quality window; omitted: none labelled."""
    labelled: int | None = None
    """Predictions in the quality window with a label."""
    prediction_drift_score: float | None = None
    """The prediction-drift score (a distance or a p-value, as its test)."""
    baseline_version: ShortText | None = None
    """The dataset version whose profile was the baseline."""


class LiveQualityCounts(CRModel):
    """The live metric and its counts: what the drift workload reports and status.liveQuality keeps."""

    metric: Annotated[str, StringConstraints(max_length=32)]
    """The metric (the performance trigger's, else the Model's validation metric)."""
    value: float | None = None
    """Its value on the labelled predictions; omitted when it could not be computed (see message)."""
    labelled: int = 0
    """Predictions in the quality window with a label (the metric's n)."""
    predictions: int = 0
    """Predictions in the quality window with an id."""
    late: int = 0
    """Labels for predictions made before the quality window (counted, not scored)."""
    unknown: int = 0
    """Labels whose id matches no collected prediction."""
    duplicates: int = 0
    """Label rows replaced by a later label for the same id (the last one wins)."""
    shadow: ShadowLiveQuality | None = None
    """A shadowed candidate scored with the same labels, beside the champion on the same rows; omitted
    when no candidate answer was recorded in the quality window."""


class LiveQuality(LiveQualityCounts):
    """Live quality at the latest check that read labels: ground truth joined to predictions by id."""

    metrics: Annotated[dict[Annotated[str, StringConstraints(max_length=32)], float], Field(max_length=16)] = Field(
        default_factory=dict
    )
    """Every metric of the Model's task that could be computed."""
    time: datetime
    """The scheduled time of the check."""
    message: Message | None = None
    """Why a metric is missing (no labels yet, no probabilities for roc_auc, one class only)."""


class PredictionDriftTest(CRModel):
    """A prediction-drift test and its outcome: what the drift workload reports and
    status.predictionDrift keeps."""

    test: DriftTest
    """The test that ran."""
    score: float | None = None
    """The p-value or distance; omitted when it could not be computed (see message)."""
    threshold: float
    """The threshold it was compared with."""
    drifted: bool
    """Whether the predictions drifted."""
    samples: int = 0
    """Predictions in the window."""


class PredictionDriftScore(PredictionDriftTest):
    """The latest check's prediction drift: collected predictions against the target's distribution."""

    message: Message | None = None
    """Why no score could be computed."""


class Baseline(CRModel):
    """The profile checks compare with: the dataset version the serving model was trained on."""

    dataset: ShortText
    """The Dataset."""
    version: ShortText
    """The dataset version whose profile is the baseline."""
    profile_uri: Uri
    """Its profile."""
    serving_version: int | None = None
    """The Model version serving when the baseline was chosen."""
    message: Message | None = None
    """Why the baseline is not the serving version's dataset version (the fallback to the latest)."""


class PendingRefresh(CRModel):
    """A fired trigger waiting for the Dataset's refresh before a retrain is asked for."""

    dataset: ShortText
    """The Dataset asked to refresh."""
    request: Annotated[str, StringConstraints(max_length=512)]
    """The mlops.dev/refresh-requested value written: `<RFC3339>;<reason>`."""
    requested_at: datetime
    """When the refresh was asked for (the time in the request)."""
    dataset_version: ShortText | None = None
    """The Dataset's version when asked (a different version later is new data)."""
    reason: Annotated[str, StringConstraints(max_length=512)]
    """The retrain reason, if the refresh brings new data."""


class PrunedTotals(CRModel):
    """What the checks' retention has deleted from the store (spec.retention, the Model's retentionDays)."""

    objects: int = 0
    """Objects deleted, all checks together."""
    bytes: int = 0
    """Their bytes."""
    last_time: datetime | None = None
    """The scheduled time of the latest check that deleted something."""


class DriftMonitorStatus(ResourceStatus):
    """The observed state of a DriftMonitor, written by the operator only."""

    last_check: datetime | None = None
    """The scheduled time of the latest check started (recorded when its Job is created)."""
    next_check: datetime | None = None
    """The scheduled time of the next check."""
    active_job: ShortText | None = None
    """The drift-check Job running now."""
    last_verdict: Annotated[str, StringConstraints(max_length=32)] | None = None
    """Verdict of the latest finished check: Drift, NoDrift, NotEnoughData, SchemaMismatch or Failed."""
    drifted_share: float | None = None
    """Share of drifted features at the latest check with a verdict on drift."""
    feature_scores: Annotated[list[FeatureScore], Field(max_length=1000)] = Field(default_factory=list)
    """Per-feature results of the latest check with a verdict on drift."""
    consecutive_breaches: int = 0
    """Checks in a row where a trigger fired (a check where a trigger had a verdict and none fired resets
    it; a check without any verdict leaves it)."""
    last_retrain_request: datetime | None = None
    """When this monitor last asked the Model to retrain."""
    last_refresh_request: datetime | None = None
    """When this monitor last asked the Dataset to refresh (action.cooldownSeconds counts from it too)."""
    pending_refresh: PendingRefresh | None = None
    """The Dataset refresh this monitor waits for before it asks for a retrain."""
    fired: Annotated[list[Annotated[str, StringConstraints(max_length=32)]], Field(max_length=3)] = Field(
        default_factory=list
    )
    """The triggers that fired at the latest check: inputDrift, predictionDrift, performance."""
    live_quality: LiveQuality | None = None
    """Live quality at the latest check that found labelled predictions."""
    prediction_drift: PredictionDriftScore | None = None
    """Prediction drift at the latest check that computed it."""
    baseline: Baseline | None = None
    """The baseline of the latest check."""
    report_uri: Uri | None = None
    """HTML report of the latest check with a verdict on drift."""
    history: Annotated[list[CheckRecord], Field(max_length=100)] = Field(default_factory=list)
    """The latest spec.historyLimit checks, oldest first."""
    pruned: PrunedTotals | None = None
    """What retention has deleted so far; omitted: nothing yet."""
    conditions: Conditions = Field(default_factory=list)
    """Ready (checks can run), DriftDetected (the latest verdict) and RetrainRequested (what the
    latest fired trigger led to: a retrain, a pending Dataset refresh, or NoNewData)."""


class DriftMonitor(Resource):
    """Checks a Model's collected scoring inputs against its Dataset's profile on a schedule."""

    crd: ClassVar[CRDMeta] = CRDMeta(
        kind="DriftMonitor",
        short_names=("dm",),
        max_name_length=41,  # 63 - len("-notify-<yyyymmddhhmmss>"); also "-drift-<yyyymmddhhmmss>"
        printer_columns=(
            PrinterColumn("Model", ".spec.modelRef.name"),
            PrinterColumn("Verdict", ".status.lastVerdict"),
            PrinterColumn("Drifted", ".status.driftedShare", "number", "Share of drifted features"),
            PrinterColumn("Last-Check", ".status.lastCheck", "date"),
            PrinterColumn("Age", ".metadata.creationTimestamp", "date"),
            PrinterColumn("Quality", ".status.liveQuality.value", "number", "Live metric at the latest check", 1),
            PrinterColumn("Report", ".status.reportUri", priority=1),
        ),
        spec_rules=(
            (
                "!has(self.schedule) || (has(self.schedule.intervalSeconds) != has(self.schedule.cron))",
                "schedule needs exactly one of intervalSeconds or cron",
            ),
        ),
    )
    spec: DriftMonitorSpec
    status: DriftMonitorStatus | None = None
