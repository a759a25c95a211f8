"""A real Prometheus (hack/build-binaries.sh) on 127.0.0.1 scrapes the in-process operator and the model
servers' pods, with the chart's own scrape settings (the ServiceMonitor's honorLabels, the PodMonitor's
port, path and relabelings) and the chart's PrometheusRule. A served model gets drifted traffic:
MlopsDriftDetected fires for the test's namespace, every Grafana dashboard query returns data, and
after the DriftMonitor is deleted its series are gone and the alert clears."""

from __future__ import annotations

import json
import math
import socket
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import start_http_server

from mlops_operator.api.v1alpha1 import DriftMonitor
from mlops_operator.kube import DRIFT_MONITOR
from mlops_operator.metrics import Metrics
from tests.contract.test_chart import by_kind, render
from tests.contract.test_prometheus_rules import dashboard_queries
from tests.e2e.conftest import CACHE
from tests.e2e.conftest import Cluster as E2eCluster
from tests.e2e.test_drift_loop import Traffic, serve_breast_cancer_classifier, shifted, verdict
from tests.e2e.test_model_lifecycle import records
from tests.integration.reconcile_harness import Cluster, eventually, monitor_spec, resource

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
PROMETHEUS = CACHE / "bin" / "prometheus"
HELM = CACHE / "bin" / "helm"
SCRAPE = "2s"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def chart_monitoring() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The chart's ServiceMonitor, PodMonitor and rules (drift alert after 10 s, not 5 min)."""
    objects = render(
        str(HELM),
        *("--set", "monitoring.serviceMonitor.enabled=true", "--set", "monitoring.podMonitor.enabled=true"),
        *("--set", "monitoring.prometheusRule.enabled=true", "--set", "monitoring.prometheusRule.driftFor=10s"),
    )
    (service_monitor,) = by_kind(objects, "ServiceMonitor")
    (pod_monitor,) = by_kind(objects, "PodMonitor")
    (rule,) = by_kind(objects, "PrometheusRule")
    return service_monitor, pod_monitor, {"groups": rule["spec"]["groups"]}


