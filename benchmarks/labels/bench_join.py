"""Live quality's label join: 1M collected predictions with 1M delayed labels, against a pandas merge.

    .venv/bin/python benchmarks/labels/bench_join.py [--rows 1000000] [--repeats 3]

The data is written by the model server's own writers, with a fake clock:
- the collected rows by workloads/serve/collector.Collector (requests of `--batch` rows, so the ids are
  "<request id>:<i>" as the server makes them; a Parquet part every 10,000 rows, the server's
  default, in hour partitions; a binary classifier's prediction and probability, four features);
- the labels by workloads/serve/feedback.LabelWriter (feedback requests of 1,000 labels as text, the
  endpoint's encoding; a part every 10 requests, under contracts.labels_prefix), one label for every
  prediction, arriving after all of them in a shuffled order.

Two comparisons, each alternating the two sides `--repeats` times (medians reported):

- **in memory** (the headline; issue 11's target, <= 2x): neither side reads. Ours is
  live_quality.score() on what live_quality.read() returned: ids to shared integer codes, labels and
  predictions to class codes, the latest label and prediction per id, the sort-merge join with its
  late/unknown/duplicate counts, and every classification metric (accuracy, precision, recall, F1,
  ROC AUC). Theirs is `pandas.merge(predictions, labels, on=id)` of the same columns as DataFrames,
  and nothing else (no dedup, no counts, no metric).
- **with reading**: both read the same Parquet files from the store. Ours is live_quality.assess()
  (read + score, as the drift Job runs it); theirs reads the same files and columns with pyarrow,
  converts them to pandas, and merges.

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
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import quiet  # noqa: E402  (benchmarks/: sys.path[0])
from mlops_operator import contracts  # noqa: E402
from mlops_operator.api.plans import LiveQualityPlan  # noqa: E402
from mlops_operator.api.v1alpha1.model import Metric, Task  # noqa: E402
from mlops_operator.workloads import collected, live_quality  # noqa: E402
from mlops_operator.workloads.serve.collector import Collector, CollectorSettings  # noqa: E402
from mlops_operator.workloads.serve.feedback import LabelSettings, LabelWriter  # noqa: E402
from mlops_operator.workloads.serve.model import Batch, Feature  # noqa: E402

TMP = HERE / "tmp"  # gitignored
NAMESPACE, MODEL = "bench", "churn"
START = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)
FEATURES = [Feature(f"x{i}", categorical=False) for i in range(4)]
LABELS_PER_REQUEST, REQUESTS_PER_LABEL_PART = 1_000, 10
TARGET_RATIO = 2.0
PREDICTION_COLUMNS = (contracts.COLLECT_ID_COLUMN, contracts.COLLECT_TIME_COLUMN,
                      contracts.COLLECT_PREDICTION_COLUMN, contracts.COLLECT_PROBABILITY_COLUMN)
LABEL_COLUMNS = (contracts.LABEL_ID_COLUMN, contracts.LABEL_VALUE_COLUMN, contracts.LABEL_TIME_COLUMN)


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start.timestamp()

    def __call__(self) -> float:
        return self.now


def write_predictions(root: str, rows: int, batch: int, rng: np.random.Generator) -> tuple[list[str], np.ndarray]:
    """`rows` collected rows over 20 hours, as the server collects them; their ids and true classes."""
    clock = Clock(START)
    collector = Collector(
        CollectorSettings(uri=contracts.collected_prefix(root, NAMESPACE, MODEL), max_buffer_rows=rows + batch),
        FEATURES, "1", clock=clock,
    )
    step = 20 * 3600 / (rows // batch)
    ids: list[str] = []
    truth = np.empty(rows, dtype=np.int64)
    for request in range(rows // batch):
        matrix = rng.normal(size=(batch, len(FEATURES)))
        probability = 1 / (1 + np.exp(-2 * matrix[:, 0]))
        predicted = (probability > 0.5).astype(np.int64)
        at = request * batch
        truth[at : at + batch] = (rng.random(batch) < probability).astype(np.int64)  # a noisy truth
        request_id = f"{request:08x}-req"
        collector.offer(Batch(rows=batch, matrix=matrix), predicted, request_id,
                        proba=np.column_stack([1 - probability, probability]))
        ids += [f"{request_id}:{i}" for i in range(batch)]
        clock.now += step
        if (request + 1) * batch % 10_000 == 0:
            collector.flush()
    collector.flush()
    return ids, truth


def write_labels(root: str, ids: list[str], truth: np.ndarray, rng: np.random.Generator) -> None:
    """One label per prediction, as the feedback endpoint writes them, after the predictions."""
    clock = Clock(START + timedelta(hours=21))
    writer = LabelWriter(LabelSettings(uri=contracts.labels_prefix(root, NAMESPACE, MODEL),
                                       max_buffer_bytes=1 << 30), clock=clock)
    order = rng.permutation(len(ids))
    for request, at in enumerate(range(0, len(ids), LABELS_PER_REQUEST)):
        writer.offer([(ids[i], str(truth[i])) for i in order[at : at + LABELS_PER_REQUEST]])
        clock.now += 1.0
        if (request + 1) % REQUESTS_PER_LABEL_PART == 0:
            writer.flush()
    writer.flush()


def plan(root: str) -> LiveQualityPlan:
    return LiveQualityPlan(labels_prefix=contracts.labels_prefix(root, NAMESPACE, MODEL), window_start=START,
                           task=Task.CLASSIFICATION, metric=Metric.ACCURACY)


END = START + timedelta(hours=23)
CLASSES = ["0", "1"]


def files(prefix: str, days: bool) -> list[str]:
    partitions = collected.day_partition_uris if days else collected.partition_uris
    return collected.parquet_files(partitions(prefix, START, END))


def pandas_tables(root: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The same files and columns as live quality reads, as two DataFrames."""
    def read(uris: list[str], columns: tuple[str, ...]) -> pd.DataFrame:
        tables = [pq.read_table(uri.removeprefix("file://"), columns=list(columns)) for uri in uris]
        return pa.concat_tables(tables).to_pandas()

    predictions = read(files(contracts.collected_prefix(root, NAMESPACE, MODEL), days=False), PREDICTION_COLUMNS)
    labels = read(files(contracts.labels_prefix(root, NAMESPACE, MODEL), days=True), LABEL_COLUMNS)
    return predictions, labels


