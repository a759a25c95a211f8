"""Issue 12's attack suite on the local cluster: two tenants, each with a ServiceAccount bound only to
edit Datasets, Models and DriftMonitors in its own namespace plus what a data scientist usually has
(read pods, logs, Jobs, Deployments, Events; create pods and Services). The operator is installed as
the chart documents it (its ServiceAccount, RBAC for the two watched namespaces, the admission
policies and NetworkPolicies from `helm template`) and runs in this process with that ServiceAccount's
own token, so its API calls meet the real RBAC and the real admission policies; its pods run the
project image in the cluster.

Tenant B trains and serves a Model. Tenant A then tries every finding of issue 12 through the API
server with A's own token (`kubectl create token`). Each attack must be refused, by the API server
(RBAC, admission) or by the operator with a condition, while B's objects, B's data on its claim
(sha256 of every file under datasets/ and models/) and B's predictions stay byte for byte the same.
A compromised operator is tried too: its own token may not create a hostPath, privileged, foreign-image
or foreign-account Job, nor a ServiceAccount of its choosing (the ValidatingAdmissionPolicies).
The count of attacks tried and refused is printed, for README's Security section.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import config

from mlops_operator import contracts
from mlops_operator.kube import SERVICE
from tests.e2e.conftest import KUBECTL, REPO, Cluster, restricted_namespace
from tests.integration import reconcile_harness
from tests.integration.reconcile_harness import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
HELM = "/var/cache/mlops-operator/bin/helm"
EVERY, ATTEMPTS = 1.0, 480  # real pods: up to 8 min per step, bounded
LR = {"estimator": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 2000}}
FORGED_ACCURACY = 0.123456
DATA_SCIENTIST = [
    {"apiGroups": ["mlops.dev"], "resources": ["datasets", "models", "driftmonitors"],
     "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
    {"apiGroups": [""], "resources": ["pods", "pods/log", "services", "events", "persistentvolumeclaims",
                                      "configmaps", "serviceaccounts"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["pods", "services"], "verbs": ["create", "delete"]},
    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "watch"]},
]


@dataclass
class Identity:
    """Someone who talks to the API server with a ServiceAccount token of their own."""

    name: str
    kubeconfig: Path

    def kubectl(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [KUBECTL, "--kubeconfig", str(self.kubeconfig), *args],
            input=input, capture_output=True, text=True, timeout=120,
        )

    def apply(self, namespace: str, obj: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        return self.kubectl("-n", namespace, "create", "-f", "-", input=yaml.safe_dump(obj))


@dataclass
class Ledger:
    """Attacks tried, and how each was refused (or not)."""

    rows: list[tuple[str, bool, str]] = field(default_factory=list)

    def record(self, attack: str, refused: bool, how: str) -> None:
        self.rows.append((attack, refused, how.strip().splitlines()[-1][:300] if how.strip() else ""))

    def denied(self, attack: str, done: subprocess.CompletedProcess[str], words: str = "forbidden") -> None:
        self.record(attack, done.returncode != 0 and words in done.stderr, done.stderr or done.stdout)


def token_kubeconfig(cluster: Cluster, namespace: str, account: str, path: Path) -> Identity:
    token = cluster.kubectl("-n", namespace, "create", "token", account, "--duration=2h").stdout.strip()
    admin = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    entry = admin["clusters"][0]
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": account,
        "clusters": [{"name": "local", "cluster": entry["cluster"]}],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [{"name": account, "context": {"cluster": "local", "user": account, "namespace": namespace}}],
    }))
    return Identity(f"{namespace}:{account}", path)


def ready_namespace(cluster: Cluster, name: str) -> None:
    restricted_namespace(cluster, name)
    for _ in range(120):
        if cluster.kubectl("-n", name, "get", "serviceaccount", "default", check=False).returncode == 0:
            return
        time.sleep(0.5)
    raise AssertionError(f"namespace {name}: no default ServiceAccount")


def tenant(cluster: Cluster, namespace: str, account: str, tmp: Path) -> Identity:
    cluster.apply(
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": account}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "data-scientist"},
         "rules": DATA_SCIENTIST},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": account},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "data-scientist"},
         "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}]},
        namespace=namespace,
    )
    return token_kubeconfig(cluster, namespace, account, tmp / f"{account}.kubeconfig")


def install(cluster: Cluster, image: str, release: str, release_ns: str, watched: list[str]) -> None:
    """The chart as documented, minus its Deployment (the operator runs in this process instead)."""
    repository, tag = image.rsplit(":", 1)
    rendered = subprocess.run(
        [HELM, "template", release, str(REPO / "charts" / "mlops-operator"), "-n", release_ns,
         "--kube-version", "1.32.0", "--set", f"image.repository={repository}", "--set-string", f"image.tag={tag}",
         "--set", "operator.watchNamespaces={" + ",".join(watched) + "}"],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    docs = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] != "Deployment"]
    cluster.apply(*docs)


def uninstall(cluster: Cluster, release: str) -> None:
    for kind in ("validatingadmissionpolicybinding", "validatingadmissionpolicy", "clusterrolebinding", "clusterrole"):
        for suffix in ("", "-workloads", "-accounts"):
            cluster.kubectl("delete", kind, release + suffix, "--ignore-not-found", check=False)


@pytest.fixture
def tenants(cluster: Cluster, image: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    suffix = uuid.uuid4().hex[:6]
    ns_a, ns_b, ns_op = f"e2e-tenant-a-{suffix}", f"e2e-tenant-b-{suffix}", f"e2e-mlops-{suffix}"
    release = f"mlops-operator-{suffix}"
    for ns in (ns_a, ns_b, ns_op):
        ready_namespace(cluster, ns)
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(REPO / "crds"))
    try:
        install(cluster, image, release, ns_op, [ns_a, ns_b])
        operator = token_kubeconfig(cluster, ns_op, release, tmp_path / "operator.kubeconfig")
        alice, bob = tenant(cluster, ns_a, "alice", tmp_path), tenant(cluster, ns_b, "bob", tmp_path)
        monkeypatch.setenv("KUBECONFIG", str(operator.kubeconfig))  # kopf logs in with it too
        with reconcile_harness.operator(
            operator.kubeconfig, ns_a, kubelet=False, image=image, namespaces=(ns_a, ns_b),
            resync_seconds=30.0, serving_service_account="mlops-serving",
        ):
            api = config.new_client_from_config(cluster.kubeconfig)  # type: ignore[no-untyped-call]
            yield (cluster, operator, alice, bob,
                   reconcile_harness.Cluster(api, ns_a), reconcile_harness.Cluster(api, ns_b))
    finally:
        for ns in (ns_a, ns_b, ns_op):
            cluster.kubectl("delete", "namespace", ns, "--wait=false", "--ignore-not-found", check=False)
        uninstall(cluster, release)


def custom(kind: str, name: str, spec: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return {"apiVersion": contracts.API_VERSION, "kind": kind, "metadata": {"name": name, **meta}, "spec": spec}


def model(name: str, trainer: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    body = {"datasetRef": {"name": "cancer"}, "trainer": trainer or LR,
            "validation": {"metric": "accuracy", "threshold": 0.8}, **spec}
    return custom("Model", name, body)


DATASET = custom("Dataset", "cancer", {"source": {"uri": "sklearn://breast_cancer"}, "schema": {"target": "target"}})


def condition(c: reconcile_harness.Cluster, kind: str, name: str, reason: str) -> dict[str, Any] | None:
    found = c.condition(kind, name, "Ready")
    return found if found is not None and found["reason"] == reason else None


def serving(c: reconcile_harness.Cluster, name: str) -> bool:
    return bool(c.status("Model", name).get("servingVersion")) and bool(
        (c.deployment(f"{name}-server") or {}).get("status", {}).get("readyReplicas"))


def predict_bytes(c: reconcile_harness.Cluster, service: str) -> bytes:
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame.drop(columns=["target"]).head(8)
    rows = [{k: float(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]
    svc = c.call("GET", SERVICE, service)
    url = f"http://{svc['spec']['clusterIP']}:{svc['spec']['ports'][0]['port']}/predict"
    request = urllib.request.Request(url, data=json.dumps({"records": rows}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return bytes(response.read())


def claim_digest(cluster: Cluster, namespace: str, image: str, name: str) -> str:
    """sha256 of every file of the namespace's datasets and models on its claim, read by a pod there."""
    script = ("cd /var/lib/mlops && find . -path './*/datasets/*' -type f -o -path './*/models/*' -type f "
              "| LC_ALL=C sort | xargs -r sha256sum")
    security = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": True,
                "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}}
    pod = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "automountServiceAccountToken": False,
                 "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                 "containers": [{"name": "hash", "image": image, "imagePullPolicy": "IfNotPresent",
                                 "command": ["sh", "-c", script], "securityContext": security,
                                 "volumeMounts": [{"name": "store", "mountPath": "/var/lib/mlops", "readOnly": True}]}],
                 "volumes": [{"name": "store", "persistentVolumeClaim": {"claimName": "mlops-artifacts",
                                                                       "readOnly": True}}]},
    }
    cluster.apply(pod, namespace=namespace)
    cluster.kubectl("-n", namespace, "wait", f"pod/{name}", "--for=jsonpath={.status.phase}=Succeeded",
                    "--timeout=180s")
    listing = cluster.logs(namespace, f"pod/{name}")
    cluster.kubectl("-n", namespace, "delete", "pod", name, "--wait=false")
    assert "/models/clf/" in listing and "/datasets/cancer/" in listing, listing
    return listing


