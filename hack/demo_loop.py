#!/usr/bin/env python3
"""The loop on a real cluster, narrated, with every default of the gate: a concept drift (the SEA
stream, Street & Kim 2001) decays a served model, the labels that arrive later show it, the data that
arrived meanwhile makes a new dataset version, and the retrained model beats the old one on it.

    daily partitions of the old concept → Dataset (last 3 partitions) → v1 trained and served
    → the concept changes: traffic, new partitions arrive, then the labels (feedback endpoint, by id)
    → the DriftMonitor's live quality decays below its threshold → it refreshes the Dataset
    → a new version (the new partitions) → v2 trained, beats v1 on the new rows v1 never saw → serves
    → v2's live quality on the new concept
    → the concept moves back, no file arrives → the next alert: NoNewData, no training Job

Used by `make demo` (hack/demo.sh) and by tests/e2e (test_demo_loop.py with the operator installed by
Helm, test_concept_drift.py with it in the test's process), which assert on the `LoopReport` this
returns. Talks to the cluster named by KUBECONFIG; the partitions reach the namespace's store claim
through a ConfigMap and a short pod (so any cluster works); scoring traffic and labels go to the
model's ClusterIP from this host (kube-proxy makes it reachable), bounded in count.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import sea_stream  # noqa: E402  (a sibling file of this script, not a package)

GROUP, VERSION = "mlops.dev", "v1alpha1"
MANIFESTS = HERE / "demo"
MODEL, DATASET = "sea-lr", "sea"
MOUNT = "/var/lib/mlops"
SOURCE_DIR = f"{MOUNT}/sources/sea"  # hack/demo/dataset.yaml's source.uri, on the namespace's claim
OLD, NEW = 3, 2  # SEA variants: the class is att1 + att2 > 9.5, then > 7 (a fifth of the labels flip)
ROWS_PER_DAY = 1000
ROWS_PER_PHASE, ROWS_PER_REQUEST = 1000, 20
OLD_DAYS, NEW_DAYS = date(2026, 11, 1), date(2026, 11, 4)


@dataclass
class Phase:
    """Scoring traffic of one concept, with its true labels, as the client saw it."""

    name: str
    serving_version: int | None = None
    rows: int = 0
    correct: int = 0  # served prediction equals the concept's label
    answered_by: dict[str, int] = field(default_factory=dict)  # model_version of the answers -> rows
    first_sent: float = 0.0  # epoch seconds
    last_sent: float = 0.0
    labels_posted: float = 0.0
    labels_accepted: int = 0

    @property
    def accuracy(self) -> float:
        return self.correct / self.rows if self.rows else float("nan")


@dataclass
class LoopReport:
    namespace: str
    stages: dict[str, float] = field(default_factory=dict)  # stage -> seconds since start
    versions: list[dict[str, Any]] = field(default_factory=list)
    phases: dict[str, Phase] = field(default_factory=dict)
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)  # stage -> the DriftMonitor's record
    dataset_versions: list[str] = field(default_factory=list)
    lineage: dict[str, Any] = field(default_factory=dict)  # the refreshed version's
    refreshes: list[dict[str, Any]] = field(default_factory=list)  # the Dataset's lastRefresh per alert
    gate: dict[str, Any] = field(default_factory=dict)  # v2's verdict
    gate_rows: int | None = None  # held-out rows of the new version both were scored on
    jobs_after_first_alert: int = 0
    jobs_after_second_alert: int = 0
    retrain_conditions: list[dict[str, Any]] = field(default_factory=list)  # the monitor's, per alert
    model_events: list[str] = field(default_factory=list)  # reasons of the Model's Events
    requests_sent: int = 0
    requests_failed: int = 0
    status_codes: dict[str, int] = field(default_factory=dict)
    report_uri: str | None = None
    report_host_path: str | None = None


class Narrator:
    def __init__(self, quiet: bool = False) -> None:
        self.start = time.monotonic()
        self.quiet = quiet

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def say(self, message: str) -> None:
        if not self.quiet:
            print(f"[{self.elapsed():6.1f}s] {message}", flush=True)


def restricted_pod_security() -> tuple[dict[str, Any], dict[str, Any]]:
    pod = {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001, "seccompProfile": {"type": "RuntimeDefault"}}
    container = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "readOnlyRootFilesystem": True}
    return pod, container


# Copies the ConfigMap's files onto the claim, each written to a hidden temporary name first and then
# renamed, so a Dataset listing the prefix never reads half a partition.
COPY_SCRIPT = """
import os, shutil, sys
for pair in sys.argv[1:]:
    key, rel = pair.split("=", 1)
    dest = os.path.join(os.environ["DEST"], rel)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    tmp = os.path.join(os.path.dirname(dest), "." + os.path.basename(dest) + ".tmp")
    shutil.copyfile(os.path.join("/arrival", key), tmp)
    os.replace(tmp, dest)
    print("wrote", dest)
