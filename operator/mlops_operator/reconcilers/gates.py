"""The validation gate. Pure.

A version passes when its metric reaches the absolute threshold (if any) and, when a champion
serves and `mustBeatChampion` is set, beats the champion's score on the same rows by at least
`minImprovement` (absolute, or relative to the champion's score). "Beat" is strict: an equal
score does not replace a serving model.

The threshold is judged on `metrics` (the whole held-out split). The duel is judged on
`duel_metrics` when the workload reports a gate split (`TrainResult.gate_split`: the held-out rows
the champion never trained on, both models scored on exactly those rows), else on `metrics`
(older results, whose `champion_metrics` are on the whole split). The verdict's `score` and
`champion_score` are then on the same rows.

`delta` is the improvement over the champion, positive meaning better, whatever the metric's
direction (for rmse/mae it is champion - challenger).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from mlops_operator.api.v1alpha1.model import (
    LOWER_IS_BETTER,
    GateReason,
    GateVerdict,
    ImprovementMode,
    ValidationSpec,
)


def lower_is_better(metric: str) -> bool:
    return metric in LOWER_IS_BETTER


def improvement(metric: str, score: float, champion: float) -> float:
    return champion - score if lower_is_better(metric) else score - champion


def evaluate(
    spec: ValidationSpec,
    metrics: dict[str, float],
    *,
    champion_metrics: dict[str, float] | None,
    champion_version: int | None,
    duel_metrics: dict[str, float] | None = None,
    duel_rows: int | None = None,
) -> GateVerdict:
    """The verdict. `duel_metrics` / `duel_rows`: the challenger on the gate split and its size."""
    decision = _decide(spec, metrics, champion_metrics, champion_version, duel_metrics, duel_rows)
    return GateVerdict(
        passed=decision.reason == GateReason.PASSED,
        metric=spec.metric,
        champion_version=champion_version,
        **decision._asdict(),
    )


class Decision(NamedTuple):
    """What the gate decided, and on which scores: the verdict less what every verdict repeats."""

    reason: GateReason
    message: str
    score: float | None
    champion_score: float | None = None
    delta: float | None = None


def _decide(
    spec: ValidationSpec,
    metrics: dict[str, float],
    champion_metrics: dict[str, float] | None,
    champion_version: int | None,
    duel_metrics: dict[str, float] | None,
    duel_rows: int | None,
) -> Decision:
    metric = str(spec.metric)
    score = metrics.get(metric)
    if score is None:
        found = ", ".join(sorted(metrics)) or "none"
        return Decision(
            GateReason.METRIC_MISSING, f"the training result has no {metric} (metrics reported: {found})", None
        )
    refusal = _threshold_refusal(spec, metric, score)
    if refusal is not None:
        return Decision(*refusal, score)
    duel = duel_metrics.get(metric) if duel_metrics is not None else score
    champion = (champion_metrics or {}).get(metric)
    if champion_version is None or not spec.must_beat_champion:
        return _passed_without_duel(spec, metric, score, Duel(duel, champion, duel_rows), champion_version)
    if duel is None or champion is None:
        return Decision(GateReason.CHAMPION_NOT_SCORED, _not_scored(champion_version, duel_rows), score)
    return _against_champion(spec, metric, Duel(duel, champion, duel_rows), champion_version)


@dataclass(frozen=True)
class Duel:
    """Challenger and champion on the same rows (`rows`: the gate split's size, None: the whole split)."""

    score: float | None
    champion: float | None
    rows: int | None = None

    def where(self) -> str:
        return "" if self.rows is None else f" on the {self.rows} held-out rows the champion never trained on"


def _not_scored(champion_version: int, duel_rows: int | None) -> str:
    if duel_rows == 0:
        return (
            f"the champion v{champion_version} was trained on every held-out row of this dataset version, "
            "so there is no row to compare both on; add new rows to the dataset, or set "
            "validation.mustBeatChampion to false to let the threshold alone decide"
        )
    return (
        f"the champion v{champion_version} was not scored on the same rows, "
        "so the comparison cannot be made; check the training Job's logs for why "
        "the champion artifact could not be loaded"
    )


def _threshold_refusal(spec: ValidationSpec, metric: str, score: float) -> tuple[GateReason, str] | None:
    if spec.threshold is None:
        return None
    if lower_is_better(metric) and score > spec.threshold:
        above = f"{metric} {score:.6g} is above the threshold {spec.threshold:.6g} (lower is better)"
        return GateReason.ABOVE_THRESHOLD, above
    if not lower_is_better(metric) and score < spec.threshold:
        return GateReason.BELOW_THRESHOLD, f"{metric} {score:.6g} is below the threshold {spec.threshold:.6g}"
    return None


def _passed_without_duel(
    spec: ValidationSpec, metric: str, score: float, duel: Duel, champion_version: int | None
) -> Decision:
    """No champion serves, or mustBeatChampion is off: the threshold alone decides (and it passed)."""
    bar = f" (threshold {spec.threshold:.6g})" if spec.threshold is not None else ""
    if champion_version is not None and duel.score is not None and duel.champion is not None:
        # Not required, but recorded: both scores and the delta on the same rows.
        delta = improvement(metric, duel.score, duel.champion)
        whole = f"{metric} {score:.6g}{bar}; " if duel.rows is not None else ""
        message = (
            f"{whole}{metric} {duel.score:.6g} vs champion v{champion_version} {duel.champion:.6g}"
            f"{duel.where()} (improvement {delta:+.6g}); mustBeatChampion is off"
        )
        return Decision(GateReason.PASSED, message, duel.score, duel.champion, delta)
    why = "no champion is serving" if champion_version is None else "mustBeatChampion is off"
    return Decision(GateReason.PASSED, f"{metric} {score:.6g}{bar}; {why}", score)


def _against_champion(spec: ValidationSpec, metric: str, duel: Duel, champion_version: int) -> Decision:
    """mustBeatChampion: strictly better than the champion, by at least minImprovement."""
    assert duel.score is not None and duel.champion is not None
    score, champion = duel.score, duel.champion
    delta = improvement(metric, score, champion)
    if spec.improvement_mode == ImprovementMode.RELATIVE:
        gained = delta / abs(champion) if champion != 0 else (float("inf") if delta > 0 else 0.0)
        needed = f"{spec.min_improvement:.4g} relative"
    else:
        gained = delta
        needed = f"{spec.min_improvement:.6g}"
    comparison = (
        f"{metric} {score:.6g} vs champion v{champion_version} {champion:.6g}{duel.where()} (improvement {delta:+.6g})"
    )
    if delta <= 0:
        reason, message = GateReason.NOT_BETTER, f"{comparison}: does not beat the champion"
    elif gained < spec.min_improvement:
        reason, message = GateReason.INSUFFICIENT_IMPROVEMENT, f"{comparison}: below the required improvement {needed}"
    else:
        reason, message = GateReason.PASSED, f"{comparison}: beats the champion"
    return Decision(reason, message, score, champion, delta)
