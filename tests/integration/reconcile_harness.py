"""Run the real operator against the integration kube-apiserver, and play the kubelet's part.

There is no kubelet or Job controller on an API-only server, so a test finishes a Job the way they
would: it creates the Job's Pod (from the Job's own template, so Pod Security admission checks what
we render) with a terminated container whose message is the workload result, then marks the Job
Complete or Failed through the status subresource.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import yaml
from kubernetes import client

from mlops_operator import contracts
from mlops_operator.api.base import Resource
from mlops_operator.api.results import DriftFeatureResult, DriftResult, ProfileResult, TrainResult
from mlops_operator.api.v1alpha1 import ALL_KINDS
from mlops_operator.api.v1alpha1.driftmonitor import DriftTest
from mlops_operator.kube import (
    BATCH_SCORING,
    DATASET,
    DEPLOYMENT,
    DRIFT_MONITOR,
    EVENT,
    JOB,
    MODEL,
    POD,
    ApiError,
    Conflict,
    Kind,
    Kube,
    NotFound,
)
from mlops_operator.kube.client import MERGE_PATCH
from mlops_operator.metrics import Metrics
from mlops_operator.runner import run
from mlops_operator.settings import Settings

T = TypeVar("T")
GROUP, VERSION = contracts.GROUP, contracts.VERSION
REPO = Path(__file__).resolve().parents[2]
KINDS = {"Dataset": DATASET, "Model": MODEL, "DriftMonitor": DRIFT_MONITOR, "BatchScoring": BATCH_SCORING}


def _crd(cls: type[Resource]) -> dict[str, Any]:
    """The CRD as shipped in crds/ (tests/contract checks it matches the models)."""
    body: dict[str, Any] = yaml.safe_load((REPO / "crds" / f"{cls.crd.plural}.{GROUP}.yaml").read_text())
    return body


def install_current_crds(api: client.ApiClient) -> None:
    kube = Kube(api)
    for cls in ALL_KINDS:
        body = _crd(cls)
        path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
        try:
            kube.request_sync("POST", path, body=body)
        except Conflict:
            current = kube.request_sync("GET", f"{path}/{body['metadata']['name']}")
            body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            kube.request_sync("PUT", f"{path}/{body['metadata']['name']}", body=body)
    for cls in ALL_KINDS:
        name = f"{cls.crd.plural}.{GROUP}"
        eventually(partial(_established, kube, name), what=f"CRD {name} established")


def _established(kube: Kube, name: str) -> bool:
    crd = kube.request_sync("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
    return any(c["type"] == "Established" and c["status"] == "True" for c in crd["status"].get("conditions") or [])


def eventually(check: Callable[[], T | None], *, what: str, attempts: int = 300, every: float = 0.1) -> T:
    """Poll until `check` returns something truthy (bounded: attempts * every seconds)."""
    last: Any = None
    for _ in range(attempts):
        try:
            value = check()
        except (ApiError, KeyError, IndexError, TypeError) as exc:
            last = exc
        else:
            if value:
                return value
            last = value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}; last seen: {last!r}")


@contextlib.contextmanager
def operator(kubeconfig: Path, namespace: str, *, kubelet: bool = True, **settings: Any) -> Iterator[Metrics]:
    """The real operator (kopf + our handlers) in a thread, watching one namespace.

    With `kubelet` (an API-only server), registry mirror Jobs are run in this process against a
    temporary store (RegistryJobRunner); on a real cluster (kubelet=False) their pods do it.
    """
    store = Path(tempfile.mkdtemp(prefix="mlops-it-store-"))
    values: dict[str, Any] = {
        "namespaces": (namespace,),
        "resync_seconds": 30.0,
        "image": "localhost/mlops:it",
    }
    if kubelet:
        values["store_uri"] = store.as_uri()
    values.update(settings)
    metrics = Metrics()
    stop, ready = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def main() -> None:
        try:
            asyncio.run(
                run(
                    Settings(**values),
                    liveness=None,
                    kubeconfig=str(kubeconfig),
                    metrics=metrics,
                    stop_flag=stop,
                    ready_flag=ready,
                )
            )
        except BaseException as exc:  # surfaced by the test, not lost in a thread
            errors.append(exc)

    thread = threading.Thread(target=main, name="operator", daemon=True)
    thread.start()
    if not ready.wait(60):
        raise RuntimeError(f"operator did not start: {errors}")
    try:
        with RegistryJobRunner(kubeconfig, namespace) if kubelet else contextlib.nullcontext():
            yield metrics
    finally:
        stop.set()
        thread.join(30)
        shutil.rmtree(store, ignore_errors=True)
    if errors:
        raise errors[0]


class RegistryJobRunner:
    """Play kubelet for registry mirror Jobs: run the real workload in-process, then finish the Job.

    Training and drift Jobs are finished by each test with the result it needs; a mirror Job has
    one correct result, the workload's own, so it runs for real (against the plan's store URI).
    """

    def __init__(self, kubeconfig: Path, namespace: str) -> None:
        from kubernetes import config

        self.cluster = Cluster(config.new_client_from_config(str(kubeconfig)), namespace)  # type: ignore[no-untyped-call]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="registry-jobs", daemon=True)
        self.runs = 0

    def __enter__(self) -> RegistryJobRunner:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)

    def _loop(self) -> None:
        from mlops_operator.api.plans import RegistryPlan
        from mlops_operator.workloads import common, registry

        while not self.stop.wait(0.05):
            try:
                pending = [
                    j
                    for j in self.cluster.jobs(**{contracts.LABEL_COMPONENT: str(contracts.Component.REGISTRY)})
                    if not (j.get("status") or {}).get("conditions")
                ]
                for job in pending:
                    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
                    plan = RegistryPlan.model_validate_json(args[args.index(contracts.PLAN_FLAG) + 1])
                    try:
                        result = registry.sync(plan)
                    except Exception as exc:  # the workload's own failure result, as in a pod
                        result = registry.failure(common.WorkloadError(1, type(exc).__name__, str(exc)))
                    message = common.encode_result(result).decode()
                    with contextlib.suppress(ApiError):  # the Model (and the Job) may be gone by now
                        self.cluster.finish_job(job, message=message, exit_code=0 if result.ok else 1)
                    self.runs += 1
            except ApiError:
                continue  # a namespace being deleted at the end of a test


class Cluster:
    """Plain-dict access to the test namespace (the same raw REST calls the operator makes)."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.kube = Kube(api)
        self.ns = namespace

    def call(self, method: str, kind: Kind, name: str | None = None, *, sub: str | None = None, **kw: Any) -> Any:
        return self.kube.request_sync(method, kind.path(self.ns, name, sub), **kw)

    # custom resources
    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.call("POST", KINDS[body["kind"]], body=body)
        return result

    def get(self, kind: str, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call("GET", KINDS[kind], name)
        return result

    def patch(self, kind: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.call("PATCH", KINDS[kind], name, body=patch, content_type=MERGE_PATCH)
        return result

    def status(self, kind: str, name: str) -> dict[str, Any]:
        return dict(self.get(kind, name).get("status") or {})

    def condition(self, kind: str, name: str, type_: str) -> dict[str, Any] | None:
        return next((c for c in self.status(kind, name).get("conditions") or [] if c["type"] == type_), None)

    # children
    def jobs(self, **labels: str) -> list[dict[str, Any]]:
        selector = ",".join(f"{k}={v}" for k, v in labels.items())
        return list(self.call("GET", JOB, query={"labelSelector": selector})["items"])

    def model_jobs(self, model: str) -> list[dict[str, Any]]:
        return self.jobs(**{contracts.LABEL_MODEL: model, contracts.LABEL_COMPONENT: "train"})

    def deployment(self, name: str) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = self.call("GET", DEPLOYMENT, name)
            return result
        except NotFound:
            return None

    def served_version(self, deployment: str) -> str | None:
        found = self.deployment(deployment)
        return found["spec"]["template"]["metadata"]["labels"].get(contracts.LABEL_MODEL_VERSION) if found else None

    def events(self, name: str) -> list[tuple[str, str]]:
        items = self.call("GET", EVENT, query={"fieldSelector": f"involvedObject.name={name}"})["items"]
        return [(str(e.get("reason")), str(e.get("message"))) for e in items]

    def finish_job(
        self,
        job: dict[str, Any],
        *,
        message: str,
        exit_code: int = 0,
        reason: str | None = None,
        job_reason: str = "BackoffLimitExceeded",
        with_pod: bool = True,
    ) -> None:
        """Play kubelet and Job controller: a Pod terminated with `message`, then the Job's final condition.

        Without `with_pod` only the Job's condition is set (its pods gone, or never read).
        """
        name = job["metadata"]["name"]
        if with_pod:
            owner = {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "name": name,
                "uid": job["metadata"]["uid"],
                "controller": True,
            }
            self.terminated_pod(job, f"{name}-pod"[:63], message, exit_code, reason, owners=[owner])
        self.set_job_finished(name, exit_code == 0, job_reason)

    def terminated_pod(
        self,
        job: dict[str, Any],
        pod_name: str,
        message: str,
        exit_code: int = 0,
        reason: str | None = None,
        *,
        owners: list[dict[str, Any]],
        labels: dict[str, str] | None = None,
    ) -> None:
        """A Pod from the Job's template (the labels the API server gave it included, unless `labels`)
        whose workload container terminated with `message`; `owners` are its ownerReferences."""
        name, template = job["metadata"]["name"], job["spec"]["template"]
        pod_labels = {**template["metadata"]["labels"], "job-name": name, "batch.kubernetes.io/job-name": name}
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": pod_name,
                "labels": labels if labels is not None else pod_labels,
                "ownerReferences": owners,
            },
            "spec": template["spec"],
        }
        self.call("POST", POD, body=pod)
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        terminated = {
            "exitCode": exit_code,
            "reason": reason or ("Completed" if exit_code == 0 else "Error"),
            "message": message,
            "startedAt": now,
            "finishedAt": now,
        }
        container = template["spec"]["containers"][0]
        container_status = {
            "name": container["name"],
            "image": container["image"],
            "imageID": "",
            "ready": False,
            "restartCount": 0,
            "state": {"terminated": terminated},
        }
        phase = "Succeeded" if exit_code == 0 else "Failed"
        pod_status = {"status": {"phase": phase, "containerStatuses": [container_status]}}
        self.call("PATCH", POD, pod_name, sub="status", body=pod_status, content_type=MERGE_PATCH)

    def set_job_finished(self, name: str, succeeded: bool, job_reason: str = "BackoffLimitExceeded") -> None:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        stamp = {"lastTransitionTime": now, "lastProbeTime": now}
        if succeeded:
            conditions = [{"type": t, "status": "True", **stamp} for t in ("SuccessCriteriaMet", "Complete")]
            status = {"startTime": now, "completionTime": now, "succeeded": 1, "conditions": conditions}
        else:
            conditions = [
                {"type": t, "status": "True", "reason": job_reason, "message": "failed", **stamp}
                for t in ("FailureTarget", "Failed")
            ]
            status = {"startTime": now, "failed": 1, "conditions": conditions}
        self.call("PATCH", JOB, name, sub="status", body={"status": status}, content_type=MERGE_PATCH)

    def roll_out(self, deployment: str) -> None:
        """Play the Deployment controller: every replica of the current template updated and available."""
        current = self.call("GET", DEPLOYMENT, deployment)
        replicas = current["spec"].get("replicas", 1)
        status = {
            "observedGeneration": current["metadata"]["generation"],
            "replicas": replicas,
            "updatedReplicas": replicas,
            "availableReplicas": replicas,
            "readyReplicas": replicas,
        }
        self.call("PATCH", DEPLOYMENT, deployment, sub="status", body={"status": status}, content_type=MERGE_PATCH)

    def fail_rollout(self, deployment: str) -> None:
        current = self.call("GET", DEPLOYMENT, deployment)
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        stalled = {
            "type": "Progressing",
            "status": "False",
            "reason": "ProgressDeadlineExceeded",
            "message": "ReplicaSet has timed out progressing.",
            "lastUpdateTime": now,
            "lastTransitionTime": now,
        }
        status = {"observedGeneration": current["metadata"]["generation"], "conditions": [stalled]}
        self.call("PATCH", DEPLOYMENT, deployment, sub="status", body={"status": status}, content_type=MERGE_PATCH)


