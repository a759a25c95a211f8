"""The chart's PrometheusRule passes `promtool check rules` and its unit tests (`promtool test rules`),
every alert has a test, and every query of the Grafana dashboard parses as PromQL.

The rules are the ones `helm template` renders with the default values, so the Helm escaping of
`{{ $labels }}` is part of what is tested. The dashboard's queries also run against a real Prometheus
in tests/e2e/test_prometheus.py, where each must return data.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.contract.conftest import _tool
from tests.contract.test_chart import CHART, by_kind, render

HERE = Path(__file__).resolve().parent
RULE_TESTS = HERE / "prometheus" / "rules_test.yaml"
DASHBOARD = CHART / "dashboards" / "mlops-operator.json"
# Grafana's variables, as Grafana would expand them for "All namespaces" on a fresh dashboard.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$namespace": ".*"}


@pytest.fixture(scope="module")
def promtool() -> str:
    return _tool("promtool")


def rendered_rules(helm: str) -> dict[str, Any]:
    rules = by_kind(render(helm, "--set", "monitoring.prometheusRule.enabled=true"), "PrometheusRule")
    assert len(rules) == 1
    return {"groups": rules[0]["spec"]["groups"]}


def promtool_run(promtool: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def test_promtool_checks_the_rendered_rules(helm: str, promtool: str, tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rendered_rules(helm)))
    done = promtool_run(promtool, "check", "rules", "rules.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 6 rules found" in done.stdout + done.stderr


def test_the_rule_unit_tests_pass(helm: str, promtool: str, tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rendered_rules(helm)))
    tests = yaml.safe_load(RULE_TESTS.read_text())
    (tmp_path / "rules_test.yaml").write_text(yaml.safe_dump({"rule_files": ["rules.yaml"], **tests}))
    done = promtool_run(promtool, "test", "rules", "rules_test.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_a_broken_expectation_fails_the_unit_tests(helm: str, promtool: str, tmp_path: Path) -> None:
    """The harness can fail: the drift case expecting another namespace is reported."""
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rendered_rules(helm)))
    tests = yaml.safe_load(RULE_TESTS.read_text())
    drift = tests["tests"][0]["alert_rule_test"][1]
    drift["exp_alerts"][0]["exp_labels"]["namespace"] = "team-b"
    (tmp_path / "rules_test.yaml").write_text(yaml.safe_dump({"rule_files": ["rules.yaml"], **tests}))
    done = promtool_run(promtool, "test", "rules", "rules_test.yaml", cwd=tmp_path)
    assert done.returncode != 0
    assert "MlopsDriftDetected" in done.stdout + done.stderr


def test_every_alert_has_a_case_that_fires_it(helm: str) -> None:
    alerts = {r["alert"] for g in rendered_rules(helm)["groups"] for r in g["rules"] if "alert" in r}
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fired = {c["alertname"] for t in tests for c in t["alert_rule_test"] if c["exp_alerts"]}
    assert alerts == fired
    assert {"MlopsServingErrorRate", "MlopsServingLatencyHigh", "MlopsRolloutFailed", "MlopsApprovalPending"} <= alerts


def dashboard_queries(variables: dict[str, str] = GRAFANA_VARIABLES) -> list[tuple[str, str]]:
    """(panel title, PromQL with Grafana's `variables` expanded) of every panel target."""
    dashboard = json.loads(DASHBOARD.read_text())
    found = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in variables.items():
                expr = expr.replace(variable, value)
            found.append((panel["title"], expr))
    return found


def test_every_dashboard_panel_has_a_query_with_known_variables_only() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    graphs = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert graphs and all(p.get("targets") for p in graphs)
    for title, expr in dashboard_queries():
        assert not re.search(r"\$\w+", expr), f"{title}: a variable the tests do not expand: {expr}"


def test_every_dashboard_query_parses(promtool: str, tmp_path: Path) -> None:
    """promtool parses each query as a recording rule's expression (a syntax error names the panel)."""
    rules = [
        {"record": f"dashboard:panel_{i}", "expr": expr, "labels": {"panel": title}}
        for i, (title, expr) in enumerate(dashboard_queries())
    ]
    (tmp_path / "dashboard.yaml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    done = promtool_run(promtool, "check", "rules", "dashboard.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_chart_ships_the_dashboard_for_grafanas_sidecar(helm: str) -> None:
    objects = render(helm, "--set", "monitoring.grafanaDashboard.enabled=true")
    maps = [o for o in by_kind(objects, "ConfigMap") if o["metadata"]["name"].endswith("-dashboard")]
    assert len(maps) == 1
    assert maps[0]["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(maps[0]["data"]["mlops-operator.json"]) == json.loads(DASHBOARD.read_text())


def test_servers_are_scraped_with_their_own_namespace_and_the_operator_with_honored_labels(helm: str) -> None:
    objects = render(
        helm, "--set", "monitoring.podMonitor.enabled=true", "--set", "monitoring.serviceMonitor.enabled=true"
    )
    (pod_monitor,) = by_kind(objects, "PodMonitor")
    endpoint = pod_monitor["spec"]["podMetricsEndpoints"][0]
    assert endpoint["port"] == "http"
    assert pod_monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "serve"
    assert {"sourceLabels": ["__meta_kubernetes_pod_label_mlops_dev_model"], "targetLabel": "model"} in endpoint[
        "relabelings"
    ]
    (service_monitor,) = by_kind(objects, "ServiceMonitor")
    assert service_monitor["spec"]["endpoints"][0]["honorLabels"] is True
