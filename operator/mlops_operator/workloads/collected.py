"""Where the collected predictions and the labels lie in the store, and their timestamps.

Collected rows: `<collected>/date=YYYY-MM-DD/hour=HH/*.parquet` (workloads/serve/collector.py); labels:
`<labels>/date=YYYY-MM-DD/*.parquet` (contracts.labels_prefix). Dot-files are writes in progress.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlops_operator import store
from mlops_operator.workloads import common

MICROS_PER_UNIT: Final = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": 1e-3}


def utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def micros(moment: datetime) -> float:
    return utc(moment).timestamp() * 1e6


def partition_uris(prefix: str, start: datetime, end: datetime) -> Iterator[str]:
    """The hour partitions that can hold rows of [start, end)."""
    hour = utc(start).replace(minute=0, second=0, microsecond=0)
    end = utc(end)
    while hour < end:
        yield store.join(prefix, f"date={hour:%Y-%m-%d}", f"hour={hour:%H}")
        hour += timedelta(hours=1)


def day_partition_uris(prefix: str, start: datetime, end: datetime) -> Iterator[str]:
    """The day partitions that can hold rows of [start, end)."""
    day = utc(start).replace(hour=0, minute=0, second=0, microsecond=0)
    end = utc(end)
    while day < end:
        yield store.join(prefix, f"date={day:%Y-%m-%d}")
        day += timedelta(days=1)


def parquet_files(partitions: Iterator[str]) -> list[str]:
    files: list[str] = []
    for partition in partitions:
        files += [
            uri for uri in store.list_prefix(partition)
            if uri.endswith(".parquet") and not uri.rsplit("/", 1)[-1].startswith(".")
        ]
    return files


def micros_since_epoch(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A timestamp column as float microseconds since the epoch (naive timestamps are UTC; numbers are
    epoch seconds); nulls are NaN."""
    if pa.types.is_timestamp(column.type):
        unit = column.type.unit
        raw = pc.cast(pc.cast(column, pa.timestamp(unit)), pa.int64()).to_numpy(zero_copy_only=False)
        values = np.asarray(raw, dtype=np.float64) * MICROS_PER_UNIT[unit]
    elif pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        values = np.asarray(pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64) * 1e6
    else:
        raise common.DataError("SchemaMismatch", f"the timestamp column has type {column.type}")
    if column.null_count:
        values[np.asarray(pc.is_null(column).to_numpy(zero_copy_only=False), dtype=bool)] = np.nan
    return values


__all__ = [
    "MICROS_PER_UNIT",
    "day_partition_uris",
    "micros",
    "micros_since_epoch",
    "parquet_files",
    "partition_uris",
    "utc",
]