def victim_state(c: reconcile_harness.Cluster) -> dict[str, Any]:
    def meta(obj: dict[str, Any] | None) -> tuple[Any, ...]:
        assert obj is not None
        return obj["metadata"]["uid"], obj["metadata"]["resourceVersion"], obj.get("spec")

    return {
        "model": {k: c.get("Model", "clf")[k] for k in ("spec", "status")},
        "dataset": {k: c.get("Dataset", "cancer")[k] for k in ("spec", "status")},
        "deployment": meta(c.deployment("clf-server")),
        "service": meta(c.call("GET", SERVICE, "clf")),
    }


def settled(c: reconcile_harness.Cluster) -> dict[str, Any]:
    """B's state once it stops moving (the rollout, the registry mirror): equal over 15 s."""
    last = victim_state(c)
    for _ in range(40):
        time.sleep(15)
        now = victim_state(c)
        if now == last:
            return now
        last = now
    raise AssertionError("B's objects kept changing for 10 minutes")


def test_tenant_a_cannot_harm_tenant_b(tenants: Any, image: str) -> None:
    cluster, operator, alice, bob, a, b = tenants
    ns_a, ns_b = a.ns, b.ns
    # --- B, the victim, as B's own tenant: a served model ---------------------------------------
    assert bob.apply(ns_b, DATASET).returncode == 0
    assert bob.apply(ns_b, model("clf")).returncode == 0
    # --- A sets up what some attacks need: data, a colleague's Service named like a Model ---------
    assert alice.apply(ns_a, DATASET).returncode == 0
    trap = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "trap", "labels": {"team": "web"}},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 8080, "targetPort": 8080}]}}
    assert alice.apply(ns_a, trap).returncode == 0
    assert alice.apply(ns_a, model("trap")).returncode == 0
    eventually(lambda: serving(b, "clf"), what="B's model serving", every=EVERY, attempts=ATTEMPTS)
    before = settled(b)
    answers = predict_bytes(b, "clf")
    data = claim_digest(cluster, ns_b, image, "hash-before")
    ledger = Ledger()
    attacks(ledger, cluster, operator, alice, a, ns_a, ns_b, image)
    report = "\n".join(f"{'refused' if ok else 'NOT REFUSED'}  {name}: {how}" for name, ok, how in ledger.rows)
    refused = sum(ok for _, ok, _ in ledger.rows)
    print(f"\ntenant attacks: {len(ledger.rows)} tried, {refused} refused\n{report}")
    Path(REPO / "build").mkdir(exist_ok=True)
    (REPO / "build" / "tenant-attacks.txt").write_text(f"{len(ledger.rows)} tried, {refused} refused\n{report}\n")
    assert refused == len(ledger.rows), report
    # --- nothing of B's moved ---------------------------------------------------------------------
    after = victim_state(b)
    assert after == before, {k: (before[k], after[k]) for k in before if before[k] != after[k]}
    assert predict_bytes(b, "clf") == answers
    assert claim_digest(cluster, ns_b, image, "hash-after") == data


