"""Side-by-side serving benchmark: mlops-operator serve vs a minimal Starlette endpoint, MLServer
(default and parallel_workers 0) and KServe's Python server, on one LogisticRegression and one
RandomForest (100 trees, depth 10) on 20 features, over V2 REST on 127.0.0.1, with wrk as the load
generator (C, low overhead, one thread: `wrk -t1`).

Every server gets the same fitted estimator (joblib for the others, skops for ours) and the same V2
request: one 2-D FP64 tensor [rows, 20]. Each server runs ALONE: start it, check its answer
against model.predict, warm it up, measure all its cells, record its RSS, stop it; then the next.
Cells: 1 and 64 rows by concurrency 1 and 16; each cell is a 1 s warm-up and then --repeats runs of
--duration seconds, median reported. Bare `predict` calls/s are measured in a separate process before
any server starts (nothing else running). Our server and the reference endpoint run with the same
number of workers (--workers, default 1). Results: results.json and the README table (make_table.py).

Benchmark rules (benchmarks/quiet.py): refuses to start when the 1-minute load average is above 1.0
(`--force-busy` runs anyway and marks the results not valid; make_table.py refuses them); records the
load before and after and the versions of numpy, scipy, scikit-learn, pandas, pyarrow here and in
each server's venv.

usage: .venv/bin/python benchmarks/serving/bench.py [--duration 5] [--repeats 3] [--out results.json]
Needs: wrk and the venvs from setup.sh (MLServer, KServe, the reference endpoint).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
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
import skops.io as sio
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE.parent))
import quiet  # noqa: E402

MLSERVER_VENV = Path(os.environ.get("MLSERVER_VENV", "/var/tmp/bench-mlserver"))
KSERVE_VENV = Path(os.environ.get("KSERVE_VENV", "/var/tmp/bench-kserve"))
REFERENCE_VENV = Path(os.environ.get("REFERENCE_VENV", "/var/tmp/bench-reference"))
FEATURES = 20
SEED = 0
PEERS = ("mlserver_default", "mlserver_pw0", "kserve")
CELLS = [(1, 1), (1, 16), (64, 1), (64, 16)]


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
        np.save(directory / "X.npy", X[:64])
        out[name] = {"model": model, "dir": directory, "sha256": sha, "X": X, "x_path": directory / "X.npy"}
    return out


def v2_body(X: np.ndarray, rows: int) -> bytes:
    data = X[:rows].tolist()
    return json.dumps(
        {"inputs": [{"name": "input-0", "shape": [rows, FEATURES], "datatype": "FP64", "data": data}]}
    ).encode()


BARE = """
import json, sys, time
import joblib, numpy as np
model = joblib.load(sys.argv[1]).steps[-1][1]  # the estimator inside the Pipeline
if sys.argv[6] == "served":  # our server's own prediction path (its kernels), without HTTP
    from mlops_operator.workloads.serve.model import Batch, ServedModel
    served = ServedModel("m", "1", joblib.load(sys.argv[1]))
    model = type("Served", (), {"predict": staticmethod(lambda x: served.predict(Batch(len(x), matrix=x)))})
X = np.load(sys.argv[2])
rows, seconds, repeats = int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
x = X[:rows]
for _ in range(20):
    model.predict(x)
runs = []
for _ in range(repeats):
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        model.predict(x)
        calls += 1
    elapsed = time.perf_counter() - started
    per_call = elapsed / calls
    runs.append({"calls_per_s": 1 / per_call, "rows_per_s": rows / per_call, "ms_per_call": per_call * 1e3})
print(json.dumps(runs))
"""


def bare_predict(
    model: dict[str, Any], rows: int, seconds: float, repeats: int, path: str = "sklearn"
) -> dict[str, Any]:
    """The model's own limit: predict() in a loop in a separate process (one core), run while no
    server is up; median of `repeats` runs. path="served": ServedModel.predict instead, what our
    server calls per request (its prediction kernels), so that its HTTP overhead shows."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            BARE,
            str(model["dir"] / "model.joblib"),
            str(model["x_path"]),
            *map(str, (rows, seconds, repeats)),
            path,
        ],
        capture_output=True,
        text=True,
        timeout=seconds * repeats + 120,
        check=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "operator")},
    )
    runs: list[dict[str, float]] = json.loads(done.stdout.strip().splitlines()[-1])
    return {**{f: statistics.median(r[f] for r in runs) for f in runs[0]}, "runs": runs}


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


