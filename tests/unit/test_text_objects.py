"""Text columns read from Arrow (data.parse_table, as train reads its snapshot): str objects with NaN
for missing; a value repeated over rows is one shared object, a mostly distinct column is converted
as before."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mlops_operator.api.v1alpha1.dataset import DataFormat
from mlops_operator.workloads import data


def _parquet(columns: dict[str, list[object]]) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.table(columns), buffer)
    return buffer.getvalue()


def test_repeated_text_becomes_shared_str_objects_with_nan_for_missing() -> None:
    colours = ["red", None, "blue", "red", "blue", "red"]
    frame = data.parse_table(_parquet({"colour": colours, "x": [1.0] * 6}), DataFormat.PARQUET, "t")

    objects = frame["colour"]
    assert objects.dtype == object
    assert [objects.iloc[i] for i in (0, 2, 3, 4, 5)] == ["red", "blue", "red", "blue", "red"]
    assert isinstance(objects.iloc[1], float) and np.isnan(objects.iloc[1])
    # One str object per distinct value: the imputer's and encoder's hashing then hits the cached hash.
    assert objects.iloc[0] is objects.iloc[3] is objects.iloc[5] and objects.iloc[2] is objects.iloc[4]
    assert frame.attrs[data.DISTINCT_ATTR] == {"colour": 2}


def test_mostly_distinct_text_and_text_without_missing_values() -> None:
    frame = data.parse_table(
        _parquet({"id": ["a1", "b2", None, "c3"], "level": ["low", "high", "low", "low"]}), DataFormat.PARQUET, "t"
    )
    assert frame["id"].dtype == object and frame["level"].dtype == object
    assert frame["id"].iloc[[0, 1, 3]].tolist() == ["a1", "b2", "c3"] and np.isnan(frame["id"].iloc[2])
    assert frame["level"].tolist() == ["low", "high", "low", "low"]