def attacks(ledger: Ledger, cluster: Cluster, operator: Identity, alice: Identity,
            a: reconcile_harness.Cluster, ns_a: str, ns_b: str, image: str) -> None:
    across(ledger, alice, ns_a, ns_b)
    through_the_operator(ledger, alice, a, ns_a, ns_b)
    forged_result(ledger, alice, a, ns_a, image)
    as_the_operator(ledger, operator, ns_b, image)


def across(ledger: Ledger, alice: Identity, ns_a: str, ns_b: str) -> None:
    """Straight at B's namespace with A's token: RBAC refuses each."""
    k = alice.kubectl
    ledger.denied("create a Model in B", alice.apply(ns_b, model("clf-copy")))
    ledger.denied("patch B's Model (approve a version)", k("-n", ns_b, "patch", "model", "clf", "--type=merge",
                                                          "-p", '{"spec":{"approvedVersion":1}}'))
    ledger.denied("delete B's Model", k("-n", ns_b, "delete", "model", "clf", "--wait=false"))
    ledger.denied("delete B's Service", k("-n", ns_b, "delete", "service", "clf", "--wait=false"))
    ledger.denied("delete B's server Deployment", k("-n", ns_b, "delete", "deployment", "clf-server", "--wait=false"))
    ledger.denied("read B's Secrets", k("-n", ns_b, "get", "secrets"))
    ledger.denied("exec into B's model server", k("-n", ns_b, "exec", "deploy/clf-server", "--", "true"))
    forged = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "forged", "labels": {"job-name": "clf-train"}},
              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    ledger.denied("create a pod labelled with B's Job in B", alice.apply(ns_b, forged))
    ledger.denied("bind herself a wider Role in A", alice.kubectl(
        "-n", ns_a, "create", "rolebinding", "x", "--clusterrole=admin", f"--serviceaccount={ns_a}:alice"))