def pandas_merge(predictions: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    return pd.merge(predictions, labels, left_on=contracts.COLLECT_ID_COLUMN, right_on=contracts.LABEL_ID_COLUMN)


def timed(work: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall seconds, CPU seconds of this process, and the result."""
    started, cpu = time.perf_counter(), time.process_time()
    result = work()
    return time.perf_counter() - started, time.process_time() - cpu, result


def compare(ours: Callable[[], Any], theirs: Callable[[], Any], repeats: int, label: str) -> dict[str, Any]:
    runs: dict[str, list[tuple[float, float]]] = {"ours": [], "pandas": []}
    for repeat in range(repeats):
        for side, work in (("pandas", theirs), ("ours", ours)):
            wall, cpu, _ = timed(work)
            runs[side].append((wall, cpu))
        print(f"{label} repeat {repeat + 1}: ours {runs['ours'][-1][0]:.3f} s ({runs['ours'][-1][1]:.3f} s CPU), "
              f"pandas {runs['pandas'][-1][0]:.3f} s ({runs['pandas'][-1][1]:.3f} s CPU)", file=sys.stderr)
    median = {f"{k}_{m}": statistics.median(r[i] for r in runs[k]) for k in runs for i, m in enumerate(("wall", "cpu"))}
    return {
        "runs": {k: [{"wall": round(w, 3), "cpu": round(c, 3)} for w, c in v] for k, v in runs.items()},
        "median_seconds": {k: round(v, 3) for k, v in median.items()},
        "ratio": round(median["ours_wall"] / median["pandas_wall"], 2),
        "cpu_ratio": round(median["ours_cpu"] / median["pandas_cpu"], 2),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    shutil.rmtree(TMP, ignore_errors=True)
    root = (TMP / "store").as_uri()
    rng = np.random.default_rng(11)
    ids, truth = write_predictions(root, args.rows, args.batch, rng)
    write_labels(root, ids, truth, rng)
    prefix = contracts.collected_prefix(root, NAMESPACE, MODEL)
    inputs = live_quality.read(plan(root), prefix, END)
    predictions, labels = pandas_tables(root)
    check = live_quality.score(inputs, Task.CLASSIFICATION, Metric.ACCURACY, CLASSES)
    merged = pandas_merge(predictions, labels)
    assert check.labelled == len(merged) == args.rows and check.unknown == 0, (check, len(merged))
    predicted = merged[contracts.COLLECT_PREDICTION_COLUMN].astype(str)
    expected = float(np.mean(predicted == merged[contracts.LABEL_VALUE_COLUMN]))
    assert abs((check.value or 0) - expected) < 1e-12, (check.value, expected)
    in_memory = compare(lambda: live_quality.score(inputs, Task.CLASSIFICATION, Metric.ACCURACY, CLASSES),
                        lambda: pandas_merge(predictions, labels), args.repeats, "in memory")
    with_reading = compare(lambda: live_quality.assess(plan(root), prefix, END, CLASSES),
                           lambda: pandas_merge(*pandas_tables(root)), args.repeats, "with reading")
    return {
        "rows": args.rows,
        "labels": len(ids),
        "request_rows": args.batch,
        "files": {"collected": len(files(prefix, days=False)),
                  "labels": len(files(contracts.labels_prefix(root, NAMESPACE, MODEL), days=True))},
        "accuracy": check.value,
        "in_memory": in_memory,
        "with_reading": with_reading,
        "target_ratio": TARGET_RATIO,
        "met": in_memory["ratio"] <= TARGET_RATIO,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=100, help="rows per prediction request")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, help="also write the results here as JSON (valid runs only)")
    quiet.add_arguments(parser)
    args = parser.parse_args()
    gate = quiet.Gate.enter(args.force_busy, "labels-join")
    results = run(args)
    gate.publish(results, args.output)
    for name in ("in_memory", "with_reading"):
        print(f"{name}: ours / pandas = {results[name]['ratio']:.2f} in wall time, {results[name]['cpu_ratio']:.2f} "
              f"in CPU time (target <= {TARGET_RATIO})", file=sys.stderr)


if __name__ == "__main__":
    main()