"""


class Cluster:
    def __init__(self, namespace: str, image: str) -> None:
        config.load_kube_config()
        self.namespace = namespace
        self.image = image
        self.custom = client.CustomObjectsApi()
        self.core = client.CoreV1Api()
        self.batch = client.BatchV1Api()

    def ensure_namespace(self) -> None:
        body = {"metadata": {"name": self.namespace, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}
        self._create(self.core.create_namespace, body)

    def ensure_claim(self, name: str = "mlops-artifacts") -> None:
        """The store claim the operator would make before its first Job (it adopts this one)."""
        labels = {"app.kubernetes.io/managed-by": "mlops-operator", "app.kubernetes.io/name": "mlops-operator"}
        spec = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}}
        body = {"metadata": {"name": name, "labels": labels}, "spec": spec}
        self._create(lambda b: self.core.create_namespaced_persistent_volume_claim(self.namespace, b), body)

    @staticmethod
    def _create(create: Callable[[dict[str, Any]], Any], body: dict[str, Any]) -> None:
        try:
            create(body)
        except ApiException as exc:
            if exc.status != 409:
                raise

    def apply(self, path: Path) -> None:
        body = yaml.safe_load(path.read_text())
        plural = body["kind"].lower() + "s"
        self._create(
            lambda b: self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, b), body
        )

    def get(self, plural: str, name: str) -> dict[str, Any]:
        try:
            obj: dict[str, Any] = self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, name)
            return obj
        except ApiException as exc:
            if exc.status == 404:
                return {}
            raise

    def training_jobs(self, model: str) -> list[str]:
        """The Model's training Jobs, oldest first."""
        jobs = self.batch.list_namespaced_job(self.namespace, label_selector=f"{GROUP}/model={model}")
        train = [j for j in jobs.items if j.metadata.labels.get("app.kubernetes.io/component") == "train"]
        return [j.metadata.name for j in sorted(train, key=lambda j: (j.metadata.creation_timestamp, j.metadata.name))]

    def event_reasons(self, kind: str, name: str) -> list[str]:
        selector = f"involvedObject.kind={kind},involvedObject.name={name}"
        return [e.reason for e in self.core.list_namespaced_event(self.namespace, field_selector=selector).items]

    def service_url(self, model: str) -> str:
        svc = self.core.read_namespaced_service(model, self.namespace)
        return f"http://{svc.spec.cluster_ip}:{svc.spec.ports[0].port}"

    def upload(self, name: str, files: dict[str, bytes], dest: str, timeout: float = 300) -> None:
        """Writes files (relative path -> bytes) under `dest` on the store claim: a ConfigMap carries
        them, a pod of the project's image copies them, both are deleted after."""
        keys = {f"f{i}": rel for i, rel in enumerate(files)}
        data = {k: base64.b64encode(files[rel]).decode() for k, rel in keys.items()}
        self.core.create_namespaced_config_map(self.namespace, {"metadata": {"name": name}, "binaryData": data})
        pod_sc, container_sc = restricted_pod_security()
        pod = {
            "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "sea-arrival"}},
            "spec": {
                "restartPolicy": "Never",
                "automountServiceAccountToken": False,
                "securityContext": {**pod_sc, "fsGroup": 10001},
                "containers": [
                    {
                        "name": "copy",
                        "image": self.image,
                        "imagePullPolicy": "IfNotPresent",
                        "command": ["python", "-c", COPY_SCRIPT],
                        "args": [f"{k}={rel}" for k, rel in keys.items()],
                        "env": [{"name": "DEST", "value": dest}],
                        "securityContext": container_sc,
                        "resources": {"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
                        "volumeMounts": [
                            {"name": "arrival", "mountPath": "/arrival", "readOnly": True},
                            {"name": "store", "mountPath": MOUNT},
                        ],
                    }
                ],
                "volumes": [
                    {"name": "arrival", "configMap": {"name": name}},
                    {"name": "store", "persistentVolumeClaim": {"claimName": "mlops-artifacts"}},
                ],
            },
        }
        self.core.create_namespaced_pod(self.namespace, pod)
        try:
            deadline = time.monotonic() + timeout
            while (phase := self.core.read_namespaced_pod(name, self.namespace).status.phase) != "Succeeded":
                if phase == "Failed" or time.monotonic() > deadline:
                    log = self.core.read_namespaced_pod_log(name, self.namespace)
                    raise RuntimeError(f"copying the partitions failed (pod {name}: {phase}): {log}")
                time.sleep(1)
        finally:
            self.core.delete_namespaced_pod(name, self.namespace)
            self.core.delete_namespaced_config_map(name, self.namespace)

    def host_path_of(self, uri: str, claim: str = "mlops-artifacts") -> str | None:
        """Where a file:// artifact on the namespace's claim lives on this host (hostPath volumes)."""
        if not uri.startswith("file://"):
            return None
        try:
            pvc = self.core.read_namespaced_persistent_volume_claim(claim, self.namespace)
            pv = self.core.read_persistent_volume(pvc.spec.volume_name)
        except ApiException:
            return None
        base = (pv.spec.host_path.path if pv.spec.host_path else None) or (
            pv.spec.local.path if pv.spec.local else None
        )
        return None if base is None else base.rstrip("/") + uri[len("file://") + len(MOUNT) :]


def wait_for(what: str, check: Callable[[], Any], timeout: float, poll: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(poll)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in obj.get("status", {}).get("conditions", []) if c.get("type") == kind), {})