def through_the_operator(ledger: Ledger, alice: Identity, a: reconcile_harness.Cluster, ns_a: str, ns_b: str) -> None:
    """What A asks the operator to do in A's own namespace that would reach B: refused with a condition."""
    cases: list[tuple[str, dict[str, Any], str, str]] = [
        ("custom image reading the store's credentials",
         model("evil-image", {"image": "docker.io/attacker/steal:latest",
                              "command": ["sh", "-c", "cat /proc/self/environ; ls -R /var/lib/mlops"]}),
         "Model", "ImageNotAllowed"),
        ("Dataset source climbing out of the claim (..)",
         custom("Dataset", "climb", {"source": {"uri": "file:///var/lib/mlops/../../proc/self/environ"}}),
         "Dataset", "SourceNotAllowed"),
        ("Dataset source at an absolute path off the claim",
         custom("Dataset", "passwd", {"source": {"uri": "file:///etc/passwd"}}), "Dataset", "SourceNotAllowed"),
        ("Dataset source in B's prefix of an object store",
         custom("Dataset", "steal-s3", {"source": {"uri": f"s3://mlops-lake/mlops/{ns_b}/models/clf/registry.json"}}),
         "Dataset", "SourceNotAllowed"),
        ("Dataset source in B's prefix of Azure Blob",
         custom("Dataset", "steal-az", {"source": {"uri": f"az://artifacts/mlops/{ns_b}/datasets/cancer/"}}),
         "Dataset", "SourceNotAllowed"),
        ("serving.replicas 100", model("wide", serving={"replicas": 100}), "Model", "ExceedsLimits"),
        ("n_estimators 10**9",
         model("forest", {"estimator": "sklearn.ensemble.RandomForestClassifier", "params": {"n_estimators": 10**9}}),
         "Model", "ExceedsLimits"),
        ("n_jobs -1 (a worker per node core)",
         model("jobs", {"estimator": "sklearn.ensemble.RandomForestClassifier", "params": {"n_jobs": -1}}),
         "Model", "ExceedsLimits"),
        ("limits removed and 64 CPUs requested",
         model("cpu", {**LR, "resources": {"requests": {"cpu": "64"}, "limits": {}}}), "Model", "ExceedsLimits"),
        ("Dataset profile with 1 TiB of memory",
         custom("Dataset", "huge", {"source": {"uri": "sklearn://iris"}, "resources": {"requests": {"memory": "1Ti"}}}),
         "Dataset", "ExceedsLimits"),
    ]
    for _, body, _, _ in cases:
        done = alice.apply(ns_a, body)
        assert done.returncode == 0, done.stderr  # the CRD admits them: the operator's own checks refuse
    for attack, body, kind, reason in cases:
        name = body["metadata"]["name"]
        found = eventually(lambda: condition(a, kind, name, reason), what=f"{attack} refused",  # noqa: B023
                           every=EVERY, attempts=120)
        jobs = a.jobs(**{contracts.LABEL_MODEL if kind == "Model" else contracts.LABEL_DATASET: name})
        ledger.record(attack, found["status"] == "False" and not jobs, f"{reason}: {found['message']}")
    # a colleague's Service of a Model's name: NameConflict, the Service stays as it was
    trap = a.call("GET", SERVICE, "trap")
    conflict = eventually(lambda: condition(a, "Model", "trap", "NameConflict"), what="NameConflict",
                          every=EVERY, attempts=ATTEMPTS)
    ledger.record("a Model named like a colleague's Service (adopt or rewrite it)",
                  a.call("GET", SERVICE, "trap") == trap, f"NameConflict: {conflict['message']}")
    # malformed annotations: ignored with a Warning, the operator keeps reconciling everyone
    value = json.dumps({"²": "x", "9" * 5000: "y"})
    annotation = f"{contracts.ANNOTATION_REJECTED_VERSIONS}={value}"
    patched = alice.kubectl("-n", ns_a, "annotate", "model", "trap", annotation)
    assert patched.returncode == 0, patched.stderr
    eventually(lambda: "AnnotationIgnored" in [r for r, _ in a.events("trap")], what="AnnotationIgnored",
               every=EVERY, attempts=120)
    ledger.record("rejected-versions annotation with '²' and a 5,000-digit key (crash every reconcile)", True,
                  "AnnotationIgnored Warning; reconciling goes on")