def resource(cls: type[Resource], name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": contracts.API_VERSION,
        "kind": cls.crd.kind,
        "metadata": {"name": name},
        "spec": spec,
    }


def monitor_spec(model: str, interval_seconds: int, **fields: Any) -> dict[str, Any]:
    """A DriftMonitor spec that checks `model` every `interval_seconds`, with the other spec fields given."""
    return {"modelRef": {"name": model}, "schedule": {"intervalSeconds": interval_seconds}, **fields}


# --- results the fake kubelet writes into terminated containers (tests and benchmarks/scale) ------
def profile_result(version: str, rows: int = 150) -> str:
    return ProfileResult(
        ok=True,
        version=version,
        rows=rows,
        columns=5,
        target="target",
        task_hint="classification",
        profile_uri=f"file:///var/lib/mlops/p/{version}/profile.json",
        data_uri=f"file:///var/lib/mlops/p/{version}/data.parquet",
    ).model_dump_json(by_alias=True)


def train_result(version: int, accuracy: float, champion: float | None = None) -> str:
    return TrainResult(
        ok=True,
        version=version,
        metrics={"accuracy": accuracy, "f1": accuracy},
        champion_metrics={"accuracy": champion} if champion is not None else None,
        artifact_uri=f"file:///var/lib/mlops/m/v{version}/model.skops",
        sha256=f"{version:064x}",
    ).model_dump_json(by_alias=True)


def drift_result(verdict: str, drifted: list[str]) -> str:
    scores = [
        DriftFeatureResult(
            name=name,
            test=DriftTest.KS,
            score=0.0001 if name in drifted else 0.4,
            threshold=0.05,
            drifted=name in drifted,
        )
        for name in ("sepal_length", "petal_width")
    ]
    return DriftResult.model_validate(
        {
            "ok": True,
            "verdict": verdict,
            "samples": 800,
            "drifted_share": len(drifted) / 2,
            "drifted_features": drifted,
            "scores": [s.dump() for s in scores],
            "report_uri": "file:///r/report.html",
        }
    ).model_dump_json(by_alias=True)
