"""DriftMonitor: scheduled drift checks of a Model's scoring inputs against its Dataset's profile."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, ClassVar

from pydantic import Field, StringConstraints

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
    SecretKeyReference,
    ShortText,
    Uri,
)

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
    interval_seconds: int | None = Field(default=None, ge=10, le=30 * 24 * 3600)
    cron: CronExpr | None = None


class FeatureOverride(CRModel):
    name: ColumnName
    test: DriftTest = DriftTest.AUTO
    threshold: float | None = Field(default=None, gt=0, le=100)
    ignore: bool = False


class WebhookSpec(CRModel):
    secret_ref: SecretKeyReference = Field(description="Secret key holding the webhook URL (never put it in the spec).")
    format: Annotated[str, StringConstraints(pattern=r"^(slack|teams|generic)$")] = "slack"


class DriftAction(CRModel):
    retrain: bool = True
    cooldown_seconds: int = Field(default=3600, ge=0, le=30 * 24 * 3600)
    consecutive_breaches: int = Field(default=1, ge=1, le=100)
    webhook: WebhookSpec | None = None


class DriftMonitorSpec(CRModel):
    model_ref: LocalObjectReference
    dataset_ref: LocalObjectReference | None = Field(
        default=None, description="Baseline; defaults to the Model's dataset."
    )
    schedule: Schedule = Field(default_factory=lambda: Schedule(interval_seconds=300))
    window_seconds: int = Field(default=3600, ge=10, le=90 * 24 * 3600)
    min_samples: int = Field(default=100, ge=1, le=10**9)
    numeric_test: DriftTest = DriftTest.AUTO
    categorical_test: DriftTest = DriftTest.AUTO
    threshold: float | None = Field(default=None, gt=0, le=100, description="Default threshold for the chosen tests.")
    drift_share: float = Field(default=0.5, gt=0, le=1)
    bonferroni: bool = False
    features: Annotated[list[FeatureOverride], Field(max_length=1000)] = Field(default_factory=list)
    action: DriftAction = Field(default_factory=DriftAction)
    resources: Resources = Field(default_factory=Resources)
    history_limit: int = Field(default=20, ge=1, le=100)


class FeatureScore(CRModel):
    name: ColumnName
    test: DriftTest
    score: float | None = None
    threshold: float
    drifted: bool


class CheckRecord(CRModel):
    time: datetime
    verdict: Annotated[str, StringConstraints(max_length=32)]  # Drift, NoDrift, NotEnoughData, SchemaMismatch, Failed
    drifted_share: float | None = None
    drifted_features: Annotated[list[ColumnName], Field(max_length=1000)] = Field(default_factory=list)
    samples: int | None = None
    report_uri: Uri | None = None
    job: ShortText | None = None
    message: Message | None = None


class DriftMonitorStatus(CRModel):
    observed_generation: int | None = None
    last_check: datetime | None = None
    next_check: datetime | None = None
    active_job: ShortText | None = None
    last_verdict: Annotated[str, StringConstraints(max_length=32)] | None = None
    drifted_share: float | None = None
    feature_scores: Annotated[list[FeatureScore], Field(max_length=1000)] = Field(default_factory=list)
    consecutive_breaches: int = 0
    last_retrain_request: datetime | None = None
    report_uri: Uri | None = None
    history: Annotated[list[CheckRecord], Field(max_length=100)] = Field(default_factory=list)
    conditions: Annotated[list[Condition], Field(max_length=16)] = Field(default_factory=list)


class DriftMonitor(Resource):
    """Checks a Model's collected scoring inputs against its Dataset's profile on a schedule."""

    crd: ClassVar[CRDMeta] = CRDMeta(
        kind="DriftMonitor",
        plural="driftmonitors",
        singular="driftmonitor",
        short_names=("dm",),
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
