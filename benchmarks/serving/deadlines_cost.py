"""What the server's read deadlines cost: paired A/B, same app, with and without them.

`serve/deadlines.py` wraps uvicorn's httptools protocol to time header and body reads (two timers
per request). This runs the same ServeApp under both protocol classes in separate processes and
alternates short wrk runs (LogisticRegression, 20 features, 1 row, concurrency 16), so drift in
the machine's load hits both sides alike. Writes deadlines_cost.json; the ratio is deadlines ÷ plain.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import fit_models, free_port, lua_script, quiet, v2_body, wrk

HERE = Path(__file__).resolve().parent
PAIRS, SECONDS = 8, 4
SERVER = """
import sys, uvicorn
from mlops_operator.workloads.serve import options as o, runner
from mlops_operator.workloads.serve.artifact import load_verified_model
from mlops_operator.workloads.serve.model import ServedModel
opts = o.parse(sys.argv[2:])
model = ServedModel(opts.model_name, opts.model_version, load_verified_model(opts.artifact_uri, opts.sha256))
config = runner.uvicorn_config(runner.build_app(opts, model), opts)
if sys.argv[1] == "plain":
    config.http = "httptools"  # uvicorn's own protocol class, no deadlines
config.host, config.port = opts.host, opts.port
uvicorn.Server(config).run()
"""


def start(kind: str, model: dict[str, object], port: int) -> subprocess.Popen[bytes]:
    directory = Path(str(model["dir"]))
    args = ["--model-name", "lr", "--model-version", "1", "--artifact-uri", (directory / "model.skops").as_uri()]
    args += ["--sha256", str(model["sha256"]), "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    proc = subprocess.Popen([sys.executable, "-c", SERVER, kind, *args])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{kind} server did not start")


def main() -> int:
    parser = argparse.ArgumentParser(description="read deadlines vs uvicorn's plain protocol, paired A/B")
    parser.add_argument("--out", type=Path, default=HERE / "deadlines_cost.json")
    quiet.add_arguments(parser)
    args = parser.parse_args()
    gate = quiet.Gate.enter(args.force_busy, "serving/deadlines_cost")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        lr = fit_models(work)["lr"]
        lua = lua_script(work / "one-row.lua", v2_body(lr["X"], 1))  # type: ignore[arg-type]
        ports = {"deadlines": free_port(), "plain": free_port()}
        procs = {kind: start(kind, lr, port) for kind, port in ports.items()}
        try:
            url = {k: f"http://127.0.0.1:{p}/v2/models/lr/infer" for k, p in ports.items()}
            for kind in ports:
                wrk(url[kind], lua, 16, 1)  # warm-up
            pairs = []
            for i in range(PAIRS):
                order = ["deadlines", "plain"] if i % 2 == 0 else ["plain", "deadlines"]
                got = {k: wrk(url[k], lua, 16, SECONDS)["req_per_s"] for k in order}
                pairs.append(got)
                print(f"pair {i + 1}/{PAIRS}: deadlines {got['deadlines']:.0f} req/s, plain {got['plain']:.0f} req/s")
        finally:
            for proc in procs.values():
                proc.kill()
                proc.wait()
    ratios = [p["deadlines"] / p["plain"] for p in pairs]
    result = {
        "what": "LogisticRegression 20 features, 1 row, concurrency 16, V2 REST, wrk; paired runs alternating order",
        "pairs": pairs,
        "ratio_median": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
        "conditions": gate.conditions(packages=(*quiet.LIBRARIES, "uvicorn", "httptools", "uvloop")),
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    spread = f"min {min(ratios):.3f}, max {max(ratios):.3f}"
    print(f"deadlines ÷ plain throughput: median {result['ratio_median']:.3f} ({spread})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
