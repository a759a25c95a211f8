"""Acceptance of the local cluster (issue 2): what the operator and its workloads rely on."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import (
    CACHE,
    CONTAINER_SECURITY_CONTEXT,
    POD_SECURITY_CONTEXT,
    REPO,
    Cluster,
    cluster_down,
    cluster_up,
)

pytestmark = pytest.mark.e2e


def job(name: str, image: str, command: list[str], **pod_spec: Any) -> dict[str, Any]:
    """A Job whose single pod satisfies PodSecurity `restricted`."""
    container = {
        "name": "main",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": command,
        "securityContext": CONTAINER_SECURITY_CONTEXT,
        "resources": {"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"memory": "512Mi"}},
    }
    container.update(pod_spec.pop("container", {}))
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": 600,
            "template": {
                "metadata": {"labels": {"e2e": name}},
                "spec": {
                    "restartPolicy": "Never",
                    "securityContext": POD_SECURITY_CONTEXT,
                    "containers": [container],
                    **pod_spec,
                },
            },
        },
    }


def test_node_ready(cluster: Cluster) -> None:
    nodes = cluster.json("get", "nodes")["items"]
    assert nodes, "no nodes"
    for node in nodes:
        conditions = {c["type"]: c["status"] for c in node["status"]["conditions"]}
        assert conditions["Ready"] == "True", conditions
    if cluster.local:
        (node,) = nodes
        # the kubelet built into this cache (v1.34.4 for make test; test-matrix runs other minors)
        kubelet = subprocess.run([str(CACHE / "bin" / "kubelet"), "--version"], capture_output=True, text=True)
        assert node["status"]["nodeInfo"]["kubeletVersion"] == kubelet.stdout.split()[-1]
        assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://")
        addresses = {a["type"]: a["address"] for a in node["status"]["addresses"]}
        assert addresses["InternalIP"] == "10.88.0.1"  # the pod bridge, never the uplink's address


def test_job_from_local_image_completes(cluster: Cluster, image: str, namespace: str) -> None:
    code = "import os, mlops_operator, sklearn; print('uid', os.getuid(), 'ok')"
    cluster.apply(job("hello", image, ["python", "-c", code]), namespace=namespace)
    logs = cluster.wait_job(namespace, "hello")
    assert "uid 10001 ok" in logs
    (pod,) = cluster.json("-n", namespace, "get", "pods", "-l", "e2e=hello")["items"]
    assert pod["spec"]["containers"][0]["image"] == image


def test_deployment_behind_service_answers_from_host(cluster: Cluster, image: str, namespace: str) -> None:
    if not cluster.local:
        pytest.skip("the host reaches ClusterIPs only on the local cluster")
    script = "echo hello-from-$(hostname) > /www/index.html && exec python -m http.server 8080 -d /www"
    container = {
        "name": "web",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "-c", script],
        "ports": [{"containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1},
        "securityContext": CONTAINER_SECURITY_CONTEXT,
        "volumeMounts": [{"name": "www", "mountPath": "/www"}],
    }
    cluster.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"e2e": "web"}},
                "template": {
                    "metadata": {"labels": {"e2e": "web"}},
                    "spec": {
                        "securityContext": POD_SECURITY_CONTEXT,
                        "terminationGracePeriodSeconds": 1,
                        "containers": [container],
                        "volumes": [{"name": "www", "emptyDir": {}}],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web"},
            "spec": {"selector": {"e2e": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
        },
        namespace=namespace,
    )
    rollout = cluster.kubectl("-n", namespace, "rollout", "status", "deploy/web", "--timeout=180s", check=False)
    assert rollout.returncode == 0, rollout.stderr + cluster.diagnose(namespace)
    ip = cluster.json("-n", namespace, "get", "service", "web")["spec"]["clusterIP"]
    assert ip.startswith("10.96.")
    answers: set[str] = set()
    for _ in range(40):  # bounded: 40 tries, 2 s timeout each
        try:
            with urllib.request.urlopen(f"http://{ip}/", timeout=2) as resp:
                answers.add(resp.read().decode().strip())
        except OSError:
            time.sleep(0.5)
        if len(answers) == 2:
            break
    assert answers, f"no HTTP answer from ClusterIP {ip}"
    assert all(a.startswith("hello-from-web-") for a in answers), answers


# A pod's view of the API through the `kubernetes` Service (10.96.0.1 -> kube-proxy -> 10.88.0.1:6443).
API_PROBE = r"""
import json, os, ssl, urllib.request, urllib.error
sa = "/var/run/secrets/kubernetes.io/serviceaccount"
token = open(sa + "/token").read()
ns = open(sa + "/namespace").read()
ctx = ssl.create_default_context(cafile=sa + "/ca.crt")
base = "https://%s:%s" % (os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"])
def call(method, path, body=None):
    headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
    data = json.dumps(body).encode() if body else None
    req = urllib.request.Request(base + path, method=method, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)
status, review = call("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                      {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
pods_status, _ = call("GET", "/api/v1/namespaces/%s/pods" % ns)
print(json.dumps({"host": os.environ["KUBERNETES_SERVICE_HOST"], "review_status": status,
                  "user": review.get("status", {}).get("userInfo", {}).get("username"),
                  "list_pods": pods_status}))
"""


def run_api_probe(cluster: Cluster, image: str, namespace: str, sa: str) -> dict[str, Any]:
    cluster.apply(job(f"probe-{sa}", image, ["python", "-c", API_PROBE], serviceAccountName=sa), namespace=namespace)
    logs = cluster.wait_job(namespace, f"probe-{sa}")
    result: dict[str, Any] = json.loads(logs.strip().splitlines()[-1])
    return result


def test_pod_reaches_apiserver_through_kubernetes_service(cluster: Cluster, image: str, namespace: str) -> None:
    result = run_api_probe(cluster, image, namespace, "default")
    if cluster.local:
        assert result["host"] == "10.96.0.1"
    assert result["review_status"] == 201
    assert result["user"] == f"system:serviceaccount:{namespace}:default"


def test_rbac_denies_serviceaccount_without_grant(cluster: Cluster, image: str, namespace: str) -> None:
    cluster.apply(
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "nogrant"}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "reader"}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "pod-reader"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
        },
        namespace=namespace,
    )
    denied = run_api_probe(cluster, image, namespace, "nogrant")
    assert denied["user"] == f"system:serviceaccount:{namespace}:nogrant"
    assert denied["list_pods"] == 403
    allowed = run_api_probe(cluster, image, namespace, "reader")  # the positive control
    assert allowed["list_pods"] == 200
    can_i = cluster.kubectl(
        "auth",
        "can-i",
        "list",
        "pods",
        "-n",
        namespace,
        f"--as=system:serviceaccount:{namespace}:nogrant",
        check=False,
    )
    assert can_i.stdout.strip() == "no"


def test_podsecurity_restricted_rejects_privileged_pod(cluster: Cluster, image: str, namespace: str) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "privileged"},
        "spec": {
            "containers": [
                {
                    "name": "main",
                    "image": image,
                    "command": ["sleep", "60"],
                    "securityContext": {"privileged": True},
                }
            ]
        },
    }
    proc = cluster.kubectl("-n", namespace, "create", "-f", "-", input=json.dumps(pod), check=False)
    assert proc.returncode != 0
    assert 'violates PodSecurity "restricted:latest"' in proc.stderr
    assert "privileged" in proc.stderr
    assert cluster.kubectl("-n", namespace, "get", "pod", "privileged", check=False).returncode != 0


def test_pvc_of_storage_class_binds_and_pods_share_files(cluster: Cluster, image: str, namespace: str) -> None:
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "shared"},
            "spec": {
                "storageClassName": "mlops-local",
                "accessModes": ["ReadWriteMany"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
        namespace=namespace,
    )
    phase = ""
    for _ in range(60):
        phase = cluster.json("-n", namespace, "get", "pvc", "shared").get("status", {}).get("phase", "")
        if phase == "Bound":
            break
        time.sleep(1)
    assert phase == "Bound", cluster.diagnose(namespace)
    volume = {"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "shared"}}]}
    mount = {"volumeMounts": [{"name": "data", "mountPath": "/data"}]}
    write = "mkdir -p /data/dir && echo shared-$(id -u) > /data/dir/f.txt"
    cluster.apply(job("writer", image, ["sh", "-c", write], container=mount, **volume), namespace=namespace)
    cluster.wait_job(namespace, "writer")
    cluster.apply(job("reader", image, ["cat", "/data/dir/f.txt"], container=mount, **volume), namespace=namespace)
    assert cluster.wait_job(namespace, "reader").strip() == "shared-10001"


def test_network_rule_pods_never_route_off_the_machine(cluster: Cluster) -> None:
    """No masquerade, pod -> non-pod dropped first thing in FORWARD, servers only on loopback/the bridge."""
    if not cluster.local or os.geteuid() != 0:
        pytest.skip("inspects the local cluster's host rules (root)")
    forward = subprocess.run(["iptables", "-S", "FORWARD"], capture_output=True, text=True, check=True).stdout
    rules = [r for r in forward.splitlines() if r.startswith("-A FORWARD")]
    assert rules[0] == "-A FORWARD -j LC-PODS", rules
    lc = subprocess.run(["iptables", "-S", "LC-PODS"], capture_output=True, text=True, check=True).stdout
    assert "-A LC-PODS -s 10.88.0.0/16 -d 10.88.0.0/16 -j ACCEPT" in lc
    assert "-A LC-PODS -s 10.88.0.0/16 -j DROP" in lc
    nat = subprocess.run(["iptables", "-t", "nat", "-S"], capture_output=True, text=True, check=True).stdout
    # kube-proxy masquerades only packets it marked (host -> ClusterIP, hairpin), never a pod's egress
    masq = [r for r in nat.splitlines() if "MASQUERADE" in r and "docker0" not in r]  # docker's own is not ours
    assert all("KUBE-POSTROUTING" in r or "CNI-HOSTPORT-MASQ" in r for r in masq), masq
    conflist = json.loads(Path("/var/lib/mlops-cluster/cni/net.d/10-mlops-pods.conflist").read_text())
    assert conflist["plugins"][0]["ipMasq"] is False
    # every listening socket of the cluster's processes is on loopback or the bridge address
    pids = {p.read_text().strip() for p in Path("/run/mlops-cluster").glob("*.pid")}
    listen = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True).stdout
    ours = [line for line in listen.splitlines() if any(f"pid={pid}," in line for pid in pids)]
    assert ours, listen
    for line in ours:
        local = line.split()[3]
        assert local.startswith(("127.0.0.1:", "10.88.0.1:")), line


# --- five up/down cycles: nothing left behind ------------------------------------------------------

STATE_PREFIXES = (
    "/var/lib/mlops-cluster",
    "/run/containerd-k8s",
    "/var/lib/containerd-k8s/",
    "/run/netns/cni-",
)
CTR_SOCK = "/run/containerd-k8s/containerd.sock"
OUR_CHAINS = re.compile(r"^:(KUBE-|CNI-|LC-PODS)\S*|-j (KUBE-|CNI-|LC-PODS)", re.M)


def leftovers() -> list[str]:
    """Everything of the cluster still on the machine, checked directly (not via the scripts)."""
    found: list[str] = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cgroups = (proc / "cgroup").read_text()
        except OSError:
            continue
        # every component names the state dir, every shim our containerd's socket; pods run in kubepods
        markers = ("/var/lib/mlops-cluster/", f"-address {CTR_SOCK}", "pv-provisioner.py")
        if any(m in cmd for m in markers) or "/kubepods" in cgroups:
            found.append(f"process {proc.name}: {cmd}")
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        mountpoint = line.split()[4]
        if mountpoint.startswith(STATE_PREFIXES) or mountpoint in (
            "/var/lib/mlops-cluster",
            "/run/containerd-k8s",
        ):
            found.append(f"mount {mountpoint}")
    netns = Path("/run/netns")
    if netns.is_dir():
        found += [f"netns {p}" for p in netns.iterdir() if p.name.startswith("cni-")]
    for tool in ("iptables-save", "ip6tables-save"):
        out = subprocess.run([tool], capture_output=True, text=True, check=False).stdout
        found += [f"{tool}: {m.group(0)}" for m in OUR_CHAINS.finditer(out)]
    if shutil.which("nft"):
        nft = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=False).stdout
        found += [f"nft {t}" for t in nft.splitlines() if "kube-proxy" in t]
    found += [f"cgroup {p}" for p in Path("/sys/fs/cgroup").glob("*/kubepods")]
    for dev in Path("/sys/class/net").iterdir():
        master = dev / "master"
        is_veth = (dev / "ifindex").exists() and dev.name.startswith("veth")
        owned_by_docker = master.exists() and os.path.basename(os.readlink(master)) == "docker0"
        if dev.name == "cni0" or (is_veth and not owned_by_docker):
            found.append(f"interface {dev.name}")
    for path in ("/var/lib/mlops-cluster", "/run/mlops-cluster", "/run/containerd-k8s"):
        if os.path.exists(path):
            found.append(f"path {path}")
    return found


@pytest.mark.slow
def test_five_up_down_cycles_leave_nothing_behind(cluster: Cluster, image: str) -> None:
    if not cluster.started_here:
        pytest.skip("runs only when this session brought the local cluster up itself")
    try:
        for cycle in range(5):
            cluster_up()
            ns = f"e2e-cycle-{cycle}"
            # a running pod with a volume, so veths, netns, mounts and cgroups exist when it goes down
            cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
            busy = job("busy", image, ["sleep", "300"], volumes=[{"name": "tmp", "emptyDir": {}}])
            busy["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] = [{"name": "tmp", "mountPath": "/tmp"}]
            cluster.apply(busy, namespace=ns)
            wait = cluster.kubectl(
                "-n",
                ns,
                "wait",
                # the Job exists as soon as it is applied; a label selector on pods can match nothing yet
                "job/busy",
                "--for=jsonpath={.status.ready}=1",
                "--timeout=180s",
                check=False,
            )
            assert wait.returncode == 0, f"cycle {cycle}: pod not running\n{cluster.diagnose(ns)}"
            down = cluster_down()
            assert down.returncode == 0, f"cycle {cycle}: cluster-down failed\n{down.stdout}\n{down.stderr}"
            left = leftovers()
            assert not left, f"cycle {cycle}: left behind after cluster-down:\n" + "\n".join(left)
            check = subprocess.run([str(REPO / "hack/cluster/check-clean.sh")], capture_output=True, text=True)
            assert check.returncode == 0, check.stdout
    finally:
        cluster_up()  # leave the cluster up for the tests that follow
