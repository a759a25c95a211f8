"""Canary rollouts by the real operator against a real kube-apiserver.

The API-only server runs no kubelet, no Deployment controller and has no pod network: the test plays
the controllers (the Deployments' status, a pod per Deployment made from its own template, owned by a
ReplicaSet of its name) and each pod's IP is 127.0.0.1 with its `http` port pointing at a real HTTP
server on loopback. Those servers stand in for the model server pods: their `/metrics` is the
exposition of the model server's own `ServeMetrics`, fed with the requests the test says each side
answered. The operator reads them over HTTP exactly as it reads a pod's.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from mlops_operator.kube import DEPLOYMENT, POD, SERVICE
from mlops_operator.kube.client import MERGE_PATCH
from tests.integration.reconcile_harness import Cluster, eventually, profile_result, train_result
from tests.integration.test_reconcile_model import serving_first_version, training_job, version_state
from tests.metrics_server import MetricsServer, metrics_servers

pytestmark = pytest.mark.integration
CANARY = {
    "strategy": "Canary",
    "steps": [50, 100],
    "stepDurationSeconds": 5,
    "analysis": {"maxErrorRate": 0.05, "maxP99LatencySeconds": 0.5, "minRequests": 20},
}


@pytest.fixture
def servers() -> Iterator[tuple[MetricsServer, MetricsServer]]:
    with metrics_servers() as pair:
        yield pair


def free_port() -> int:
    """A port nothing listens on (a shadow pod's metrics are never read)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def running_pod(c: Cluster, deployment: str, port: int) -> str:
    """Play the Deployment and ReplicaSet controllers and the kubelet: one ready pod of `deployment`'s
    current template at 127.0.0.1:`port`, owned by a ReplicaSet of its name, replacing the one before."""
    d = c.call("GET", DEPLOYMENT, deployment)
    template = d["spec"]["template"]
    version = template["metadata"]["labels"]["mlops.dev/model-version"]
    name = f"{deployment}-v{version}-g{d['metadata']['generation']}"
    for pod in c.call("GET", POD)["items"]:
        if pod["metadata"]["name"].startswith(f"{deployment}-v"):
            c.call("DELETE", POD, pod["metadata"]["name"])
    spec = template["spec"]
    spec["containers"][0]["ports"][0]["containerPort"] = port
    owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"{deployment}-v{version}", "uid": "0" * 8}
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": template["metadata"]["labels"],
            "ownerReferences": [{**owner, "controller": True}],
        },
        "spec": spec,
    }
    c.call("POST", POD, body=pod)
    status = {"phase": "Running", "podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}]}
    c.call("PATCH", POD, name, sub="status", body={"status": status}, content_type=MERGE_PATCH)
    c.roll_out(deployment)
    return name


def replicas(c: Cluster, deployment: str) -> int | None:
    found = c.deployment(deployment)
    return None if found is None else int(found["spec"]["replicas"])


def new_version(c: Cluster, model: str, version: int, dataset_version: str, accuracy: float) -> None:
    """The Dataset changes, `model` trains `version` on it and it passes the gate."""
    c.patch("Dataset", "iris", {"spec": {"quality": {"minRows": 10 + version}}})
    profile = eventually(
        lambda: [j for j in c.jobs(**{"mlops.dev/dataset": "iris"}) if not j.get("status")], what="profile Job"
    )[0]
    c.finish_job(profile, message=profile_result(dataset_version, rows=300))
    c.finish_job(training_job(c, model, version), message=train_result(version, accuracy, champion=accuracy - 0.01))


def rollout_status(c: Cluster, model: str) -> dict[str, Any]:
    return dict(c.status("Model", model).get("rollout") or {})


def test_a_good_candidate_is_promoted_through_every_step_and_a_failing_one_rolled_back_at_the_first(
    cluster: Cluster, servers: tuple[MetricsServer, MetricsServer]
) -> None:
    stable_server, canary_server = servers
    serving_first_version(
        cluster, "cny", accuracy=0.9, retrain={"cooldownSeconds": 0}, serving={"replicas": 2, "rollout": CANARY}
    )
    running_pod(cluster, "cny-server", stable_server.port)

    # v2: a canary of 1 pod beside 1 stable pod (50 % of 2 replicas), behind the same Service
    new_version(cluster, "cny", 2, "b" * 64, 0.95)
    eventually(lambda: replicas(cluster, "cny-server-canary") == 1, what="canary Deployment of v2")
    assert cluster.served_version("cny-server-canary") == "2"
    eventually(lambda: replicas(cluster, "cny-server") == 1, what="stable scaled to its share")
    assert cluster.served_version("cny-server") == "1"
    cluster.roll_out("cny-server")  # the scale-down done
    canary_pod = running_pod(cluster, "cny-server-canary", canary_server.port)
    stable_server.answered(ok=40)
    canary_server.answered(ok=30)
    # within bounds after the step's 5 s: promoted, the stable Deployment rolls to v2
    eventually(lambda: cluster.served_version("cny-server") == "2", what="promotion to v2", attempts=300, every=0.1)
    step = rollout_status(cluster, "cny")["steps"][0]
    assert (step["weight"], step["canaryReplicas"], step["stableReplicas"], step["verdict"]) == (50, 1, 1, "Promoted")
    assert (step["candidate"]["requests"], step["candidate"]["errors"], step["champion"]["requests"]) == (30, 0, 40)
    assert step["candidate"]["p99LatencySeconds"] == 0.005
    cluster.call("DELETE", POD, canary_pod)  # the garbage collector's part, once the canary goes
    cluster.roll_out("cny-server")
    eventually(lambda: cluster.status("Model", "cny").get("servingVersion") == 2, what="v2 serving")
    eventually(lambda: cluster.deployment("cny-server-canary") is None, what="canary Deployment deleted")
    assert rollout_status(cluster, "cny")["phase"] == "Promoted"
    assert replicas(cluster, "cny-server") == 2

    # v3 answers 5xx: rolled back at the first step, v2 keeps every pod
    new_version(cluster, "cny", 3, "c" * 64, 0.97)
    eventually(lambda: cluster.served_version("cny-server-canary") == "3", what="canary Deployment of v3")
    bad = MetricsServer()
    try:
        running_pod(cluster, "cny-server-canary", bad.port)
        eventually(lambda: replicas(cluster, "cny-server") == 1, what="stable scaled to its share again")
        cluster.roll_out("cny-server")
        bad.answered(ok=15, errors=10)
        eventually(lambda: version_state(cluster, "cny", 3) == "RolledBack", what="v3 rolled back")
    finally:
        bad.httpd.shutdown()
        bad.httpd.server_close()
    record = rollout_status(cluster, "cny")
    assert record["phase"] == "RolledBack" and record["candidate"] == 3 and len(record["steps"]) == 1
    assert "error rate 40.00% over maxErrorRate 5.00%" in record["message"]
    assert record["steps"][0]["verdict"] == "RolledBack"
    eventually(lambda: cluster.deployment("cny-server-canary") is None, what="canary of v3 deleted")
    eventually(lambda: replicas(cluster, "cny-server") == 2, what="stable back to 2 replicas")
    assert cluster.served_version("cny-server") == "2"
    assert cluster.status("Model", "cny")["servingVersion"] == 2
    events = eventually(lambda: [m for r, m in cluster.events("cny") if r == "RolledBack"], what="RolledBack Event")
    assert "error rate 40.00%" in events[0] and "version 2 keeps serving" in events[0]


SHADOW = {"strategy": "Shadow", "shadow": {"samplePercent": 50, "minRequests": 30, "minAgreement": 0.9}}


def args_of(c: Cluster, deployment: str) -> list[str]:
    found = c.deployment(deployment) or {}
    return list(found["spec"]["template"]["spec"]["containers"][0]["args"]) if found else []


def test_a_shadowed_candidate_is_promoted_on_agreement_and_a_disagreeing_one_rolled_back(
    cluster: Cluster, servers: tuple[MetricsServer, MetricsServer]
) -> None:
    champion, _ = servers
    serving_first_version(
        cluster, "shd", accuracy=0.9, retrain={"cooldownSeconds": 0}, serving={"replicas": 2, "rollout": SHADOW}
    )
    running_pod(cluster, "shd-server", champion.port)

    # v2: the champion (v1, both replicas) mirrors to the candidate's own Service; it is out of the main one
    new_version(cluster, "shd", 2, "b" * 64, 0.95)
    eventually(lambda: "--shadow-url" in args_of(cluster, "shd-server"), what="the champion mirroring")
    args = args_of(cluster, "shd-server")
    shadow_ip = cluster.call("GET", SERVICE, "shd-shadow")["spec"]["clusterIP"]
    assert args[args.index("--shadow-url") + 1] == f"http://{shadow_ip}:80"  # no cluster DNS needed
    assert args[args.index("--shadow-sample-percent") + 1] == "50.0"
    assert cluster.served_version("shd-server") == "1" and replicas(cluster, "shd-server") == 2
    eventually(lambda: cluster.served_version("shd-server-shadow") == "2", what="shadow Deployment of v2")
    shadow_args = args_of(cluster, "shd-server-shadow")
    assert "--collect-uri" not in shadow_args  # its requests are copies the champion collected already
    service = cluster.call("GET", SERVICE, "shd-shadow")
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "serve-shadow"
    running_pod(cluster, "shd-server-shadow", free_port())
    running_pod(cluster, "shd-server", champion.port)  # the champion's pods roll to the mirror flags
    champion.mirrored(requests=10, rows=10, agreed=10)
    eventually(
        lambda: (rollout_status(cluster, "shd").get("shadow") or {}).get("mirrored") == 10, what="agreement read"
    )
    assert cluster.served_version("shd-server") == "1"  # 10 of minRequests 30: not yet
    champion.mirrored(requests=30, rows=60, agreed=57)
    eventually(lambda: cluster.served_version("shd-server") == "2", what="promotion of v2")
    # the status patch follows the Deployment's update at the end of the same reconcile
    shadow = eventually(
        lambda: (
            (rollout_status(cluster, "shd").get("shadow") or {}).get("mirrored") == 40
            and rollout_status(cluster, "shd")["shadow"]
        ),
        what="the promoting reconcile's status",
    )
    assert (shadow["mirrored"], shadow["comparedRows"], shadow["agreedRows"]) == (40, 70, 67)
    assert shadow["agreement"] == pytest.approx(67 / 70, abs=1e-6)
    assert "--shadow-url" not in args_of(cluster, "shd-server")
    cluster.roll_out("shd-server")
    eventually(lambda: cluster.status("Model", "shd").get("servingVersion") == 2, what="v2 serving")
    eventually(lambda: cluster.deployment("shd-server-shadow") is None, what="shadow Deployment deleted")
    assert rollout_status(cluster, "shd")["phase"] == "Promoted"

    # v3 disagrees with v2 on half the rows: rolled back, v2 serves without mirroring
    fresh = MetricsServer()
    try:
        running_pod(cluster, "shd-server", fresh.port)
        new_version(cluster, "shd", 3, "c" * 64, 0.97)
        eventually(lambda: cluster.served_version("shd-server-shadow") == "3", what="shadow Deployment of v3")
        running_pod(cluster, "shd-server-shadow", free_port())
        running_pod(cluster, "shd-server", fresh.port)
        fresh.mirrored(requests=40, rows=40, agreed=20)
        eventually(lambda: version_state(cluster, "shd", 3) == "RolledBack", what="v3 rolled back")
    finally:
        fresh.httpd.shutdown()
        fresh.httpd.server_close()
    record = rollout_status(cluster, "shd")
    assert record["phase"] == "RolledBack" and "agreement 50.00% under minAgreement 90.00%" in record["message"]
    eventually(lambda: cluster.deployment("shd-server-shadow") is None, what="shadow of v3 deleted")
    eventually(lambda: "--shadow-url" not in args_of(cluster, "shd-server"), what="the champion stops mirroring")
    assert cluster.served_version("shd-server") == "2"
