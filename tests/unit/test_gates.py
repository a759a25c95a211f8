from __future__ import annotations

import pytest

from mlops_operator.api.v1alpha1.model import GateReason, ValidationSpec
from mlops_operator.reconcilers import gates


def spec(**kw: object) -> ValidationSpec:
    return ValidationSpec.model_validate(kw)


def test_no_champion_passes_on_threshold_alone() -> None:
    v = gates.evaluate(
        spec(metric="accuracy", threshold=0.9),
        {"accuracy": 0.95},
        champion_metrics=None,
        champion_version=None,
    )
    assert v.passed and v.reason == GateReason.PASSED and v.score == 0.95 and v.delta is None


def test_below_threshold_is_rejected_with_both_numbers_in_the_message() -> None:
    v = gates.evaluate(
        spec(metric="accuracy", threshold=0.9),
        {"accuracy": 0.8},
        champion_metrics=None,
        champion_version=None,
    )
    assert not v.passed and v.reason == GateReason.BELOW_THRESHOLD and "0.8" in v.message and "0.9" in v.message


def test_lower_is_better_metrics_flip_the_threshold() -> None:
    ok = gates.evaluate(spec(metric="rmse", threshold=10), {"rmse": 9.5}, champion_metrics=None, champion_version=None)
    bad = gates.evaluate(
        spec(metric="rmse", threshold=10), {"rmse": 10.5}, champion_metrics=None, champion_version=None
    )
    assert ok.passed and not bad.passed and bad.reason == GateReason.ABOVE_THRESHOLD


def test_must_beat_the_champion_strictly() -> None:
    tie = gates.evaluate(spec(), {"accuracy": 0.9}, champion_metrics={"accuracy": 0.9}, champion_version=2)
    worse = gates.evaluate(spec(), {"accuracy": 0.85}, champion_metrics={"accuracy": 0.9}, champion_version=2)
    better = gates.evaluate(spec(), {"accuracy": 0.93}, champion_metrics={"accuracy": 0.9}, champion_version=2)
    assert (tie.passed, worse.passed, better.passed) == (False, False, True)
    assert worse.reason == GateReason.NOT_BETTER and worse.delta == pytest.approx(-0.05)
    assert better.champion_score == 0.9 and better.delta == pytest.approx(0.03) and better.champion_version == 2


def test_delta_is_an_improvement_for_rmse_too() -> None:
    v = gates.evaluate(spec(metric="rmse"), {"rmse": 8.0}, champion_metrics={"rmse": 10.0}, champion_version=1)
    assert v.passed and v.delta == pytest.approx(2.0)


def test_absolute_minimum_improvement() -> None:
    s = spec(min_improvement=0.02)
    assert not gates.evaluate(s, {"accuracy": 0.91}, champion_metrics={"accuracy": 0.9}, champion_version=1).passed
    assert gates.evaluate(s, {"accuracy": 0.925}, champion_metrics={"accuracy": 0.9}, champion_version=1).passed


def test_relative_minimum_improvement() -> None:
    s = spec(metric="mae", min_improvement=0.1, improvement_mode="relative")
    small = gates.evaluate(s, {"mae": 9.5}, champion_metrics={"mae": 10.0}, champion_version=1)  # 5 %
    large = gates.evaluate(s, {"mae": 8.5}, champion_metrics={"mae": 10.0}, champion_version=1)  # 15 %
    assert small.reason == GateReason.INSUFFICIENT_IMPROVEMENT and large.passed


def test_must_beat_champion_off_passes_but_still_records_the_comparison() -> None:
    v = gates.evaluate(
        spec(must_beat_champion=False),
        {"accuracy": 0.5},
        champion_metrics={"accuracy": 0.9},
        champion_version=1,
    )
    assert v.passed
    assert v.champion_version == 1 and v.champion_score == 0.9
    assert v.delta == pytest.approx(-0.4)
    assert "vs champion v1" in v.message and "mustBeatChampion is off" in v.message


