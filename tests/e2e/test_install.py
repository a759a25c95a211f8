"""Acceptance of issue 6: a real `helm install` of the local image on the local cluster.

One release per module, watching one workload namespace only (so it never reconciles what another
test or `make demo` runs elsewhere). The tests run in file order: validate, install, samples to a
served model, approvals by two people through the installed webhook (issue 15 item 1), RBAC against
the golden file, restricted pods, clean log, upgrade, uninstall.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_operator import contracts
from mlops_operator.api.v1alpha1.model import ModelVersion
from mlops_operator.builders import jobs as job_builders
from mlops_operator.plugin import actions
from mlops_operator.plugin.resources import parse_time
from tests.e2e.conftest import CACHE, CTR_SOCKET, REPO, Cluster, restricted_namespace

pytestmark = pytest.mark.e2e

HELM = os.environ.get("MLOPS_HELM", str(CACHE / "bin" / "helm"))
CHART = REPO / "charts" / "mlops-operator"
SAMPLES = REPO / "manifests" / "samples"
GOLDEN_CAN_I = REPO / "tests" / "golden" / "rbac-can-i.txt"


# --- helpers shared with test_plugin.py ------------------------------------------------------------


def helm(cluster: Cluster, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [HELM, "--kubeconfig", cluster.kubeconfig, *args], capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def split_image(image: str) -> tuple[str, str]:
    repository, _, tag = image.rpartition(":")
    return repository, tag


@dataclass
class Release:
    """A chart release watching exactly one workload namespace."""

    cluster: Cluster
    name: str
    namespace: str
    workloads: str
    image: str

    @classmethod
    def fresh(cls, cluster: Cluster, image: str, tag: str) -> Release:
        """A release with unique names and its two restricted namespaces (not installed yet).

        The release name contains the chart name, so the chart names the Deployment after it.
        """
        suffix = uuid.uuid4().hex[:6]
        rel = cls(cluster, f"mlops-operator-{tag}-{suffix}", f"e2e-{tag}-system-{suffix}", f"e2e-{tag}-{suffix}", image)
        restricted_namespace(cluster, rel.namespace)
        restricted_namespace(cluster, rel.workloads)
        return rel

    @property
    def service_account(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.name}"

    def install(self, *extra: str) -> str:
        """`helm upgrade --install`; returns helm's output (the NOTES included)."""
        # Helm never upgrades CRDs it finds in place (an older run, the integration tests): apply
        # them first, as docs/install.md tells users to on every upgrade.
        self.cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CHART / "crds"))
        repository, tag = split_image(self.image)
        return helm(
            self.cluster,
            *("upgrade", "--install", self.name, str(CHART), "-n", self.namespace),
            *("--set", f"image.repository={repository}", "--set-string", f"image.tag={tag}"),
            *("--set", f"operator.watchNamespaces={{{self.workloads}}}"),
            *("--set", "operator.logLevel=debug", "--wait", "--timeout", "5m", *extra),
        ).stdout

    def operator_pod(self) -> dict[str, Any]:
        pods = self.cluster.json(
            "-n",
            self.namespace,
            "get",
            "pods",
            "-l",
            f"app.kubernetes.io/instance={self.name},app.kubernetes.io/component=operator",
        )["items"]
        running = [
            p for p in pods if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
        ]
        assert len(running) == 1, [p["metadata"]["name"] for p in pods]
        pod: dict[str, Any] = running[0]
        return pod

    def operator_log(self) -> str:
        return self.cluster.logs(self.namespace, f"deployment/{self.name}")

    def get(self, kind: str, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.cluster.json("-n", self.workloads, "get", kind, name)
        return result

    def wait_for(
        self, kind: str, name: str, what: str, ok: Callable[[dict[str, Any]], bool], timeout: float = 420
    ) -> dict[str, Any]:
        """Polls (bounded) until `ok(object)`; fails with the object, the operator log and the namespace."""
        deadline = time.monotonic() + timeout
        obj: dict[str, Any] = {}
        while time.monotonic() < deadline:
            obj = self.get(kind, name)
            if ok(obj):
                return obj
            time.sleep(2)
        raise AssertionError(
            f"{kind} {name}: {what} not reached in {timeout:.0f} s\n"
            f"status: {json.dumps(obj.get('status'), indent=1)[-3000:]}\n"
            f"operator log:\n{self.operator_log()[-4000:]}\n{self.cluster.diagnose(self.workloads)}"
        )

    def uninstall(self) -> None:
        helm(self.cluster, "uninstall", self.name, "-n", self.namespace, "--wait", "--timeout", "3m", check=False)

    def remove_everything(self) -> None:
        """Test cleanup: delete the custom resources, clearing any finalizer a stopped operator could not remove."""
        for plural in ("driftmonitors", "models", "datasets"):
            names = self.cluster.kubectl("-n", self.workloads, "get", plural, "-o", "name", check=False).stdout.split()
            for obj in names:
                self.cluster.kubectl(
                    "-n",
                    self.workloads,
                    "patch",
                    obj,
                    "--type=merge",
                    "-p",
                    '{"metadata":{"finalizers":null}}',
                    check=False,
                )
        for ns in (self.workloads, self.namespace):
            self.cluster.kubectl("delete", "namespace", ns, "--wait=false", "--ignore-not-found", check=False)


def serving(model: dict[str, Any]) -> bool:
    status = model.get("status") or {}
    return status.get("phase") == "Serving" and status.get("servingVersion") is not None


def breast_cancer_records(n: int) -> list[dict[str, float]]:
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame.drop(columns=["target"])
    return [{k: float(v) for k, v in row.items()} for row in frame.head(n).to_dict(orient="records")]


def predict(
    cluster: Cluster, namespace: str, service: str, records: list[dict[str, float]], timeout: float = 5
) -> list[Any]:
    svc = cluster.json("-n", namespace, "get", "service", service)
    ip, port = svc["spec"]["clusterIP"], svc["spec"]["ports"][0]["port"]
    request = urllib.request.Request(
        f"http://{ip}:{port}/predict",
        data=json.dumps({"records": records}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        predictions: list[Any] = json.loads(response.read())["predictions"]
    return predictions


def first_predictions(
    cluster: Cluster, namespace: str, service: str, records: list[dict[str, float]], within: float = 30
) -> list[Any]:
    """`predict` on a Service that just got its first ready endpoint.

    kube-proxy rejects connections to a ClusterIP without endpoints and programs the new ones a
    moment after the Pod turns ready (its sync period), so the first call may be refused; bounded.
    """
    deadline = time.monotonic() + within
    while True:
        try:
            return predict(cluster, namespace, service, records)
        except urllib.error.URLError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


# --- restricted pods, for every pod seen during the run --------------------------------------------------


def restricted_violations(pod: dict[str, Any]) -> list[str]:
    """What the Pod Security Standards `restricted` profile forbids, checked on one pod."""
    spec = pod["spec"]
    name = pod["metadata"]["name"]
    problems = [f"{name}: {key}" for key in ("hostNetwork", "hostPID", "hostIPC") if spec.get(key)]
    problems += [f"{name}: volume {v['name']} is {t}" for v in spec.get("volumes", []) for t in ("hostPath",) if t in v]
    pod_sc = spec.get("securityContext") or {}
    for c in spec.get("initContainers", []) + spec.get("containers", []):
        sc = c.get("securityContext") or {}
        where = f"{name}/{c['name']}"
        if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is not True:
            problems.append(f"{where}: runAsNonRoot is not true")
        if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
            problems.append(f"{where}: runs as uid 0")
        if sc.get("privileged"):
            problems.append(f"{where}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}: allowPrivilegeEscalation is not false")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            problems.append(f"{where}: capabilities do not drop ALL")
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            problems.append(f"{where}: adds capabilities {caps['add']}")
        seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{where}: seccompProfile is {seccomp}")
    return problems


@dataclass
class PodRecorder:
    """Every pod that appears in some namespaces while the module runs (`kubectl get pods -w`)."""

    cluster: Cluster
    namespaces: tuple[str, ...]
    pods: dict[str, dict[str, Any]] = field(default_factory=dict)
    _procs: list[subprocess.Popen[str]] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for ns in self.namespaces:
            proc = subprocess.Popen(
                [
                    str(CACHE / "bin" / "kubectl"),
                    "--kubeconfig",
                    self.cluster.kubeconfig,
                    "-n",
                    ns,
                    "get",
                    "pods",
                    "--watch",
                    "-o",
                    "json",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
            thread.start()
            self._procs.append(proc)
            self._threads.append(thread)

    def _read(self, proc: subprocess.Popen[str]) -> None:
        decoder, buffer = json.JSONDecoder(), ""
        assert proc.stdout is not None
        for line in proc.stdout:
            buffer += line
            while buffer.strip():
                try:
                    obj, end = decoder.raw_decode(buffer.lstrip())
                except json.JSONDecodeError:
                    break
                buffer = buffer.lstrip()[end:]
                items = obj.get("items", [obj]) if obj.get("kind") == "List" else [obj]
                for pod in items:
                    self.pods[f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"] = pod

    def stop(self) -> None:
        for proc in self._procs:
            proc.terminate()
            proc.wait(timeout=10)


# --- the module's release ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def release(cluster: Cluster, image: str) -> Iterator[Release]:
    others = [
        d
        for d in cluster.json(
            "get",
            "deployments",
            "-A",
            "-l",
            "app.kubernetes.io/component=operator,app.kubernetes.io/name=mlops-operator",
        )["items"]
        if not any(
            e.get("name") == "MLOPS_NAMESPACES" and e.get("value")
            for e in d["spec"]["template"]["spec"]["containers"][0].get("env", [])
        )
    ]
    if others:
        where = ", ".join(f"{d['metadata']['namespace']}/{d['metadata']['name']}" for d in others)
        pytest.fail(
            f"a cluster-wide mlops-operator ({where}) would reconcile this test's resources too: `make demo-down`"
        )
    suffix = uuid.uuid4().hex[:6]
    rel = Release(
        cluster,
        name=f"mlops-operator-{suffix}",
        namespace=f"e2e-mlops-system-{suffix}",
        workloads=f"e2e-install-{suffix}",
        image=image,
    )
    restricted_namespace(cluster, rel.namespace)
    restricted_namespace(cluster, rel.workloads)
    yield rel
    rel.uninstall()
    rel.remove_everything()


@pytest.fixture(scope="module")
def recorder(cluster: Cluster, release: Release) -> Iterator[PodRecorder]:
    rec = PodRecorder(cluster, (release.namespace, release.workloads))
    rec.start()
    yield rec
    rec.stop()


@pytest.fixture(scope="module")
def install_output(release: Release, recorder: PodRecorder) -> str:
    return release.install()


@pytest.fixture(scope="module")
def installed(release: Release, install_output: str) -> Release:
    return release


# --- the tests, in order -------------------------------------------------------------------------------------


def test_rendered_manifests_pass_server_side_validation(cluster: Cluster, release: Release) -> None:
    # `helm template` checks Chart.yaml's kubeVersion against its built-in default (a go-installed helm
    # says 1.20), not against a cluster: tell it the server's version.
    server = json.loads(cluster.kubectl("version", "-o", "json").stdout)["serverVersion"]["gitVersion"]
    args = ("template", release.name, str(CHART), "-n", release.namespace, "--include-crds", "--kube-version", server)
    rendered = helm(cluster, *args).stdout
    done = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=rendered)
    assert "created (server dry run)" in done.stdout or "configured (server dry run)" in done.stdout
    objects = [o for o in yaml.safe_load_all(rendered) if o]
    assert len(done.stdout.strip().splitlines()) == len(objects)


def test_a_wrong_value_fails_helm_install(cluster: Cluster, release: Release) -> None:
    done = helm(
        cluster,
        "install",
        "wrong-values",
        str(CHART),
        "-n",
        release.namespace,
        "--set-string",
        "monitoring.metricsPort=lots",
        check=False,
    )
    assert done.returncode != 0 and "values don't meet the specifications of the schema" in done.stderr
    assert helm(cluster, "status", "wrong-values", "-n", release.namespace, check=False).returncode != 0


def test_the_operator_runs_in_cluster_under_its_own_account(installed: Release) -> None:
    pod = installed.operator_pod()
    assert pod["spec"]["serviceAccountName"] == installed.name
    (container,) = pod["spec"]["containers"]
    assert container["image"] == installed.image
    ready = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
    assert ready["Ready"] == "True"
    assert pod["status"]["containerStatuses"][0]["restartCount"] == 0
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MLOPS_NAMESPACES"] == installed.workloads and env["MLOPS_IMAGE"] == installed.image


def test_the_notes_tell_the_user_what_to_do_next(installed: Release, install_output: str) -> None:
    notes = install_output.split("NOTES:", 1)[1]
    assert f"It reconciles Datasets, Models and DriftMonitors in: {installed.workloads}." in notes
    assert f"kubectl -n {installed.namespace} rollout status deployment/{installed.name}" in notes
    for step in ("kubectl apply -n <namespace> -f manifests/samples/", "kubectl mlops status", "kubectl mlops approve"):
        assert step in notes


def test_the_samples_go_from_dataset_to_a_served_model(cluster: Cluster, installed: Release) -> None:
    cluster.kubectl("apply", "-n", installed.workloads, "-f", str(SAMPLES))
    dataset = installed.wait_for(
        "dataset", "breast-cancer", "phase Ready", lambda o: (o.get("status") or {}).get("phase") == "Ready"
    )
    assert dataset["status"]["rows"] == 569
    model = installed.wait_for("model", "breast-cancer-lr", "Serving", serving)
    version = next(v for v in model["status"]["versions"] if v["version"] == model["status"]["servingVersion"])
    assert version["metrics"]["accuracy"] >= 0.9
    predictions = first_predictions(cluster, installed.workloads, "breast-cancer-lr", breast_cancer_records(5))
    assert len(predictions) == 5 and set(predictions) <= {0, 1}
    manual = installed.wait_for(
        "model",
        "breast-cancer-rf",
        "AwaitingApproval",
        lambda o: (o.get("status") or {}).get("phase") == "AwaitingApproval",
    )
    assert manual["status"].get("servingVersion") is None
    monitor = installed.wait_for(
        "driftmonitor", "breast-cancer-lr", "a first status", lambda o: bool(o.get("status")), timeout=180
    )
    assert monitor["status"].get("conditions")
    # Workload pods run under the workload accounts, which the operator ensured in this namespace.
    for account in ("mlops-workload", "mlops-serving"):
        sa = cluster.json("-n", installed.workloads, "get", "serviceaccount", account)
        assert sa.get("automountServiceAccountToken") is False


# --- issue 15 item 1: who approved, through the installed webhook -------------------------------------


MANUAL_SAMPLE = "breast-cancer-rf"


@dataclass(frozen=True)
class Person:
    """Someone with their own credentials: the API server authenticates `client`'s requests as `user`."""

    user: str
    groups: list[str]
    client: Cluster


def until(check: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    """Polls (bounded) until `check()` is truthy; returns it."""
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached in {timeout:.0f} s; last seen: {found!r}")
        time.sleep(1)
    return found


def model_editors(cluster: Cluster, namespace: str, names: tuple[str, ...]) -> None:
    """ServiceAccounts `names`, allowed to get, list and patch Models in `namespace` and nothing else."""
    role = {"apiGroups": [contracts.GROUP], "resources": ["models"], "verbs": ["get", "list", "patch"]}
    subjects = [{"kind": "ServiceAccount", "name": name, "namespace": namespace} for name in names]
    cluster.apply(
        *({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}} for name in names),
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "model-editors"},
            "rules": [role],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "model-editors"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "model-editors"},
            "subjects": subjects,
        },
        namespace=namespace,
    )


def person(cluster: Cluster, namespace: str, name: str, directory: Path) -> Person:
    """A kubeconfig with only the server, its CA and a token of ServiceAccount `name`: the admin's client
    certificate is not in it, so nothing but the token says who is asking."""
    token = cluster.kubectl("-n", namespace, "create", "token", name, "--duration=1h").stdout.strip()
    admin = json.loads(cluster.kubectl("config", "view", "--raw", "--minify", "--flatten", "-o", "json").stdout)
    server = {k: v for k, v in admin["clusters"][0]["cluster"].items() if k in ("server", "certificate-authority-data")}
    kubeconfig = directory / f"{name}.kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "cluster", "cluster": server}],
                "users": [{"name": name, "user": {"token": token}}],
                "contexts": [{"name": name, "context": {"cluster": "cluster", "user": name}}],
                "current-context": name,
            }
        )
    )
    kubeconfig.chmod(0o600)
    client = Cluster(str(kubeconfig), started_here=False, local=cluster.local)
    who = json.loads(client.kubectl("auth", "whoami", "-o", "json").stdout)["status"]["userInfo"]
    assert who["username"] == f"system:serviceaccount:{namespace}:{name}", who
    return Person(who["username"], who["groups"], client)


