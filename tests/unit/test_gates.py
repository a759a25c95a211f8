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
    ok = gates.evaluate(
        spec(metric="rmse", threshold=10), {"rmse": 9.5}, champion_metrics=None, champion_version=None
    )
    bad = gates.evaluate(
        spec(metric="rmse", threshold=10), {"rmse": 10.5}, champion_metrics=None, champion_version=None
    )
    assert ok.passed and not bad.passed and bad.reason == GateReason.ABOVE_THRESHOLD


def test_must_beat_the_champion_strictly() -> None:
    tie = gates.evaluate(spec(), {"accuracy": 0.9}, champion_metrics={"accuracy": 0.9}, champion_version=2)
    worse = gates.evaluate(spec(), {"accuracy": 0.85}, champion_metrics={"accuracy": 0.9}, champion_version=2)
    better = gates.evaluate(
        spec(), {"accuracy": 0.93}, champion_metrics={"accuracy": 0.9}, champion_version=2
    )
    assert (tie.passed, worse.passed, better.passed) == (False, False, True)
    assert worse.reason == GateReason.NOT_BETTER and worse.delta == pytest.approx(-0.05)
    assert (
        better.champion_score == 0.9 and better.delta == pytest.approx(0.03) and better.champion_version == 2
    )


def test_delta_is_an_improvement_for_rmse_too() -> None:
    v = gates.evaluate(
        spec(metric="rmse"), {"rmse": 8.0}, champion_metrics={"rmse": 10.0}, champion_version=1
    )
    assert v.passed and v.delta == pytest.approx(2.0)


def test_absolute_minimum_improvement() -> None:
    s = spec(min_improvement=0.02)
    assert not gates.evaluate(
        s, {"accuracy": 0.91}, champion_metrics={"accuracy": 0.9}, champion_version=1
    ).passed
    assert gates.evaluate(
        s, {"accuracy": 0.925}, champion_metrics={"accuracy": 0.9}, champion_version=1
    ).passed


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
    missing = gates.evaluate(
        spec(metric="f1"), {"accuracy": 0.9}, champion_metrics=None, champion_version=None
    )
    assert missing.reason == GateReason.METRIC_MISSING and "accuracy" in missing.message
    unscored = gates.evaluate(spec(), {"accuracy": 0.9}, champion_metrics=None, champion_version=4)
    assert unscored.reason == GateReason.CHAMPION_NOT_SCORED and not unscored.passed
