"""Fixtures for end-to-end tests on a real cluster.

* ``cluster`` (session): the cluster named by ``$KUBECONFIG`` when that file exists and the API server
  answers; otherwise the local single-node cluster, brought up with ``hack/cluster-up.sh``
  (idempotent, needs root). ``cluster.started_here`` tells which.
* ``image`` (session): the project image, built and imported into the local cluster's containerd by
  ``hack/image.sh`` once per session (a no-op when nothing changed). ``$IMAGE`` names it
  (default ``localhost/mlops-operator:dev``); on a foreign cluster it must already be pullable there.
* ``live`` (function): the real operator in this process (kopf, no fake kubelet), watching
  ``namespace`` with the CRDs applied; its workloads run in real pods; ``live.metrics`` its Metrics.
* ``namespace`` (function): a fresh namespace labelled
  ``pod-security.kubernetes.io/enforce=restricted``, deleted afterwards.

Every test under tests/e2e is marked ``e2e``. kubectl is the cached v1.34 build
(/var/cache/mlops-operator/bin/kubectl), not Debian's old one.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import config

from tests.integration import reconcile_harness

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("MLOPS_CACHE", "/var/cache/mlops-operator"))
KUBECTL = os.environ.get("MLOPS_KUBECTL", str(CACHE / "bin" / "kubectl"))
LOCAL_KUBECONFIG = REPO / ".kube" / "config"
LOCAL_SERVER = "https://10.88.0.1:6443"
DEFAULT_IMAGE = "localhost/mlops-operator:dev"
CTR_SOCKET = "/run/containerd-k8s/containerd.sock"  # the local cluster's own containerd
CRICTL = str(CACHE / "bin" / "crictl")

# The restricted PodSecurity profile, for pod specs built in tests.
POD_SECURITY_CONTEXT: dict[str, Any] = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "runAsGroup": 10001,
    "fsGroup": 10001,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY_CONTEXT: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@dataclass
class Cluster:
    kubeconfig: str
    started_here: bool  # True: this session ran hack/cluster-up.sh (the local cluster was not up)
    local: bool  # True: the local cluster of hack/cluster-up.sh (images come from hack/image.sh)

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Runs kubectl against this cluster; raises with stderr in the message when check fails."""
        proc = subprocess.run(
            [KUBECTL, "--kubeconfig", self.kubeconfig, *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc

    def json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def apply(self, *objects: dict[str, Any] | str, namespace: str | None = None) -> None:
        """kubectl apply of dicts and/or YAML strings."""
        docs = [o if isinstance(o, str) else yaml.safe_dump(o) for o in objects]
        ns = ["-n", namespace] if namespace else []
        self.kubectl("apply", *ns, "-f", "-", input="\n---\n".join(docs))

    def wait_job(self, namespace: str, name: str, timeout: float = 240) -> str:
        """Waits (bounded) until the Job succeeded and returns its pod's logs; fails with diagnostics."""
        deadline = time.monotonic() + timeout
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status = self.json("-n", namespace, "get", "job", name).get("status", {})
            if status.get("succeeded"):
                return self.logs(namespace, f"job/{name}")
            if status.get("failed"):
                break
            time.sleep(1)
        raise AssertionError(f"job {namespace}/{name} did not succeed: {status}\n{self.diagnose(namespace)}")

    def logs(self, namespace: str, target: str) -> str:
        return self.kubectl("-n", namespace, "logs", target, "--all-containers").stdout

    def diagnose(self, namespace: str) -> str:
        out = []
        for args in (("get", "all,pvc,events", "-o", "wide"), ("describe", "pods")):
            out.append(self.kubectl("-n", namespace, *args, check=False).stdout[-6000:])
        logs = self.kubectl("-n", namespace, "logs", "--all-containers", "-l", "e2e", "--tail=50", check=False)
        out.append(logs.stdout + logs.stderr)
        return "\n".join(out)


def _reachable(kubeconfig: str) -> bool:
    if not Path(kubeconfig).is_file() or not Path(KUBECTL).exists():
        return False
    proc = subprocess.run(
        [KUBECTL, "--kubeconfig", kubeconfig, "get", "--raw", "/readyz", "--request-timeout=5s"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return proc.returncode == 0


def _is_local(kubeconfig: str) -> bool:
    try:
        cfg = yaml.safe_load(Path(kubeconfig).read_text())
        return any(c["cluster"]["server"] == LOCAL_SERVER for c in cfg.get("clusters", []))
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return False


def cluster_up() -> None:
    """hack/cluster-up.sh (idempotent); raises with its output on failure."""
    proc = subprocess.run([str(REPO / "hack" / "cluster-up.sh")], capture_output=True, text=True, timeout=900, cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError(f"hack/cluster-up.sh failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")


def cluster_down() -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO / "hack" / "cluster-down.sh")], capture_output=True, text=True, timeout=600, cwd=REPO
    )


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    given = os.environ.get("KUBECONFIG", "")
    if given and ":" not in given and _reachable(given):
        return Cluster(kubeconfig=given, started_here=False, local=_is_local(given))
    if os.geteuid() != 0:
        pytest.fail("no reachable cluster in $KUBECONFIG and bringing up the local one needs root")
    cluster_up()
    return Cluster(kubeconfig=str(LOCAL_KUBECONFIG), started_here=True, local=True)


@pytest.fixture(scope="session")
def image(cluster: Cluster) -> str:
    name = os.environ.get("IMAGE") or DEFAULT_IMAGE
    if not cluster.local:
        return name  # a foreign cluster must be able to pull it
    proc = subprocess.run(
        [str(REPO / "hack" / "image.sh")],
        env={**os.environ, "IMAGE": name},
        capture_output=True,
        text=True,
        timeout=1800,
        cwd=REPO,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"hack/image.sh failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return name


def container_pid(container_id: str) -> int:
    """The host pid of a container of the local cluster (crictl inspect on its containerd)."""
    inspect = subprocess.run(
        [CRICTL, "--runtime-endpoint", f"unix://{CTR_SOCKET}", "inspect", container_id],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return int(json.loads(inspect.stdout)["info"]["pid"])


def restricted_namespace(cluster: Cluster, name: str) -> None:
    """A namespace (labelled e2e) that enforces the restricted Pod Security profile."""
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": name,
                "labels": {
                    "e2e": "true",
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/enforce-version": "latest",
                },
            },
        }
    )


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    base = "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:40].strip("-")
    name = f"e2e-{base}-{uuid.uuid4().hex[:6]}"
    restricted_namespace(cluster, name)
    # pods can only be created once the ServiceAccount controller made the namespace's `default`
    for _ in range(120):
        if cluster.kubectl("-n", name, "get", "serviceaccount", "default", check=False).returncode == 0:
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"namespace {name}: no default ServiceAccount after 60 s")
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


@contextlib.contextmanager
def operator_in_process(
    cluster: Cluster, image: str, namespace: str, **settings: Any
) -> Iterator[reconcile_harness.Cluster]:
    """The CRDs applied, then the real operator in this process watching `namespace` (settings: the
    harness's operator options beyond the e2e defaults); its `metrics` ride on the yielded Cluster."""
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(REPO / "crds"))
    api = config.new_client_from_config(cluster.kubeconfig)  # type: ignore[no-untyped-call]
    with reconcile_harness.operator(
        Path(cluster.kubeconfig), namespace, kubelet=False, image=image, resync_seconds=30.0, **settings
    ) as metrics:
        live_cluster = reconcile_harness.Cluster(api, namespace)
        live_cluster.metrics = metrics  # type: ignore[attr-defined]  # the in-process operator's (test_prometheus)
        yield live_cluster


@pytest.fixture
def live(cluster: Cluster, image: str, namespace: str) -> Iterator[reconcile_harness.Cluster]:
    with operator_in_process(cluster, image, namespace, serving_service_account="mlops-serving") as live_cluster:
        yield live_cluster