def may_patch_models(who: Person, namespace: str) -> bool:
    done = who.client.kubectl("auth", "can-i", "patch", f"models.{contracts.GROUP}", "-n", namespace, check=False)
    return done.stdout.strip() == "yes"


def approve(who: Person, namespace: str, model: str, version: int) -> None:
    """What `kubectl mlops approve` sends, with that person's own credentials."""
    patch = json.dumps(actions.approve_patch(version))
    who.client.kubectl("-n", namespace, "patch", "model", model, "--type=merge", "-p", patch)


def version_record(model: dict[str, Any], version: int) -> dict[str, Any]:
    return next((v for v in (model.get("status") or {}).get("versions") or [] if v["version"] == version), {})


def approved_message(model: dict[str, Any]) -> str:
    conditions = (model.get("status") or {}).get("conditions") or []
    return next((str(c.get("message", "")) for c in conditions if c["type"] == "Approved"), "")


def event_messages(cluster: Cluster, namespace: str, model: str, reason: str) -> list[str]:
    selector = f"involvedObject.kind=Model,involvedObject.name={model},reason={reason}"
    return [e["message"] for e in cluster.json("-n", namespace, "get", "events", "--field-selector", selector)["items"]]


def mirrored(model: dict[str, Any]) -> bool:
    """Whether the registry mirror in the store holds exactly what status.versions holds now."""
    status = model.get("status") or {}
    versions = [ModelVersion.model_validate(v) for v in status.get("versions") or []]
    return bool(versions) and (status.get("registry") or {}).get("digest") == job_builders.registry_digest(versions)


