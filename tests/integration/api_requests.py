"""Counting one client's requests at the API server itself (tests and benchmarks/scale).

The client runs as a ServiceAccount of its own (a token from the TokenRequest API, bound to
cluster-admin) that a FlowSchema of its own matches, on the `exempt` priority level so API Priority
and Fairness never queues it. `dispatched` reads APF's own counter for that FlowSchema from
/metrics: every request the client sent (kopf's watches, list calls and patches included; a watch
counts once, when it starts), whatever library sent it. The admin user's requests (the tests' own)
match another FlowSchema and are not counted.
"""

from __future__ import annotations

import ssl
import urllib.request
from pathlib import Path

from kubernetes import client

from tests.integration import apiserver

DISPATCHED = "apiserver_flowcontrol_dispatched_requests_total"


def identity(api: client.ApiClient, server: apiserver.ApiServer, name: str, workdir: Path) -> Path:
    """A ServiceAccount bound to cluster-admin, a FlowSchema matching only it, and its kubeconfig."""
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    core.create_namespaced_service_account("kube-system", {"metadata": {"name": name}})
    rbac.create_cluster_role_binding(
        {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": "kube-system"}],
        }
    )
    everything = {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"], "clusterScope": True, "namespaces": ["*"]}
    client.CustomObjectsApi(api).create_cluster_custom_object(
        "flowcontrol.apiserver.k8s.io",
        "v1",
        "flowschemas",
        {
            "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
            "kind": "FlowSchema",
            "metadata": {"name": name},
            "spec": {
                "matchingPrecedence": 100,
                "priorityLevelConfiguration": {"name": "exempt"},
                "rules": [
                    {
                        "subjects": [
                            {"kind": "ServiceAccount", "serviceAccount": {"name": name, "namespace": "kube-system"}}
                        ],
                        "resourceRules": [everything],
                        "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                    }
                ],
            },
        },
    )
    token = core.create_namespaced_service_account_token(
        name, "kube-system", {"spec": {"expirationSeconds": 86400}}
    ).status.token
    path = workdir / f"{name}.kubeconfig"
    # the apiserver's self-signed serving certificate file also holds the CA that signed it: the
    # client verifies TLS, as in a cluster
    ca = server.workdir / "certs" / "apiserver.crt"
    path.write_text(
        f"""apiVersion: v1
kind: Config
clusters:
- name: counted
  cluster: {{server: "{server.url}", certificate-authority: "{ca}"}}
users:
- name: {name}
  user: {{token: "{token}"}}
contexts:
- name: counted
  context: {{cluster: counted, user: {name}}}
current-context: counted
"""
    )
    return path


def parse_dispatched(metrics_text: str, flow_schema: str) -> float:
    total = 0.0
    for line in metrics_text.splitlines():
        if line.startswith(DISPATCHED + "{") and f'flow_schema="{flow_schema}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def dispatched(server: apiserver.ApiServer, flow_schema: str) -> int:
    """Requests the apiserver dispatched for one FlowSchema so far (APF's own counter)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    request = urllib.request.Request(
        f"{server.url}/metrics", headers={"Authorization": f"Bearer {apiserver.ADMIN_TOKEN}"}
    )
    with urllib.request.urlopen(request, context=context, timeout=10) as response:
        return int(parse_dispatched(response.read().decode(), flow_schema))
