"""Side-by-side serving benchmark: mlops-operator serve vs MLServer (default and parallel_workers 0)
vs KServe's Python server, on one LogisticRegression and one RandomForest (100 trees, depth 10) on
20 features, over V2 REST on 127.0.0.1, with wrk as the load generator (C, low overhead).

Every server gets the same fitted estimator (joblib for the peers, skops for ours) and the same V2
request: one 2-D FP64 tensor [rows, 20]. Each cell runs `--duration` seconds after a 1 s warm-up,
three times; the median is reported. Results: results.json and the README table (make_table.py).

usage: .venv/bin/python benchmarks/serving/bench.py [--duration 5] [--out benchmarks/serving/results.json]
Needs: wrk (apt-get install wrk), the venvs from setup.sh (MLServer, KServe).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import sklearn
import skops.io as sio
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
MLSERVER_VENV = Path(os.environ.get("MLSERVER_VENV", "/var/tmp/bench-mlserver"))
KSERVE_VENV = Path(os.environ.get("KSERVE_VENV", "/var/tmp/bench-kserve"))
FEATURES = 20
SEED = 0


# --- models and payloads -----------------------------------------------------------------------------
def fit_models(workdir: Path) -> dict[str, dict[str, Any]]:
    X, y = make_classification(n_samples=20_000, n_features=FEATURES, n_informative=12, random_state=SEED)
    # Pipelines, as the trainer saves them (and as the server's loader requires); every server
    # loads the same object, and "bare predict" below is the inner estimator's own predict().
    models = {
        "lr": Pipeline([("estimator", LogisticRegression(max_iter=1000))]).fit(X, y),
        "rf": Pipeline(
            [("estimator", RandomForestClassifier(n_estimators=100, max_depth=10, random_state=SEED, n_jobs=1))]
        ).fit(X, y),
    }
    out: dict[str, dict[str, Any]] = {}
    for name, model in models.items():
        directory = workdir / name
        directory.mkdir(parents=True)
        joblib.dump(model, directory / "model.joblib")
        sio.dump(model, directory / "model.skops")
        sha = hashlib.sha256((directory / "model.skops").read_bytes()).hexdigest()
        out[name] = {"model": model, "dir": directory, "sha256": sha, "X": X}
    return out


def v2_body(X: np.ndarray, rows: int) -> bytes:
    data = X[:rows].tolist()
    return json.dumps(
        {"inputs": [{"name": "input-0", "shape": [rows, FEATURES], "datatype": "FP64", "data": data}]}
    ).encode()


def bare_predict(model: Any, X: np.ndarray, rows: int, seconds: float = 2.0) -> dict[str, float]:
    """The model's own limit: predict() in a loop in this process, one core."""
    x = X[:rows]
    model.predict(x)
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        model.predict(x)
        calls += 1
    elapsed = time.perf_counter() - started
    return {"calls_per_s": calls / elapsed, "rows_per_s": calls * rows / elapsed, "ms_per_call": elapsed / calls * 1e3}


# --- servers -----------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    name: str
    command: list[str]
    infer_path: str
    port: int
    env: dict[str, str] = field(default_factory=dict)
    ready_path: str = "/v2/health/ready"
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, log_path: Path, timeout: float = 180) -> None:
        with open(log_path, "wb") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                self.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited {self.proc.returncode}; see {log_path}")
            try:
                if httpx.get(self.url + self.ready_path, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        raise TimeoutError(f"{self.name} not ready after {timeout}s; see {log_path}")

    def rss_mib(self) -> float:
        """Resident memory of the server's whole process tree (MLServer and --workers fork)."""
        assert self.proc is not None
        pids = [self.proc.pid, *_descendants(self.proc.pid)]
        total = 0
        for pid in pids:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                pass
        return total / 1024

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


def _descendants(pid: int) -> list[int]:
    out: list[int] = []
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return out
    for child in map(int, children):
        out += [child, *_descendants(child)]
    return out


def ours(model: dict[str, Any], workers: int = 1, collect: Path | None = None) -> Server:
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "mlops_operator.cli",
        "serve",
        "--model-name",
        "m",
        "--model-version",
        "1",
        "--artifact-uri",
        (model["dir"] / "model.skops").as_uri(),
        "--sha256",
        model["sha256"],
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
    ]
    if collect is not None:
        cmd += [
            "--collect-uri",
            collect.as_uri(),
            "--sample-rate",
            "1",
            "--flush-rows",
            "10000",
            "--flush-interval",
            "5",
        ]
    label = f"mlops-operator serve (workers={workers})" + (", collect 100%" if collect else "")
    return Server(label, cmd, "/v2/models/m/infer", port, env={"PYTHONPATH": str(REPO / "operator")})