def stored_registry(cluster: Cluster, namespace: str, model: str) -> dict[str, Any]:
    """The model's registry.json, read where the store is: on the claim its server mounts (in the cluster)."""
    (server,) = cluster.json("-n", namespace, "get", "deployments", "-l", f"{contracts.LABEL_MODEL}={model}")["items"]
    env = {e["name"]: e.get("value") for e in server["spec"]["template"]["spec"]["containers"][0].get("env", [])}
    store = env[contracts.ENV_STORE_URI]
    assert store.startswith("file://"), f"the module's release uses the pvc store, not {store}"
    path = contracts.model_registry_uri(store, namespace, model).removeprefix("file://")
    ledger: dict[str, Any] = json.loads(
        cluster.kubectl("-n", namespace, "exec", f"deployment/{server['metadata']['name']}", "--", "cat", path).stdout
    )
    return ledger


def test_approvals_through_the_installed_webhook_name_each_person_and_need_two(
    cluster: Cluster, installed: Release, tmp_path: Path
) -> None:
    ns, name = installed.workloads, MANUAL_SAMPLE
    # The API server calls the operator pod through the release's Service once the operator published
    # its CA in the configuration the chart created.
    configuration = f"{installed.name}-approvals"
    (hook,) = until(
        lambda: [
            h
            for h in cluster.json("get", "mutatingwebhookconfiguration", configuration).get("webhooks") or []
            if h["clientConfig"].get("caBundle")
        ],
        f"{configuration} published by the operator",
    )
    assert hook["clientConfig"]["service"]["namespace"] == installed.namespace
    assert hook["clientConfig"]["service"]["name"] == f"{installed.name}-webhook"

    # The Manual sample (its v1 trained in the samples test; applying it again changes nothing), made
    # four-eyes: the approval policy is not part of the training spec, so nothing retrains.
    cluster.kubectl("apply", "-n", ns, "-f", str(SAMPLES / "dataset.yaml"), "-f", str(SAMPLES / "model-manual.yaml"))
    four_eyes = json.dumps({"spec": {"approval": {"policy": "Manual", "requiredApprovers": 2}}})
    cluster.kubectl("-n", ns, "patch", "model", name, "--type=merge", "-p", four_eyes)
    installed.wait_for(
        "model",
        name,
        "v1 validated, awaiting approval",
        lambda o: (
            (o.get("status") or {}).get("phase") == "AwaitingApproval"
            and version_record(o, 1).get("state") in ("Validated", "AwaitingApproval")
        ),
    )

    model_editors(cluster, ns, ("alice", "bob"))
    alice, bob = (person(cluster, ns, who, tmp_path) for who in ("alice", "bob"))
    for who in (alice, bob):
        until(functools.partial(may_patch_models, who, ns), f"{who.user} may patch Models (RBAC caught up)")
        assert not may_patch_models(who, installed.namespace)

    approve(alice, ns, name, 1)
    first = installed.wait_for(
        "model", name, "alice's approval recorded", lambda o: bool(version_record(o, 1).get("approvals"))
    )
    # One record per person and second: the same person's second approval falls in a later second.
    recorded_at = parse_time(version_record(first, 1)["approvals"][0]["at"])
    until(lambda: datetime.now(UTC) >= recorded_at + timedelta(seconds=1), "the next second")
    approve(alice, ns, name, 1)
    waiting = installed.wait_for(
        "model",
        name,
        "alice's second approval recorded, still one of two",
        lambda o: (
            len(version_record(o, 1).get("approvals") or []) == 2
            and f"version 1: 1 of 2 approvals ({alice.user}); needs one more" in approved_message(o)
        ),
    )
    record = version_record(waiting, 1)
    assert [(a["user"], a["groups"]) for a in record["approvals"]] == [(alice.user, alice.groups)] * 2
    # The same person twice is one approval: nothing serves.
    assert waiting["status"]["phase"] == "AwaitingApproval" and waiting["status"].get("servingVersion") is None
    assert not record.get("approvedBy") and not record.get("approvedAt")
    assert not cluster.json("-n", ns, "get", "deployments", "-l", f"{contracts.LABEL_MODEL}={name}")["items"]
    alice_recorded = f"version 1 approved by {alice.user} (groups: {', '.join(alice.groups)})"
    until(
        lambda: alice_recorded in event_messages(cluster, ns, name, "ApprovalRecorded"),
        "alice's ApprovalRecorded Event",
    )

    approve(bob, ns, name, 1)  # a second person: v1 serves
    served = installed.wait_for(
        "model", name, "v1 serving", lambda o: (o.get("status") or {}).get("servingVersion") == 1, timeout=300
    )
    record = version_record(served, 1)
    assert record["approvedBy"] == f"{alice.user}, {bob.user}"
    assert [(a["user"], a["counted"]) for a in record["approvals"]] == [
        (alice.user, True),
        (alice.user, True),
        (bob.user, True),
    ]
    assert parse_time(record["approvedAt"]) >= parse_time(record["approvals"][-1]["at"])
    assert record["servingPeriods"][-1]["by"] == bob.user
    until(
        lambda: f"version 1 approved by {alice.user}, {bob.user}" in event_messages(cluster, ns, name, "Approved"),
        "the Approved Event naming both",
    )

    synced = installed.wait_for("model", name, "the ledger mirrored to the store", mirrored, timeout=300)
    (stored,) = [v for v in stored_registry(cluster, ns, name)["versions"] if v["version"] == 1]
    assert stored["approvedBy"] == f"{alice.user}, {bob.user}"
    assert parse_time(stored["approvedAt"]) == parse_time(version_record(synced, 1)["approvedAt"])
    assert [a["user"] for a in stored["approvals"]] == [alice.user, alice.user, bob.user]


