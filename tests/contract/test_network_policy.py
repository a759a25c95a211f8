"""The model servers' NetworkPolicy (issue 12): the chart's, in each watched namespace, and the sample
for cluster-wide installs select exactly the pods of the server Deployment the operator renders and
open only its serving port, to the same namespace by default (golden rendering). The local cluster's
bridge network plugin does not enforce NetworkPolicy, so this is checked as rendered, not as enforced."""

from __future__ import annotations

from pathlib import Path

import yaml

from mlops_operator import contracts
from tests.contract.test_chart import assert_template_matches_golden, by_kind, render

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "golden" / "model-servers-networkpolicy.yaml"
SAMPLE = REPO / "manifests" / "samples" / "tenant" / "model-servers-networkpolicy.yaml"
SERVER = REPO / "tests" / "golden" / "server-deployment.yaml"
WATCH = ("--set", "operator.watchNamespaces={team-a,team-b}")


def test_the_rendered_policy_matches_the_golden_file(helm: str) -> None:
    assert_template_matches_golden(helm, "templates/networkpolicy.yaml", GOLDEN, *WATCH)


def test_one_per_watched_namespace_selecting_the_servers_port_only(helm: str) -> None:
    policies = by_kind(render(helm, *WATCH), "NetworkPolicy")
    assert sorted(p["metadata"]["namespace"] for p in policies) == ["team-a", "team-b"]
    server = yaml.safe_load(SERVER.read_text())
    pod_labels = server["spec"]["template"]["metadata"]["labels"]
    (port,) = server["spec"]["template"]["spec"]["containers"][0]["ports"]
    sample = yaml.safe_load(SAMPLE.read_text())
    for spec in [p["spec"] for p in policies] + [sample["spec"]]:
        assert spec["podSelector"]["matchLabels"].items() <= pod_labels.items()
        assert spec["policyTypes"] == ["Ingress"]
        (rule,) = spec["ingress"]
        assert rule["ports"] == [{"port": port["containerPort"], "protocol": "TCP"}]
        assert port["containerPort"] == contracts.SERVER_PORT
        assert rule["from"] == [{"podSelector": {}}]  # the same namespace only, by default
    # the selector does not reach the training or profile pods
    job = yaml.safe_load((REPO / "tests" / "golden" / "training-job.yaml").read_text())
    job_labels = job["spec"]["template"]["metadata"]["labels"]
    assert not sample["spec"]["podSelector"]["matchLabels"].items() <= job_labels.items()


def test_cluster_wide_installs_render_none_and_it_can_be_turned_off(helm: str) -> None:
    assert by_kind(render(helm), "NetworkPolicy") == []
    assert by_kind(render(helm, *WATCH, "--set", "networkPolicy.enabled=false"), "NetworkPolicy") == []
