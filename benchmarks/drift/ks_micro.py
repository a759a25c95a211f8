"""KS micro-benchmark: the statistic on 1M float64 per side against the "sort both sets" bound.

    .venv/bin/python benchmarks/drift/ks_micro.py [--rows 1000000] [--rounds 7] [--json out.json]

One process, one feature at a time, four realistic shapes (normal with a mean shift, lognormal, values
rounded to two decimals so ties are everywhere, normal with 1% NaN in the current window that
`finite_sorted` drops). Every round times each variant once, in a rotating order, so the load of a
shared machine falls on all of them alike; the table shows medians over rounds and ratios to the bound
of the same rounds, both for wall time and for this process's CPU time (less sensitive to waiting for
a core on a loaded machine). The load average is printed before and after.

Variants (the reference is sorted beforehand, as the profile workload does it; never timed):
- bound: `np.sort` of the raw reference and current columns (one feature of benchmarks/drift's bound);
- ks: `stats.ks(reference, stats.finite_sorted(current))`, what the drift check runs per feature;
- sort current: `stats.finite_sorted(current)` alone (the one sort a check cannot avoid);
- statistic: `stats.ks_statistic_sorted` alone, on the sorted current column;
- previous statistic: the implementation before block bounds (a stable argsort merge of the whole
  current sample into the reference, then tie bookkeeping over every current value), kept here for
  comparison;
- two searchsorted: `searchsorted(ref, cur, "right")` and `searchsorted(cur, ref, "right")`, the
  textbook exact form (idea: numpy keeps the last bound for sorted keys);
- argsort merge: the stable argsort of the two concatenated sorted runs alone (the previous statistic's
  first step: a linear merge, but about as costly as sorting both sets);
- values merge: `np.sort(concatenate, kind="stable")` without indices (a merge that keeps no sides:
  the statistic cannot be read from it, timed to show what skipping the indices would save).
Every statistic variant is checked to give the same D before timing.

Benchmark rules (benchmarks/quiet.py): refuses to start when the 1-minute load average is above 1.0
(`--force-busy` runs anyway and marks the JSON not valid; readme.py then leaves it out); records the
load before and after and the library versions.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mlops_operator.drift import stats
from mlops_operator.drift.stats import FloatArray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import quiet

SEED = 20261128


def shapes(rows: int) -> dict[str, tuple[FloatArray, FloatArray]]:
    rng = np.random.default_rng(SEED)
    with_nan = rng.normal(0.05, 1, rows)
    with_nan[rng.random(rows) < 0.01] = np.nan
    return {
        "normal": (rng.normal(0, 1, rows), rng.normal(0.1, 1, rows)),
        "lognormal": (rng.lognormal(0, 1, rows), rng.lognormal(0.05, 1, rows)),
        "ties (2 decimals)": (np.round(rng.normal(0, 1, rows), 2), np.round(rng.normal(0.02, 1, rows), 2)),
        "NaN removed": (rng.normal(0, 1, rows), with_nan),
    }


def previous_statistic(reference: FloatArray, current: FloatArray) -> float:
    """ks_statistic_sorted as it was before block bounds: merge everything, then scan every count."""
    n1, n2 = reference.size, current.size
    index = np.arange(n2, dtype=np.int64)
    order = np.argsort(np.concatenate((reference, current)), kind="stable")
    ref_at_or_below = np.flatnonzero(order >= n1) - index
    run_starts = np.empty(n2, dtype=bool)
    run_starts[0] = True
    np.not_equal(current[1:], current[:-1], out=run_starts[1:])
    cur_below = index if run_starts.all() else np.maximum.accumulate(np.where(run_starts, index, 0))
    previous_ref = reference[np.maximum(ref_at_or_below - 1, 0)]
    tied = (ref_at_or_below > 0) & (previous_ref == current)
    ref_below = ref_at_or_below
    if tied.any():
        ref_below = ref_at_or_below.copy()
        ref_below[tied] = np.searchsorted(reference, current[tied], side="left")
    cur_minus_ref = (index + 1) * n1 - ref_at_or_below * n2
    ref_minus_cur = ref_below * n2 - cur_below * n1
    i_minus, i_plus = int(np.argmax(cur_minus_ref)), int(np.argmax(ref_minus_cur))
    d_minus = min(max(-(int(ref_at_or_below[i_minus]) / n1 - int(index[i_minus] + 1) / n2), 0.0), 1.0)
    d_plus = max(int(ref_below[i_plus]) / n1 - int(cur_below[i_plus]) / n2, 0.0)
    return d_minus if d_minus > d_plus else d_plus


def two_searchsorted(reference: FloatArray, current: FloatArray) -> float:
    """max |F_ref - F_cur| at every point of both samples, each side counted with side="right"."""
    n1, n2 = reference.size, current.size
    at_current = np.arange(1, n2 + 1, dtype=np.int64) * n1 - np.searchsorted(reference, current, "right") * n2
    at_reference = np.arange(1, n1 + 1, dtype=np.int64) * n2 - np.searchsorted(current, reference, "right") * n1
    return max(int(at_current.max()), int(at_reference.max())) / (n1 * n2)


def variants(
    ref_raw: FloatArray, ref: FloatArray, cur_raw: FloatArray, cur: FloatArray
) -> dict[str, Callable[[], object]]:
    return {
        "bound": lambda: (np.sort(ref_raw), np.sort(cur_raw)),
        "ks": lambda: stats.ks(ref, stats.finite_sorted(cur_raw)),
        "sort current": lambda: stats.finite_sorted(cur_raw),
        "statistic": lambda: stats.ks_statistic_sorted(ref, cur),
        "previous statistic": lambda: previous_statistic(ref, cur),
        "two searchsorted": lambda: two_searchsorted(ref, cur),
        "argsort merge": lambda: np.argsort(np.concatenate((ref, cur)), kind="stable"),
        "values merge": lambda: np.sort(np.concatenate((ref, cur)), kind="stable"),
    }


def measure(ref_raw: FloatArray, cur_raw: FloatArray, rounds: int) -> dict[str, Any]:
    ref, cur = stats.finite_sorted(ref_raw), stats.finite_sorted(cur_raw)
    d = stats.ks_statistic_sorted(ref, cur)
    assert d == previous_statistic(ref, cur), "the rewrite changed the statistic"
    assert abs(d - two_searchsorted(ref, cur)) <= 1e-15, "the statistic disagrees with the textbook form"
    runs = variants(ref_raw, ref, cur_raw, cur)
    names = list(runs)
    wall: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            wall_start, cpu_start = time.perf_counter(), time.process_time()
            runs[name]()
            cpu[name].append(time.process_time() - cpu_start)
            wall[name].append(time.perf_counter() - wall_start)
    return {
        "d": d,
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "median_wall_seconds": {name: float(np.median(s)) for name, s in wall.items()},
        "median_cpu_seconds": {name: float(np.median(s)) for name, s in cpu.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", type=Path, default=None, help="also write the raw timings here")
    quiet.add_arguments(parser)
    args = parser.parse_args(argv)
    gate = quiet.Gate.enter(args.force_busy, "drift/ks_micro")
    load_before = gate.load_before
    print(f"rows per side: {args.rows:,}; rounds: {args.rounds}; load average before: {load_before[0]:.2f}")
    results: dict[str, Any] = {"rows": args.rows, "rounds": args.rounds, "load_before": load_before, "shapes": {}}
    for shape, (ref_raw, cur_raw) in shapes(args.rows).items():
        out = measure(ref_raw, cur_raw, args.rounds)
        results["shapes"][shape] = out
        wall, cpu = out["median_wall_seconds"], out["median_cpu_seconds"]
        print(f"\n{shape} (D = {out['d']:.6f})          wall     / bound      CPU     / bound")
        for name in wall:
            print(
                f"  {name:<20} {wall[name] * 1e3:7.1f} ms {wall[name] / wall['bound']:6.2f}x "
                f"{cpu[name] * 1e3:8.1f} ms {cpu[name] / cpu['bound']:6.2f}x"
            )
    results["conditions"] = gate.conditions()
    results["load_after"] = results["conditions"]["load_after"]
    print(f"\nload average after: {results['load_after'][0]:.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
