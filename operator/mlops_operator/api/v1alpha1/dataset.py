"""Dataset: a versioned, validated, profiled table; its profile is the drift baseline."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, ClassVar

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from mlops_operator.api.base import (
    ColumnName,
    Conditions,
    CRDMeta,
    CRModel,
    Message,
    PrinterColumn,
    Resource,
    Resources,
    ResourceStatus,
    ShortText,
    Uri,
)
from mlops_operator.api.v1alpha1.pods import PodOptions
from mlops_operator.api.v1alpha1.retention import StorePruned
from mlops_operator.api.v1alpha1.source import LastRefresh, SourceWindow, VersionLineage


# enum.auto() in a StrEnum is the member's name in lower case: the value in the CRD and in YAML.
class DataFormat(enum.StrEnum):
    CSV = enum.auto()
    PARQUET = enum.auto()
    AUTO = enum.auto()


class DataSource(CRModel):
    """Where the data is read from: one file, or every data file under a prefix."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.window) || (self.uri.endsWith('/') && !self.uri.startsWith('sklearn://'))",
                    "message": "a window needs a prefix source: a file://, s3:// or az:// uri ending in /",
                }
            ]
        }
    )

    uri: Uri = Field(pattern=r"^(file|az|abfs|s3|sklearn)://.+")
    """Where the data lives: file:///path (a path on the artifact claim), az://container/path,
    s3://bucket/path, or sklearn://<name> for the tables bundled with scikit-learn (iris, wine,
    breast_cancer, diabetes). A uri ending in / is a prefix: every data file under it, in path
    order, Hive-style partitions (date=2026-11-30/) or plain file names, read as one table; names
    starting with _ or . (_SUCCESS, .crc) are skipped."""
    format: DataFormat = DataFormat.AUTO
    """csv, parquet, or auto (from the file extension, else from the content). Under a prefix, auto
    reads the files ending in .csv, .txt, .parquet or .pq and those without an extension."""
    window: SourceWindow | None = None
    """Which files of a prefix make a version: the last duration ({last: 30d}) or the newest
    partitions ({lastPartitions: 30}). Omitted: all of them."""

    @model_validator(mode="after")
    def _window_needs_prefix(self) -> DataSource:
        if self.window is not None and (not self.uri.endswith("/") or self.uri.startswith("sklearn://")):
            raise ValueError("a window needs a prefix source: a file://, s3:// or az:// uri ending in /")
        return self


class FeatureType(enum.StrEnum):
    NUMERIC = enum.auto()
    CATEGORICAL = enum.auto()


class FeatureSchema(CRModel):
    """A declared feature column."""

    name: ColumnName
    """The column name in the data."""
    type: FeatureType
    """numeric, or categorical (numbers in a categorical column are read as text)."""


class DatasetSchema(CRModel):
    """What the data is expected to hold; a mismatch fails the version (SchemaMismatch, MissingTarget)."""

    target: ColumnName | None = None
    """Column to predict; it must exist in the data. Models may override it (spec.target)."""
    features: Annotated[list[FeatureSchema], Field(max_length=1000)] | None = None
    """Expected feature columns and types; only these and the target are kept. Omitted: every
    column but the target is a feature, typed from the data."""


class OutlierMethod(enum.StrEnum):
    NONE = enum.auto()
    IQR = enum.auto()
    ZSCORE = enum.auto()


class OutlierAction(enum.StrEnum):
    WARN = enum.auto()
    DROP = enum.auto()


class OutlierRule(CRModel):
    """How outliers are found and what happens to them."""

    method: OutlierMethod = OutlierMethod.NONE
    """none; iqr (beyond threshold x IQR outside the quartiles); or zscore (beyond threshold
    standard deviations from the mean)."""
    threshold: float = Field(default=1.5, gt=0, le=100)
    """The IQR multiplier (iqr) or the number of standard deviations (zscore)."""
    action: OutlierAction = OutlierAction.WARN
    """warn (a finding per feature) or drop (remove the rows)."""


class DuplicatePolicy(enum.StrEnum):
    WARN = enum.auto()
    DROP = enum.auto()
    FAIL = enum.auto()


class QualityRules(CRModel):
    """Checks every new version must pass, in this order; their findings land in status.findings."""

    max_missing_fraction: float = Field(default=0.2, ge=0, le=1)
    """A column missing more than this share of values fails the version (QualityCheckFailed)."""
    duplicates: DuplicatePolicy = DuplicatePolicy.WARN
    """Duplicate rows: warn (a finding), drop (keep the first), or fail the version."""
    outliers: OutlierRule = Field(default_factory=OutlierRule)
    """Outlier detection on numeric features."""
    min_rows: int = Field(default=10, ge=1, le=10**10)
    """Fewer rows than this left after cleaning fails the version (InsufficientData)."""


class DatasetRetention(CRModel):
    """How many of the Dataset's versions the store keeps (docs/security.md, Retention)."""

    versions: int = Field(default=20, ge=1, le=1000)
    """Version snapshots kept in the store: the newest this many, plus the current one and every
    version a Model version in the namespace still lists in status.versions (what it trained on,
    serving and rollback candidates). The rest are deleted by the next profile Job."""


