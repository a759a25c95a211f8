"""What a workload hands back: one result per Job, printed on stdout and written to the
termination-message file (at most 4 KiB, see contracts.TERMINATION_MESSAGE_LIMIT).

Every result has `ok`; a failed run also has a CamelCase `reason` and an `error` message. The plans
the operator hands the workloads are in api/plans.py.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import Field

from mlops_operator.api.base import CRModel
from mlops_operator.api.v1alpha1.dataset import QualityFinding
from mlops_operator.api.v1alpha1.driftmonitor import DriftTest, LiveQualityCounts, PredictionDriftTest
from mlops_operator.api.v1alpha1.model import ModelVersion
from mlops_operator.api.v1alpha1.source import VersionLineage

# The ProfileResult fields a DatasetProfile (api/profile.py) gives as they are.
PROFILE_FIELDS: Final = frozenset({"version", "rows", "columns", "target", "task_hint", "data_uri"})


class ProfileResult(CRModel):
    ok: bool
    version: str | None = None  # the content address (sha256 of files' bytes, schema, rules, window)
    rows: int | None = None
    columns: int | None = None
    target: str | None = None
    task_hint: Literal["classification", "regression"] | None = None
    profile_uri: str | None = None
    data_uri: str | None = None
    findings: Annotated[list[QualityFinding], Field(max_length=20)] = Field(default_factory=list)
    error: str | None = None
    reason: str | None = None
    # True: the listing matched the plan's current_listing_fingerprint; nothing was read or written and
    # `version` is the plan's current version.
    unchanged: bool | None = None
    listing_fingerprint: str | None = None  # of this run's listing (after the window) and rules
    lineage: VersionLineage | None = None  # what the version was made from
    # Retention after the run (plan.retention): versions deleted, and the first 16 characters of those
    # the plan's `recent` listed (status drops them); absent: none asked; a store error only logs.
    pruned_versions: int | None = None
    pruned_recent: Annotated[list[str], Field(max_length=100)] | None = None
    pruned_objects: int | None = None
    pruned_bytes: int | None = None


class GateSplit(CRModel):
    """The rows champion and challenger are compared on, and both scores on exactly those rows.

    They are the held-out split of the new dataset version (`TrainResult.rows_test` rows) minus every
    row the champion was trained on (matched by fingerprint, see docs/workloads.md).
    """

    overlap_checked: bool  # false: the champion has no training-row fingerprints; nothing was excluded
    rows_seen_by_champion: int | None = None  # held-out rows excluded; absent when not checked
    rows_scored: int  # rows_test - rows_seen_by_champion
    metrics: dict[str, float] = Field(default_factory=dict)  # the challenger on the scored rows
    champion_metrics: dict[str, float] | None = None  # the champion on the same rows; absent when none remain


class TrainResult(CRModel):
    ok: bool
    version: int | None = None
    metrics: dict[str, float] = Field(default_factory=dict)  # on the whole held-out split
    champion_metrics: dict[str, float] | None = None  # the champion on the whole held-out split
    gate_split: GateSplit | None = None  # present when the champion was scored
    artifact_uri: str | None = None
    sha256: str | None = None
    rows_train: int | None = None
    rows_test: int | None = None
    features: int | None = None
    seconds: float | None = None
    error: str | None = None
    reason: str | None = None


class DriftFeatureResult(CRModel):
    name: str
    test: DriftTest
    score: float | None = None
    threshold: float
    drifted: bool


class LiveQualityResult(LiveQualityCounts):
    """Labels joined to the quality window's predictions by id (`LiveQualityPlan.metric` is the
    headline metric; `value` None: not computable, see note), and the task's metrics on them."""

    invalid: int = 0  # labels (or predictions) that could not be read as the task's type
    metrics: dict[str, float] = Field(default_factory=dict)
    skipped: dict[str, str] = Field(default_factory=dict)  # metric -> why it was not computed
    note: str | None = None


# What a DriftMonitor's status.liveQuality and status.predictionDrift keep of the results as they are.
LIVE_QUALITY_FIELDS: Final = frozenset(LiveQualityCounts.model_fields)
PREDICTION_DRIFT_FIELDS: Final = frozenset(PredictionDriftTest.model_fields)


class PredictionDriftResult(PredictionDriftTest):
    note: str | None = None


class DriftResult(CRModel):
    ok: bool
    verdict: Literal["Drift", "NoDrift", "NotEnoughData", "SchemaMismatch", "Failed"]
    samples: int = 0
    drifted_share: float | None = None
    drifted_features: list[str] = Field(default_factory=list)
    scores: list[DriftFeatureResult] = Field(default_factory=list)
    report_uri: str | None = None
    result_uri: str | None = None
    message: str | None = None
    error: str | None = None
    reason: str | None = None
    quality: LiveQualityResult | None = None  # present when the plan asked for live quality
    prediction_drift: PredictionDriftResult | None = None  # present when the plan asked for it
    pruned_objects: int = 0  # deleted by retention after the check
    pruned_bytes: int = 0


class RegistryResult(CRModel):
    ok: bool
    stored: int = 0  # versions in registry.json after the merge
    highest_version: int | None = None
    # The newest stored records, newest first, as many as fit the termination message: what the
    # operator rebuilds status from when a Model comes back without one.
    versions: list[ModelVersion] = Field(default_factory=list)
    error: str | None = None
    reason: str | None = None
    # Retention after the mirror (plan.retention): artifact directories of versions, and with them and
    # any collected rows and labels, the objects and bytes deleted (absent: no retention asked); a
    # store error while pruning only logs.
    pruned_versions: int | None = None
    pruned_objects: int | None = None
    pruned_bytes: int | None = None


class NotifyResult(CRModel):
    ok: bool
    status: int | None = None  # the webhook's HTTP status, when it answered
    error: str | None = None
    reason: str | None = None
