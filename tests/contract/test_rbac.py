"""The operator's RBAC, as the chart renders it: least privilege, scoped to the watched namespaces."""

from __future__ import annotations

from typing import Any

import pytest

from tests.contract.test_chart import by_kind, render

# Rights nobody in this project needs; their presence would be a privilege-escalation path.
FORBIDDEN_RESOURCES = {
    "secrets",
    "pods/exec",
    "pods/attach",
    "pods/portforward",
    "pods/log",
    "nodes",
    "nodes/proxy",
}
FORBIDDEN_VERBS = {"*", "escalate", "bind", "impersonate", "deletecollection"}
CHILD_RESOURCES = {
    "jobs",
    "deployments",
    "services",
    "horizontalpodautoscalers",
    "poddisruptionbudgets",
    "pods",
    "persistentvolumeclaims",
}


def rules_of(objects: tuple[dict[str, Any], ...], kind: str) -> dict[tuple[str, str], list[dict[str, Any]]]:
    return {(o["metadata"].get("namespace", ""), o["metadata"]["name"]): o["rules"] for o in by_kind(objects, kind)}


def granted(rules: list[dict[str, Any]]) -> dict[str, set[str]]:
    """`group/resource` -> verbs."""
    out: dict[str, set[str]] = {}
    for rule in rules:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                out.setdefault(f"{group}/{resource}" if group else resource, set()).update(rule["verbs"])
    return out


def all_rules(objects: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    return [r for kind in ("ClusterRole", "Role") for rules in rules_of(objects, kind).values() for r in rules]


WATCHED = ("--set", "operator.watchNamespaces={team-a,team-b}")


@pytest.mark.parametrize("flags", [(), WATCHED])
def test_no_wildcards_no_secrets_no_exec(helm: str, flags: tuple[str, ...]) -> None:
    for rule in all_rules(render(helm, *flags)):
        assert "nonResourceURLs" not in rule
        assert "*" not in rule["apiGroups"] and "*" not in rule["resources"]
        assert not FORBIDDEN_VERBS & set(rule["verbs"]), rule
        assert not FORBIDDEN_RESOURCES & set(rule["resources"]), rule


def test_cluster_wide_mode_has_everything_in_one_cluster_role(helm: str) -> None:
    objects = render(helm)
    assert not by_kind(objects, "Role") and not by_kind(objects, "RoleBinding")
    rights = granted(rules_of(objects, "ClusterRole")[("", "mlops-operator")])
    assert rights["apiextensions.k8s.io/customresourcedefinitions"] == {"get", "list", "watch"}
    assert "namespaces" not in rights  # kopf needs no namespaces cluster-wide
    assert rights["mlops.dev/models"] == {"get", "list", "watch", "patch", "update"}
    assert rights["mlops.dev/models/status"] == {"get", "patch", "update"}
    assert rights["batch/jobs"] == {"get", "list", "watch", "create", "delete"}
    # ensured and removed; listed and watched for the presence cache (kube.presence), never updated
    assert rights["policy/poddisruptionbudgets"] == {"get", "list", "watch", "create", "patch", "delete"}
    assert rights["pods"] == {"get", "list", "watch"}
    presence = {"get", "list", "watch", "create"}  # created once, then known from the watch
    assert rights["persistentvolumeclaims"] == rights["serviceaccounts"] == presence
    assert rights["events"] == rights["events.k8s.io/events"] == {"create", "patch"}
    (binding,) = by_kind(objects, "ClusterRoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "mlops-operator", "namespace": "mlops-system"}]


def test_watched_namespaces_get_child_rights_in_roles_only(helm: str) -> None:
    objects = render(helm, *WATCHED)
    cluster = granted(rules_of(objects, "ClusterRole")[("", "mlops-operator")])
    assert not {r.rsplit("/", 1)[-1] for r in cluster} & CHILD_RESOURCES
    assert cluster["namespaces"] == {"get", "list", "watch"}  # kopf looks the listed namespaces up
    assert "mlops.dev/datasets" in cluster and "apiextensions.k8s.io/customresourcedefinitions" in cluster
    roles = rules_of(objects, "Role")
    assert set(roles) == {("team-a", "mlops-operator"), ("team-b", "mlops-operator")}
    for rules in roles.values():
        assert {r.rsplit("/", 1)[-1] for r in granted(rules)} >= CHILD_RESOURCES
    bindings = {(b["metadata"]["namespace"], b["roleRef"]["name"]) for b in by_kind(objects, "RoleBinding")}
    assert bindings == {("team-a", "mlops-operator"), ("team-b", "mlops-operator")}
    (deployment,) = by_kind(objects, "Deployment")
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MLOPS_NAMESPACES"] == "team-a,team-b"
