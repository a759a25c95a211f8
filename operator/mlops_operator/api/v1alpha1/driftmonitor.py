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
    SecretKeyReference,
    ShortText,
    Uri,
)
from mlops_operator.api.v1alpha1.pods import PodOptions

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
    """Ask the Model to retrain (the mlops.dev/retrain-requested annotation); never while it trains."""
    cooldown_seconds: int = Field(default=3600, ge=0, le=30 * 24 * 3600)
    """Least time between two retrain requests from this monitor."""
    consecutive_breaches: int = Field(default=1, ge=1, le=100)
    """Checks in a row that must find drift before a retrain is requested."""
    webhook: WebhookSpec | None = None
    """Notify a webhook on drift; omitted: no notification."""


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


class DriftMonitorStatus(CRModel):
    """The observed state of a DriftMonitor, written by the operator only."""

    observed_generation: int | None = None
    """The `metadata.generation` the operator last reconciled."""
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
    """Checks in a row that found drift (NoDrift resets it; other verdicts leave it)."""
    last_retrain_request: datetime | None = None
    """When this monitor last asked the Model to retrain."""
    report_uri: Uri | None = None
    """HTML report of the latest check with a verdict on drift."""
    history: Annotated[list[CheckRecord], Field(max_length=100)] = Field(default_factory=list)
    """The latest spec.historyLimit checks, oldest first."""
    conditions: Conditions = Field(default_factory=list)
    """Ready (checks can run) and DriftDetected (the latest verdict)."""


class DriftMonitor(Resource):
    """Checks a Model's collected scoring inputs against its Dataset's profile on a schedule."""

    crd: ClassVar[CRDMeta] = CRDMeta(
        kind="DriftMonitor",
        plural="driftmonitors",
        singular="driftmonitor",
        short_names=("dm",),
        max_name_length=41,  # 63 - len("-notify-<yyyymmddhhmmss>"); also "-drift-<yyyymmddhhmmss>"
        printer_columns=(
            PrinterColumn("Model", ".spec.modelRef.name"),
            PrinterColumn("Verdict", ".status.lastVerdict"),
            PrinterColumn("Drifted", ".status.driftedShare", "number", "Share of drifted features"),
            PrinterColumn("Last-Check", ".status.lastCheck", "date"),
            PrinterColumn("Age", ".metadata.creationTimestamp", "date"),
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