def failed_message(obj: dict[str, Any]) -> str | None:
    status = obj.get("status", {})
    if status.get("phase") == "Failed":
        bad = [c for c in status.get("conditions", []) if c.get("status") == "False"]
        return "; ".join(f"{c['type']}: {c.get('reason')}: {c.get('message')}" for c in bad) or "Failed"
    return None


def epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


class Scorer:
    """V2 inference with our own request ids (row i of a batch is `<id>:<i>`), then the labels."""

    def __init__(self, url: str, report: LoopReport) -> None:
        self.url = url
        self.report = report
        self.http = httpx.Client(timeout=10.0)

    def _post(self, path: str, body: dict[str, Any]) -> httpx.Response | None:
        self.report.requests_sent += 1
        try:
            resp = self.http.post(f"{self.url}{path}", json=body)
        except httpx.HTTPError as exc:
            self.report.requests_failed += 1
            self.report.status_codes[type(exc).__name__] = self.report.status_codes.get(type(exc).__name__, 0) + 1
            return None
        self.report.status_codes[str(resp.status_code)] = self.report.status_codes.get(str(resp.status_code), 0) + 1
        if resp.status_code >= 300:
            self.report.requests_failed += 1
        return resp

    def score(self, phase: Phase, rows: sea_stream.Rows) -> list[tuple[str, int]]:
        """Sends the rows; returns (row id, true label) of every answered row."""
        answered: list[tuple[str, int]] = []
        phase.first_sent = time.time()
        for start in range(0, len(rows.x), ROWS_PER_REQUEST):
            batch, truth = rows.x[start : start + ROWS_PER_REQUEST], rows.y[start : start + ROWS_PER_REQUEST]
            request_id = f"{phase.name}-{start:06d}"
            body = {
                "id": request_id,
                "inputs": [
                    {
                        "name": "input-0",
                        "shape": [len(batch), len(sea_stream.FEATURES)],
                        "datatype": "FP64",
                        "data": [v for row in batch for v in row],
                    }
                ],
            }
            resp = self._post(f"/v2/models/{MODEL}/infer", body)
            if resp is None or resp.status_code != 200:
                continue
            doc = resp.json()
            predictions = doc["outputs"][0]["data"]
            version = str(doc.get("model_version"))
            phase.answered_by[version] = phase.answered_by.get(version, 0) + len(batch)
            phase.rows += len(batch)
            phase.correct += sum(int(p) == t for p, t in zip(predictions, truth, strict=True))
            answered += [(f"{request_id}:{i}", t) for i, t in enumerate(truth)]
        phase.last_sent = time.time()
        return answered

    def answering_version(self) -> str | None:
        """The model_version that answers a one-row request on a new connection (not labelled)."""
        with httpx.Client(timeout=10.0) as fresh:
            body = {"inputs": [{"name": "input-0", "shape": [1, 3], "datatype": "FP64", "data": [5.0, 5.0, 5.0]}]}
            try:
                resp = fresh.post(f"{self.url}/v2/models/{MODEL}/infer", json=body)
            except httpx.HTTPError:
                return None
            return str(resp.json().get("model_version")) if resp.status_code == 200 else None

    def feedback(self, phase: Phase, labels: list[tuple[str, int]]) -> None:
        """The ground truth, later: POST /v2/models/{name}/feedback in batches."""
        phase.labels_posted = time.time()
        for start in range(0, len(labels), 500):
            chunk = [{"id": i, "label": y} for i, y in labels[start : start + 500]]
            resp = self._post(f"/v2/models/{MODEL}/feedback", {"labels": chunk})
            if resp is not None and resp.status_code == 202:
                phase.labels_accepted += int(resp.json()["accepted"])