def scrape_config(operator_port: int, kubeconfig: str, namespace: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """What the Prometheus Operator makes of the chart's monitors, for a Prometheus outside the cluster:
    the operator (in this process) as a static target, the servers found with kubernetes_sd."""
    service_monitor, pod_monitor, rules = chart_monitoring()
    endpoint = pod_monitor["spec"]["podMetricsEndpoints"][0]
    relabel = [
        {"source_labels": ["__meta_kubernetes_pod_container_port_name"], "regex": endpoint["port"], "action": "keep"},
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
    ] + [{"source_labels": r["sourceLabels"], "target_label": r["targetLabel"]} for r in endpoint["relabelings"]]
    selector = ",".join(f"{k}={v}" for k, v in pod_monitor["spec"]["selector"]["matchLabels"].items())
    servers = {
        "job_name": "model-servers",
        "metrics_path": endpoint["path"],
        "honor_labels": bool(endpoint.get("honorLabels", False)),
        "kubernetes_sd_configs": [
            {
                "role": "pod",
                "kubeconfig_file": kubeconfig,
                "namespaces": {"names": [namespace]},
                "selectors": [{"role": "pod", "label": selector}],
            }
        ],
        "relabel_configs": relabel,
    }
    operator = {
        "job_name": "mlops-operator",
        "honor_labels": service_monitor["spec"]["endpoints"][0]["honorLabels"],
        "static_configs": [{"targets": [f"127.0.0.1:{operator_port}"], "labels": {"namespace": "mlops-system"}}],
    }
    config = {
        "global": {"scrape_interval": SCRAPE, "evaluation_interval": SCRAPE},
        "rule_files": ["rules.yaml"],
        "scrape_configs": [operator, servers],
    }
    return config, rules


@dataclass
class Prometheus:
    url: str

    def get(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=10) as response:
            body = json.loads(response.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return list(self.get("/api/v1/query", query=expr)["result"])

    def alerts(self, name: str, state: str = "firing") -> list[dict[str, str]]:
        found = self.get("/api/v1/alerts")["alerts"]
        return [a["labels"] for a in found if a["labels"]["alertname"] == name and a["state"] == state]

    def targets_up(self, job: str) -> bool:
        active = self.get("/api/v1/targets", state="active")["activeTargets"]
        return any(t["labels"]["job"] == job and t["health"] == "up" for t in active)


def _ready(prom: Prometheus) -> bool:
    try:
        with urllib.request.urlopen(f"{prom.url}/-/ready", timeout=5) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@pytest.fixture
def prometheus(cluster: E2eCluster, live: Cluster, tmp_path: Path) -> Iterator[Prometheus]:
    if not PROMETHEUS.exists():
        pytest.skip("prometheus is not built yet: run `make binaries`")
    port = free_port()
    metrics: Metrics = live.metrics  # type: ignore[attr-defined]
    server, thread = start_http_server(port, addr="127.0.0.1", registry=metrics.registry)
    config, rules = scrape_config(port, cluster.kubeconfig, live.ns)
    (tmp_path / "prometheus.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules))
    web = f"127.0.0.1:{free_port()}"
    with (tmp_path / "prometheus.log").open("w") as log:
        process = subprocess.Popen(
            [
                str(PROMETHEUS),
                "--config.file=prometheus.yaml",
                "--storage.tsdb.path=data",
                f"--web.listen-address={web}",
            ],
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            prom = Prometheus(f"http://{web}")
            eventually(lambda: _ready(prom), what="Prometheus ready", every=0.5, attempts=120)
            yield prom
        finally:
            process.terminate()
            process.wait(30)
            server.shutdown()
            thread.join(10)


def empty_panels(prom: Prometheus, namespace: str) -> list[str]:
    """The panels whose query, as Grafana sends it for `namespace`, has no sample with a number."""
    queries = dashboard_queries({"$__rate_interval": "1m", "$namespace": namespace})
    return [f"{title}: {expr}" for title, expr in queries if not _numbers(prom.query(expr))]


def _numbers(result: list[dict[str, Any]]) -> list[float]:
    return [v for v in (float(r["value"][1]) for r in result) if not math.isnan(v)]


def test_drift_alert_fires_for_the_models_namespace_dashboard_has_data_and_all_clears_on_delete(
    live: Cluster, prometheus: Prometheus
) -> None:
    c, ns = live, live.ns
    serve_breast_cancer_classifier(c)
    spec = monitor_spec("clf", 15, windowSeconds=30, minSamples=50, action={"retrain": False})
    c.create(resource(DriftMonitor, "watch", spec))
    with Traffic(c, "clf", shifted(records(569))):
        eventually(lambda: verdict(c, "Drift"), what="a Drift check on shifted traffic", every=2, attempts=300)
        eventually(lambda: prometheus.targets_up("model-servers"), what="the model server scraped", every=1)
        fired = eventually(
            lambda: prometheus.alerts("MlopsDriftDetected"), what="MlopsDriftDetected firing", every=1, attempts=120
        )
        assert fired == [
            {
                "alertname": "MlopsDriftDetected",
                "severity": "warning",
                "namespace": ns,
                "monitor": "watch",
                "model": "clf",
            }
        ]
        # every panel has data once the loop has run (rates need two scrapes of traffic)
        eventually(lambda: not empty_panels(prometheus, ns), what="no empty dashboard panel", every=2, attempts=60)
    # the operator's series keep the Model's namespace (honorLabels), not the target's
    (served,) = prometheus.query(f'mlops_model_serving_version{{job="mlops-operator", namespace="{ns}"}}')
    assert served["metric"]["model"] == "clf" and served["value"][1] == "1"
    (server,) = prometheus.query(f'sum by (namespace, model) (mlops_serve_requests_total{{namespace="{ns}"}})')
    assert server["metric"] == {"namespace": ns, "model": "clf"}

    c.call("DELETE", DRIFT_MONITOR, "watch")
    eventually(
        lambda: not prometheus.query(f'{{__name__=~"mlops_.+", namespace="{ns}", monitor="watch"}}'),
        what="the deleted monitor's series gone",
        every=1,
        attempts=120,
    )
    eventually(
        lambda: not prometheus.alerts("MlopsDriftDetected") and not prometheus.alerts("MlopsDriftDetected", "pending"),
        what="MlopsDriftDetected cleared",
        every=1,
        attempts=60,
    )
    assert prometheus.query(f'mlops_model_serving_version{{namespace="{ns}"}}')  # the Model's own series stay
