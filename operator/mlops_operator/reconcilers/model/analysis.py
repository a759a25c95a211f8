"""Canary analysis, pure: the servers' Prometheus text → numbers → a verdict.

Each model server exposes `mlops_serve_requests_total{route, code}` and the histogram
`mlops_serve_request_duration_seconds{route}` (workloads/serve/metrics.py). Only inference and
/predict requests count: health probes and scrapes would dilute an error rate. The counters are each
pod's since it started, so a side's numbers are its pods' sums; p99 is the upper bound of the
histogram bucket the 99th percentile falls in (conservative: never under the true value).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client.parser import text_string_to_metric_families

from mlops_operator.api.v1alpha1.rollout import AnalysisSpec, ShadowAgreement, ShadowSpec, TrafficSample

SCORED_ROUTES = frozenset({"infer", "predict"})
REQUESTS = "mlops_serve_requests"
LATENCY = "mlops_serve_request_duration_seconds"
SHADOW_PREFIX = "mlops_serve_shadow_"
QUANTILE = 0.99


@dataclass
class Scrape:
    """One or more pods' counters, added up."""

    pods: int = 0
    requests: float = 0.0
    errors: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)  # le → cumulative count
    shadow: dict[str, float] = field(default_factory=dict)  # mlops_serve_shadow_<name>_total → value

    def add(self, other: Scrape) -> Scrape:
        buckets = dict(self.buckets)
        for le, count in other.buckets.items():
            buckets[le] = buckets.get(le, 0.0) + count
        shadow = dict(self.shadow)
        for name, value in other.shadow.items():
            shadow[name] = shadow.get(name, 0.0) + value
        return Scrape(
            self.pods + other.pods, self.requests + other.requests, self.errors + other.errors, buckets, shadow
        )


def parse(text: str) -> Scrape:
    """One pod's /metrics; a malformed exposition raises ValueError."""
    scrape = Scrape(pods=1)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == f"{REQUESTS}_total" and labels.get("route") in SCORED_ROUTES:
                scrape.requests += sample.value
                if labels.get("code", "").startswith("5"):
                    scrape.errors += sample.value
            elif sample.name == f"{LATENCY}_bucket" and labels.get("route") in SCORED_ROUTES:
                le = float(labels["le"])
                scrape.buckets[le] = scrape.buckets.get(le, 0.0) + sample.value
            elif sample.name.startswith(SHADOW_PREFIX) and sample.name.endswith("_total"):
                scrape.shadow[sample.name] = scrape.shadow.get(sample.name, 0.0) + sample.value
    return scrape


def total(scrapes: Iterable[Scrape]) -> Scrape:
    result = Scrape()
    for scrape in scrapes:
        result = result.add(scrape)
    return result


def quantile_bound(buckets: dict[float, float], q: float = QUANTILE) -> float | None:
    """The upper bound of the bucket holding the q-quantile; None without observations, inf beyond
    the last finite bucket."""
    if not buckets:
        return None
    ordered = sorted(buckets.items())
    count = ordered[-1][1]
    if count <= 0:
        return None
    for le, cumulative in ordered:
        if cumulative >= q * count:
            return le
    return math.inf


def sample(scrape: Scrape) -> TrafficSample:
    p99 = quantile_bound(scrape.buckets)
    return TrafficSample(
        pods=scrape.pods,
        requests=int(scrape.requests),
        errors=int(scrape.errors),
        error_rate=round(scrape.errors / scrape.requests, 6) if scrape.requests else None,
        p99_latency_seconds=None if p99 is None or math.isinf(p99) else p99,
    )


class Verdict(enum.StrEnum):
    WAIT = "Wait"
    PROMOTE = "Promoted"
    ROLL_BACK = "RolledBack"


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    message: str
    wait_seconds: float = 0.0


def judge(spec: AnalysisSpec, candidate: Scrape, *, started: datetime, now: datetime, step_seconds: int) -> Judgement:
    """A step's verdict: a broken bound rolls back at once (once minRequests were answered), a step
    is promoted after stepDuration with enough requests within bounds, otherwise it waits."""
    requests, errors = int(candidate.requests), int(candidate.errors)
    p99 = quantile_bound(candidate.buckets)
    numbers = f"{requests} requests, {errors} 5xx"
    if requests >= spec.min_requests:
        rate = errors / requests
        if rate > spec.max_error_rate:
            return Judgement(
                Verdict.ROLL_BACK, f"error rate {rate:.2%} over maxErrorRate {spec.max_error_rate:.2%} ({numbers})"
            )
        if p99 is not None and p99 > spec.max_p99_latency_seconds:
            shown = "over the last bucket" if math.isinf(p99) else f"{p99:g}s"
            return Judgement(
                Verdict.ROLL_BACK,
                f"p99 latency {shown} over maxP99LatencySeconds {spec.max_p99_latency_seconds:g}s ({numbers})",
            )
    remaining = step_seconds - (now - started).total_seconds()
    if remaining > 0:
        return Judgement(Verdict.WAIT, f"{numbers}; judged in {remaining:.0f}s", remaining)
    if requests < spec.min_requests:
        return Judgement(Verdict.WAIT, f"{numbers}: waiting for minRequests {spec.min_requests}", float(step_seconds))
    shown = "n/a" if p99 is None else f"{p99:g}s"
    return Judgement(Verdict.PROMOTE, f"{numbers} (error rate {errors / requests:.2%}), p99 {shown}: within bounds")


def agreement(scrape: Scrape) -> ShadowAgreement:
    """The champion's shadow counters (workloads/serve/mirror.py) as status."""

    def value(name: str) -> int:
        return int(scrape.shadow.get(f"{SHADOW_PREFIX}{name}_total", 0.0))

    compared, agreed = value("compared_rows"), value("agreed_rows")
    diff = scrape.shadow.get(f"{SHADOW_PREFIX}abs_diff_total")
    return ShadowAgreement(
        mirrored=value("mirrored"),
        dropped=value("dropped"),
        failed=value("failed"),
        compared_rows=compared,
        agreed_rows=agreed,
        agreement=round(agreed / compared, 6) if compared else None,
        mean_abs_diff=round(diff / compared, 9) if compared and diff is not None else None,
    )


def judge_shadow(spec: ShadowSpec, seen: ShadowAgreement, max_failed_rate: float) -> Judgement:
    """A shadowed candidate may be promoted once minRequests were compared with enough agreement; it
    is rolled back when it fails more than `max_failed_rate` of the mirrored requests (5xx, timeout)."""
    counts = f"{seen.mirrored} mirrored, {seen.compared_rows} rows compared, {seen.failed} failed"
    if seen.mirrored >= spec.min_requests and seen.failed / seen.mirrored > max_failed_rate:
        return Judgement(
            Verdict.ROLL_BACK,
            f"the candidate failed {seen.failed / seen.mirrored:.2%} of mirrored requests, over maxErrorRate "
            f"{max_failed_rate:.2%} ({counts})",
        )
    compared_requests = seen.mirrored - seen.failed
    if compared_requests < spec.min_requests or seen.agreement is None:
        return Judgement(Verdict.WAIT, f"{counts}: waiting for minRequests {spec.min_requests}", 10.0)
    if seen.agreement < spec.min_agreement:
        return Judgement(
            Verdict.ROLL_BACK, f"agreement {seen.agreement:.2%} under minAgreement {spec.min_agreement:.2%} ({counts})"
        )
    return Judgement(Verdict.PROMOTE, f"agreement {seen.agreement:.2%} ({counts}): within bounds")