def can_i_list(cluster: Cluster, release: Release) -> list[str]:
    """`kubectl auth can-i --list` as the operator, in the watched namespace, one normalised row per line."""
    out = cluster.kubectl("auth", "can-i", "--list", f"--as={release.service_account}", "-n", release.workloads).stdout
    # Columns are separated by 2+ spaces; a blank first cell (non-resource URLs) stays a blank cell.
    rows = [" | ".join(re.split(r"\s{2,}", line.rstrip())).strip() for line in out.splitlines() if line.strip()]
    # objects named after the release (its webhook configuration) carry the run's unique name
    rows = [row.replace(release.name, "<release>") for row in rows]
    return [rows[0], *sorted(rows[1:])]


def test_operator_rights_equal_the_golden_file(cluster: Cluster, installed: Release) -> None:
    rows = can_i_list(cluster, installed)
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN_CAN_I.write_text("\n".join(rows) + "\n")
    assert GOLDEN_CAN_I.exists(), "no golden file yet: run once with UPDATE_GOLDEN=1 and review it"
    assert rows == GOLDEN_CAN_I.read_text().splitlines()


@pytest.mark.parametrize(
    "question",
    [
        ("get", "secrets"),
        ("list", "secrets"),
        ("watch", "secrets"),
        # Subresources need --subresource: `can-i create pods/exec` would ask about a pod named "exec".
        ("create", "pods", "--subresource=exec"),
        ("create", "pods", "--subresource=attach"),
        ("create", "pods", "--subresource=portforward"),
        ("get", "pods", "--subresource=log"),
        ("create", "pods"),
        ("*", "*"),
        ("create", "clusterrolebindings"),
        ("escalate", "clusterroles"),
        ("impersonate", "serviceaccounts"),
    ],
)
def test_operator_may_not(cluster: Cluster, installed: Release, question: tuple[str, ...]) -> None:
    for scope in (("-n", installed.workloads), ("-n", installed.namespace), ("-A",)):
        done = cluster.kubectl("auth", "can-i", *question, f"--as={installed.service_account}", *scope, check=False)
        assert done.stdout.strip() == "no", (question, scope, done.stdout)