class DatasetSpec(PodOptions):
    """The desired state of a Dataset: its source, expected schema and quality rules; and where its
    profile pods run."""

    source: DataSource
    """Where the data is read from."""
    schema_: DatasetSchema = Field(default_factory=DatasetSchema, alias="schema")
    """Expected target and feature columns."""
    quality: QualityRules = Field(default_factory=QualityRules)
    """Quality rules every new version must pass."""
    refresh_interval_seconds: int | None = Field(default=None, ge=30, le=7 * 24 * 3600)
    """List the source again this often (at epoch-aligned ticks): a changed listing is profiled, and
    a new content address is a new version. Omitted: once per spec change, and on request (the
    mlops.dev/refresh-requested annotation)."""
    resources: Resources = Field(default_factory=Resources)
    """CPU, memory and devices of the profile Job."""
    retention: DatasetRetention = Field(default_factory=DatasetRetention)
    """Which version snapshots the store keeps."""


class Severity(enum.StrEnum):
    INFO = enum.auto()
    WARNING = enum.auto()
    ERROR = enum.auto()


class QualityFinding(CRModel):
    """What a quality rule found in the current version."""

    rule: Annotated[str, StringConstraints(max_length=64)]
    """The rule that found it, e.g. maxMissingFraction, duplicates, outliers."""
    severity: Severity
    """info, warning, or error (an error failed the version)."""
    feature: ColumnName | None = None
    """The column concerned; omitted for findings about whole rows."""
    message: Message
    """What was found, in words."""
    count: int | None = None
    """How many values or rows are concerned."""


class DatasetVersion(CRModel):
    """One version of the data: a content hash and where its snapshot and profile are stored."""

    version: ShortText
    """Content address: sha256 of the source files' bytes, the schema, the quality rules and the window."""
    rows: int
    """Rows in the cleaned snapshot."""
    columns: int
    """Columns in the cleaned snapshot."""
    profile_uri: Uri
    """The profile (statistics, reference sample): the drift baseline."""
    data_uri: Uri
    """The cleaned snapshot (Parquet) that training reads."""
    created_at: datetime
    """When the operator recorded this version."""
    lineage: VersionLineage | None = None
    """What the version was made from: source files, rules, parent version, rows before and after cleaning."""


class DatasetPhase(enum.StrEnum):
    PENDING = "Pending"
    PROFILING = "Profiling"
    READY = "Ready"
    FAILED = "Failed"


class DatasetStatus(ResourceStatus):
    """The observed state of a Dataset, written by the operator only."""

    phase: DatasetPhase = DatasetPhase.PENDING
    """Pending, Profiling (the first version is being read), Ready (a version is usable), or Failed."""
    version: ShortText | None = None
    """Content address of the current version (what Models train on)."""
    rows: int | None = None
    """Rows in the current version."""
    columns: int | None = None
    """Columns in the current version."""
    profile_uri: Uri | None = None
    """Profile of the current version: the drift baseline."""
    data_uri: Uri | None = None
    """Cleaned snapshot of the current version (Parquet)."""
    target: ColumnName | None = None
    """The target column, as declared or found."""
    task_hint: ShortText | None = None
    """classification or regression, guessed from the target's values."""
    findings: Annotated[list[QualityFinding], Field(max_length=50)] = Field(default_factory=list)
    """Quality findings of the latest profiling, most severe first (the profile keeps all)."""
    versions: Annotated[list[DatasetVersion], Field(max_length=20)] = Field(default_factory=list)
    """The newest versions, oldest first (the store keeps those spec.retention keeps)."""
    profile_job: ShortText | None = None
    """The latest profile Job."""
    last_refresh_time: datetime | None = None
    """When the latest profile Job's result was recorded."""
    listing_fingerprint: ShortText | None = None
    """sha256 of the source listing that gave the current version (each file's path, size and etag or
    modification time, after the window) and of its schema, rules and window: a refresh that lists
    the same is Unchanged without reading any data."""
    last_refresh: LastRefresh | None = None
    """The latest refresh asked for with the mlops.dev/refresh-requested annotation, and its outcome."""
    pruned: StorePruned | None = None
    """Version snapshots that retention (spec.retention) has deleted from the store; omitted: none yet."""
    conditions: Conditions = Field(default_factory=list)
    """Profiled and Ready (a usable version exists and the latest profiling did not fail)."""

    def mark_invalid_spec(self, message: str) -> None:
        self.phase = DatasetPhase.FAILED


class Dataset(Resource):
    """A versioned, validated, profiled table; its profile is the drift baseline."""

    crd: ClassVar[CRDMeta] = CRDMeta(
        kind="Dataset",
        short_names=("dset",),  # not "ds": kubectl resolves that to DaemonSets first
        max_name_length=46,  # 63 - len("-profile-<hash8>")
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