def forged_result(ledger: Ledger, alice: Identity, a: reconcile_harness.Cluster, ns_a: str, image: str) -> None:
    """A pod A creates with the labels of A's training Job, ending with a forged result: never read."""
    assert alice.apply(ns_a, model("victim")).returncode == 0
    job = eventually(lambda: a.jobs(**{contracts.LABEL_MODEL: "victim", contracts.LABEL_COMPONENT: "train"}),
                     what="training Job", every=EVERY, attempts=ATTEMPTS)[0]
    name, uid = job["metadata"]["name"], job["metadata"]["uid"]
    result = json.dumps({"ok": True, "version": 1, "metrics": {"accuracy": FORGED_ACCURACY},
                         "artifactUri": "file:///var/lib/mlops/x/model.skops", "sha256": "f" * 64})
    security = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": True,
                "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}}
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "forged-result", "labels": {"job-name": name, contracts.LABEL_JOB_NAME: name,
                                                            "batch.kubernetes.io/controller-uid": uid}},
           "spec": {"restartPolicy": "Never", "automountServiceAccountToken": False,
                    "containers": [{"name": "train", "image": image, "command": ["sh", "-c", f"printf '%s' '{result}' "
                                    "> /dev/termination-log"], "securityContext": security}]}}
    done = alice.apply(ns_a, pod)
    assert done.returncode == 0, done.stderr

    def recorded() -> dict[str, Any] | None:
        versions = a.status("Model", "victim").get("versions") or []
        return dict(versions[0]) if versions and versions[0].get("state") not in (None, "Training") else None

    version = eventually(recorded, what="version 1 recorded", every=EVERY, attempts=ATTEMPTS)
    accuracy = (version.get("metrics") or {}).get("accuracy")
    ledger.record("forged training result from a pod labelled with the Job's name and uid",
                  accuracy != FORGED_ACCURACY and version.get("sha256") != "f" * 64,
                  f"version 1 recorded from the Job's own pod: accuracy {accuracy}")