def _script_server(label: str, venv: Path, script: str, model: dict[str, Any], *extra: str) -> Server:
    """A server script of this folder, run by `venv`'s python: `script <model.joblib> m <port> [extra]`."""
    port = free_port()
    cmd = [str(venv / "bin" / "python"), str(HERE / script), str(model["dir"] / "model.joblib"), "m", str(port), *extra]
    return Server(label, cmd, "/v2/models/m/infer", port)


def kserve(model: dict[str, Any]) -> Server:
    return _script_server("KServe (sklearn-style kserve.Model, logging off)", KSERVE_VENV, "kserve_server.py", model)


def reference(model: dict[str, Any], workers: int = 1) -> Server:
    label = f"minimal uvicorn + Starlette + orjson endpoint (workers={workers})"
    return _script_server(label, REFERENCE_VENV, "reference_server.py", model, "--workers", str(workers))


# --- load -------------------------------------------------------------------------------------------
_LATENCY_RE = re.compile(r"^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk(url: str, lua: Path, connections: int, seconds: float) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{int(seconds)}s", "--latency", "-s", str(lua), url],
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


# --- main -------------------------------------------------------------------------------------------
def lineup(m: dict[str, Any], key: str, workdir: Path, workers: int) -> list[tuple[str, Callable[[], Server]]]:
    servers: list[tuple[str, Callable[[], Server]]] = [
        ("ours", lambda: ours(m, workers=workers)),
        ("reference", lambda: reference(m, workers=workers)),
        ("mlserver_default", lambda: mlserver(m, workdir / key, None)),
        ("mlserver_pw0", lambda: mlserver(m, workdir / key, 0)),
        ("kserve", lambda: kserve(m)),
    ]
    if key == "lr":  # what collecting every request costs, on the cheap model where it shows most
        servers.insert(1, ("ours_collect", lambda: ours(m, workers=workers, collect=workdir / "collected")))
    return servers


def measure_alone(
    server: Server,
    server_key: str,
    m: dict[str, Any],
    bodies: dict[int, bytes],
    luas: dict[int, Path],
    args: argparse.Namespace,
    log: Path,
) -> dict[str, Any]:
    """Start one server, check it, warm it up, measure its cells, stop it."""
    server.start(log)
    try:
        check_predictions(server, bodies[64], m["model"].predict(m["X"][:64]))
        wrk(server.url + server.infer_path, luas[1], 1, 2)  # warm-up at start
        entry: dict[str, Any] = {"label": server.name, "cells": {}}
        cells = [c for c in CELLS if server_key != "ours_collect" or c[1] == 16]
        for rows, conc in cells:
            url = server.url + server.infer_path
            wrk(url, luas[rows], conc, 1)  # warm-up for this cell
            runs = [wrk(url, luas[rows], conc, args.duration) for _ in range(args.repeats)]
            entry["cells"][f"{rows}x{conc}"] = summarize_runs(runs, rows, conc)
        entry["rss_mib"] = server.rss_mib()
        if server_key in ("ours", "mlserver_pw0", "kserve"):  # the minimal endpoint has only the infer route
            entry["compat"] = kserve_client_check(server, m["X"][:4])
        return entry
    finally:
        server.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=5, help="seconds per measured run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=1, help="worker processes of ours and of the reference endpoint")
    ap.add_argument("--out", type=Path, default=HERE / "results.json")
    ap.add_argument("--only", default="", help="comma-separated server keys to run (debugging)")
    ap.add_argument("--models", default="lr,rf", help="comma-separated: lr, rf")
    quiet.add_arguments(ap)
    args = ap.parse_args()
    gate = quiet.Gate.enter(args.force_busy, "serving")
    if shutil.which("wrk") is None:
        print("wrk not found: run benchmarks/serving/setup.sh", file=sys.stderr)
        return 2
    started = time.time()
    workdir = Path(tempfile.mkdtemp(prefix="serving-bench-"))
    models = fit_models(workdir)
    results: dict[str, Any] = {
        "settings": {
            "duration_s": args.duration,
            "repeats": args.repeats,
            "load_generator": "wrk -t1",
            "features": FEATURES,
            "workers": args.workers,
            "method": "each server alone: start, check, warm up, measure its cells, stop",
        },
        "bare_predict": {},
        "served_predict": {},
        "servers": {},
    }
    only = set(filter(None, args.only.split(",")))
    try:
        for key in args.models.split(","):
            m = models[key]
            bodies = {rows: v2_body(m["X"], rows) for rows in (1, 64)}
            luas = {rows: lua_script(workdir / f"{key}-{rows}.lua", body) for rows, body in bodies.items()}
            print(f"[{time.time() - started:5.0f}s] {key}: bare predict (separate process)", flush=True)
            results["bare_predict"][key] = {
                str(rows): bare_predict(m, rows, args.duration, args.repeats) for rows in (1, 64)
            }
            results["served_predict"][key] = {
                str(rows): bare_predict(m, rows, args.duration, args.repeats, "served") for rows in (1, 64)
            }
            for server_key, factory in lineup(m, key, workdir, args.workers):
                if only and server_key not in only:
                    continue
                server = factory()
                print(f"[{time.time() - started:5.0f}s] {key}: {server.name}", flush=True)
                entry = measure_alone(server, server_key, m, bodies, luas, args, workdir / f"{key}-{server_key}.log")
                results["servers"].setdefault(key, {})[server_key] = entry
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results["summary"] = summarize(results)
    results["elapsed_s"] = time.time() - started
    results["conditions"] = gate.conditions(
        packages=(*quiet.LIBRARIES, "uvicorn", "httptools", "uvloop", "orjson", "skops"),
        peers={
            "mlserver": MLSERVER_VENV / "bin" / "python",
            "kserve": KSERVE_VENV / "bin" / "python",
            "reference": REFERENCE_VENV / "bin" / "python",
        },
        peer_packages={
            "mlserver": ("mlserver", "mlserver-sklearn", "uvloop", "fastapi"),
            "kserve": ("kserve", "fastapi", "uvicorn"),
            "reference": ("starlette", "uvicorn", "httptools", "uvloop", "orjson"),
        },
    )
    args.out.write_text(json.dumps(results, indent=1, default=float) + "\n")
    print(json.dumps(results["summary"], indent=1))
    if not gate.valid:
        print(f"not valid (--force-busy): {args.out} written; make_table.py will refuse it", file=sys.stderr)
    return 0


