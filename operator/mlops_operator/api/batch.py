"""What the operator hands a batch-scoring pod (its plan) and what each pod hands back (its result).

One plan for every pod of the Indexed Job; a pod learns its shard from JOB_COMPLETION_INDEX, which the
Job controller sets. Like api/plans.py and api/results.py, for the `batch-score` workload.
"""

from __future__ import annotations

from pydantic import Field

from mlops_operator.api.base import CRModel


class BatchScorePlan(CRModel):
    namespace: str
    batch: str  # the BatchScoring
    model: str
    version: int
    artifact_uri: str
    sha256: str
    input_uri: str  # a Parquet file, or a directory/prefix of Parquet files read in name order
    key_columns: list[str] = Field(default_factory=list)
    shards: int = Field(ge=1)
    chunk_rows: int = Field(default=65536, ge=1)
    output_dir: str  # part-<index>.parquet per shard
    store_uri: str = ""  # the store's root, for the file:// symlink confinement of the input


class BatchScoreResult(CRModel):
    ok: bool
    index: int | None = None
    rows: int | None = None  # rows this shard scored
    seconds: float | None = None  # wall seconds of this shard's work (load, read, predict, write)
    predict_seconds: float | None = None  # of which in predict
    output_uri: str | None = None
    error: str | None = None
    reason: str | None = None