class Loop:
    """The story's stages, each waiting (bounded) for what the operator does in answer."""

    def __init__(self, namespace: str, image: str, timeout: float, quiet: bool) -> None:
        self.narrator = Narrator(quiet)
        self.report = LoopReport(namespace=namespace)
        self.cluster = Cluster(namespace, image)
        self.timeout = timeout
        monitor = yaml.safe_load((MANIFESTS / "driftmonitor.yaml").read_text())["spec"]
        self.quality_window = float(monitor.get("qualityWindowSeconds") or monitor["windowSeconds"])
        self.min_labels = int(monitor["triggers"]["performance"]["minLabels"])
        self.threshold = float(monitor["triggers"]["performance"]["threshold"])

    def stage(self, name: str, message: str) -> None:
        self.report.stages[name] = round(self.narrator.elapsed(), 1)
        self.narrator.say(message)

    def status(self, plural: str, name: str) -> dict[str, Any]:
        obj = self.cluster.get(plural, name)
        if (msg := failed_message(obj)) is not None:
            raise RuntimeError(f"{plural} {name} failed: {msg}")
        return dict(obj.get("status", {}))

    def retrain_condition(self, not_reason: str) -> dict[str, Any] | None:
        said = condition(self.cluster.get("driftmonitors", MODEL), "RetrainRequested")
        return said if said and said.get("reason") != not_reason else None

    def check_after(self, since: float, fired: bool, clean_of: float = 0.0) -> dict[str, Any] | None:
        """The first check at or after `since` with enough labels (whose quality window starts after
        `clean_of`, so it scores no older traffic), that fired the performance trigger or not."""
        for record in self.status("driftmonitors", MODEL).get("history", []):
            at = epoch(record["time"])
            if at < since or at - self.quality_window <= clean_of or (record.get("labelled") or 0) < self.min_labels:
                continue
            if ("performance" in record.get("fired", [])) == fired:
                return dict(record)
        return None

    def run(self) -> LoopReport:
        self.setup()
        self.first_model()
        self.concept_drift()
        self.retrained()
        self.concept_returns()
        return self.finish()

    def setup(self) -> None:
        c = self.cluster
        c.ensure_namespace()
        c.ensure_claim()
        old = sea_stream.days(OLD, OLD_DAYS, 3, ROWS_PER_DAY)
        c.upload("sea-arrival-old", old, SOURCE_DIR)
        self.stage(
            "old_partitions",
            f"SEA stream, old concept (att1 + att2 > {sea_stream.THRESHOLDS[OLD]}): "
            f"{', '.join(p.split('/')[0] for p in old)} arrived, {ROWS_PER_DAY} rows each",
        )
        for name in ("dataset.yaml", "model.yaml", "driftmonitor.yaml"):
            c.apply(MANIFESTS / name)
        self.narrator.say(f"applied Dataset, Model and DriftMonitor in namespace {c.namespace}")

    def first_model(self) -> None:
        c, t = self.cluster, self.timeout
        ds = wait_for(
            "the Dataset's first version",
            lambda: self.status("datasets", DATASET).get("phase") == "Ready" and self.status("datasets", DATASET),
            t,
        )
        self.report.dataset_versions.append(ds["version"])
        self.stage("dataset_ready", f"Dataset version {ds['version'][:12]}: {ds['rows']} rows")
        wait_for("the first training Job", lambda: c.training_jobs(MODEL), t, 0.5)
        self.stage("v1_training", f"training Job started: {c.training_jobs(MODEL)[0]}")
        wait_for("version 1 to serve", lambda: self.status("models", MODEL).get("servingVersion") == 1, t)
        v1 = self.status("models", MODEL)["versions"][0]
        self.stage(
            "v1_serving", f"v1 serves: accuracy {v1['metrics']['accuracy']:.3f} on its held-out split (old concept)"
        )

    def traffic(self, name: str, variant: int, seed: int, version: int) -> tuple[Phase, Callable[[], None]]:
        """Scores rows of the concept; returns the phase and how to post its labels (later)."""
        phase = Phase(name, serving_version=version)
        self.report.phases[name] = phase
        scorer = Scorer(self.cluster.service_url(MODEL), self.report)
        # A finished rollout leaves the old pod terminating for a while, and kube-proxy drops it from the
        # Service a moment later: score only once ten new connections in a row reach this version.
        streak = [0]

        def only(version: str) -> bool:
            streak[0] = streak[0] + 1 if scorer.answering_version() == version else 0
            return streak[0] >= 10

        wait_for(f"only v{version} to answer", lambda: only(str(version)), self.timeout, 0.2)
        labelled = scorer.score(phase, sea_stream.draw(variant, ROWS_PER_PHASE, seed))
        return phase, lambda: scorer.feedback(phase, labelled)

    def concept_drift(self) -> None:
        c, t = self.cluster, self.timeout
        phase, post_labels = self.traffic("v1-new-concept", NEW, seed=11, version=1)
        self.stage(
            "new_concept_traffic",
            f"the concept changes (att1 + att2 > {sea_stream.THRESHOLDS[NEW]}): {phase.rows} rows scored by v1",
        )
        new = sea_stream.days(NEW, NEW_DAYS, 3, ROWS_PER_DAY)
        c.upload("sea-arrival-new", new, SOURCE_DIR)
        self.stage("new_partitions", f"new data arrives: {', '.join(p.split('/')[0] for p in new)}")
        post_labels()
        self.stage(
            "labels",
            f"the ground truth arrives: {phase.labels_accepted} labels posted to the feedback "
            "endpoint, by prediction id",
        )
        record = wait_for("the quality check to see the decay", lambda: self.check_after(phase.labels_posted, True), t)
        self.report.checks["decay"] = record
        self.stage(
            "decay",
            f"DriftMonitor: live accuracy {record['quality']:.3f} on {record['labelled']} labelled "
            f"predictions < {self.threshold}: the performance trigger fires (inputs: {record['verdict']})",
        )
        ds = wait_for(
            "the Dataset's refresh",
            lambda: (
                (self.status("datasets", DATASET).get("lastRefresh") or {}).get("outcome")
                and self.status("datasets", DATASET)
            ),
            t,
        )
        self.report.refreshes.append(ds["lastRefresh"])
        self.report.dataset_versions.append(ds["version"])
        current = next((v for v in ds.get("versions", []) if v["version"] == ds["version"]), {})
        lineage = current.get("lineage") or {}
        self.report.lineage = lineage
        self.stage(
            "refresh",
            f"Dataset refreshed: {ds['lastRefresh']['outcome']}, version {ds['version'][:12]} "
            f"({lineage.get('sourceFiles')} files {lineage.get('files')}, {ds.get('rows')} rows)",
        )

    def retrained(self) -> None:
        c, t = self.cluster, self.timeout
        wait_for("the retraining Job", lambda: len(c.training_jobs(MODEL)) >= 2, t, 0.5)
        self.report.jobs_after_first_alert = len(c.training_jobs(MODEL))
        self.stage("v2_training", f"retraining Job started: {c.training_jobs(MODEL)[-1]}")

        def v2_settled() -> dict[str, Any] | None:
            v2 = next((v for v in self.status("models", MODEL).get("versions", []) if v["version"] == 2), None)
            if v2 and v2["state"] == "Failed":
                raise RuntimeError(f"version 2 failed: {v2.get('reason')}: {v2.get('message')}")
            return v2 if v2 and v2.get("gate") and v2["state"] not in ("Training", "Validated", "Approved") else None

        v2 = wait_for("version 2 to be judged and rolled out", v2_settled, t)
        # the monitor reads the refresh's outcome at its next look (the Model may train before that)
        said = wait_for("the monitor's answer to the refresh", lambda: self.retrain_condition("RefreshPending"), t)
        self.report.retrain_conditions.append(said)
        self.report.gate = v2["gate"]
        rows = re.search(r"on the (\d+) held-out rows", v2["gate"].get("message", ""))
        self.report.gate_rows = int(rows.group(1)) if rows else None
        gate = v2["gate"]
        self.stage(
            "v2_judged",
            f"v2 {v2['state']}: accuracy {gate['score']:.3f} vs v1's {gate['championScore']:.3f} "
            f"on the {self.report.gate_rows} held-out rows of the new version v1 never trained on "
            f"({gate['reason']}, default gate: mustBeatChampion)",
        )
        wait_for("version 2 to serve", lambda: self.status("models", MODEL).get("servingVersion") == 2, t)
        last_v1 = self.report.phases["v1-new-concept"].last_sent
        phase, post_labels = self.traffic("v2-new-concept", NEW, seed=12, version=2)
        post_labels()
        record = wait_for("v2's live quality", lambda: self.check_after(phase.labels_posted, False, last_v1), t)
        self.report.checks["recovered"] = record
        self.stage(
            "v2_quality",
            f"v2 serves: live accuracy {record['quality']:.3f} on {record['labelled']} "
            "labelled predictions of the new concept; no trigger fires",
        )

    def concept_returns(self) -> None:
        c, t = self.cluster, self.timeout
        last_v2 = self.report.phases["v2-new-concept"].last_sent
        # the monitor acts at most once per cooldown: let the first action's end before the concept moves
        monitor = self.cluster.get("driftmonitors", MODEL)
        acted = epoch(monitor["status"]["lastRefreshRequest"]) + monitor["spec"]["action"]["cooldownSeconds"]
        wait_for("the monitor's cooldown to end", lambda: time.time() > acted + 1, t)
        phase, post_labels = self.traffic("v2-old-concept", OLD, seed=13, version=2)
        post_labels()
        self.stage(
            "concept_returns",
            f"the concept moves back (> {sea_stream.THRESHOLDS[OLD]}) and no file "
            f"arrives: {phase.rows} rows scored by v2, labelled",
        )
        record = wait_for("the second alert", lambda: self.check_after(phase.labels_posted, True, last_v2), t)
        self.report.checks["second_alert"] = record
        first = self.report.refreshes[0]["request"]

        def answered() -> dict[str, Any] | None:
            ds = self.status("datasets", DATASET)
            refresh = ds.get("lastRefresh") or {}
            monitor = condition(self.cluster.get("driftmonitors", MODEL), "RetrainRequested")
            done = refresh.get("request") != first and refresh.get("outcome") and monitor.get("reason") == "NoNewData"
            return {"refresh": refresh, "monitor": monitor} if done else None

        found = wait_for("the answer to the second alert", answered, t)
        self.report.refreshes.append(found["refresh"])
        self.report.retrain_conditions.append(found["monitor"])
        self.report.jobs_after_second_alert = len(c.training_jobs(MODEL))
        self.stage(
            "no_new_data",
            f"live accuracy {record['quality']:.3f}: the trigger fires again, the Dataset "
            f"refresh finds the same files ({found['refresh'].get('outcome')}): NoNewData, no training Job",
        )

    def finish(self) -> LoopReport:
        c, report = self.cluster, self.report
        status = self.status("models", MODEL)
        report.versions = status["versions"]
        report.model_events = c.event_reasons("Model", MODEL)
        report.report_uri = report.checks["second_alert"].get("reportUri")  # a check with labels
        report.report_host_path = c.host_path_of(report.report_uri or "")
        return report