def test_missing_metric_and_unscored_champion_are_rejections_with_reasons() -> None:
    missing = gates.evaluate(spec(metric="f1"), {"accuracy": 0.9}, champion_metrics=None, champion_version=None)
    assert missing.reason == GateReason.METRIC_MISSING and "accuracy" in missing.message
    unscored = gates.evaluate(spec(), {"accuracy": 0.9}, champion_metrics=None, champion_version=4)
    assert unscored.reason == GateReason.CHAMPION_NOT_SCORED and not unscored.passed


def test_the_duel_is_judged_on_the_gate_split_and_the_threshold_on_the_whole_split() -> None:
    # Whole split: the champion (0.73) looks better; on the rows it never saw it loses (0.54 < 0.62).
    v = gates.evaluate(
        spec(metric="accuracy", threshold=0.6),
        {"accuracy": 0.68},
        champion_metrics={"accuracy": 0.54},
        champion_version=3,
        duel_metrics={"accuracy": 0.62},
        duel_rows=281,
    )
    assert v.passed and v.reason == GateReason.PASSED
    assert (v.score, v.champion_score) == (0.62, 0.54) and v.delta == pytest.approx(0.08)
    assert "281 held-out rows the champion never trained on" in v.message
    # The threshold still reads the whole split: 0.68 is below 0.7 whatever the duel says.
    below = gates.evaluate(
        spec(metric="accuracy", threshold=0.7),
        {"accuracy": 0.68},
        champion_metrics={"accuracy": 0.54},
        champion_version=3,
        duel_metrics={"accuracy": 0.95},
        duel_rows=281,
    )
    assert below.reason == GateReason.BELOW_THRESHOLD and below.score == 0.68


def test_a_duel_lost_on_the_gate_split_is_a_rejection_even_when_the_whole_split_wins() -> None:
    v = gates.evaluate(
        spec(),
        {"accuracy": 0.95},
        champion_metrics={"accuracy": 0.9},
        champion_version=2,
        duel_metrics={"accuracy": 0.85},
        duel_rows=100,
    )
    assert not v.passed and v.reason == GateReason.NOT_BETTER
    assert (v.score, v.champion_score) == (0.85, 0.9) and v.delta == pytest.approx(-0.05)


def test_a_missing_duel_score_is_champion_not_scored() -> None:
    v = gates.evaluate(
        spec(),
        {"accuracy": 0.95},
        champion_metrics={"accuracy": 0.9},
        champion_version=2,
        duel_metrics={"f1": 0.9},
        duel_rows=100,
    )
    assert not v.passed and v.reason == GateReason.CHAMPION_NOT_SCORED and v.score == 0.95


def test_no_row_left_to_compare_says_the_champion_trained_on_every_held_out_row() -> None:
    v = gates.evaluate(
        spec(), {"accuracy": 0.95}, champion_metrics=None, champion_version=2, duel_metrics={}, duel_rows=0
    )
    assert not v.passed and v.reason == GateReason.CHAMPION_NOT_SCORED
    assert "trained on every held-out row" in v.message and "mustBeatChampion" in v.message
    # mustBeatChampion off: the threshold alone decides, no comparison recorded.
    off = gates.evaluate(
        spec(must_beat_champion=False),
        {"accuracy": 0.95},
        champion_metrics=None,
        champion_version=2,
        duel_metrics={},
        duel_rows=0,
    )
    assert off.passed and off.champion_score is None and off.score == 0.95


def test_must_beat_champion_off_records_the_comparison_on_the_gate_split() -> None:
    v = gates.evaluate(
        spec(must_beat_champion=False),
        {"accuracy": 0.7},
        champion_metrics={"accuracy": 0.6},
        champion_version=1,
        duel_metrics={"accuracy": 0.65},
        duel_rows=50,
    )
    assert v.passed and (v.score, v.champion_score) == (0.65, 0.6) and v.delta == pytest.approx(0.05)
    assert "accuracy 0.7" in v.message and "50 held-out rows" in v.message
