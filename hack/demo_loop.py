#!/usr/bin/env python3
"""The loop on a real cluster, narrated: data → train → validate → approve → serve → collect → detect
drift → refresh the data → NoNewData (no unseen rows, so nothing to retrain on) → a person's retrain →
the gate, with its defaults, keeps the champion (the challenger cannot beat it on the same rows).

Used by `make demo` (hack/demo.sh) and by tests/e2e/test_demo_loop.py, which asserts on the
`LoopReport` this returns. Talks to the cluster named by KUBECONFIG; sends scoring traffic to the
model's ClusterIP from this host (kube-proxy makes it reachable), bounded in count and time.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

GROUP, VERSION = "mlops.dev", "v1alpha1"
HERE = Path(__file__).resolve().parent
MANIFESTS = HERE / "demo"


@dataclass
class LoopReport:
    namespace: str
    stages: dict[str, float] = field(default_factory=dict)  # stage -> seconds since start
    versions: list[dict[str, Any]] = field(default_factory=list)
    verdicts: list[str] = field(default_factory=list)
    drifted_features: list[str] = field(default_factory=list)
    feature_scores: list[dict[str, Any]] = field(default_factory=list)
    retrain_reason: str | None = None
    jobs_after_drift: int = 0  # training Jobs once the Model answered the drift
    report_uri: str | None = None
    report_host_path: str | None = None
    requests_sent: int = 0
    requests_failed: int = 0
    status_codes: dict[str, int] = field(default_factory=dict)
    predictions_checked: int = 0
    reference_checked: int = 0  # unshifted rows scored
    reference_correct: int = 0  # ... whose served prediction equals the true label


class Narrator:
    def __init__(self, quiet: bool = False) -> None:
        self.start = time.monotonic()
        self.quiet = quiet

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def say(self, message: str) -> None:
        if not self.quiet:
            print(f"[{self.elapsed():6.1f}s] {message}", flush=True)


class Cluster:
    def __init__(self, namespace: str) -> None:
        config.load_kube_config()
        self.namespace = namespace
        self.custom = client.CustomObjectsApi()
        self.core = client.CoreV1Api()
        self.batch = client.BatchV1Api()

    def ensure_namespace(self) -> None:
        body = {"metadata": {"name": self.namespace, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}
        try:
            self.core.create_namespace(body)
        except ApiException as exc:
            if exc.status != 409:
                raise

    def apply(self, path: Path) -> None:
        body = yaml.safe_load(path.read_text())
        plural = body["kind"].lower() + "s"
        try:
            self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, body)
        except ApiException as exc:
            if exc.status != 409:
                raise

    def get(self, plural: str, name: str) -> dict[str, Any]:
        try:
            obj: dict[str, Any] = self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, name)
            return obj
        except ApiException as exc:
            if exc.status == 404:
                return {}
            raise

    def training_jobs(self, model: str) -> list[str]:
        jobs = self.batch.list_namespaced_job(self.namespace, label_selector=f"{GROUP}/model={model}")
        return sorted(
            j.metadata.name for j in jobs.items if j.metadata.labels.get("app.kubernetes.io/component") == "train"
        )

    def request_retrain(self, model: str, reason: str) -> None:
        """What `kubectl mlops retrain` writes: the retrain annotation, "<RFC3339 now>;<reason>"."""
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        patch = {"metadata": {"annotations": {f"{GROUP}/retrain-requested": f"{now};{reason}"}}}
        self.custom.patch_namespaced_custom_object(GROUP, VERSION, self.namespace, "models", model, patch)

    def service_url(self, model: str) -> str:
        svc = self.core.read_namespaced_service(model, self.namespace)
        return f"http://{svc.spec.cluster_ip}:{svc.spec.ports[0].port}"

    def host_path_of(self, uri: str, claim: str = "mlops-artifacts", mount: str = "/var/lib/mlops") -> str | None:
        """Where a file:// artifact on the namespace's PVC lives on this host (hostPath volumes)."""
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
        return None if base is None else base.rstrip("/") + uri[len("file://") + len(mount) :]


def wait_for(what: str, check: Callable[[], Any], narrator: Narrator, timeout: float, poll: float = 1.0) -> Any:
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