def as_the_operator(ledger: Ledger, operator: Identity, ns_b: str, image: str) -> None:
    """A compromised operator, with its own token: the admission policies box it in."""
    golden = yaml.safe_load((REPO / "tests" / "golden" / "training-job.yaml").read_text())
    golden["metadata"].pop("ownerReferences", None)
    golden["metadata"].pop("namespace", None)

    def job(name: str, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(json.dumps(golden))
        body["metadata"]["name"] = name
        spec = body["spec"]["template"]["spec"]
        spec["containers"][0]["image"] = image
        change(spec)
        return body

    def ok(spec: dict[str, Any]) -> None:
        pass

    honest = operator.kubectl("-n", ns_b, "create", "--dry-run=server", "-f", "-", input=yaml.safe_dump(job("ok", ok)))
    assert honest.returncode == 0, honest.stderr  # what the builders render passes
    cases: dict[str, Callable[[dict[str, Any]], None]] = {
        "hostPath volume of the node's root": lambda s: s["volumes"].append({"name": "h", "hostPath": {"path": "/"}}),
        "an image of its choosing": lambda s: s["containers"][0].__setitem__("image", "docker.io/attacker/x:1"),
        "host network": lambda s: s.__setitem__("hostNetwork", True),
        "a privileged container": lambda s: s["containers"][0]["securityContext"].update(
            privileged=True, allowPrivilegeEscalation=True),
        "another ServiceAccount with its token": lambda s: s.update(
            serviceAccountName="default", automountServiceAccountToken=True),
        "an added capability": lambda s: s["containers"][0]["securityContext"]["capabilities"].__setitem__(
            "add", ["SYS_ADMIN"]),
    }
    for attack, change in cases.items():
        done = operator.kubectl("-n", ns_b, "create", "--dry-run=server", "-f", "-",
                                input=yaml.safe_dump(job("boxed", change)))
        refused = done.returncode != 0 and ("ValidatingAdmissionPolicy" in done.stderr or "is invalid" in done.stderr)
        ledger.record(f"compromised operator: Job with {attack}", refused, done.stderr)
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "cluster-admin-ish"},
               "automountServiceAccountToken": True}
    done = operator.kubectl("-n", ns_b, "create", "--dry-run=server", "-f", "-", input=yaml.safe_dump(account))
    ledger.denied("compromised operator: a ServiceAccount of its choosing", done, "ValidatingAdmissionPolicy")
