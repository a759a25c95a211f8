"""The operator's own Prometheus metrics (the model server exports its own).

One registry per Metrics instance, so tests and in-process runs never collide on global names.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.reconciles = Counter(
            "mlops_reconcile_total",
            "Reconciles by kind and result",
            ["kind", "result"],
            registry=self.registry,
        )
        self.reconcile_seconds = Histogram(
            "mlops_reconcile_duration_seconds",
            "Time spent in one reconcile",
            ["kind"],
            registry=self.registry,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.jobs_created = Counter(
            "mlops_jobs_created_total", "Jobs created by component", ["component"], registry=self.registry
        )
        self.drift_feature_score = Gauge(
            "mlops_drift_feature_score",
            "Latest drift score per feature",
            ["namespace", "monitor", "model", "feature", "test"],
            registry=self.registry,
        )
        self.drift_feature_drifted = Gauge(
            "mlops_drift_feature_drifted",
            "1 when the feature drifted at the latest check",
            ["namespace", "monitor", "model", "feature"],
            registry=self.registry,
        )
        self.drift_share = Gauge(
            "mlops_drift_share",
            "Share of drifted features at the latest check",
            ["namespace", "monitor", "model"],
            registry=self.registry,
        )
        self.drift_detected = Gauge(
            "mlops_drift_detected",
            "1 when the latest check of the monitor found dataset drift",
            ["namespace", "monitor", "model"],
            registry=self.registry,
        )
        self.training_failures = Counter(
            "mlops_model_training_failures_total",
            "Training runs that ended Failed (the PrometheusRule alerts on it)",
            ["namespace", "model"],
            registry=self.registry,
        )
        self.retrain_requests = Counter(
            "mlops_retrain_requests_total",
            "Retrain requests made by DriftMonitors",
            ["namespace", "monitor", "model"],
            registry=self.registry,
        )
        self.serving_version = Gauge(
            "mlops_model_serving_version",
            "Version each Model serves",
            ["namespace", "model"],
            registry=self.registry,
        )
        self.last_resync = Gauge(
            "mlops_last_resync_timestamp_seconds",
            "Unix time of the last successful resync",
            registry=self.registry,
        )

    def record_drift(
        self,
        namespace: str,
        monitor: str,
        model: str,
        scores: Iterable[tuple[str, str, float | None, bool]],
        share: float | None,
        verdict: str | None = None,
    ) -> None:
        for feature, test, score, drifted in scores:
            if score is not None:
                self.drift_feature_score.labels(namespace, monitor, model, feature, test).set(score)
            self.drift_feature_drifted.labels(namespace, monitor, model, feature).set(1.0 if drifted else 0.0)
        if share is not None:
            self.drift_share.labels(namespace, monitor, model).set(share)
        if verdict is not None:
            self.drift_detected.labels(namespace, monitor, model).set(1.0 if verdict == "Drift" else 0.0)

    def serve(self, port: int) -> None:
        start_http_server(port, registry=self.registry)