class Traffic:
    """Bounded scoring traffic: rows drawn from the reference data, optionally shifted."""

    def __init__(self, url: str, model: str, report: LoopReport) -> None:
        from sklearn.datasets import load_breast_cancer

        data = load_breast_cancer(as_frame=True)
        self.features = list(data.feature_names)
        self.rows = data.data.to_numpy()
        self.labels = data.target.to_numpy()
        self.url = f"{url}/v2/models/{model}/infer"
        self.report = report
        self.http = httpx.Client(timeout=5.0)
        self.rng = random.Random(7)

    def send(self, seconds: float, shift: float, rows_per_request: int = 5, rate_hz: float = 10.0) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            picks = [self.rng.randrange(len(self.rows)) for _ in range(rows_per_request)]
            batch = [self.rows[i] * (1.0 + shift) for i in picks]
            body = {
                "inputs": [
                    {
                        "name": "input-0",
                        "shape": [len(batch), len(self.features)],
                        "datatype": "FP64",
                        "data": [float(v) for row in batch for v in row],
                    }
                ]
            }
            self.report.requests_sent += 1
            try:
                resp = self.http.post(self.url, json=body)
                code = str(resp.status_code)
                if resp.status_code == 200:
                    outputs = resp.json()["outputs"][0]
                    if len(outputs["data"]) == len(batch):
                        self.report.predictions_checked += len(batch)
                        if shift == 0.0:
                            self.report.reference_checked += len(batch)
                            self.report.reference_correct += sum(
                                int(p) == int(self.labels[i]) for p, i in zip(outputs["data"], picks, strict=True)
                            )
                else:
                    self.report.requests_failed += 1
            except httpx.HTTPError as exc:
                code = type(exc).__name__
                self.report.requests_failed += 1
            self.report.status_codes[code] = self.report.status_codes.get(code, 0) + 1
            time.sleep(1.0 / rate_hz)