def test_the_operator_has_no_child_rights_outside_the_watched_namespace(cluster: Cluster, installed: Release) -> None:
    for verb, resource in (("create", "jobs.batch"), ("create", "deployments.apps"), ("list", "pods")):
        done = cluster.kubectl(
            "auth", "can-i", verb, resource, f"--as={installed.service_account}", "-n", "default", check=False
        )
        assert done.stdout.strip() == "no", (verb, resource)


def test_every_pod_of_the_run_satisfies_restricted(cluster: Cluster, installed: Release, recorder: PodRecorder) -> None:
    time.sleep(2)  # let the watch catch up with the last pods
    pods = dict(recorder.pods)
    components = {p["metadata"].get("labels", {}).get("app.kubernetes.io/component") for p in pods.values()}
    assert {"operator", "profile", "train", "serve"} <= components, components
    problems = [problem for pod in pods.values() for problem in restricted_violations(pod)]
    assert not problems, problems
    for ns in (installed.namespace, installed.workloads):
        events = cluster.json("-n", ns, "get", "events")["items"]
        refused = [e["message"] for e in events if "violates PodSecurity" in e.get("message", "")]
        assert not refused, refused


def test_no_403_in_the_operator_log(installed: Release) -> None:
    log = installed.operator_log()
    # an HTTP 403 as urllib3 logs it, or kopf's APIForbiddenError (not ",403]" in a timestamp)
    forbidden = [line for line in log.splitlines() if re.search(r'HTTP/1\.1" 403 |Forbidden', line)]
    assert not forbidden, "\n".join(forbidden[:20])


