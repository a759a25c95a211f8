"""Scale benchmark: our operator with N Models on a real kube-apiserver, next to a minimal kopf operator.

    .venv/bin/python benchmarks/scale/bench.py --models 1000          # writes results.json (runs["1000"])
    .venv/bin/python benchmarks/scale/readme.py                       # renders README.md from it

What runs (all on 127.0.0.1): etcd + kube-apiserver from the integration harness
(tests/integration/apiserver.py, binaries from `make binaries`); our operator as a real
`mlops-operator run` process watching 10 namespaces; and, in this process, a fake kubelet and
controllers (tests/integration/reconcile_harness.py's Cluster.finish_job / roll_out): every Job
gets a Pod and a result (profile, train, drift: NoDrift; registry Jobs run the real registry
workload against a temporary store), every Deployment is rolled out, and finished Jobs are deleted
`--job-ttl` seconds after they finish (the operator gets the same MLOPS_JOB_TTL_SECONDS), as the
TTL controller would, so the object count stays flat under churn.

Phases, for our operator, then for the floor (benchmarks/scale/floor_operator.py) in the same run,
one operator at a time, each with the same N Models in 10 namespaces of its own:
  1. bootstrap: create N Models (ours: each with its own Dataset and DriftMonitor; the floor
     watches Models only) and wait for steady state: every Model serving (ours), no Job unfinished,
     and no watch event for --settle seconds. Reported: seconds to steady state.
  2. idle (--idle s, no changes): operator RSS, CPU (% of one core) and API requests/s it sends.
  3. reaction, under a background of --rate changes/s elsewhere (a retrain request on a random
     other Model, which the fake kubelet then completes): p50/p99 of
       retrain annotation -> training Job created   (the annotation PATCH returns -> Job ADDED event)
       Job complete -> Model status updated          (the Job status PATCH to Complete returns ->
                                                       Model MODIFIED event with the version trained)
       drift result -> retrain Job created           (the drift Job status PATCH to Complete, verdict
                                                       Drift, returns -> training Job ADDED event)
     Each interval starts when the write that makes the change is committed (our PATCH's response)
     and ends when the operator's result reaches this process as a watch event (stamped on arrival):
     it holds the operator's watch delivery, its reaction, its write, and one watch delivery back.
     (Watch event to watch event across two streams is not used: on a loaded machine the two
     streams' delivery skew exceeded the reaction itself, giving negative intervals.)
     The drift transition uses an extra DriftMonitor on the probe Model
     with a 10 s schedule; the N monitors check daily (their first check runs at creation).
     The floor has only the first transition.
  4. churn (--churn s, default 30 min, same background): RSS sampled every 10 s; least-squares
     slope in MiB/hour; CPU and API requests/s over the period.

API requests are counted by the apiserver itself: each operator runs as its own ServiceAccount
(token from the TokenRequest API, bound to cluster-admin) matched by a FlowSchema of its own on the
`exempt` priority level (so APF never queues it), and the benchmark reads
`apiserver_flowcontrol_dispatched_requests_total{flow_schema=...}` from /metrics before and after;
watches count once, when they start. This process's own requests run as the admin user and are not
in that count.

Benchmark rules (benchmarks/quiet.py): refuses to start when the 1-minute load average is above 1.0
(`--force-busy` runs anyway and marks the run not valid; readme.py refuses it); records the load
before and after and the library versions. Bounded: every wait has a timeout, the background load
stops with its phase, the servers are stopped on exit.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import hashlib
import json
import math
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(REPO))
from tests.integration import apiserver  # noqa: E402
from tests.integration import reconcile_harness as harness  # noqa: E402
from tests.integration.api_requests import identity, parse_dispatched  # noqa: E402
from tests.integration.reconcile_harness import Cluster, install_current_crds  # noqa: E402

import quiet  # noqa: E402
from mlops_operator import contracts  # noqa: E402

GROUP, VERSION = contracts.GROUP, contracts.VERSION
NAMESPACES = 10
PROBE = "m0000"
PROBE_MONITOR = "probe-drift"
KINDS = {
    "Job": "/apis/batch/v1/jobs",
    "Deployment": "/apis/apps/v1/deployments",
    "Model": f"/apis/{GROUP}/{VERSION}/models",
    "DriftMonitor": f"/apis/{GROUP}/{VERSION}/driftmonitors",
}
CLK_TCK = os.sysconf("SC_CLK_TCK")
urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)  # loopback apiserver, self-signed


# --- results the fake kubelet writes into terminated containers -------------------------------------------
def profile_result(job_name: str) -> str:
    """A data version per profile Job: its name holds the hash of the spec, the tick and the refresh
    request in force, so a refresh request gets a new version (else a drift sample ends NoNewData)."""
    return harness.profile_result(hashlib.sha256(job_name.encode()).hexdigest())


def train_result(version: int) -> str:
    return harness.train_result(version, 0.95)


def drift_result(drift: bool) -> str:
    return harness.drift_result("Drift", ["petal_width"]) if drift else harness.drift_result("NoDrift", [])


def registry_result(job: dict[str, Any]) -> tuple[str, int]:
    """Run the real registry workload for a mirror Job, as RegistryJobRunner does in the harness."""
    from mlops_operator.workloads import common, registry

    try:
        from mlops_operator.api.plans import RegistryPlan
    except ImportError:  # before the plans/results split
        from mlops_operator.api.results import RegistryPlan  # type: ignore[attr-defined,no-redef]

    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    plan = RegistryPlan.model_validate_json(next(a for a in args if a.lstrip().startswith("{")))  # the JSON plan
    try:
        result = registry.sync(plan)
    except Exception as exc:  # the workload's own failure result, as in a pod
        result = registry.failure(common.WorkloadError(1, type(exc).__name__, str(exc)))
    return common.encode_result(result).decode(), 0 if result.ok else 1


# --- the world: watches, fake kubelet, controllers ---------------------------------------------------------
@dataclass
class Seen:
    kind: str
    type: str
    obj: dict[str, Any]
    at: float

    @property
    def ns(self) -> str:
        return str(self.obj["metadata"].get("namespace", ""))

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.obj["metadata"].get("labels") or {})


@dataclass
class Waiter:
    predicate: Callable[[Seen], bool]
    done: threading.Event = field(default_factory=threading.Event)
    seen: Seen | None = None

    def wait(self, timeout: float, what: str) -> Seen:
        if not self.done.wait(timeout):
            raise TimeoutError(f"no {what} within {timeout:.0f} s")
        assert self.seen is not None
        return self.seen


def finished(job: dict[str, Any]) -> bool:
    conditions = (job.get("status") or {}).get("conditions") or []
    return any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True" for c in conditions)


def complete(job: dict[str, Any]) -> bool:
    conditions = (job.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Complete" and c.get("status") == "True" for c in conditions)


class World:
    """Watches on Jobs, Deployments, Models and DriftMonitors in every namespace; plays kubelet,
    Deployment controller and TTL controller; and lets the benchmark wait for watch events."""

    def __init__(self, server: apiserver.ApiServer, api: k8s.ApiClient, job_ttl: float) -> None:
        self.http = httpx.Client(
            base_url=server.url,
            headers={"Authorization": f"Bearer {apiserver.ADMIN_TOKEN}", "Accept": "application/json"},
            verify=False,
            timeout=httpx.Timeout(30, read=330),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
        )
        self.api = api
        self.job_ttl = job_ttl
        self.lock = threading.Lock()
        self.objects: dict[str, dict[tuple[str, str], dict[str, Any]]] = {kind: {} for kind in KINDS}
        self.waiters: list[Waiter] = []
        self.holds: list[Callable[[dict[str, Any]], bool]] = []  # Jobs the benchmark finishes itself
        self.handled: set[str] = set()  # Job uids already given to the kubelet
        self.rolled: set[tuple[str, int]] = set()  # (Deployment uid, generation) already rolled out
        self.last_event: dict[str, float] = {}  # by namespace prefix ("scale", "floor")
        self.stop = threading.Event()
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=6, thread_name_prefix="kubelet")
        self.clusters: dict[str, Cluster] = {}
        self.errors: list[str] = []
        self.threads = [
            threading.Thread(target=self._watch, args=(kind, path), name=f"watch-{kind}", daemon=True)
            for kind, path in KINDS.items()
        ]
        self.threads.append(threading.Thread(target=self._ttl_loop, name="ttl", daemon=True))
        self.synced = threading.Barrier(len(KINDS) + 1)
        for thread in self.threads:
            thread.start()
        self.synced.wait(60)

    def close(self) -> None:
        self.stop.set()
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.http.close()

    def cluster(self, namespace: str) -> Cluster:
        with self.lock:
            if namespace not in self.clusters:
                self.clusters[namespace] = Cluster(self.api, namespace)
            return self.clusters[namespace]

    # watches
    def _watch(self, kind: str, path: str) -> None:
        rv: str | None = None
        first = True
        while not self.stop.is_set():
            try:
                if rv is None:
                    listing = self.http.get(path).raise_for_status().json()
                    rv = listing["metadata"]["resourceVersion"]
                    at = time.monotonic()
                    for item in listing["items"]:
                        self._event(Seen(kind, "SYNC", item, at))
                    if first:
                        first = False
                        self.synced.wait(60)
                params = {"watch": "1", "resourceVersion": rv, "allowWatchBookmarks": "true", "timeoutSeconds": "300"}
                with self.http.stream("GET", path, params=params) as response:
                    response.raise_for_status()
                    for line in response.iter_lines():
                        if self.stop.is_set():
                            return
                        if not line:
                            continue
                        event = json.loads(line)
                        at = time.monotonic()
                        if event["type"] == "ERROR":
                            rv = None  # 410 Gone (or any error): list again
                            break
                        rv = event["object"]["metadata"]["resourceVersion"]
                        if event["type"] != "BOOKMARK":
                            self._event(Seen(kind, event["type"], event["object"], at))
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                too_many = isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code == 429
                if not self.stop.is_set() and not too_many:  # 429: a new CRD's watch cache is not ready yet
                    self.errors.append(f"watch {kind}: {type(exc).__name__}: {exc}"[:300])
                    time.sleep(0.5)

    def _event(self, seen: Seen) -> None:
        key = (seen.ns, seen.name)
        with self.lock:
            if seen.type != "SYNC":
                self.last_event[seen.ns.split("-", 1)[0]] = seen.at
            if seen.type == "DELETED":
                self.objects[seen.kind].pop(key, None)
            else:
                self.objects[seen.kind][key] = seen.obj
            matched = [w for w in self.waiters if not w.done.is_set() and w.predicate(seen)]
            for w in matched:
                w.seen = seen
                w.done.set()
                self.waiters.remove(w)
        if seen.type == "DELETED" or self.stop.is_set():
            return
        if seen.kind == "Job":
            self._kubelet(seen.obj)
        elif seen.kind == "Deployment":
            self._roll_out(seen.obj)

    def expect(self, predicate: Callable[[Seen], bool]) -> Waiter:
        """Register before acting; wait() after."""
        waiter = Waiter(predicate)
        with self.lock:
            self.waiters.append(waiter)
        return waiter

    def snapshot(self, kind: str) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.objects[kind].values())

    # kubelet, Deployment controller, TTL controller
    def _kubelet(self, job: dict[str, Any]) -> None:
        uid = job["metadata"]["uid"]
        if finished(job):
            return
        with self.lock:
            if uid in self.handled or any(hold(job) for hold in self.holds):
                return
            self.handled.add(uid)
        self.pool.submit(self._finish, job)

    def _finish(self, job: dict[str, Any]) -> None:
        try:
            self._finish_with_result(job)
        except Exception as exc:  # recorded; the steady-state wait then names the Job left open
            self.errors.append(f"kubelet {job['metadata']['name']}: {type(exc).__name__}: {exc}"[:300])

    def _finish_with_result(self, job: dict[str, Any]) -> None:
        labels = job["metadata"].get("labels") or {}
        component = labels.get(contracts.LABEL_COMPONENT)
        exit_code = 0
        if component == contracts.Component.PROFILE:
            message = profile_result(job["metadata"]["name"])
        elif component == contracts.Component.TRAIN:
            message = train_result(int(labels.get(contracts.LABEL_MODEL_VERSION, "1")))
        elif component == contracts.Component.DRIFT:
            message = drift_result(drift=False)
        elif component == contracts.Component.REGISTRY:
            message, exit_code = registry_result(job)
        else:
            message = ""
        self.finish(job, message, exit_code)

    def finish(self, job: dict[str, Any], message: str, exit_code: int = 0) -> None:
        try:
            self.cluster(job["metadata"]["namespace"]).finish_job(job, message=message, exit_code=exit_code)
        except Exception as exc:  # a Job deleted meanwhile; recorded, not fatal
            self.errors.append(f"finish {job['metadata']['name']}: {type(exc).__name__}: {exc}"[:300])

    def _roll_out(self, deployment: dict[str, Any]) -> None:
        meta, status = deployment["metadata"], deployment.get("status") or {}
        generation = int(meta.get("generation", 0))
        if status.get("observedGeneration") == generation and status.get("updatedReplicas"):
            return
        key = (meta["uid"], generation)
        with self.lock:
            if key in self.rolled:
                return
            self.rolled.add(key)

        def roll() -> None:
            try:
                self.cluster(meta["namespace"]).roll_out(meta["name"])
            except Exception as exc:
                self.errors.append(f"roll out {meta['name']}: {type(exc).__name__}: {exc}"[:300])

        self.pool.submit(roll)

    def _ttl_loop(self) -> None:
        while not self.stop.wait(5):
            now = datetime.now(UTC)
            for job in self.snapshot("Job"):
                done = (job.get("status") or {}).get("completionTime") or next(
                    (c.get("lastTransitionTime") for c in (job.get("status") or {}).get("conditions") or []), None
                )
                if not finished(job) or not done:
                    continue
                age = (now - datetime.fromisoformat(done.replace("Z", "+00:00"))).total_seconds()
                if age < self.job_ttl:
                    continue
                ns, name = job["metadata"]["namespace"], job["metadata"]["name"]
                # Background, as the TTL controller deletes: the default for batch/v1 Jobs is Orphan, whose
                # finalizer only a garbage collector removes, and there is none here (the Job would stay,
                # terminating, forever). For the same reason the Pod is deleted here too.
                background = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
                with contextlib.suppress(httpx.HTTPError, RuntimeError):  # RuntimeError: closed at the end
                    self.http.request("DELETE", f"/apis/batch/v1/namespaces/{ns}/jobs/{name}", json=background)
                    self.http.delete(f"/api/v1/namespaces/{ns}/pods/{(name + '-pod')[:63]}")

    # the questions the benchmark asks
    def unfinished_jobs(self, prefix: str) -> int:
        return sum(1 for j in self.snapshot("Job") if j["metadata"]["namespace"].startswith(prefix) and not finished(j))

    def jobs(self, prefix: str) -> int:
        return sum(1 for j in self.snapshot("Job") if j["metadata"]["namespace"].startswith(prefix))

    def quiet_for(self, prefix: str) -> float:
        """Seconds since the last watch event in the namespaces named `prefix`-*."""
        with self.lock:
            return time.monotonic() - self.last_event.get(prefix, 0.0)


# --- processes and their cost -------------------------------------------------------------------------------
@dataclass
class Operator:
    name: str
    proc: subprocess.Popen[bytes]
    flow_schema: str

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def dispatched(http: httpx.Client, flow_schema: str) -> float:
    """Requests the apiserver dispatched for one FlowSchema so far (APF's own counter)."""
    return parse_dispatched(http.get("/metrics").raise_for_status().text, flow_schema)


@dataclass
class Meter:
    """CPU, RSS and API requests of one operator between two points in time."""

    op: Operator
    http: httpx.Client
    t0: float = 0.0
    cpu0: float = 0.0
    req0: float = 0.0

    def start(self) -> Meter:
        self.t0, self.cpu0 = time.monotonic(), self.op.cpu_seconds()
        self.req0 = dispatched(self.http, self.op.flow_schema)
        return self

    def read(self) -> dict[str, float]:
        elapsed = time.monotonic() - self.t0
        return {
            "seconds": round(elapsed, 1),
            "cpu_percent_of_one_core": round(100 * (self.op.cpu_seconds() - self.cpu0) / elapsed, 2),
            "api_requests_per_s": round((dispatched(self.http, self.op.flow_schema) - self.req0) / elapsed, 3),
            "rss_mib": round(self.op.rss_mib(), 1),
        }


def start_ours(kubeconfig: Path, namespaces: list[str], workdir: Path, job_ttl: int, arenas: int = 0) -> Operator:
    env = {
        **os.environ,
        **({"MALLOC_ARENA_MAX": str(arenas)} if arenas else {}),
        "KUBECONFIG": str(kubeconfig),
        "MLOPS_IMAGE": "localhost/mlops:bench",
        "MLOPS_STORE_URI": (workdir / "store").as_uri(),
        "MLOPS_JOB_TTL_SECONDS": str(job_ttl),
    }
    cmd = [sys.executable, "-m", "mlops_operator", "run", "--kubeconfig", str(kubeconfig), "--no-liveness"]
    cmd += ["--metrics-port", "0"]
    for ns in namespaces:
        cmd += ["-n", ns]
    log = (workdir / "ours.log").open("wb")
    return Operator("ours", subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT), "bench-ours")


