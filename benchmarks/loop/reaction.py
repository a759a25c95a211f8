#!/usr/bin/env python3
"""Operator reaction times on the real local cluster (issue 7): how long the operator takes to act.

Three transitions, each measured between two watch events received by this process (the same
clock and the same watch latency on both ends, so what remains is the operator's reaction):
  1. resource change → child Job created: a retrain request annotation is patched → the training
     Job appears;
  2. Job finished → status updated: the training Job turns Complete → the Model's status records
     the version as trained (no longer Training);
  3. drift detected → retrain Job created: the DriftMonitor's status turns to Drift → the training
     Job appears.
Needs the operator installed (make demo does that) and KUBECONFIG. Bounded: N samples, a timeout
per sample. Writes benchmarks/loop/results.json; prints p50/p99 per transition.

Benchmark rules (benchmarks/quiet.py): refuses to start when the 1-minute load average is above 1.0
(`--force-busy` runs anyway and marks the results not valid); records the load before and after and
the library versions. benchmarks/scale/ measures the same three transitions against a bare
kube-apiserver at N = 1, 100 and 1000 Models, next to a minimal kopf operator.
"""

from __future__ import annotations

import argparse
import json
import platform
import queue
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config, watch

GROUP, VERSION = "mlops.dev", "v1alpha1"
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import quiet  # noqa: E402

DEMO = HERE / "manifests"  # the breast-cancer Dataset, Model and DriftMonitor
MODEL = "reaction-lr"
MONITOR = "reaction-drift"


@dataclass
class Seen:
    kind: str
    name: str
    type: str
    obj: dict[str, Any]
    at: float = field(default_factory=time.monotonic)


