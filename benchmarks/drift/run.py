"""Side-by-side drift benchmark: our engine vs plain scipy, Evidently, NannyML and alibi-detect.

    .venv/bin/python benchmarks/drift/run.py            # writes results.json here (readme.py renders README.md)
    DRIFT_BENCH_TOOLS=ours,sort_bound DRIFT_BENCH_OUTPUT=results-ks-blocks.json .venv/bin/python benchmarks/drift/run.py
                                                        # our engine and the bound only, into another file

Peers run from separate venvs made by setup.sh: NannyML and Evidently from PEER_PYTHON (default
/var/tmp/drift-bench-venv/bin/python, on the same numpy as ours), alibi-detect from ALIBI_PYTHON
(default /var/tmp/drift-bench-alibi/bin/python: alibi-detect 0.13 pins numpy < 2). Our engine, plain
scipy and the sort bound run under this repository's venv. Every tool runs in its own subprocess per
size (peak RSS is that process's ru_maxrss, imports included) and repeats its check REPEATS times in
that process; we report the median. Each worker reports the numpy, scipy, scikit-learn, pandas and
pyarrow versions it ran on, and every tool's flags are recorded against the ground truth (DRIFTED).

Benchmark rules (benchmarks/quiet.py): refuses to start when the 1-minute load average is above 1.0
(`--force-busy` runs anyway and marks the results not valid; readme.py refuses them); records the
load before and after (also per worker) and the library versions.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE.parent))
import quiet  # noqa: E402

OUR_PYTHON = sys.executable
PEER_PYTHON = os.environ.get("PEER_PYTHON", "/var/tmp/drift-bench-venv/bin/python")
ALIBI_PYTHON = os.environ.get("ALIBI_PYTHON", "/var/tmp/drift-bench-alibi/bin/python")
DATA_DIR = Path(os.environ.get("DRIFT_BENCH_DATA", "/var/tmp/drift-bench-data"))
SIZES = [int(s) for s in os.environ.get("DRIFT_BENCH_SIZES", "10000,100000,1000000").split(",")]
REPEATS = 3
SEED = 20261128
NUMERIC, CATEGORICAL = 20, 5
DRIFTED = ["num_0", "num_1", "num_2", "num_3", "num_4", "num_5", "cat_0"]
OURS = ["ours", "ours_psi", "ours_wasserstein", "sort_bound", "scipy"]
PEERS = ["nannyml", "alibi", "evidently"]
TOOLS = os.environ.get("DRIFT_BENCH_TOOLS", ",".join(OURS + PEERS)).split(",")
OUTPUT = HERE / os.environ.get("DRIFT_BENCH_OUTPUT", "results.json")
SLOW_PEER_AT = {"evidently": 1_000_000}  # run once at this size: a 1M Evidently check takes about a minute


def generate(rows: int, seed: int = SEED) -> dict[str, np.ndarray]:
    """20 numeric features of mixed shapes and 5 categorical ones (10 skewed categories); drift in 7.

    Drift: num_0..num_2 normal mean +0.1 sd, num_3 lognormal mu +0.1, num_4 exponential scale x1.1,
    num_5 normal sd x1.1, cat_0 two categories trade 3 percentage points. Everything else is the same
    distribution on both sides.
    """
    rng = np.random.default_rng(seed)
    probabilities = np.array([0.3, 0.2, 0.12, 0.1, 0.08, 0.06, 0.05, 0.04, 0.03, 0.02])

    def side(drift: bool) -> tuple[np.ndarray, np.ndarray]:
        shift = 0.1 if drift else 0.0
        scale = 1.1 if drift else 1.0
        columns = [rng.normal(shift, 1, rows) for _ in range(3)]
        columns.append(rng.lognormal(shift, 1, rows))
        columns.append(rng.exponential(scale, rows))
        columns.append(rng.normal(0, scale, rows))
        for j in range(6, NUMERIC):
            kind = j % 4
            columns.append(
                [
                    rng.normal(j, 2, rows),
                    rng.lognormal(0, 0.5, rows),
                    rng.uniform(-1, 1, rows),
                    rng.standard_t(5, rows),
                ][kind]
            )
        cats = []
        for j in range(CATEGORICAL):
            p = probabilities.copy()
            if drift and j == 0:
                p[0] -= 0.03
                p[5] += 0.03
            cats.append(rng.choice(10, rows, p=p))
        return np.column_stack(columns), np.column_stack(cats).astype(np.int64)

    ref_num, ref_cat = side(False)
    cur_num, cur_cat = side(True)
    return {"ref_num": ref_num, "ref_cat": ref_cat, "cur_num": cur_num, "cur_cat": cur_cat}


def data_file(rows: int) -> Path:
    path = DATA_DIR / f"drift-{rows}-{SEED}.npz"
    if not path.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        np.savez(path, **generate(rows))
    return path


def run_worker(python: str, tool: str, path: Path, repeats: int) -> dict[str, Any]:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO / "operator"),
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "NML_DISABLE_USAGE_LOGGING": "1",  # NannyML's telemetry
    }
    started, load_before = time.perf_counter(), os.getloadavg()[0]
    done = subprocess.run(
        [python, str(HERE / "workers.py"), tool, str(path), str(repeats)],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
        check=False,
    )
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    out["median_seconds"] = float(np.median(out["seconds"]))
    out["wall_seconds"] = time.perf_counter() - started
    out["load_average"] = [load_before, os.getloadavg()[0]]  # 1-minute load before and after the worker
    return out


def python_for(tool: str) -> str:
    if tool in OURS:
        return OUR_PYTHON
    return ALIBI_PYTHON if tool == "alibi" else PEER_PYTHON


NUMERIC_ONLY = {"ours_psi", "ours_wasserstein"}  # scores numeric features only


def against_truth(flagged: list[str], numeric_only: bool = False) -> dict[str, list[str]]:
    truth = {f for f in DRIFTED if f.startswith("num_")} if numeric_only else set(DRIFTED)
    return {
        "true_positives": sorted(truth & set(flagged)),
        "false_positives": sorted(set(flagged) - truth),
        "missed": sorted(truth - set(flagged)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUTPUT, help="results file (default: DRIFT_BENCH_OUTPUT)")
    quiet.add_arguments(parser)
    args = parser.parse_args()
    gate = quiet.Gate.enter(args.force_busy, "drift")
    results: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "seed": SEED,
        "repeats": REPEATS,
        "drifted_truth": DRIFTED,
        "sizes": {},
    }
    for rows in SIZES:
        path = data_file(rows)
        size: dict[str, Any] = {}
        for tool in TOOLS:
            repeats = 1 if rows >= SLOW_PEER_AT.get(tool, 1 << 62) else REPEATS
            size[tool] = run_worker(python_for(tool), tool, path, repeats)
            if "flagged" in size[tool]:
                size[tool]["against_truth"] = against_truth(size[tool]["flagged"], tool in NUMERIC_ONLY)
            shown = size[tool].get("median_seconds", size[tool].get("error"))
            print(f"{rows:>9} {tool:<17} {shown}", flush=True)
        results["sizes"][str(rows)] = size
    results["conditions"] = gate.conditions(
        peers={"nannyml+evidently": PEER_PYTHON, "alibi-detect": ALIBI_PYTHON},
        peer_packages={"nannyml+evidently": ("nannyml", "evidently"), "alibi-detect": ("alibi-detect",)},
    )
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    if not gate.valid:
        print(f"not valid (--force-busy): {args.out} written; readme.py will refuse it", file=sys.stderr)


if __name__ == "__main__":
    main()
