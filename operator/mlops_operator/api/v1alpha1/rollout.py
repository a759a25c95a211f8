"""spec.serving.rollout and status.rollout: how a new version replaces the serving one.

Replace (the default) rolls the server's Deployment to the new version. Canary runs the candidate in
a second Deployment behind the same Service and moves traffic to it step by step while its own
metrics stay within bounds; Shadow runs it beside the champion and mirrors a sample of live requests
to it, whose answers no client ever sees.
"""

from __future__ import annotations

import enum
import itertools
from datetime import datetime
from typing import Annotated

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from mlops_operator.api.base import CRModel, Message, cel

MAX_STEPS = 10
MAX_STEP_RECORDS = 20

# Increasing, 1..100 (the items' own bounds), the last one 100; CEL has no index range, so each
# index up to MAX_STEPS is listed.
_STEPS_RULES = (
    (
        f"!has(self.steps) || (self.steps[size(self.steps) - 1] == 100 && "
        f"{list(range(1, MAX_STEPS))}.all(i, i >= size(self.steps) || self.steps[i] > self.steps[i - 1]))",
        "rollout.steps must be increasing percentages and end with 100",
    ),
)


class RolloutStrategy(enum.StrEnum):
    REPLACE = "Replace"
    CANARY = "Canary"
    SHADOW = "Shadow"


class AnalysisSpec(CRModel):
    """The bounds a candidate must stay within, from the servers' own metrics (inference and /predict
    requests only)."""

    max_error_rate: float = Field(default=0.01, ge=0.0, le=1.0)
    """Most share of the candidate's requests answered 5xx."""
    max_p99_latency_seconds: float = Field(default=1.0, gt=0.0, le=60.0)
    """Most 99th-percentile latency of the candidate (the upper bound of the histogram bucket it falls in)."""
    min_requests: int = Field(default=20, ge=1, le=1_000_000)
    """Requests the candidate must have answered before a step can be promoted; a bound is judged only
    once it has this many."""


class ShadowSpec(CRModel):
    """What the champion mirrors to the shadowed candidate."""

    sample_percent: float = Field(default=100.0, gt=0.0, le=100.0)
    """Share of live inference requests mirrored, decided per request."""
    min_requests: int = Field(default=100, ge=1, le=1_000_000)
    """Mirrored requests compared before the candidate may be promoted."""
    min_agreement: float = Field(default=0.95, ge=0.0, le=1.0)
    """Least share of compared rows on which the candidate agrees with the champion (same class; for a
    regressor, within maxAbsDiff)."""
    max_abs_diff: float = Field(default=0.0, ge=0.0, le=1e12)
    """A regressor's rows agree when their predictions differ by at most this."""


class RolloutSpec(CRModel):
    """How a new version replaces the serving one."""

    model_config = ConfigDict(json_schema_extra=cel(*_STEPS_RULES))

    strategy: RolloutStrategy = RolloutStrategy.REPLACE
    """Replace: roll the server to the new version. Canary: traffic moves step by step to a second
    Deployment (by replica ratio). Shadow: the candidate only receives mirrored requests."""
    steps: Annotated[list[Annotated[int, Field(ge=1, le=100)]], Field(min_length=1, max_length=MAX_STEPS)] = Field(
        default_factory=lambda: [10, 50, 100]
    )
    """Canary: the candidate's share of the server pods at each step, in percent, increasing, ending
    with 100 (the promotion). With N replicas the achievable shares are k/N (at least one pod each)."""
    step_duration_seconds: int = Field(default=60, ge=5, le=24 * 3600)
    """Canary: least time at each step before it is judged (a bound broken earlier rolls back at once)."""
    analysis: AnalysisSpec = Field(default_factory=AnalysisSpec)
    """Canary: the bounds on the candidate's error rate and latency."""
    shadow: ShadowSpec = Field(default_factory=ShadowSpec)
    """Shadow: the mirrored share and the agreement the candidate needs."""

    @model_validator(mode="after")
    def _steps_increase_to_100(self) -> RolloutSpec:
        steps = self.steps
        if steps[-1] != 100 or any(b <= a for a, b in itertools.pairwise(steps)):
            raise ValueError("rollout.steps must be increasing percentages and end with 100")
        return self


class TrafficSample(CRModel):
    """One side's numbers, read from its pods' /metrics."""

    pods: int = 0
    """Pods scraped."""
    requests: int = 0
    """Inference and /predict requests answered."""
    errors: int = 0
    """Those answered 5xx."""
    error_rate: float | None = None
    """errors / requests."""
    p99_latency_seconds: float | None = None
    """The 99th percentile's histogram bucket bound (null: no request yet or beyond the last bucket)."""