def mlserver(model: dict[str, Any], workdir: Path, parallel_workers: int | None) -> Server:
    port = free_port()
    root = workdir / f"mlserver-{parallel_workers}"
    (root / "m").mkdir(parents=True)
    settings: dict[str, Any] = {
        "host": "127.0.0.1",
        "http_port": port,
        "grpc_port": free_port(),
        "metrics_port": free_port(),
        "debug": False,
    }
    if parallel_workers is not None:
        settings["parallel_workers"] = parallel_workers
    (root / "settings.json").write_text(json.dumps(settings))
    (root / "m" / "model-settings.json").write_text(
        json.dumps(
            {
                "name": "m",
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": str(model["dir"] / "model.joblib"), "version": "1"},
            }
        )
    )
    label = "MLServer " + (
        "default (parallel_workers 1)" if parallel_workers is None else f"parallel_workers: {parallel_workers}"
    )
    return Server(label, [str(MLSERVER_VENV / "bin" / "mlserver"), "start", str(root)], "/v2/models/m/infer", port)


def kserve(model: dict[str, Any]) -> Server:
    port = free_port()
    cmd = [
        str(KSERVE_VENV / "bin" / "python"),
        str(HERE / "kserve_server.py"),
        str(model["dir"] / "model.joblib"),
        "m",
        str(port),
    ]
    return Server("KServe (sklearn-style kserve.Model, logging off)", cmd, "/v2/models/m/infer", port)


# --- load -------------------------------------------------------------------------------------------
_LATENCY_RE = re.compile(r"^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk(url: str, lua: Path, connections: int, seconds: float) -> dict[str, float]:
    threads = 1 if connections == 1 else 2
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{int(seconds)}s", "--latency", "-s", str(lua), url],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = {p: float(v) * _UNITS[u] for p, v, u in _LATENCY_RE.findall(out)}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {
        "req_per_s": rps,
        "p50_ms": lat.get("50", float("nan")),
        "p99_ms": lat.get("99", float("nan")),
        "non_2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else "",
    }


def lua_script(path: Path, body: bytes) -> Path:
    escaped = body.decode().replace("\\", "\\\\").replace("'", "\\'")
    path.write_text(f"wrk.method = 'POST'\nwrk.headers['Content-Type'] = 'application/json'\nwrk.body = '{escaped}'\n")
    return path


def summarize_runs(runs: list[dict[str, Any]], rows: int, connections: int) -> dict[str, Any]:
    req = statistics.median(r["req_per_s"] for r in runs)
    return {
        "rows": rows,
        "concurrency": connections,
        "req_per_s": req,
        "rows_per_s": req * rows,
        "p50_ms": statistics.median(r["p50_ms"] for r in runs),
        "p99_ms": statistics.median(r["p99_ms"] for r in runs),
        "non_2xx": sum(r["non_2xx"] for r in runs),
        "runs": runs,
    }


def check_predictions(server: Server, body: bytes, expected: np.ndarray) -> None:
    r = httpx.post(
        server.url + server.infer_path, content=body, headers={"content-type": "application/json"}, timeout=30
    )
    r.raise_for_status()
    out = r.json()["outputs"][0]
    got = np.asarray(out["data"]).ravel()
    if not np.array_equal(got, expected):
        raise AssertionError(f"{server.name} answered {got[:8]} instead of {expected[:8]}")


