"""A real etcd + kube-apiserver for integration tests, from the cached binaries (hack/build-binaries.sh).

No kubelet, scheduler or controllers: objects are stored and validated for real (schemas, CEL, RBAC,
admission), nothing runs. Listens on 127.0.0.1 only.
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

BIN_DIR = Path(os.environ.get("MLOPS_CACHE", "/var/cache/mlops-operator")) / "bin"
# Room for 65,534 Services: the scale benchmark serves 1,000 Models (a /24 held 253).
SERVICE_CIDR = "10.97.0.0/16"
ADMIN_TOKEN = "integration-admin-token"  # test-only, loopback-only server
# People without rights of their own (a test grants what it needs): name → (token, groups). The
# approvals webhook's tests act as them to see the API server's authentication recorded.
USERS = {
    "alice": ("integration-alice-token", ("ml-approvers",)),
    "bob": ("integration-bob-token", ("ml-approvers",)),
    "carol": ("integration-carol-token", ("ml-approvers", "data-science")),
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ApiServer:
    url: str
    kubeconfig: Path
    processes: list[subprocess.Popen[bytes]]
    workdir: Path

    def stop(self) -> None:
        for proc in reversed(self.processes):
            proc.terminate()
        for proc in reversed(self.processes):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, attempts: int = 240) -> None:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    req = urllib.request.Request(f"{url}/readyz", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    for _ in range(attempts):  # bounded: ~120 s
        if proc.poll() is not None:
            raise RuntimeError(f"kube-apiserver exited: {log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"kube-apiserver not ready: {log.read_text()[-3000:]}")


def start(workdir: Path) -> ApiServer:
    for binary in ("etcd", "kube-apiserver"):
        if not (BIN_DIR / binary).exists():
            raise RuntimeError(f"{BIN_DIR / binary} is missing: run `make binaries` (hack/build-binaries.sh)")
    workdir.mkdir(parents=True, exist_ok=True)
    etcd_client, etcd_peer, secure = _free_port(), _free_port(), _free_port()
    sa_key = workdir / "sa.key"
    subprocess.run(["openssl", "genrsa", "-out", str(sa_key), "2048"], check=True, capture_output=True)
    tokens = workdir / "tokens.csv"
    people = "".join(f'{token},{name},{name},"{",".join(groups)}"\n' for name, (token, groups) in USERS.items())
    tokens.write_text(f'{ADMIN_TOKEN},admin,admin,"system:masters"\n{people}')
    etcd_log = (workdir / "etcd.log").open("wb")
    etcd = subprocess.Popen(
        [
            str(BIN_DIR / "etcd"),
            "--data-dir",
            str(workdir / "etcd"),
            "--listen-client-urls",
            f"http://127.0.0.1:{etcd_client}",
            "--advertise-client-urls",
            f"http://127.0.0.1:{etcd_client}",
            "--listen-peer-urls",
            f"http://127.0.0.1:{etcd_peer}",
            "--initial-advertise-peer-urls",
            f"http://127.0.0.1:{etcd_peer}",
            "--initial-cluster",
            f"default=http://127.0.0.1:{etcd_peer}",
            "--unsafe-no-fsync",
        ],
        stdout=etcd_log,
        stderr=subprocess.STDOUT,
    )
    api_log_path = workdir / "kube-apiserver.log"
    api = subprocess.Popen(
        [
            str(BIN_DIR / "kube-apiserver"),
            "--etcd-servers",
            f"http://127.0.0.1:{etcd_client}",
            "--bind-address",
            "127.0.0.1",
            "--advertise-address",
            "127.0.0.1",
            "--secure-port",
            str(secure),
            "--cert-dir",
            str(workdir / "certs"),
            "--token-auth-file",
            str(tokens),
            "--authorization-mode",
            "RBAC",
            "--service-account-issuer",
            "https://kubernetes.default.svc",
            "--service-account-key-file",
            str(sa_key),
            "--service-account-signing-key-file",
            str(sa_key),
            "--service-cluster-ip-range",
            SERVICE_CIDR,
            "--enable-admission-plugins",
            "PodSecurity",
            "--disable-admission-plugins",
            "ServiceAccount",
        ],
        stdout=api_log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"https://127.0.0.1:{secure}"
    server = ApiServer(url=url, kubeconfig=workdir / "kubeconfig", processes=[etcd, api], workdir=workdir)
    try:
        _wait_ready(url, api, api_log_path)
    except Exception:
        server.stop()
        raise
    server.kubeconfig.write_text(
        f"""apiVersion: v1
kind: Config
clusters:
- name: integration
  cluster: {{server: "{url}", insecure-skip-tls-verify: true}}
users:
- name: admin
  user: {{token: "{ADMIN_TOKEN}"}}
contexts:
- name: integration
  context: {{cluster: integration, user: admin, namespace: default}}
current-context: integration
"""
    )
    return server


def user_kubeconfig(server: ApiServer, user: str) -> Path:
    """A kubeconfig that authenticates as one of USERS (by its static token)."""
    path = server.workdir / f"kubeconfig-{user}"
    path.write_text(server.kubeconfig.read_text().replace(ADMIN_TOKEN, USERS[user][0]))
    return path