class RolloutStep(CRModel):
    """One Canary step: its traffic split and the analysis that judged it."""

    step: int
    """Index in spec.serving.rollout.steps, from 0."""
    weight: int
    """The step's asked share, in percent."""
    canary_replicas: int
    """Candidate pods at this step."""
    stable_replicas: int
    """Champion pods at this step."""
    candidate: TrafficSample | None = None
    """The candidate's numbers when the step was judged."""
    champion: TrafficSample | None = None
    """The champion's numbers when the step was judged."""
    verdict: Annotated[str, Field(max_length=32)] | None = None
    """Promoted or RolledBack."""
    message: Message | None = None
    """The verdict with its numbers."""
    started_at: datetime | None = None
    """When the step's candidate pods were all available."""
    judged_at: datetime | None = None
    """When it was judged."""


MetricName = Annotated[str, StringConstraints(max_length=32)]
MetricValues = Annotated[dict[MetricName, float], Field(max_length=16)]


class ShadowLiveQuality(CRModel):
    """A Shadow rollout's candidate and the champion on the same labelled rows: the answers the
    mirroring champion recorded by prediction id (both models' to each mirrored row), joined to the
    labels like the champion's collected predictions by a DriftMonitor's check (docs/drift.md)."""

    version: Annotated[str, StringConstraints(max_length=64)]
    """The candidate's version (the newest one recorded in the quality window)."""
    champion_version: Annotated[str, StringConstraints(max_length=64)] | None = None
    """The champion that mirrored the rows."""
    metric: MetricName
    """The same metric as the champion's live quality."""
    value: float | None = None
    """The candidate's value on the labelled rows; omitted when it could not be computed (see message)."""
    champion_value: float | None = None
    """The champion's value on exactly the same rows."""
    labelled: int = 0
    """Recorded rows with a label that both models answered validly (the metrics' n)."""
    predictions: int = 0
    """Rows of this candidate recorded in the quality window."""
    metrics: MetricValues = Field(default_factory=dict)
    """Every metric of the task the candidate's answers gave (roc_auc needs probabilities: never here)."""
    champion_metrics: MetricValues = Field(default_factory=dict)
    """The champion's, on the same rows."""
    message: Message | None = None
    """Why a value is missing, or what was left out (rows of an older candidate)."""


class ShadowAgreement(CRModel):
    """The champion's comparison of its answers with the candidate's on mirrored requests."""

    mirrored: int = 0
    """Requests mirrored to the candidate."""
    dropped: int = 0
    """Requests not mirrored because the queue was full."""
    failed: int = 0
    """Mirrored requests the candidate did not answer 200 (or not in time)."""
    compared_rows: int = 0
    """Rows whose predictions were compared."""
    agreed_rows: int = 0
    """Compared rows on which both agreed."""
    agreement: float | None = None
    """agreedRows / comparedRows."""
    mean_abs_diff: float | None = None
    """A regressor's mean |candidate - champion| over the compared rows."""
    live_quality: ShadowLiveQuality | None = None
    """Both models scored with the feedback labels on the same rows, as the latest check of a DriftMonitor
    of this Model reported them for this candidate (its status.liveQuality.shadow); omitted: none yet.
    Informational: promotion is judged on agreement."""


class RolloutPhase(enum.StrEnum):
    PROGRESSING = "Progressing"
    PROMOTED = "Promoted"
    ROLLED_BACK = "RolledBack"


class RolloutStatus(CRModel):
    """The latest Canary or Shadow rollout."""

    strategy: RolloutStrategy
    """Canary or Shadow."""
    candidate: int
    """The version rolled out."""
    stable: int
    """The version serving beside it (the champion)."""
    phase: RolloutPhase = RolloutPhase.PROGRESSING
    """Progressing, Promoted or RolledBack."""
    step: int = 0
    """Canary: the current step's index."""
    weight: int = 0
    """Canary: the candidate's actual share of the server pods, in percent (k of N pods)."""
    traffic_split: Annotated[str, Field(max_length=256)] = "by replica ratio"
    """How traffic is split: by replica ratio behind one Service (each pod takes an equal share)."""
    steps: Annotated[list[RolloutStep], Field(max_length=MAX_STEP_RECORDS)] = Field(default_factory=list)
    """Canary: each step's split and analysis, oldest first."""
    shadow: ShadowAgreement | None = None
    """Shadow: the agreement read from the champion's metrics."""
    message: Message | None = None
    """What the rollout is doing or why it ended."""
    updated_at: datetime | None = None
    """When it last changed."""
