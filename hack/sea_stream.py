"""The SEA concept-drift stream (Street & Kim, "A Streaming Ensemble Algorithm (SEA) for Large-Scale
Classification", KDD 2001), as river ships it (`river.datasets.synth.SEA`), cut into daily Hive
partitions of Parquet for a prefix Dataset.

Three attributes uniform on [0, 10); the class is 1 when att1 + att2 is above the concept's threshold
(variant 0: 8, 1: 9, 2: 7, 3: 9.5); att3 is irrelevant; `noise` of the labels are flipped (the paper
used 10 %). A concept drift changes the threshold: the inputs keep their distribution (no input
drift), only the relation to the label moves, so only labelled predictions can show it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
from river.datasets import synth

FEATURES = ("x1", "x2", "x3")
TARGET = "target"
NOISE = 0.1  # Street & Kim's class noise
THRESHOLDS = {0: 8.0, 1: 9.0, 2: 7.0, 3: 9.5}


@dataclass(frozen=True)
class Rows:
    x: list[list[float]]
    y: list[int]


def draw(variant: int, n: int, seed: int) -> Rows:
    """n rows of the SEA concept `variant` (river's generator: the paper's definition, with noise)."""
    x, y = [], []
    for features, label in synth.SEA(variant=variant, noise=NOISE, seed=seed).take(n):
        x.append([float(features[i]) for i in range(len(FEATURES))])
        y.append(int(label))
    return Rows(x, y)


def partition(rows: Rows) -> bytes:
    """One Parquet file: the features and the target."""
    columns = {name: [r[i] for r in rows.x] for i, name in enumerate(FEATURES)}
    table = pa.table({**columns, TARGET: pa.array(rows.y, pa.int64())})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def days(variant: int, first: date, count: int, rows_per_day: int) -> dict[str, bytes]:
    """`date=YYYY-MM-DD/part-0.parquet` -> bytes, one partition per day, each its own seed."""
    out = {}
    for i in range(count):
        day = first + timedelta(days=i)
        out[f"date={day.isoformat()}/part-0.parquet"] = partition(draw(variant, rows_per_day, seed=day.toordinal()))
    return out
