"""BatchScoring: score a whole table with a Model version, split over the pods of an Indexed Job."""

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
from mlops_operator.api.v1alpha1.driftmonitor import CronExpr
from mlops_operator.api.v1alpha1.pods import PodOptions

MAX_SHARDS = 1000


class BatchInput(CRModel):
    """The rows to score: exactly one of a Dataset version and a store prefix of Parquet files."""

    dataset_ref: LocalObjectReference | None = None
    """A Dataset in the same namespace: its version's snapshot (Parquet) is scored."""
    dataset_version: ShortText | None = None
    """The Dataset version (content address) to score; omitted: the Dataset's current version when the
    run starts. Only with datasetRef."""
    uri: Uri | None = None
    """A Parquet file or a prefix of Parquet files (read in name order) inside this namespace's own
    prefix of the store (or a source the administrator allows), the same rules as a Dataset's source."""
    key_columns: Annotated[list[ColumnName], Field(max_length=8)] = Field(default_factory=list)
    """Input columns copied into every prediction row to join it back to its input; omitted: a
    `_mlops_row` column with the row's ordinal in the input (files in name order, rows in file order)."""


class BatchScoringSpec(PodOptions):
    """The desired state of a BatchScoring: which Model version scores which rows, how the work is split,
    and when it runs; and where its pods run."""

    model_ref: LocalObjectReference
    """The Model (same namespace) whose version scores the rows; predictions go under its store prefix."""
    version: int | None = Field(default=None, ge=1)
    """The Model version to score with; omitted: the version serving when the run starts. It must have a
    trained artifact (its sha256 is verified before loading, like serving)."""
    input: BatchInput
    """The rows to score."""
    shards: int = Field(default=1, ge=1, le=MAX_SHARDS)
    """Pieces the input is split into (the Indexed Job's completions): shard i scores the i-th
    contiguous range of rows and writes part-<i>.parquet."""
    parallelism: int | None = Field(default=None, ge=1, le=MAX_SHARDS)
    """Shards scored at the same time (the Job's parallelism); omitted: all of them."""
    backoff_limit_per_index: int = Field(default=2, ge=0, le=10)
    """Retries of one failed shard; the other shards are not run again."""
    max_failed_indexes: int = Field(default=0, ge=0, le=MAX_SHARDS)
    """Shards that may fail for good before the whole run is stopped as Failed (0: the first one)."""
    chunk_rows: int = Field(default=65536, ge=1000, le=1_000_000)
    """Rows predicted and written at a time: a pod's memory grows with this, not with its shard."""
    resources: Resources = Field(default_factory=Resources)
    """CPU, memory and devices of each scoring pod (the administrator's ceilings apply)."""
    active_deadline_seconds: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    """Longest a run may take (the Job's activeDeadlineSeconds); the administrator's ceiling applies."""
    schedule: CronExpr | None = None
    """Score again at the times of this five-field cron expression (UTC), each run its own Job;
    omitted: one run, again only when the spec changes."""
    runs_to_keep: int = Field(default=3, ge=1, le=50)
    """Finished runs kept (their Jobs and status.runs); older Jobs are deleted, their predictions stay."""

    @model_validator(mode="after")
    def _one_input(self) -> BatchScoringSpec:
        if (self.input.dataset_ref is None) == (self.input.uri is None):
            raise ValueError("input needs exactly one of datasetRef and uri")
        if self.input.dataset_version is not None and self.input.dataset_ref is None:
            raise ValueError("input.datasetVersion needs input.datasetRef")
        if self.max_failed_indexes > self.shards:
            raise ValueError("maxFailedIndexes cannot exceed shards")
        return self