# --- main -------------------------------------------------------------------------------------------
CELLS = [(1, 1), (1, 16), (64, 1), (64, 16)]
RF_CELLS = [(1, 16), (64, 16)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=5, help="seconds per measured run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=HERE / "results.json")
    ap.add_argument("--only", default="", help="comma-separated server keys to run (debugging)")
    ap.add_argument("--models", default="lr,rf", help="comma-separated: lr, rf")
    ap.add_argument("--pairs", type=int, default=8, help="paired runs for the collection cost")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        print("wrk not found: apt-get install wrk", file=sys.stderr)
        return 2
    started = time.time()
    workdir = Path(tempfile.mkdtemp(prefix="serving-bench-"))
    models = fit_models(workdir)
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "sklearn": sklearn.__version__,
            "load_average_at_start": os.getloadavg(),
        },
        "settings": {
            "duration_s": args.duration,
            "repeats": args.repeats,
            "load_generator": "wrk",
            "features": FEATURES,
        },
        "bare_predict": {},
        "servers": {},
        "compat": {},
    }

    def lineup(key: str) -> list[tuple[str, Callable[[], Server]]]:
        m = models[key]
        servers: list[tuple[str, Callable[[], Server]]] = [
            ("ours", lambda: ours(m)),
            ("ours_collect", lambda: ours(m, collect=workdir / "collected")),
            ("ours_w2", lambda: ours(m, workers=2)),
            ("mlserver_default", lambda: mlserver(m, workdir / key, None)),
            ("mlserver_pw0", lambda: mlserver(m, workdir / key, 0)),
            ("kserve", lambda: kserve(m)),
        ]
        return servers if key == "lr" else [s for s in servers if s[0] != "ours_collect"]

    only = set(filter(None, args.only.split(",")))
    for key in args.models.split(","):
        m = models[key]
        bodies = {rows: v2_body(m["X"], rows) for rows in (1, 64)}
        luas = {rows: lua_script(workdir / f"{key}-{rows}.lua", body) for rows, body in bodies.items()}
        servers: dict[str, Server] = {}
        try:
            # All contenders run at once and each cell is measured round-robin (rep 1 of every
            # server, then rep 2, ...), so drift in the machine's background load hits all alike.
            for server_key, factory in lineup(key):
                if only and server_key not in only:
                    continue
                server = factory()
                print(f"[{time.time() - started:5.0f}s] {key}: starting {server.name}", flush=True)
                server.start(workdir / f"{key}-{server_key}.log")
                check_predictions(server, bodies[64], m["model"].predict(m["X"][:64]))
                servers[server_key] = server
            runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
            bare_runs: dict[str, list[dict[str, float]]] = {}
            for rows, conc in CELLS if key == "lr" else RF_CELLS:
                cell = f"{rows}x{conc}"
                here = [k for k in servers if k != "ours_collect" or conc == 16]
                for k in here:
                    wrk(servers[k].url + servers[k].infer_path, luas[rows], conc, 1)  # warm-up
                for _rep in range(args.repeats):
                    for k in here:
                        runs.setdefault((k, cell), []).append(
                            wrk(servers[k].url + servers[k].infer_path, luas[rows], conc, args.duration)
                        )
                    bare_runs.setdefault(str(rows), []).append(
                        bare_predict(m["model"].steps[-1][1], m["X"], rows, seconds=2.0)
                    )
                print(f"[{time.time() - started:5.0f}s] {key} {cell} done", flush=True)
            if "ours" in servers and "ours_collect" in servers:
                results["collection_pairs"] = paired_collection_cost(servers, luas, args.pairs)
            for k, server in servers.items():
                entry: dict[str, Any] = {"label": server.name, "rss_mib": server.rss_mib(), "cells": {}}
                for (k2, cell), cell_runs in runs.items():
                    if k2 == k:
                        rows = int(cell.split("x")[0])
                        entry["cells"][cell] = summarize_runs(cell_runs, rows, int(cell.split("x")[1]))
                results["servers"].setdefault(key, {})[k] = entry
                if key == "lr" and k in ("ours", "mlserver_pw0", "kserve"):
                    results["compat"][k] = kserve_client_check(server, m["X"][:4])
            results["bare_predict"][key] = {
                rows: {f: statistics.median(r[f] for r in rs) for f in rs[0]} for rows, rs in bare_runs.items()
            }
        finally:
            for server in servers.values():
                server.stop()
    if (workdir / "collected").exists():
        results["collected_files"] = len(list((workdir / "collected").rglob("*.parquet")))
    results["summary"] = summarize(results)
    results["elapsed_s"] = time.time() - started
    args.out.write_text(json.dumps(results, indent=1, default=float) + "\n")
    print(json.dumps(results["summary"], indent=1))
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


