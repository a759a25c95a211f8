"""Canary and Shadow analysis from real Prometheus text as the model server writes it."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from mlops_operator.api.v1alpha1.rollout import AnalysisSpec, RolloutSpec, ShadowSpec
from mlops_operator.reconcilers.model import analysis
from mlops_operator.reconcilers.model.analysis import Verdict
from mlops_operator.reconcilers.model.rollout import split
from mlops_operator.workloads.serve.metrics import ServeMetrics

T0 = datetime(2026, 1, 2, 3, 0, 0, tzinfo=UTC)
SPEC = AnalysisSpec(max_error_rate=0.05, max_p99_latency_seconds=0.25, min_requests=20)


def exposition(ok: int, errors: int = 0, seconds: float = 0.002, probes: int = 0) -> str:
    """What a real server's /metrics says after `ok` 200s and `errors` 500s of `seconds` each."""
    metrics = ServeMetrics()
    for _ in range(ok):
        metrics.observe_request("infer", 200, seconds)
    for _ in range(errors):
        metrics.observe_request("predict", 500, seconds)
    for _ in range(probes):  # health probes never count, however slow or failing
        metrics.observe_request("health", 503, 30.0)
    return metrics.exposition().decode()


def judge(text: str, after: float) -> analysis.Judgement:
    return analysis.judge(SPEC, analysis.parse(text), started=T0, now=T0 + timedelta(seconds=after), step_seconds=60)


def test_counts_only_inference_routes_and_5xx() -> None:
    scrape = analysis.parse(exposition(ok=30, errors=3, probes=50))
    assert (scrape.pods, scrape.requests, scrape.errors) == (1, 33, 3)
    sample = analysis.sample(scrape)
    assert sample.error_rate == pytest.approx(3 / 33, abs=1e-6)
    assert sample.p99_latency_seconds == 0.0025  # the bucket holding 2 ms


def test_a_good_candidate_waits_for_the_step_then_is_promoted() -> None:
    text = exposition(ok=100)
    waiting = judge(text, after=10)
    assert waiting.verdict == Verdict.WAIT
    assert waiting.wait_seconds == pytest.approx(50)
    assert judge(text, after=60).verdict == Verdict.PROMOTE


def test_too_few_requests_wait_even_after_the_step() -> None:
    judged = judge(exposition(ok=5, errors=5), after=600)
    assert judged.verdict == Verdict.WAIT
    assert "minRequests 20" in judged.message


def test_errors_roll_back_at_once_with_the_numbers() -> None:
    judged = judge(exposition(ok=18, errors=2), after=1)
    assert judged.verdict == Verdict.ROLL_BACK
    assert "error rate 10.00% over maxErrorRate 5.00%" in judged.message
    assert "20 requests, 2 5xx" in judged.message


def test_slow_answers_roll_back_and_beyond_the_last_bucket_is_said_so() -> None:
    assert judge(exposition(ok=40, seconds=0.4), after=1).verdict == Verdict.ROLL_BACK
    assert "p99 latency 0.5s over" in judge(exposition(ok=40, seconds=0.4), after=1).message
    beyond = judge(exposition(ok=40, seconds=9.0), after=1)
    assert beyond.verdict == Verdict.ROLL_BACK
    assert "over the last bucket" in beyond.message


def test_pods_add_up() -> None:
    both = analysis.total([analysis.parse(exposition(ok=10)), analysis.parse(exposition(ok=10, errors=10))])
    assert (both.pods, both.requests, both.errors) == (2, 30, 10)
    assert analysis.quantile_bound(both.buckets) == 0.0025


def test_quantile_bound_edges() -> None:
    assert analysis.quantile_bound({}) is None
    assert analysis.quantile_bound({0.1: 0.0, math.inf: 0.0}) is None
    assert analysis.quantile_bound({0.1: 98.0, 1.0: 99.0, math.inf: 100.0}) == 1.0
    assert analysis.quantile_bound({0.1: 50.0, 1.0: 98.0, math.inf: 100.0}) == math.inf


def test_malformed_exposition_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        analysis.parse('mlops_serve_requests_total{route="infer" 12\n')


def shadow_text(mirrored: int, failed: int, compared: int, agreed: int) -> str:
    lines = [
        f"mlops_serve_shadow_mirrored_total {mirrored}",
        f"mlops_serve_shadow_failed_total {failed}",
        f"mlops_serve_shadow_compared_rows_total {compared}",
        f"mlops_serve_shadow_agreed_rows_total {agreed}",
        "mlops_serve_shadow_abs_diff_total 0.5",
    ]
    return "".join(f"# TYPE {line.split()[0][:-6]} counter\n{line}\n" for line in lines)


def test_shadow_agreement_and_verdicts() -> None:
    spec = ShadowSpec(min_requests=100, min_agreement=0.9)
    seen = analysis.agreement(analysis.parse(shadow_text(200, 0, 200, 190)))
    assert (seen.mirrored, seen.compared_rows, seen.agreed_rows, seen.agreement) == (200, 200, 190, 0.95)
    assert seen.mean_abs_diff == pytest.approx(0.0025)
    assert analysis.judge_shadow(spec, seen, 0.01).verdict == Verdict.PROMOTE
    few = analysis.agreement(analysis.parse(shadow_text(50, 0, 50, 50)))
    assert analysis.judge_shadow(spec, few, 0.01).verdict == Verdict.WAIT
    disagreeing = analysis.agreement(analysis.parse(shadow_text(200, 0, 200, 100)))
    judged = analysis.judge_shadow(spec, disagreeing, 0.01)
    assert judged.verdict == Verdict.ROLL_BACK and "agreement 50.00% under minAgreement 90.00%" in judged.message
    failing = analysis.agreement(analysis.parse(shadow_text(200, 20, 180, 180)))
    assert analysis.judge_shadow(spec, failing, 0.01).verdict == Verdict.ROLL_BACK


@pytest.mark.parametrize(
    ("weight", "total", "expected"),
    [(10, 1, (1, 1)), (50, 1, (1, 1)), (10, 4, (1, 3)), (50, 4, (2, 2)), (90, 4, (4, 1)), (10, 10, (1, 9))],
)
def test_split_by_replicas_keeps_one_of_each(weight: int, total: int, expected: tuple[int, int]) -> None:
    assert split(weight, total) == expected


@pytest.mark.parametrize("steps", [[10, 50], [50, 10, 100], [10, 10, 100], [0, 100], [10, 101], []])
def test_steps_must_increase_to_100(steps: list[int]) -> None:
    with pytest.raises(ValidationError):
        RolloutSpec.model_validate({"strategy": "Canary", "steps": steps})


def test_rollout_defaults_are_replace() -> None:
    spec = RolloutSpec()
    assert spec.strategy == "Replace" and spec.steps == [10, 50, 100]
    assert RolloutSpec.model_validate({"steps": [100]}).steps == [100]
