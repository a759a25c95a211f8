"""Prometheus metrics of the server.

With several worker processes (`--workers N`) the parent sets PROMETHEUS_MULTIPROC_DIR before any
worker imports prometheus_client, and `/metrics` aggregates every worker's files.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 10000)


def _store_writer_counters(name: str, what: str, registry: CollectorRegistry) -> tuple[Counter, Counter]:
    """Written and dropped (by reason) counters of one of the server's buffered store writers (the
    collector, the label writer): `mlops_serve_<name>_written` and `..._dropped`."""
    written = Counter(f"mlops_serve_{name}_written", f"{what} written to the store", registry=registry)
    dropped = Counter(
        f"mlops_serve_{name}_dropped", f"{what} dropped (buffer full or store error)", ["reason"], registry=registry
    )
    return written, dropped


class ServeMetrics:
    def __init__(self) -> None:
        # Each server owns a registry, so tests can run several in one process.
        self.registry = CollectorRegistry()
        self._multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        reg = self.registry
        self.requests = Counter(
            "mlops_serve_requests", "HTTP requests by route and status code", ["route", "code"], registry=reg
        )
        self.latency = Histogram(
            "mlops_serve_request_duration_seconds",
            "Request latency",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.batch_rows = Histogram(
            "mlops_serve_batch_rows", "Rows per prediction request", buckets=BATCH_BUCKETS, registry=reg
        )
        self.predictions = Counter("mlops_serve_predictions", "Rows predicted", registry=reg)
        self.collector_written, self.collector_dropped = _store_writer_counters("collector_rows", "Scoring rows", reg)
        self.collector_truncated = Counter(
            "mlops_serve_collector_values_truncated",
            "Collected string values cut to the per-value limit",
            registry=reg,
        )
        self.labels_written, self.labels_dropped = _store_writer_counters("labels", "Feedback labels", reg)
        self._request_children: dict[tuple[str, int], Counter] = {}
        self._latency_children: dict[str, Histogram] = {}

    def observe_request(self, route: str, code: int, seconds: float) -> None:
        # labels() hashes and locks on every call; cache the children on the hot path.
        key = (route, code)
        counter = self._request_children.get(key)
        if counter is None:
            counter = self._request_children[key] = self.requests.labels(route, str(code))
        counter.inc()
        hist = self._latency_children.get(route)
        if hist is None:
            hist = self._latency_children[route] = self.latency.labels(route)
        hist.observe(seconds)

    def observe_batch(self, rows: int) -> None:
        self.batch_rows.observe(rows)
        self.predictions.inc(rows)

    def exposition(self) -> bytes:
        if self._multiprocess:
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)