def _ratio(a: float, b: float | None) -> float | None:
    return a / b if b else None  # a cell with no completed request (b == 0) has no ratio


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    """Per model and cell: ours ÷ minimal endpoint (req/s), ours ÷ bare predict (rows/s), ours ÷ best
    peer (req/s), p99s; and what collection at 100% costs."""
    summary: dict[str, Any] = {}
    for key, servers in results["servers"].items():
        if "ours" not in servers:
            continue
        bare = results["bare_predict"].get(key, {})
        served = results.get("served_predict", {}).get(key, {})
        for cell, ours_cell in servers["ours"]["cells"].items():
            peers = {p: servers[p]["cells"][cell] for p in PEERS if p in servers and cell in servers[p]["cells"]}
            best = max(peers, key=lambda p: peers[p]["req_per_s"], default=None)
            ref = servers.get("reference", {}).get("cells", {}).get(cell)
            rows = cell.split("x")[0]
            summary[f"{key}_{cell}"] = {
                "ours_req_per_s": ours_cell["req_per_s"],
                "ours_p99_ms": ours_cell["p99_ms"],
                "ratio_to_reference": _ratio(ours_cell["req_per_s"], ref["req_per_s"] if ref else None),
                "ratio_to_bare_predict_rows": _ratio(
                    ours_cell["rows_per_s"], bare[rows]["rows_per_s"] if rows in bare else None
                ),
                "ratio_to_served_predict_rows": _ratio(
                    ours_cell["rows_per_s"], served[rows]["rows_per_s"] if rows in served else None
                ),
                "best_peer": best,
                "ratio_to_best_peer": _ratio(ours_cell["req_per_s"], peers[best]["req_per_s"] if best else None),
                "best_peer_p99_ms": peers[best]["p99_ms"] if best else None,
                "ratio_to_peer": {p: _ratio(ours_cell["req_per_s"], c["req_per_s"]) for p, c in peers.items()},
            }
            collect = servers.get("ours_collect", {}).get("cells", {}).get(cell)
            if collect:
                kept = _ratio(collect["req_per_s"], ours_cell["req_per_s"])
                summary[f"{key}_{cell}"]["collection_cost"] = None if kept is None else 1 - kept
    return summary


if __name__ == "__main__":
    sys.exit(main())