def run_loop(namespace: str, timeout: float = 900.0, quiet: bool = False) -> LoopReport:
    narrator = Narrator(quiet)
    report = LoopReport(namespace=namespace)
    cluster = Cluster(namespace)

    def stage(name: str, message: str) -> None:
        report.stages[name] = round(narrator.elapsed(), 1)
        narrator.say(message)

    cluster.ensure_namespace()
    for name in ("dataset.yaml", "model.yaml", "driftmonitor.yaml"):
        cluster.apply(MANIFESTS / name)
    narrator.say(f"applied Dataset, Model and DriftMonitor in namespace {namespace}")

    def dataset_ready() -> dict[str, Any] | None:
        ds = cluster.get("datasets", "breast-cancer")
        if (msg := failed_message(ds)) is not None:
            raise RuntimeError(f"Dataset failed: {msg}")
        return ds if ds.get("status", {}).get("phase") == "Ready" else None

    ds = wait_for("the Dataset to be profiled", dataset_ready, narrator, timeout)
    st = ds["status"]
    stage(
        "dataset_ready",
        f"Dataset profiled: version {st['version'][:12]}, {st['rows']} rows, "
        f"{len(st.get('findings', []))} quality findings",
    )

    def model_status() -> dict[str, Any]:
        m = cluster.get("models", "breast-cancer-lr")
        if (msg := failed_message(m)) is not None:
            raise RuntimeError(f"Model failed: {msg}")
        return dict(m.get("status", {}))

    wait_for("the first training Job", lambda: cluster.training_jobs("breast-cancer-lr"), narrator, timeout, 0.5)
    stage("v1_training", f"training Job started: {cluster.training_jobs('breast-cancer-lr')[0]}")
    wait_for("version 1 to serve", lambda: model_status().get("servingVersion") == 1, narrator, timeout)
    v1 = model_status()["versions"][0]
    stage(
        "v1_serving",
        f"v1 {v1['state']}: accuracy={v1['metrics'].get('accuracy', float('nan')):.3f} "
        f"({(v1.get('gate') or {}).get('message', '')}); endpoint up",
    )

    traffic = Traffic(cluster.service_url("breast-cancer-lr"), "breast-cancer-lr", report)
    t_reference = time.time()
    narrator.say("sending scoring traffic from the reference distribution (bounded: 40 s)")
    traffic.send(seconds=40, shift=0.0)

    def verdict_after(since: float, wanted: str) -> dict[str, Any] | None:
        dm = cluster.get("driftmonitors", "breast-cancer-lr")
        for record in dm.get("status", {}).get("history", []):
            stamp = time.mktime(time.strptime(record["time"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
            if stamp >= since + 20 and record["verdict"] == wanted:
                return record
        return None

    nodrift = wait_for(
        "a NoDrift verdict on reference traffic", lambda: verdict_after(t_reference, "NoDrift"), narrator, 120
    )
    report.verdicts.append("NoDrift")
    stage(
        "no_drift",
        f"DriftMonitor: NoDrift on {nodrift.get('samples')} samples "
        f"(drifted share {nodrift.get('driftedShare', 0):.2f})",
    )

    t_shift = time.time()
    narrator.say("sending scoring traffic from a shifted distribution (every feature +35%, bounded: 40 s)")
    traffic.send(seconds=40, shift=0.35)
    drift = wait_for("a Drift verdict on shifted traffic", lambda: verdict_after(t_shift, "Drift"), narrator, 120)
    report.verdicts.append("Drift")
    report.drifted_features = list(drift.get("driftedFeatures", []))
    stage(
        "drift",
        f"DriftMonitor: Drift: {len(report.drifted_features)} features drifted "
        f"(share {drift.get('driftedShare', 0):.2f}); report at {drift.get('reportUri')}",
    )

    def no_new_data() -> bool:
        """NoNewData, said by the DriftMonitor (its Dataset refresh found nothing new) or by the Model."""
        monitor = cluster.get("driftmonitors", "breast-cancer-lr").get("status", {})
        said = [(monitor.get("conditions", []), "RetrainRequested"), (model_status().get("conditions", []), "Trained")]
        return any(c.get("type") == t and c.get("reason") == "NoNewData" for cs, t in said for c in cs)

    # The source is scikit-learn's bundled table: a refresh finds no rows v1 has not seen, and a retrain on
    # the same rows could not beat v1 on them, so the answer to the drift is NoNewData and nothing trains.
    wait_for("the answer to the drift", no_new_data, narrator, 240)
    report.jobs_after_drift = len(cluster.training_jobs("breast-cancer-lr"))
    stage(
        "no_new_data",
        "NoNewData: the Dataset has no rows v1 was not trained on, so no training Job starts (a retrain "
        "on the same rows cannot beat v1 on today's data)",
    )

    narrator.say("a person asks for a retrain anyway: kubectl mlops retrain breast-cancer-lr --reason 'demo'")
    cluster.request_retrain("breast-cancer-lr", "demo: retrain on the same data")
    wait_for("the retraining Job", lambda: len(cluster.training_jobs("breast-cancer-lr")) >= 2, narrator, 120, 0.5)
    stage("retrain_job", f"retraining Job started: {cluster.training_jobs('breast-cancer-lr')[-1]}")

    def judged() -> dict[str, Any] | None:
        versions = model_status().get("versions", [])
        v2 = next((v for v in versions if v["version"] == 2 and v.get("gate")), None)
        return v2 if v2 and v2["state"] not in ("Training", "Pending") else None

    v2 = wait_for("the gate's verdict on version 2", judged, narrator, timeout)
    status = model_status()
    report.retrain_reason = v2.get("trigger")
    gate = v2.get("gate") or {}
    stage(
        "v2_judged",
        f"v2 {v2['state']}: accuracy {gate.get('score', float('nan')):.3f} vs v1's "
        f"{gate.get('championScore', float('nan')):.3f} on the same held-out rows ({gate.get('reason')}); "
        f"version {status.get('servingVersion')} serves",
    )

    traffic.send(seconds=3, shift=0.0)  # the serving version still answers
    dm = cluster.get("driftmonitors", "breast-cancer-lr")
    report.versions = status["versions"]
    report.feature_scores = dm.get("status", {}).get("featureScores", [])
    report.report_uri = drift.get("reportUri") or dm.get("status", {}).get("reportUri")
    report.report_host_path = cluster.host_path_of(report.report_uri or "")
    return report


def print_summary(report: LoopReport) -> None:
    print("\n== Summary ==")
    print(f"{'version':>7}  {'state':<10} {'accuracy':>8}  {'dataset':<14} trigger")
    for v in report.versions:
        acc = v.get("metrics", {}).get("accuracy")
        print(
            f"{v['version']:>7}  {v['state']:<10} {acc if acc is None else f'{acc:.3f}':>8}  "
            f"{(v.get('datasetVersion') or '')[:12]:<14} {v.get('trigger', '')}"
        )
    print(f"\nretrain reason: {report.retrain_reason}")
    p_value_tests = {"ks", "chisquare", "ztest"}  # lower is more drift; distances: higher is

    def strength(s: dict[str, Any]) -> float:
        score = float(s.get("score") or 0.0)
        return score if s["test"] in p_value_tests else -score

    top = sorted(report.feature_scores, key=lambda s: (not s["drifted"], strength(s)))[:8]
    if top:
        print("\ntop drift scores (latest check):")
        for s in top:
            print(
                f"  {s['name']:<28} {s['test']:<12} {s.get('score', float('nan')):.4g}  "
                f"(threshold {s['threshold']})  {'DRIFT' if s['drifted'] else ''}"
            )
    print(f"\ndrift report: {report.report_uri}")
    if report.report_host_path:
        print(f"  on this host: {report.report_host_path}")
    if report.reference_checked:
        accuracy = report.reference_correct / report.reference_checked
        print(f"served accuracy on reference traffic: {accuracy:.3f} ({report.reference_checked} rows)")
    print(f"\nrequests: {report.requests_sent} sent, {report.requests_failed} failed, codes {report.status_codes}")
    print("\ntime per stage (s since start):")
    previous = 0.0
    for name, at in report.stages.items():
        print(f"  {name:<14} {at:7.1f}  (+{at - previous:.1f})")
        previous = at


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--namespace", default="mlops-demo")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    report = run_loop(args.namespace, args.timeout)
    print_summary(report)
    if args.json_out:
        args.json_out.write_text(json.dumps(asdict(report), indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