class Watcher:
    """Background watches on Jobs and our custom resources in one namespace, stamped on arrival."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.events: queue.Queue[Seen] = queue.Queue()
        self.stop = threading.Event()
        batch, custom = client.BatchV1Api(), client.CustomObjectsApi()
        watched: list[tuple[str, Any, dict[str, Any]]] = [("Job", batch.list_namespaced_job, {})]
        for kind, plural in (("Model", "models"), ("DriftMonitor", "driftmonitors")):
            custom_kwargs = {"group": GROUP, "version": VERSION, "plural": plural}
            watched.append((kind, custom.list_namespaced_custom_object, custom_kwargs))
        self.threads = [threading.Thread(target=self._run, args=args, daemon=True) for args in watched]
        for t in self.threads:
            t.start()

    def _run(self, kind: str, lister: Any, kwargs: dict[str, Any]) -> None:
        while not self.stop.is_set():
            w = watch.Watch()
            try:
                for event in w.stream(lister, namespace=self.namespace, timeout_seconds=60, **kwargs):
                    obj = event["object"]
                    obj = obj if isinstance(obj, dict) else client.ApiClient().sanitize_for_serialization(obj)
                    self.events.put(Seen(kind, obj["metadata"]["name"], event["type"], obj))
                    if self.stop.is_set():
                        break
            except Exception:  # a dropped watch: reopen (bounded by the stop flag)
                time.sleep(0.2)

    def wait(self, predicate: Any, timeout: float) -> Seen:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                seen = self.events.get(timeout=max(0.05, deadline - time.monotonic()))
            except queue.Empty:
                break
            if predicate(seen):
                return seen
        raise TimeoutError("no matching watch event in time")

    def drain(self) -> None:
        while not self.events.empty():
            self.events.get_nowait()


def is_train_job(seen: Seen, added_only: bool = True) -> bool:
    labels = seen.obj["metadata"].get("labels") or {}
    return (
        seen.kind == "Job"
        and labels.get(f"{GROUP}/model") == MODEL
        and labels.get("app.kubernetes.io/component") == "train"
        and (seen.type == "ADDED" or not added_only)
    )


def job_complete(seen: Seen) -> bool:
    conds = (seen.obj.get("status") or {}).get("conditions") or []
    return is_train_job(seen, added_only=False) and any(
        c.get("type") == "Complete" and c.get("status") == "True" for c in conds
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(values: list[float]) -> dict[str, Any]:
    return {
        "n": len(values),
        "p50_s": round(statistics.median(values), 3) if values else None,
        "p99_s": round(percentile(values, 99), 3) if values else None,
        "max_s": round(max(values), 3) if values else None,
        "samples_s": [round(v, 3) for v in values],
    }


def setup(namespace: str) -> None:
    core, custom = client.CoreV1Api(), client.CustomObjectsApi()
    try:
        core.create_namespace(
            {"metadata": {"name": namespace, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}
        )
    except client.ApiException as exc:
        if exc.status != 409:
            raise
    dataset = yaml.safe_load((DEMO / "dataset.yaml").read_text())
    model = yaml.safe_load((DEMO / "model.yaml").read_text())
    model["metadata"]["name"] = MODEL
    model["spec"]["retrain"]["cooldownSeconds"] = 0
    model["spec"]["validation"]["mustBeatChampion"] = False
    for plural, body in (("datasets", dataset), ("models", model)):
        try:
            custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body)
        except client.ApiException as exc:
            if exc.status != 409:
                raise


def request_retrain(namespace: str, reason: str) -> None:
    value = f"{datetime.now(UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')};{reason}"
    client.CustomObjectsApi().patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        "models",
        MODEL,
        {"metadata": {"annotations": {f"{GROUP}/retrain-requested": value}}},
    )


def measure_training(w: Watcher, namespace: str, samples: int, timeout: float) -> tuple[list[float], list[float]]:
    to_job: list[float] = []
    to_status: list[float] = []
    # The first version trains on create; wait for it to settle before sampling.
    w.wait(job_complete, timeout)
    time.sleep(3)
    for i in range(samples):
        w.drain()
        request_retrain(namespace, f"reaction benchmark {i}")
        patched = w.wait(lambda s: s.kind == "Model" and s.type == "MODIFIED", timeout)
        created = w.wait(is_train_job, timeout)
        to_job.append(created.at - patched.at)
        job_name = created.name
        done = w.wait(lambda s, n=job_name: job_complete(s) and s.name == n, timeout)

        def recorded(
            s: Seen, version: str = created.obj["metadata"]["labels"].get(f"{GROUP}/model-version", "")
        ) -> bool:
            if s.kind != "Model":
                return False
            status = s.obj.get("status") or {}
            versions = {str(v.get("version")): v.get("state") for v in status.get("versions", [])}
            return versions.get(version) not in (None, "Training")

        updated = w.wait(recorded, timeout)
        to_status.append(updated.at - done.at)
        print(
            f"  sample {i + 1}/{samples}: change→Job {to_job[-1]:.3f}s, Job done→status {to_status[-1]:.3f}s",
            flush=True,
        )
        time.sleep(1)
    return to_job, to_status


def start_shifted_traffic(namespace: str, stop: threading.Event) -> threading.Thread:
    """Shifted scoring traffic in the background (bounded by `stop`), so every check sees drift."""
    from loop.traffic import Traffic, service_url  # benchmarks/ is on sys.path

    traffic = Traffic(service_url(namespace, MODEL), MODEL)

    def run() -> None:
        while not stop.is_set():
            traffic.send(seconds=2, shift=0.35)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def measure_drift(w: Watcher, namespace: str, samples: int, timeout: float) -> list[float]:
    """Drift verdict (new check) → training Job ADDED, sampled only when no training is running."""
    custom = client.CustomObjectsApi()
    monitor = yaml.safe_load((DEMO / "driftmonitor.yaml").read_text())
    monitor["metadata"]["name"] = MONITOR
    monitor["spec"]["modelRef"]["name"] = MODEL
    monitor["spec"].update({"schedule": {"intervalSeconds": 10}, "windowSeconds": 20, "minSamples": 20})
    monitor["spec"]["action"]["cooldownSeconds"] = 0
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "driftmonitors", monitor)
    stop = threading.Event()
    start_shifted_traffic(namespace, stop)
    out: list[float] = []
    seen_checks: set[str] = set()
    try:
        while len(out) < samples:
            w.drain()
            verdict = w.wait(
                lambda s: (
                    s.kind == "DriftMonitor"
                    and (s.obj.get("status") or {}).get("lastVerdict") == "Drift"
                    and (s.obj.get("status") or {}).get("lastCheck") not in seen_checks
                ),
                timeout,
            )
            seen_checks.add(verdict.obj["status"]["lastCheck"])
            try:
                created = w.wait(is_train_job, 15)
            except TimeoutError:
                continue  # a training was still running: the monitor rightly deferred
            out.append(created.at - verdict.at)
            print(f"  drift sample {len(out)}/{samples}: Drift→retrain Job {out[-1]:.3f}s", flush=True)
            w.wait(lambda s, n=created.name: job_complete(s) and s.name == n, timeout)
    finally:
        stop.set()
        custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "driftmonitors", MONITOR)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--namespace", default="mlops-reaction")
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    quiet.add_arguments(parser)
    args = parser.parse_args(argv)
    gate = quiet.Gate.enter(args.force_busy, "loop")
    config.load_kube_config()
    setup(args.namespace)
    w = Watcher(args.namespace)
    try:
        to_job, to_status = measure_training(w, args.namespace, args.samples, args.timeout)
        to_retrain = measure_drift(w, args.namespace, max(5, args.samples // 2), args.timeout)
    finally:
        w.stop.set()
    results = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {platform.system()} {platform.release()}",
        "method": "host-side watch events on both ends; see module docstring",
        "transitions": {
            "resource_change_to_job_created": summary(to_job),
            "job_finished_to_status_updated": summary(to_status),
            "drift_detected_to_retrain_job_created": summary(to_retrain),
        },
        "conditions": gate.conditions(packages=(*quiet.LIBRARIES, "kopf", "kubernetes")),
    }
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    for name, s in results["transitions"].items():
        print(f"{name:<40} n={s['n']:<3} p50={s['p50_s']}s p99={s['p99_s']}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