def start_floor(kubeconfig: Path, namespaces: list[str], workdir: Path) -> Operator:
    cmd = [sys.executable, str(HERE / "floor_operator.py")]
    for ns in namespaces:
        cmd += ["-n", ns]
    log = (workdir / "floor.log").open("wb")
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    return Operator("floor", subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT), "bench-floor")


@contextlib.contextmanager
def harness_apiserver(workdir: Path, services: int) -> Iterator[tuple[apiserver.ApiServer, str]]:
    """The harness's apiserver; its Service range (apiserver.SERVICE_CIDR) must hold every Model's Service."""
    cidr = apiserver.SERVICE_CIDR
    capacity = 2 ** (32 - int(cidr.split("/")[1])) - 2
    if services > capacity:
        raise RuntimeError(f"{services} Services do not fit the harness's Service range {cidr}")
    server = apiserver.start(workdir / "apiserver")
    try:
        yield server, cidr
    finally:
        server.stop()


# --- the objects -------------------------------------------------------------------------------------------
def names(n: int, prefix: str) -> list[tuple[str, str]]:
    """(namespace, name) of the N Models: round-robin over 10 namespaces; index 0 is the probe."""
    return [(f"{prefix}-{i % NAMESPACES}", f"m{i:04d}") for i in range(n)]


