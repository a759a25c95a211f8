"""Incremental refresh: a partitioned source where one partition is new, against that partition alone.

    .venv/bin/python benchmarks/training/bench_refresh.py [--rows 1000000] [--partitions 30] [--repeats 3]

The source is `--partitions` daily Hive partitions (`date=2026-10-01/part-0.csv`, ...) of `--rows` rows
in all (the columns of bench_profile_train.py: 20 numeric with 1% missing, 5 text, a binary target),
profiled once with `window: {lastPartitions: N}`. Then, alternating, `--repeats` times:

(a) listing + profiling one partition alone: a source prefix holding only the new partition's file,
    profiled into an empty store (nothing cached);
(b) the refresh: the new partition (newer date) lands in the source, and the Dataset's profile runs
    with the current version's listing fingerprint, as the operator's plan carries it. The window
    slides: the new partition comes in, the oldest goes out. Each repeat writes a new file for the
    new partition, so every (b) parses exactly one new file and reuses the others' parts.

Both run `profile` in this process (no interpreter start-up in either), so the ratio b / a is the
cost of everything a refresh does beyond the new partition: listing the prefix, reading the parts'
summaries, row hashes and sample prefixes, the merge, the 200 000-value reference sample and the
version's files. Target (issue 11): b / a <= 1.3 in wall time; the CPU-time ratio is printed too (it
moves less with the machine's load).

Benchmark rules (benchmarks/quiet.py): refuses to start when the 1-minute load average is above 1.0
(`--force-busy` runs anyway and marks the numbers not valid). It prints its results; `--output PATH`
also writes them as JSON, which it refuses to do for a run that is not valid.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from bench_profile_train import LEVELS, NUMERIC, feature_frame  # noqa: E402  (this folder: sys.path[0])

import quiet  # noqa: E402
from mlops_operator.api.plans import ProfilePlan  # noqa: E402
from mlops_operator.api.results import ProfileResult  # noqa: E402
from mlops_operator.workloads import profile  # noqa: E402

TMP = HERE / "tmp" / "refresh"  # gitignored
FIRST_DAY = date(2026, 10, 1)
TARGET_RATIO = 1.3


def partition_frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = feature_frame(rng, rows)
    frame["target"] = (np.nan_to_num(frame["num_00"]) + rng.logistic(size=rows) > 0).astype(int)
    return frame


def write_partition(root: Path, day: date, rows: int, seed: int) -> Path:
    directory = root / f"date={day.isoformat()}"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "part-0.csv"
    partial = directory / ".part-0.csv.partial"  # hidden: never listed half-written
    partition_frame(rows, seed).to_csv(partial, index=False, float_format="%.6f")
    partial.rename(path)
    return path


def plan(source: Path, store: Path, partitions: int, current: ProfileResult | None = None) -> ProfilePlan:
    return ProfilePlan.model_validate({
        "namespace": "bench",
        "dataset": "events",
        "storeUri": store.as_uri(),
        "spec": {
            "source": {"uri": source.as_uri() + "/", "window": {"lastPartitions": partitions}},
            "schema": {"target": "target"},
            "quality": {"maxMissingFraction": 0.05},
        },
        "currentVersion": current.version if current else None,
        "currentListingFingerprint": current.listing_fingerprint if current else None,
    })


def timed(work: Any) -> tuple[float, float, Any]:
    """Wall seconds, CPU seconds of this process, and the result."""
    started, cpu = time.perf_counter(), time.process_time()
    result = work()
    return time.perf_counter() - started, time.process_time() - cpu, result


def run(args: argparse.Namespace) -> dict[str, Any]:
    shutil.rmtree(TMP, ignore_errors=True)
    source, store, alone = TMP / "source", TMP / "store", TMP / "alone"
    per_partition = args.rows // args.partitions
    for i in range(args.partitions):
        write_partition(source, FIRST_DAY + timedelta(days=i), per_partition, seed=i)
    initial_seconds, _, current = timed(lambda: profile.profile(plan(source, store, args.partitions)))
    print(f"initial profile of {args.partitions} partitions: {initial_seconds:.2f} s", file=sys.stderr)
    runs: dict[str, list[tuple[float, float]]] = {"alone": [], "refresh": []}
    for repeat in range(args.repeats):
        day = FIRST_DAY + timedelta(days=args.partitions)
        new = write_partition(source, day, per_partition, seed=1000 + repeat)
        shutil.rmtree(alone, ignore_errors=True)
        (alone / "source" / new.parent.name).mkdir(parents=True)
        shutil.copyfile(new, alone / "source" / new.parent.name / new.name)
        wall, cpu, _ = timed(lambda: profile.profile(plan(alone / "source", alone / "store", 1)))
        runs["alone"].append((wall, cpu))
        wall, cpu, result = timed(lambda: profile.profile(plan(source, store, args.partitions, current)))
        assert result.lineage is not None and result.lineage.source_files == args.partitions, result
        runs["refresh"].append((wall, cpu))
        print(f"repeat {repeat + 1}: alone {runs['alone'][-1][0]:.3f} s ({runs['alone'][-1][1]:.3f} s CPU), "
              f"refresh {wall:.3f} s ({cpu:.3f} s CPU)", file=sys.stderr)
    median = {f"{k}_{m}": statistics.median(r[i] for r in runs[k]) for k in runs for i, m in enumerate(("wall", "cpu"))}
    return {
        "rows": per_partition * args.partitions,
        "partitions": args.partitions,
        "rows_per_partition": per_partition,
        "columns": {"numeric": NUMERIC, "categorical": len(LEVELS), "target": 1},
        "initial_profile_seconds": round(initial_seconds, 3),
        "runs": {k: [{"wall": round(w, 3), "cpu": round(c, 3)} for w, c in v] for k, v in runs.items()},
        "median_seconds": {k: round(v, 3) for k, v in median.items()},
        "ratio_refresh_to_alone": round(median["refresh_wall"] / median["alone_wall"], 2),
        "cpu_ratio_refresh_to_alone": round(median["refresh_cpu"] / median["alone_cpu"], 2),
        "target_ratio": TARGET_RATIO,
        "met": median["refresh_wall"] / median["alone_wall"] <= TARGET_RATIO,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, help="also write the results here as JSON (valid runs only)")
    quiet.add_arguments(parser)
    args = parser.parse_args()
    gate = quiet.Gate.enter(args.force_busy, "refresh")
    results = run(args)
    gate.publish(results, args.output)
    print(f"refresh / alone = {results['ratio_refresh_to_alone']:.2f} in wall time, "
          f"{results['cpu_ratio_refresh_to_alone']:.2f} in CPU time (target <= {TARGET_RATIO})", file=sys.stderr)


if __name__ == "__main__":
    main()
