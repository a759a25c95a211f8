"""The operator's own Prometheus metrics (the model server exports its own).

One registry per Metrics instance, so tests and in-process runs never collide on global names.
Series labelled with one object (a Model's serving version, a DriftMonitor's scores) are removed
when that object is deleted (`forget`), so a cluster with churn does not grow them without bound.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.metrics import MetricWrapperBase

from mlops_operator import __version__

M = TypeVar("M", bound=MetricWrapperBase)
RECONCILE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
MONITOR_LABELS = ("namespace", "monitor", "model")
MODEL_LABELS = ("namespace", "model")
# The label that names the object a series belongs to, per kind.
OWNER_LABEL = {"Model": "model", "DriftMonitor": "monitor"}


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self._owned: list[tuple[MetricWrapperBase, tuple[str, ...], str]] = []  # (metric, labels, owner label)
        self.reconciles = Counter(
            "mlops_reconcile_total", "Reconciles by kind and result", ["kind", "result"], registry=self.registry
        )
        self.reconcile_seconds = Histogram(
            "mlops_reconcile_duration_seconds",
            "Time spent in one reconcile",
            ["kind"],
            registry=self.registry,
            buckets=RECONCILE_BUCKETS,
        )
        self.jobs_created = Counter(
            "mlops_jobs_created_total", "Jobs created by component", ["component"], registry=self.registry
        )
        self.last_resync = Gauge(
            "mlops_last_resync_timestamp_seconds", "Unix time of the last successful resync", registry=self.registry
        )
        self.build = Info("mlops_operator_build", "Version of the running operator", registry=self.registry)
        self.build.info({"version": __version__, "python_version": platform.python_version()})
        self._queue = _QueueDepth()
        self.registry.register(self._queue)
        self._drift_metrics()
        self._model_metrics()

    def _drift_metrics(self) -> None:
        """Series of one DriftMonitor (its `model` label says which Model it watches)."""
        self.drift_feature_score = self._monitor_gauge(
            "mlops_drift_feature_score", "Latest drift score per feature", "feature", "test"
        )
        self.drift_feature_drifted = self._monitor_gauge(
            "mlops_drift_feature_drifted", "1 when the feature drifted at the latest check", "feature"
        )
        self.drift_share = self._monitor_gauge("mlops_drift_share", "Share of drifted features at the latest check")
        self.drift_detected = self._monitor_gauge(
            "mlops_drift_detected", "1 when the latest check of the monitor found dataset drift"
        )
        self.live_quality = self._monitor_gauge(
            "mlops_live_quality", "Live metric on the labelled predictions at the latest check", "metric"
        )
        self.live_quality_labels = self._monitor_gauge(
            "mlops_live_quality_labelled", "Labelled predictions behind mlops_live_quality"
        )
        self.prediction_drift_score = self._monitor_gauge(
            "mlops_prediction_drift_score", "Prediction drift score at the latest check", "test"
        )
        self.trigger_fired = self._monitor_gauge(
            "mlops_drift_trigger_fired", "1 when the trigger fired at the latest check", "trigger"
        )
        self.retrain_requests = self._owned_metric(
            Counter,
            "mlops_retrain_requests_total",
            "Retrain requests made by DriftMonitors",
            MONITOR_LABELS,
            owner="monitor",
        )

    def _model_metrics(self) -> None:
        """Series of one Model."""
        self.training_failures = self._owned_metric(
            Counter,
            "mlops_model_training_failures_total",
            "Training runs that ended Failed (the PrometheusRule alerts on it)",
            MODEL_LABELS,
            owner="model",
        )
        self.serving_version = self._owned_metric(
            Gauge, "mlops_model_serving_version", "Version each Model serves", MODEL_LABELS, owner="model"
        )
        self.rollout_failures = self._owned_metric(
            Counter,
            "mlops_model_rollout_failures_total",
            "Versions rolled back because their rollout failed (the PrometheusRule alerts on it)",
            MODEL_LABELS,
            owner="model",
        )
        self.awaiting_approval_since = self._owned_metric(
            Gauge,
            "mlops_model_awaiting_approval_since_timestamp_seconds",
            "When the version waiting for spec.approvedVersion passed validation (absent: none waits)",
            MODEL_LABELS,
            owner="model",
        )

    def watch_queue(self, depth: Callable[[], Mapping[str, int]]) -> None:
        """Export `depth()` (keys waiting per lane of the work queue) at every scrape."""
        self._queue.depth = depth

    def _monitor_gauge(self, name: str, documentation: str, *extra_labels: str) -> Gauge:
        return self._owned_metric(Gauge, name, documentation, (*MONITOR_LABELS, *extra_labels), owner="monitor")

    def _owned_metric(self, kind: type[M], name: str, documentation: str, labels: Sequence[str], *, owner: str) -> M:
        """A metric whose series `forget` removes with the object named by its `owner` label."""
        metric = kind(name, documentation, labels, registry=self.registry)
        self._owned.append((metric, tuple(labels), owner))
        return metric

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

    def record_live_quality(
        self,
        namespace: str,
        monitor: str,
        model: str,
        *,
        quality: tuple[str, float | None, int] | None,
        prediction_drift: tuple[str, float | None] | None,
        fired: Sequence[str] | None,
        triggers: Sequence[str] = ("inputDrift", "predictionDrift", "performance"),
    ) -> None:
        """Live quality (metric, value, labelled), prediction drift (test, score) and which triggers
        fired; None leaves a series alone."""
        if quality is not None and quality[1] is not None:
            self.live_quality.labels(namespace, monitor, model, quality[0]).set(quality[1])
            self.live_quality_labels.labels(namespace, monitor, model).set(quality[2])
        if prediction_drift is not None and prediction_drift[1] is not None:
            self.prediction_drift_score.labels(namespace, monitor, model, prediction_drift[0]).set(prediction_drift[1])
        for trigger in triggers if fired is not None else ():
            self.trigger_fired.labels(namespace, monitor, model, trigger).set(1.0 if trigger in (fired or ()) else 0.0)

    def forget(self, kind: str, namespace: str, name: str) -> int:
        """Remove every series that belongs to the object (kind, namespace, name); returns how many.

        A Model's series carry `model`, a DriftMonitor's carry `monitor` (their `model` label only
        says which Model the monitor watches, so deleting that Model leaves them alone).
        """
        owner = OWNER_LABEL.get(kind)
        removed = 0
        for metric, labels, owned_by in self._owned:
            if owned_by != owner:
                continue
            for values in _label_values(metric, labels):
                series = dict(zip(labels, values, strict=True))
                if series["namespace"] == namespace and series[owner] == name:
                    metric.remove(*values)
                    removed += 1
        return removed

    def serve(self, port: int) -> None:
        start_http_server(port, registry=self.registry)


class _QueueDepth:
    """mlops_workqueue_depth, read from the queue when scraped (nothing to keep in step)."""

    def __init__(self) -> None:
        self.depth: Callable[[], Mapping[str, int]] = dict

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily("mlops_workqueue_depth", "Objects waiting for a reconcile, by lane", labels=["lane"])
        for lane, count in sorted(self.depth().items()):
            family.add_metric([lane], count)
        yield family


def _label_values(metric: MetricWrapperBase, labels: Sequence[str]) -> set[tuple[str, ...]]:
    """The label values of every series `metric` holds (read through the public `collect`)."""
    found = set()
    for family in metric.collect():
        for sample in family.samples:
            if all(label in sample.labels for label in labels):
                found.add(tuple(sample.labels[label] for label in labels))
    return found