class BatchPhase(enum.StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class BatchRun(CRModel):
    """One scoring run: its Job, what it scored with, and how it went."""

    job: ShortText
    """The Indexed Job."""
    phase: BatchPhase = BatchPhase.PENDING
    """Pending, Running, Succeeded or Failed."""
    version: int
    """The Model version that scores."""
    input: Uri
    """What is read: the Dataset version's snapshot or the prefix."""
    dataset_version: ShortText | None = None
    """The Dataset version scored (with input.datasetRef)."""
    output: Uri
    """Where the predictions are written: part-<index>.parquet per shard."""
    scheduled_time: datetime | None = None
    """The cron time this run is for (with spec.schedule)."""
    spec_hash: Annotated[str, StringConstraints(max_length=16)]
    """Hash of the spec the run was started for."""
    started_at: datetime | None = None
    """When the Job was created."""
    finished_at: datetime | None = None
    """When the Job finished."""
    rows: int | None = None
    """Rows scored by the shards that finished."""
    shards_succeeded: int = 0
    """Shards done (the Job's completedIndexes)."""
    shards_failed: int = 0
    """Shards failed for good (the Job's failedIndexes)."""
    rows_per_second: float | None = None
    """rows over the run's wall time (Job start to completion)."""
    pod_rows_per_second: float | None = None
    """rows over the seconds the shards worked, added up: the rate of one pod."""
    message: Message | None = None
    """Why the run failed, or what it is waiting for."""


class BatchScoringStatus(ResourceStatus):
    """The observed state of a BatchScoring, written by the operator only."""

    phase: BatchPhase = BatchPhase.PENDING
    """The latest run's phase: Pending, Running, Succeeded or Failed."""
    version: int | None = None
    """The Model version of the latest run."""
    rows: int | None = None
    """Rows the latest run has scored so far."""
    shards: int | None = None
    """Shards of the latest run."""
    shards_succeeded: int | None = None
    """Shards of the latest run that are done."""
    shards_failed: int | None = None
    """Shards of the latest run that failed for good."""
    rows_per_second: float | None = None
    """Throughput of the latest finished run (rows over its wall time)."""
    output: Uri | None = None
    """Where the latest run writes its predictions."""
    last_schedule_time: datetime | None = None
    """The latest cron time a run was started for."""
    next_schedule_time: datetime | None = None
    """The next cron time (with spec.schedule)."""
    runs: Annotated[list[BatchRun], Field(max_length=50)] = Field(default_factory=list)
    """The newest spec.runsToKeep runs, oldest first."""
    conditions: Conditions = Field(default_factory=list)
    """Ready (the latest run succeeded), Reconciling (a run is on its way), Stalled (it cannot go on)."""
    message: Message | None = None
    """What the latest run is doing, or why it cannot."""

    def mark_invalid_spec(self, message: str) -> None:
        self.phase = BatchPhase.FAILED
        self.message = message[:1024]


class BatchScoring(Resource):
    """Scores a Dataset version or a store prefix with a Model version over the pods of an Indexed Job."""

    crd: ClassVar[CRDMeta] = CRDMeta(
        kind="BatchScoring",
        short_names=("bs",),
        # 63 - len("-batch-<hash8>") - len("-<index>") (pods' hostnames are <job>-<index>)
        max_name_length=44,
        printer_columns=(
            PrinterColumn("Phase", ".status.phase"),
            PrinterColumn("Version", ".status.version", "integer", "Model version of the latest run"),
            PrinterColumn("Rows", ".status.rows", "integer", "Rows scored by the latest run"),
            PrinterColumn("Shards", ".status.shardsSucceeded", "integer", "Shards of the latest run done"),
            PrinterColumn("Age", ".metadata.creationTimestamp", "date"),
            PrinterColumn("Rows/s", ".status.rowsPerSecond", "number", "Throughput of the latest run", 1),
            PrinterColumn("Output", ".status.output", priority=1),
        ),
        spec_rules=(
            (
                "has(self.input.datasetRef) != has(self.input.uri)",
                "input needs exactly one of datasetRef and uri",
            ),
            (
                "!has(self.input.datasetVersion) || has(self.input.datasetRef)",
                "input.datasetVersion needs input.datasetRef",
            ),
            (
                "!has(self.maxFailedIndexes) || self.maxFailedIndexes <= (has(self.shards) ? self.shards : 1)",
                "maxFailedIndexes cannot exceed shards",
            ),
        ),
    )
    spec: BatchScoringSpec
    status: BatchScoringStatus | None = None