def paired_collection_cost(servers: dict[str, Server], luas: dict[int, Path], pairs: int) -> dict[str, Any]:
    """Collection on vs off as back-to-back pairs of 3 s runs (order alternating), the median of
    the per-pair throughput ratios: a shared machine's load drifts too much between the rounds of
    the main table for a 15 % question."""
    out: dict[str, Any] = {}
    for rows in (1, 64):
        ratios = []
        for i in range(pairs):
            order = ["ours", "ours_collect"] if i % 2 == 0 else ["ours_collect", "ours"]
            got = {k: wrk(servers[k].url + servers[k].infer_path, luas[rows], 16, 3)["req_per_s"] for k in order}
            ratios.append(got["ours_collect"] / got["ours"])
        out[f"{rows}x16"] = {"cost": 1 - statistics.median(ratios), "ratios": ratios}
    return out


def kserve_client_check(server: Server, rows: np.ndarray) -> dict[str, Any]:
    """KServe's own InferenceRESTClient against this server (in the kserve venv)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(rows.tolist(), f)
    done = subprocess.run(
        [str(KSERVE_VENV / "bin" / "python"), str(HERE / "compat_check.py"), server.url, "m", f.name],
        capture_output=True,
        text=True,
        timeout=120,
    )
    os.unlink(f.name)
    try:
        parsed: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        parsed = {"ok": False, "stderr": done.stderr[-500:]}
    return parsed


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    peers = ("mlserver_default", "mlserver_pw0", "kserve")
    summary: dict[str, Any] = {}
    lr = results["servers"].get("lr", {})
    for cell in ("1x1", "1x16", "64x1", "64x16"):
        if "ours" not in lr or cell not in lr["ours"]["cells"]:
            continue
        ours_cell = lr["ours"]["cells"][cell]
        ratios = {p: ours_cell["req_per_s"] / lr[p]["cells"][cell]["req_per_s"] for p in peers if p in lr}
        best = max((p for p in peers if p in lr), key=lambda p: lr[p]["cells"][cell]["req_per_s"], default=None)
        summary[f"lr_{cell}"] = {
            "ours_req_per_s": ours_cell["req_per_s"],
            "ratio_to_peer": ratios,
            "ratio_to_best_peer": min(ratios.values()) if ratios else None,
            "best_peer": best,
            "ours_p99_ms": ours_cell["p99_ms"],
            "best_peer_p99_ms": lr[best]["cells"][cell]["p99_ms"] if best else None,
            "ratio_to_bare_predict": ours_cell["rows_per_s"]
            / results["bare_predict"]["lr"][cell.split("x")[0]]["rows_per_s"],
        }
    if "collection_pairs" in results:
        summary["collection_cost"] = {cell: v["cost"] for cell, v in results["collection_pairs"].items()}
    rf = results["servers"].get("rf", {})
    for server_key in ("ours", "ours_w2"):
        if server_key in rf:
            summary[f"rf_{server_key}_rows_per_s_vs_bare"] = {
                cell: c["rows_per_s"] / results["bare_predict"]["rf"][cell.split("x")[0]]["rows_per_s"]
                for cell, c in rf[server_key]["cells"].items()
            }
    if rf and "ours" in rf:
        summary["rf_ratio_to_peer_64x16"] = {
            p: rf["ours"]["cells"]["64x16"]["rows_per_s"] / rf[p]["cells"]["64x16"]["rows_per_s"]
            for p in peers
            if p in rf
        }
    return summary


if __name__ == "__main__":
    sys.exit(main())