def run_loop(namespace: str, image: str, timeout: float = 600.0, quiet: bool = False) -> LoopReport:
    return Loop(namespace, image, timeout, quiet).run()


def print_summary(report: LoopReport) -> None:
    print("\n== Summary ==")
    print(f"{'version':>7}  {'state':<10} {'held-out acc.':>13}  {'dataset':<14} trigger")
    for v in report.versions:
        acc = v.get("metrics", {}).get("accuracy")
        print(
            f"{v['version']:>7}  {v['state']:<10} {acc if acc is None else f'{acc:.3f}':>13}  "
            f"{(v.get('datasetVersion') or '')[:12]:<14} {v.get('trigger', '')}"
        )
    gate = report.gate
    print(
        f"\nthe gate, on the new version's {report.gate_rows} held-out rows v1 never trained on: "
        f"v2 {gate.get('score', float('nan')):.3f} vs v1 {gate.get('championScore', float('nan')):.3f} "
        f"(+{gate.get('delta', float('nan')):.3f}, {gate.get('reason')})"
    )
    print("\nlive accuracy (the DriftMonitor: labels joined to predictions by id):")
    for stage, what in (
        ("decay", "before: v1, new concept"),
        ("recovered", "after:  v2, new concept"),
        ("second_alert", "v2, the concept moved back"),
    ):
        record = report.checks.get(stage) or {}
        print(f"  {what:<28} {record.get('quality', float('nan')):.3f}  (n={record.get('labelled')})")
    print("client side (served predictions vs the stream's labels):")
    for phase in report.phases.values():
        answered = ", ".join(f"v{v}: {n}" for v, n in sorted(phase.answered_by.items()))
        print(f"  {phase.name:<28} {phase.accuracy:.3f}  (n={phase.rows}; answered by {answered})")
    print(f"\ndrift report: {report.report_uri}")
    if report.report_host_path:
        print(f"  on this host: {report.report_host_path}")
    print(f"requests: {report.requests_sent} sent, {report.requests_failed} failed, codes {report.status_codes}")
    print("\ntime per stage (s since start):")
    previous = 0.0
    for name, at in report.stages.items():
        print(f"  {name:<20} {at:7.1f}  (+{at - previous:.1f})")
        previous = at


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--namespace", default="mlops-demo")
    parser.add_argument("--image", default="localhost/mlops-operator:dev", help="copies the partitions in")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per stage")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    report = run_loop(args.namespace, args.image, args.timeout)
    print_summary(report)
    if args.json_out:
        args.json_out.write_text(json.dumps(asdict(report), indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
