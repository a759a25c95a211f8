"""Dataset: a versioned, validated, profiled table; its profile is the drift baseline."""

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
    Message,
    PrinterColumn,
    Resource,
    Resources,
    ShortText,
    Uri,
)


class DataFormat(enum.StrEnum):
    CSV = "csv"
    PARQUET = "parquet"
    AUTO = "auto"


class FeatureType(enum.StrEnum):
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"


class DuplicatePolicy(enum.StrEnum):
    WARN = "warn"
    DROP = "drop"
    FAIL = "fail"


class OutlierMethod(enum.StrEnum):
    NONE = "none"
    IQR = "iqr"
    ZSCORE = "zscore"


class OutlierAction(enum.StrEnum):
    WARN = "warn"
    DROP = "drop"


class DataSource(CRModel):
    uri: Uri = Field(
        description=(
            "Where the data lives: file:///path (a PVC path), az://container/path, s3://bucket/path, or "
            "sklearn://<name> for the datasets bundled with scikit-learn (iris, wine, breast_cancer, diabetes)."
        ),
        pattern=r"^(file|az|abfs|s3|sklearn)://.+",
    )
    format: DataFormat = DataFormat.AUTO


class FeatureSchema(CRModel):
    name: ColumnName
    type: FeatureType


class DatasetSchema(CRModel):
    target: ColumnName | None = Field(default=None, description="Column to predict; must exist in the data.")
    features: Annotated[list[FeatureSchema], Field(max_length=1000)] | None = Field(
        default=None, description="Expected feature columns and types; omitted means inferred from the data."
    )


class OutlierRule(CRModel):
    method: OutlierMethod = OutlierMethod.NONE
    threshold: float = Field(default=1.5, gt=0, le=100, description="IQR multiplier or z-score.")
    action: OutlierAction = OutlierAction.WARN


class QualityRules(CRModel):
    max_missing_fraction: float = Field(default=0.2, ge=0, le=1)
    duplicates: DuplicatePolicy = DuplicatePolicy.WARN
    outliers: OutlierRule = Field(default_factory=OutlierRule)
    min_rows: int = Field(default=10, ge=1, le=10**10)


class DatasetSpec(CRModel):
    source: DataSource
    schema_: DatasetSchema = Field(default_factory=DatasetSchema, alias="schema")
    quality: QualityRules = Field(default_factory=QualityRules)
    refresh_interval_seconds: int | None = Field(
        default=None,
        ge=30,
        le=7 * 24 * 3600,
        description="Re-read the source this often; a changed content hash is a new version.",
    )
    resources: Resources = Field(default_factory=Resources)


class Severity(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class QualityFinding(CRModel):
    rule: Annotated[str, StringConstraints(max_length=64)]
    severity: Severity
    feature: ColumnName | None = None
    message: Message
    count: int | None = None


class DatasetVersion(CRModel):
    version: ShortText
    rows: int
    columns: int
    profile_uri: Uri
    data_uri: Uri
    created_at: datetime


class DatasetPhase(enum.StrEnum):
    PENDING = "Pending"
    PROFILING = "Profiling"
    READY = "Ready"
    FAILED = "Failed"


class DatasetStatus(CRModel):
    phase: DatasetPhase = DatasetPhase.PENDING
    observed_generation: int | None = None
    version: ShortText | None = None
    rows: int | None = None
    columns: int | None = None
    profile_uri: Uri | None = None
    data_uri: Uri | None = None
    target: ColumnName | None = None
    task_hint: ShortText | None = None
    findings: Annotated[list[QualityFinding], Field(max_length=50)] = Field(default_factory=list)
    versions: Annotated[list[DatasetVersion], Field(max_length=20)] = Field(default_factory=list)
    profile_job: ShortText | None = None
    last_refresh_time: datetime | None = None
    conditions: Annotated[list[Condition], Field(max_length=16)] = Field(default_factory=list)


class Dataset(Resource):
    """A versioned, validated, profiled table; its profile is the drift baseline."""

    crd: ClassVar[CRDMeta] = CRDMeta(
        kind="Dataset",
        plural="datasets",
        singular="dataset",
        short_names=("dset",),  # not "ds": kubectl resolves that to DaemonSets first
        printer_columns=(
            PrinterColumn("Version", ".status.version", description="Content hash of the current version"),
            PrinterColumn("Rows", ".status.rows", "integer"),
            PrinterColumn("Phase", ".status.phase"),
            PrinterColumn("Age", ".metadata.creationTimestamp", "date"),
        ),
    )
    spec: DatasetSpec
    status: DatasetStatus | None = None

    # Versions kept in status (the store keeps all of them).
    MAX_VERSIONS: ClassVar[int] = 20