def model_body(name: str) -> dict[str, Any]:
    return {
        "apiVersion": contracts.API_VERSION,
        "kind": "Model",
        "metadata": {"name": name},
        "spec": {
            "datasetRef": {"name": name},
            "trainer": {"estimator": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 200}},
            "validation": {"metric": "accuracy", "threshold": 0.8, "mustBeatChampion": False},
            "approval": {"policy": "Automatic"},
            "retrain": {"cooldownSeconds": 0},
        },
    }


def dataset_body(name: str) -> dict[str, Any]:
    return {
        "apiVersion": contracts.API_VERSION,
        "kind": "Dataset",
        "metadata": {"name": name},
        "spec": {"source": {"uri": "sklearn://iris"}, "schema": {"target": "target"}},
    }


def monitor_body(name: str, model: str, interval: int) -> dict[str, Any]:
    return {
        "apiVersion": contracts.API_VERSION,
        "kind": "DriftMonitor",
        "metadata": {"name": name},
        "spec": {
            "modelRef": {"name": model},
            "schedule": {"intervalSeconds": interval},
            "windowSeconds": 600,
            "minSamples": 1,
            "action": {"retrain": True, "cooldownSeconds": 0, "consecutiveBreaches": 1},
        },
    }


def post(http: httpx.Client, namespace: str, body: dict[str, Any]) -> None:
    plural = {"Model": "models", "Dataset": "datasets", "DriftMonitor": "driftmonitors"}[body["kind"]]
    http.post(f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{plural}", json=body).raise_for_status()


def create_namespaces(api: k8s.ApiClient, prefix: str) -> list[str]:
    core = k8s.CoreV1Api(api)
    out = []
    for i in range(NAMESPACES):
        ns = f"{prefix}-{i}"
        labels = {"pod-security.kubernetes.io/enforce": "restricted"}
        core.create_namespace({"metadata": {"name": ns, "labels": labels}})
        out.append(ns)
    return out


def retrain_annotation(http: httpx.Client, namespace: str, model: str, reason: str) -> str:
    value = f"{datetime.now(UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')};{reason}"
    http.patch(
        f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/models/{model}",
        json={"metadata": {"annotations": {contracts.ANNOTATION_RETRAIN_REQUESTED: value}}},
        headers={"Content-Type": "application/merge-patch+json"},
    ).raise_for_status()
    return value


# --- phases --------------------------------------------------------------------------------------------------
class Background:
    """`rate` retrain requests per second on random Models other than the probe (bounded by stop())."""

    def __init__(self, http: httpx.Client, models: list[tuple[str, str]], rate: float) -> None:
        self.http, self.models, self.rate = http, models[1:], rate
        self.stop_flag = threading.Event()
        self.sent = 0
        self.thread = threading.Thread(target=self._run, name="background", daemon=True)

    def __enter__(self) -> Background:
        if self.models and self.rate > 0:
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_flag.set()
        if self.thread.is_alive():
            self.thread.join(10)

    def _run(self) -> None:
        rng = random.Random(0)
        next_at = time.monotonic()
        while not self.stop_flag.is_set():
            ns, name = rng.choice(self.models)
            with contextlib.suppress(httpx.HTTPError):
                retrain_annotation(self.http, ns, name, f"background {self.sent}")
                self.sent += 1
            next_at += 1 / self.rate
            self.stop_flag.wait(max(0.0, next_at - time.monotonic()))


def wait_steady(
    world: World, prefix: str, models: list[tuple[str, str]], ours: bool, settle: float, timeout: float
) -> float:
    """Wait for steady state: (ours) every Model serving, no Job of these namespaces unfinished, and
    no watch event there for `settle` seconds. Returns the monotonic time of the last event."""
    started = time.monotonic()
    wanted = set(models)
    while time.monotonic() - started < timeout:
        time.sleep(1)
        if ours:
            serving = {
                (m["metadata"]["namespace"], m["metadata"]["name"])
                for m in world.snapshot("Model")
                if (m.get("status") or {}).get("servingVersion")
            }
            if not wanted <= serving:
                continue
        if world.unfinished_jobs(prefix) == 0 and world.quiet_for(prefix.rstrip("-")) >= settle:
            return time.monotonic() - world.quiet_for(prefix.rstrip("-"))
    open_jobs = [
        f"{j['metadata']['namespace']}/{j['metadata']['name']}"
        for j in world.snapshot("Job")
        if j["metadata"]["namespace"].startswith(prefix) and not finished(j)
    ]
    not_serving = [
        f"{m['metadata']['namespace']}/{m['metadata']['name']}: {json.dumps((m.get('status') or {}).get('conditions'))}"
        for m in world.snapshot("Model")
        if m["metadata"]["namespace"].startswith(prefix) and not (m.get("status") or {}).get("servingVersion")
    ]
    raise TimeoutError(
        f"no steady state within {timeout:.0f} s; open Jobs: {open_jobs[:5]}; "
        f"Models not serving ({len(not_serving)}): {not_serving[:2] if ours else '-'}; "
        f"harness errors: {world.errors[-5:]}"
    )


def wait_jobs_gone(world: World, prefix: str, settle: float, timeout: float) -> float:
    """Wait until no Job of these namespaces is left and no watch event came for `settle` seconds;
    the seconds waited (the TTL controller deletes finished Jobs after --job-ttl)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if world.jobs(prefix) == 0 and world.quiet_for(prefix.rstrip("-")) >= settle:
            break
        time.sleep(1)
    return time.monotonic() - started


def probe_train_job(ns: str, model: str, above: int) -> Callable[[Seen], bool]:
    def match(s: Seen) -> bool:
        return (
            s.kind == "Job"
            and s.type == "ADDED"
            and s.ns == ns
            and s.labels.get(contracts.LABEL_MODEL) == model
            and s.labels.get(contracts.LABEL_COMPONENT) == contracts.Component.TRAIN
            and int(s.labels.get(contracts.LABEL_MODEL_VERSION, "0") or 0) > above
        )

    return match


def model_versions(obj: dict[str, Any]) -> dict[int, str]:
    return {int(v["version"]): str(v.get("state")) for v in (obj.get("status") or {}).get("versions") or []}


def current_model(world: World, ns: str, name: str) -> dict[str, Any]:
    with world.lock:
        return world.objects["Model"][(ns, name)]


def wait_serving(world: World, ns: str, name: str, version: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = current_model(world, ns, name).get("status") or {}
        if (status.get("servingVersion") or 0) >= version:
            return
        time.sleep(0.05)
    raise TimeoutError(f"{ns}/{name} not serving v{version} within {timeout:.0f} s")


def measure_training(world: World, http: httpx.Client, ns: str, samples: int, timeout: float) -> dict[str, list[float]]:
    """Transitions 1 and 2 on the probe Model; its training Jobs are finished here, not by the kubelet."""
    out: dict[str, list[float]] = {"retrain_annotation_to_job_created": [], "job_complete_to_model_status": []}

    def hold(job: dict[str, Any]) -> bool:
        labels = job["metadata"].get("labels") or {}
        return (
            job["metadata"]["namespace"] == ns
            and labels.get(contracts.LABEL_MODEL) == PROBE
            and labels.get(contracts.LABEL_COMPONENT) == contracts.Component.TRAIN
        )

    with world.lock:
        world.holds.append(hold)
    try:
        for i in range(samples):
            highest = max(model_versions(current_model(world, ns, PROBE)) or [0])
            created = world.expect(probe_train_job(ns, PROBE, highest))
            retrain_annotation(http, ns, PROBE, f"scale benchmark {i}")
            committed = time.monotonic()
            job = created.wait(timeout, "training Job")
            out["retrain_annotation_to_job_created"].append(job.at - committed)
            version = int(job.labels[contracts.LABEL_MODEL_VERSION])
            recorded = world.expect(
                lambda s, v=version: (
                    s.kind == "Model"
                    and s.ns == ns
                    and s.name == PROBE
                    and model_versions(s.obj).get(v) not in (None, "Training")
                )
            )
            world.finish(job.obj, train_result(version))
            committed = time.monotonic()
            r = recorded.wait(timeout, "Model status with the version trained")
            out["job_complete_to_model_status"].append(r.at - committed)
            wait_serving(world, ns, PROBE, version, timeout)
            print(
                f"    sample {i + 1}/{samples}: annotation→Job {out['retrain_annotation_to_job_created'][-1]:.3f} s, "
                f"Job complete→status {out['job_complete_to_model_status'][-1]:.3f} s",
                flush=True,
            )
            time.sleep(random.uniform(0.2, 0.6))
    finally:
        with world.lock:
            world.holds.remove(hold)
    return out


def measure_drift(world: World, http: httpx.Client, ns: str, samples: int, timeout: float) -> list[float]:
    """Transition 3: a 10 s DriftMonitor on the probe; its drift Jobs and the probe's training Jobs are
    finished here (drift Jobs with verdict Drift)."""

    def is_probe_job(job: dict[str, Any]) -> bool:
        labels = job["metadata"].get("labels") or {}
        return job["metadata"]["namespace"] == ns and (
            labels.get(contracts.LABEL_DRIFT_MONITOR) == PROBE_MONITOR
            or (labels.get(contracts.LABEL_MODEL) == PROBE and labels.get(contracts.LABEL_COMPONENT) == "train")
        )

    with world.lock:
        world.holds.append(is_probe_job)
    out: list[float] = []
    post(http, ns, monitor_body(PROBE_MONITOR, PROBE, 10))
    try:
        attempts = 0
        while len(out) < samples and attempts < samples * 3:
            attempts += 1
            pending = [
                j
                for j in world.snapshot("Job")
                if is_probe_job(j)
                and (j["metadata"].get("labels") or {}).get(contracts.LABEL_COMPONENT) == contracts.Component.DRIFT
                and not finished(j)
            ]
            if pending:
                drift_job = pending[0]
            else:
                appeared = world.expect(
                    lambda s: (
                        s.kind == "Job"
                        and s.type == "ADDED"
                        and s.ns == ns
                        and s.labels.get(contracts.LABEL_DRIFT_MONITOR) == PROBE_MONITOR
                    )
                )
                try:
                    drift_job = appeared.wait(30, "drift Job of the probe monitor").obj
                except TimeoutError:  # counted as an attempt; a busy machine must not end the whole run
                    print("    no drift Job of the probe monitor in 30 s: attempt skipped", flush=True)
                    continue
            highest = max(model_versions(current_model(world, ns, PROBE)) or [0])
            created = world.expect(probe_train_job(ns, PROBE, highest))
            world.finish(drift_job, drift_result(drift=True))
            committed = time.monotonic()
            try:
                job = created.wait(30, "retrain Job after the drift verdict")
            except TimeoutError:
                print("    drift verdict without a retrain Job in 30 s: sample skipped", flush=True)
                for open_job in world.snapshot("Job"):  # a late retrain Job would block the next samples
                    if is_probe_job(open_job) and not finished(open_job) and drift_job is not open_job:
                        labels = open_job["metadata"].get("labels") or {}
                        if labels.get(contracts.LABEL_COMPONENT) == contracts.Component.TRAIN:
                            world.finish(open_job, train_result(int(labels[contracts.LABEL_MODEL_VERSION])))
                continue
            out.append(job.at - committed)
            version = int(job.labels[contracts.LABEL_MODEL_VERSION])
            world.finish(job.obj, train_result(version))
            wait_serving(world, ns, PROBE, version, timeout)
            print(f"    drift sample {len(out)}/{samples}: drift result→retrain Job {out[-1]:.3f} s", flush=True)
    finally:
        http.delete(f"/apis/{GROUP}/{VERSION}/namespaces/{ns}/driftmonitors/{PROBE_MONITOR}")
        with world.lock:
            world.holds.remove(is_probe_job)
        for job in world.snapshot("Job"):  # anything left open goes back to the kubelet
            world._kubelet(job)
    return out


def measure_floor_reaction(world: World, http: httpx.Client, ns: str, samples: int, timeout: float) -> list[float]:
    out: list[float] = []
    for i in range(samples):
        created = world.expect(
            lambda s: (
                s.kind == "Job" and s.type == "ADDED" and s.ns == ns and s.labels.get(contracts.LABEL_MODEL) == PROBE
            )
        )
        retrain_annotation(http, ns, PROBE, f"scale benchmark {i}")
        committed = time.monotonic()
        job = created.wait(timeout, "floor Job")
        out.append(job.at - committed)
        print(f"    floor sample {i + 1}/{samples}: annotation→Job {out[-1]:.3f} s", flush=True)
        time.sleep(random.uniform(0.5, 1.0))
    return out


def churn(meter_of: Callable[[], Meter], op: Operator, seconds: float, every: float = 10.0) -> dict[str, Any]:
    meter = meter_of().start()
    samples: list[tuple[float, float]] = []
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < seconds:
        samples.append((round(elapsed, 1), round(op.rss_mib(), 2)))
        time.sleep(min(every, max(0.1, seconds - elapsed)))
    samples.append((round(time.monotonic() - started, 1), round(op.rss_mib(), 2)))
    fit = slope_fit(samples)
    rss = [mib for _, mib in samples]
    return {
        **meter.read(),
        "rss_samples": samples,
        "rss_min_max_mib": [min(rss), max(rss)],
        "rss_slope_mib_per_hour": fit[0] if fit else None,
        "rss_slope_stderr_mib_per_hour": fit[1] if fit else None,
    }


def slope_fit(samples: list[tuple[float, float]]) -> tuple[float, float] | None:
    """Least-squares slope of RSS over time and its standard error, MiB per hour.

    The error assumes independent residuals; RSS samples 10 s apart are not, so read it as a lower
    bound of the noise: a slope within about two of it is flat.
    """
    if len(samples) < 3:
        return None
    xs, ys = [s[0] for s in samples], [s[1] for s in samples]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if not sxx:
        return None
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    residuals = sum((y - my - b * (x - mx)) ** 2 for x, y in zip(xs, ys, strict=True))
    stderr = math.sqrt(residuals / (len(samples) - 2) / sxx)
    return round(b * 3600, 2), round(stderr * 3600, 2)


def summary(values: list[float]) -> dict[str, Any]:
    ordered = sorted(values)
    n = len(ordered)
    return {
        "n": n,
        "p50_s": round(statistics.median(ordered), 4) if n else None,
        "p99_s": round(ordered[max(0, math.ceil(0.99 * n) - 1)], 4) if n else None,
        "max_s": round(ordered[-1], 4) if n else None,
        "samples_s": [round(v, 4) for v in values],
    }


# --- the run ---------------------------------------------------------------------------------------------------
def run(args: argparse.Namespace, gate: quiet.Gate) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="scale-bench-"))
    t_start = time.monotonic()
    result: dict[str, Any] = {"models": args.models, "namespaces": NAMESPACES}
    services = args.models  # one Service per serving Model
    try:
        with harness_apiserver(workdir, services) as (server, cidr):
            result["service_cidr"] = cidr
            cfg = k8s.Configuration()
            k8s_config.load_kube_config(config_file=str(server.kubeconfig), client_configuration=cfg)  # type: ignore[no-untyped-call]
            cfg.connection_pool_maxsize = 16
            api = k8s.ApiClient(cfg)
            install_current_crds(api)
            ours_ns, floor_ns = create_namespaces(api, "scale"), create_namespaces(api, "floor")
            ours_cfg = identity(api, server, "bench-ours", workdir)
            floor_cfg = identity(api, server, "bench-floor", workdir)
            world = World(server, api, args.job_ttl)
            http = world.http
            try:
                result["ours"] = phase_ours(args, world, http, ours_cfg, ours_ns, workdir)
                result["floor"] = phase_floor(args, world, http, floor_cfg, floor_ns, workdir)
            finally:
                result["harness_errors"] = world.errors[:50]
                world.close()
    finally:
        if args.keep_workdir:
            print(f"workdir kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    result["elapsed_s"] = round(time.monotonic() - t_start, 1)
    result["settings"] = {
        k: getattr(args, k)
        for k in (
            "idle",
            "churn",
            "floor_churn",
            "rate",
            "samples",
            "drift_samples",
            "settle",
            "job_ttl",
            "malloc_arena_max",
        )
    }
    result["conditions"] = gate.conditions(packages=(*quiet.LIBRARIES, "kopf", "kubernetes"))
    return result


def settle_and_idle(
    who: str,
    out: dict[str, Any],
    args: argparse.Namespace,
    world: World,
    http: httpx.Client,
    op: Operator,
    models: list[tuple[str, str]],
    t0: float,
) -> None:
    """Phases 1 and 2 after the creates: wait for steady state (ours: every Model serving), then idle."""
    created = time.monotonic() - t0
    last_event = wait_steady(world, f"{NAME_PREFIX[who]}-", models, who == "ours", args.settle, args.bootstrap_timeout)
    steady = max(last_event - t0, created)
    out["bootstrap"] = {"create_s": round(created, 1), "to_steady_state_s": round(steady, 1)}
    out["bootstrap"]["rss_mib"] = round(op.rss_mib(), 1)
    # Idle means nothing left to do: the bootstrap's finished Jobs are deleted after their TTL, and each
    # deletion wakes its Model (and counted as idle traffic before this wait).
    drained = wait_jobs_gone(world, f"{NAME_PREFIX[who]}-", args.settle, args.job_ttl + 120)
    out["bootstrap"]["jobs_gone_s"] = round(drained, 1)
    print(f"{who}: steady after {steady:.1f} s, its Jobs gone {drained:.1f} s later; idle {args.idle} s", flush=True)
    meter = Meter(op, http).start()
    time.sleep(args.idle)
    out["idle"] = meter.read()
    print(f"{who}: idle {out['idle']}", flush=True)


def churn_phase(
    who: str, out: dict[str, Any], args: argparse.Namespace, http: httpx.Client, op: Operator, background: Background
) -> None:
    """Phase 4, under the running background."""
    seconds = args.floor_churn if who == "floor" and args.floor_churn is not None else args.churn
    print(f"{who}: churn {seconds} s", flush=True)
    sent = background.sent
    out["churn"] = churn(lambda: Meter(op, http), op, seconds)
    changes = background.sent - sent
    out["background_changes"] = background.sent
    # each change is one whole cycle (ours: training Job, result, gate, rollout, registry mirror; the
    # floor: the Job), so this is what one cycle costs, idle traffic included
    requests = out["churn"]["api_requests_per_s"] * out["churn"]["seconds"]
    out["churn"]["requests_per_change"] = round(requests / changes, 1) if changes else None


NAME_PREFIX = {"ours": "scale", "floor": "floor"}


def phase_ours(
    args: argparse.Namespace, world: World, http: httpx.Client, kubeconfig: Path, namespaces: list[str], workdir: Path
) -> dict[str, Any]:
    models = names(args.models, NAME_PREFIX["ours"])
    op = start_ours(kubeconfig, namespaces, workdir, args.job_ttl, args.malloc_arena_max)
    out: dict[str, Any] = {"label": "mlops-operator"}
    try:
        time.sleep(2)
        print(f"ours: creating {len(models)} Datasets, Models and DriftMonitors", flush=True)
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            for body_of in (dataset_body, model_body, lambda n: monitor_body(n, n, 86400)):
                list(pool.map(lambda m, f=body_of: post(http, m[0], f(m[1])), models))
        settle_and_idle("ours", out, args, world, http, op, models, t0)
        with Background(http, models, args.rate) as background:
            print(f"ours: reactions under {args.rate}/s background changes", flush=True)
            training = measure_training(world, http, models[0][0], args.samples, args.timeout)
            drift = measure_drift(world, http, models[0][0], args.drift_samples, args.timeout)
            out["reaction"] = {k: summary(v) for k, v in training.items()}
            out["reaction"]["drift_result_to_retrain_job"] = summary(drift)
            churn_phase("ours", out, args, http, op, background)
        out["operator_exit"] = op.proc.poll()
    finally:
        op.stop()
    return out


def phase_floor(
    args: argparse.Namespace, world: World, http: httpx.Client, kubeconfig: Path, namespaces: list[str], workdir: Path
) -> dict[str, Any]:
    models = names(args.models, NAME_PREFIX["floor"])
    op = start_floor(kubeconfig, namespaces, workdir)
    out: dict[str, Any] = {"label": "floor: minimal kopf operator (floor_operator.py)"}
    try:
        time.sleep(2)
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda m: post(http, m[0], model_body(m[1])), models))
        settle_and_idle("floor", out, args, world, http, op, models, t0)
        with Background(http, models, args.rate) as background:
            reaction = measure_floor_reaction(world, http, models[0][0], args.samples, args.timeout)
            out["reaction"] = {"retrain_annotation_to_job_created": summary(reaction)}
            churn_phase("floor", out, args, http, op, background)
        out["operator_exit"] = op.proc.poll()
    finally:
        op.stop()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=100, help="N: Models (each with a Dataset and a DriftMonitor)")
    parser.add_argument("--idle", type=float, default=120, help="seconds of idle measurement")
    parser.add_argument("--churn", type=float, default=1800, help="seconds of churn for the RSS slope")
    parser.add_argument(
        "--floor-churn",
        type=float,
        default=None,
        help="seconds of churn for the floor (default: --churn; its RSS has been flat in every run)",
    )
    parser.add_argument("--rate", type=float, default=1.0, help="background changes per second elsewhere")
    parser.add_argument("--samples", type=int, default=30, help="samples of the two training transitions")
    parser.add_argument("--drift-samples", type=int, default=20, help="samples of drift result → retrain Job")
    parser.add_argument("--settle", type=float, default=15, help="seconds without a watch event = steady")
    parser.add_argument("--bootstrap-timeout", type=float, default=3600)
    parser.add_argument("--timeout", type=float, default=120, help="per awaited event")
    parser.add_argument(
        "--job-ttl",
        type=int,
        default=180,
        help="finished Jobs are deleted after this many seconds (longer than the operator's 60 s resync)",
    )
    parser.add_argument(
        "--malloc-arena-max", type=int, default=0, help="MALLOC_ARENA_MAX for our operator (0: glibc's default)"
    )
    parser.add_argument("--out", type=Path, default=HERE / "results.json", help="merged: runs[str(N)] is replaced")
    parser.add_argument("--keep-workdir", action="store_true")
    quiet.add_arguments(parser)
    args = parser.parse_args(argv)
    gate = quiet.Gate.enter(args.force_busy, "scale")
    if not (apiserver.BIN_DIR / "kube-apiserver").exists():
        print(f"{apiserver.BIN_DIR / 'kube-apiserver'} is missing: run `make binaries`", file=sys.stderr)
        return 2
    result = run(args, gate)
    existing = json.loads(args.out.read_text()) if args.out.exists() else {}
    existing.setdefault("runs", {})[str(args.models)] = result
    args.out.write_text(json.dumps(existing, indent=1) + "\n")
    brief = {
        side: {
            "to_steady_state_s": result[side]["bootstrap"]["to_steady_state_s"],
            "idle": result[side]["idle"],
            "reaction_p50_p99_s": {k: (v["p50_s"], v["p99_s"]) for k, v in result[side]["reaction"].items()},
            "rss_slope_mib_per_hour": result[side]["churn"]["rss_slope_mib_per_hour"],
            "rss_slope_stderr_mib_per_hour": result[side]["churn"].get("rss_slope_stderr_mib_per_hour"),
            "rss_min_max_mib": result[side]["churn"].get("rss_min_max_mib"),
            "requests_per_change": result[side]["churn"].get("requests_per_change"),
        }
        for side in ("ours", "floor")
    }
    print(json.dumps(brief, indent=1))
    print(f"written: {args.out} (runs[{args.models}]){'' if gate.valid else ' — NOT VALID (--force-busy)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