def retag_for_upgrade(image: str) -> str:
    """The same image under a new tag, in the local cluster's containerd: an upgrade the node has."""
    repository, _ = split_image(image)
    new = f"{repository}:e2e-upgrade"
    done = subprocess.run(
        ["ctr", "-a", CTR_SOCKET, "-n", "k8s.io", "images", "tag", "--force", image, new],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return new


def test_helm_upgrade_to_a_new_image_keeps_serving(cluster: Cluster, installed: Release) -> None:
    if not cluster.local:
        pytest.skip("re-tagging the image needs the local cluster's containerd")
    before = installed.get("model", "breast-cancer-lr")["status"]["servingVersion"]
    records = breast_cancer_records(3)
    failures: list[str] = []
    answered = 0
    stop = threading.Event()

    def keep_predicting() -> None:
        nonlocal answered
        while not stop.is_set():
            try:
                predict(cluster, installed.workloads, "breast-cancer-lr", records, timeout=5)
                answered += 1
            except Exception as exc:  # every failed request counts: that is what "keeps serving" means
                failures.append(repr(exc))
            time.sleep(0.2)

    new_image = retag_for_upgrade(installed.image)
    thread = threading.Thread(target=keep_predicting, daemon=True)
    thread.start()
    try:
        old_pod = installed.operator_pod()["metadata"]["name"]
        installed.image = new_image
        installed.install()
        pod = installed.operator_pod()
        assert pod["metadata"]["name"] != old_pod and pod["spec"]["containers"][0]["image"] == new_image
        # The model server follows the operator's image (MLOPS_IMAGE): wait for its rollout too.
        installed.wait_for(
            "model",
            "breast-cancer-lr",
            "the server on the new image",
            lambda o: (
                serving(o)
                and all(
                    c["image"] == new_image
                    for d in cluster.json(
                        "-n", installed.workloads, "get", "deployments", "-l", "mlops.dev/model=breast-cancer-lr"
                    )["items"]
                    for c in d["spec"]["template"]["spec"]["containers"]
                )
            ),
            timeout=300,
        )
        cluster.kubectl(
            "-n",
            installed.workloads,
            "rollout",
            "status",
            "deployment",
            "-l",
            "mlops.dev/model=breast-cancer-lr",
            "--timeout=180s",
        )
        time.sleep(3)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert answered > 0
    assert not failures, f"{len(failures)} of {answered + len(failures)} predictions failed: {failures[:5]}"
    assert installed.get("model", "breast-cancer-lr")["status"]["servingVersion"] == before


def test_helm_uninstall_leaves_only_the_crds_and_the_artifacts(cluster: Cluster, installed: Release) -> None:
    installed.uninstall()
    left = cluster.json(
        "get",
        "deployments,serviceaccounts,services,roles,rolebindings,clusterroles,clusterrolebindings,persistentvolumeclaims",
        "-A",
        "-l",
        f"app.kubernetes.io/instance={installed.name}",
    )["items"]
    assert [(o["kind"], o["metadata"]["name"]) for o in left] == [("PersistentVolumeClaim", "mlops-artifacts")]
    assert left[0]["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    crds = {c["metadata"]["name"] for c in cluster.json("get", "crds")["items"]}
    assert {"datasets.mlops.dev", "models.mlops.dev", "driftmonitors.mlops.dev"} <= crds
    assert not cluster.json("-n", installed.namespace, "get", "pods")["items"] or all(
        p["metadata"].get("deletionTimestamp") for p in cluster.json("-n", installed.namespace, "get", "pods")["items"]
    )
