"""Labelled production rows (workloads/production_rows.py): the join, the schema check, the dedup
against the snapshot, the cap and the `new` count, on in-memory tables (no store)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from mlops_operator.api.plans import ProductionRowsPlan
from mlops_operator.api.v1alpha1.dataset import FeatureType
from mlops_operator.api.v1alpha1.model import Task
from mlops_operator.workloads import collected, data, live_quality
from mlops_operator.workloads import production_rows as pr

START = datetime(2026, 11, 1, tzinfo=UTC)
END = START + timedelta(days=7)


def _plan(**fields: object) -> ProductionRowsPlan:
    values: dict[str, object] = {
        "collected_prefix": "file:///c",
        "labels_prefix": "file:///l",
        "window_start": START,
        "window_end": END,
        "max_rows": 1000,
        **fields,
    }
    return ProductionRowsPlan.model_validate(values)


def _at(hours: float) -> float:
    return collected.micros(START + timedelta(hours=hours))


def _collected(
    ids: list[str], x0: list[object], c0: list[object], hours: list[float], fits: bool = True
) -> pd.DataFrame:
    return pd.DataFrame({"x0": x0, "c0": c0, pr.ID: ids, pr.TIME: [_at(h) for h in hours], pr.FITS: fits})


def _labels(ids: list[str], values: list[object], hours: list[float]) -> live_quality.Columns:
    side = live_quality.Columns()
    side.ids.append(pa.array(ids, type=pa.string()))
    side.times.append(np.array([_at(h) for h in hours], dtype=np.float64))
    side.values.append(pa.array(values))
    return side


SNAPSHOT = pd.DataFrame({"x0": [1.0, 2.0, 3.0], "c0": ["red", "blue", "red"], "target": ["yes", "no", "yes"]})


def _assemble(
    rows: pd.DataFrame,
    labels: live_quality.Columns,
    plan: ProductionRowsPlan | None = None,
    snapshot: pd.DataFrame = SNAPSHOT,
    task: Task = Task.CLASSIFICATION,
) -> tuple[pd.DataFrame, pr.Counts]:
    return pr.assemble(pr.Read(rows, labels), snapshot, "target", task, plan or _plan())


def test_each_label_joins_its_prediction_by_id_the_latest_label_winning() -> None:
    rows = _collected(["a", "b", "c"], [10.0, 20.0, 30.0], ["red", "blue", "green"], [1, 2, 3])
    labels = _labels(["b", "a", "b", "zzz"], ["no", "yes", "yes", "no"], [5, 6, 7, 8])
    appended, counts = _assemble(rows, labels)
    got = dict(zip(appended["x0"], appended["target"], strict=True))
    assert got == {10.0: "yes", 20.0: "yes"}  # b's later label (hour 7) replaced its first; c has none
    assert (counts.collected, counts.labelled, counts.rows, counts.invalid) == (3, 2, 2, 0)
    assert list(appended.columns) == ["x0", "c0", "target"]


def test_rows_that_do_not_fit_the_snapshot_schema_are_dropped_and_counted() -> None:
    rows = pd.concat(
        [
            _collected(
                ["ok", "text-in-number", "no-label", "int-class"],
                [1.5, "abc", 2.5, 4.0],
                ["red", "blue", "red", 7],
                [1, 2, 3, 4],
            ),
            _collected(["file-without-c0"], [9.0], [None], [5], fits=False),
        ],
        ignore_index=True,
    )
    labels = _labels(
        ["ok", "text-in-number", "no-label", "int-class", "file-without-c0"],
        ["yes", "no", None, "no", "yes"],
        [6, 6, 6, 6, 6],
    )
    appended, counts = _assemble(rows, labels)
    assert counts.labelled == 5
    assert counts.invalid == 3  # a word in a number column, a missing label, a file that lacks c0
    assert sorted(appended["x0"]) == [1.5, 4.0]
    assert set(appended["c0"]) == {"red", "7"}  # a number in a text column is its text
    assert data.feature_kind(appended["x0"]) == FeatureType.NUMERIC


def test_a_numeric_class_target_takes_whole_numbers_only_and_regression_any_number() -> None:
    snapshot = pd.DataFrame({"x0": [1.0, 2.0], "c0": ["a", "b"], "target": [0, 1]})
    rows = _collected(["a", "b", "c", "d"], [1.1, 2.2, 3.3, 4.4], ["a", "a", "b", "b"], [1, 2, 3, 4])
    labels = _labels(["a", "b", "c", "d"], ["1", "0.5", "2", "x"], [5, 5, 5, 5])
    appended, counts = _assemble(rows, labels, snapshot=snapshot)
    assert sorted(appended["target"]) == [1.0, 2.0] and counts.invalid == 2
    appended, counts = _assemble(rows, labels, snapshot=snapshot, task=Task.REGRESSION)
    assert sorted(appended["target"]) == [0.5, 1.0, 2.0] and counts.invalid == 1


def test_rows_equal_to_a_snapshot_row_are_not_counted_twice() -> None:
    # (2, blue, no) is in the snapshot: the int 2 is the float 2.0, the label the same class.
    rows = _collected(["dup", "fresh"], [2, 2], ["blue", "blue"], [1, 2])
    labels = _labels(["dup", "fresh"], ["no", "yes"], [3, 3])
    appended, counts = _assemble(rows, labels)
    assert counts.duplicates == 1 and counts.rows == 1
    assert appended.iloc[0].to_dict() == {"x0": 2.0, "c0": "blue", "target": "yes"}


def test_max_rows_keeps_the_most_recent_predictions_and_new_counts_labels_since_the_champion() -> None:
    rows = _collected([f"r{i}" for i in range(6)], [float(i) + 10 for i in range(6)], ["red"] * 6, [1, 2, 3, 4, 5, 6])
    labels = _labels([f"r{i}" for i in range(6)], ["yes"] * 6, [10, 10, 10, 50, 50, 50])
    plan = _plan(max_rows=4, new_since=START + timedelta(hours=40))
    appended, counts = _assemble(rows, labels, plan)
    assert sorted(appended["x0"]) == [12.0, 13.0, 14.0, 15.0]
    assert (counts.over_max_rows, counts.rows, counts.new) == (2, 4, 3)


def test_no_collected_rows_or_no_labels_append_nothing() -> None:
    empty = pd.DataFrame({pr.ID: pd.Series(dtype=object), pr.TIME: pd.Series(dtype=np.float64)})
    appended, counts = _assemble(empty, _labels(["a"], ["yes"], [1]))
    assert appended.empty and counts == pr.Counts()
    appended, counts = _assemble(_collected(["a"], [1.0], ["red"], [1]), live_quality.Columns())
    assert appended.empty and (counts.collected, counts.labelled) == (1, 0)


def test_append_keeps_boolean_and_integer_columns_numeric_and_recounts_distinct_values() -> None:
    snapshot = pd.DataFrame({"flag": [True, False], "n": [1, 2], "c0": ["a", "b"], "target": ["yes", "no"]})
    snapshot.attrs[data.DISTINCT_ATTR] = {"c0": 2, "target": 2}
    rows = pd.DataFrame({"flag": [1.0], "n": [3.0], "c0": ["z"], "target": ["yes"]})
    combined = pr.append(snapshot, rows, "target")
    assert len(combined) == 3 and combined["flag"].dtype == np.float64 and combined["n"].dtype == np.float64
    assert combined.attrs[data.DISTINCT_ATTR] == {"c0": 3, "target": 2}
    assert pr.append(snapshot, rows.iloc[:0], "target") is snapshot


def test_the_lineage_record_names_the_window_the_counts_and_a_digest_of_the_files() -> None:
    plan = _plan(new_since=START + timedelta(days=1))
    found = pr.Read(pd.DataFrame(), live_quality.Columns(), files=["file:///c/a.parquet", "file:///l/b.parquet"])
    record = pr.lineage(plan, pr.Counts(collected=5, labelled=4, rows=3, new=2), found)
    assert record["window"] == {"start": START.isoformat(), "end": END.isoformat()}
    assert record["newSince"] == (START + timedelta(days=1)).isoformat()
    assert (record["rows"], record["new"], record["labelled"], record["overMaxRows"]) == (3, 2, 4, 0)
    assert record["files"] == 2 and len(record["filesSha256"]) == 64
    other = pr.lineage(
        plan, pr.Counts(), pr.Read(pd.DataFrame(), live_quality.Columns(), files=["file:///c/a.parquet"])
    )
    assert other["filesSha256"] != record["filesSha256"]


@pytest.mark.parametrize("value", [True, np.bool_(False)])
def test_booleans_read_as_numbers(value: object) -> None:
    rows = _collected(["a"], [value], ["green"], [1])
    appended, counts = _assemble(rows, _labels(["a"], ["yes"], [2]))
    assert counts.invalid == 0 and appended["x0"].tolist() == [float(bool(value))]


def test_text_values_are_spelled_as_the_snapshot_spells_the_same_category() -> None:
    snapshot = pd.DataFrame({"x0": [1.0, 2.0], "c0": ["1", "true"], "target": ["0", "1"]})
    rows = _collected(["a", "b", "c"], [5.0, 6.0, 7.0], [1.0, True, "new"], [1, 2, 3])
    appended, counts = _assemble(rows, _labels(["a", "b", "c"], [1.0, 0.0, 1.0], [4, 4, 4]), snapshot=snapshot)
    assert counts.invalid == 0
    assert appended["c0"].tolist() == ["1", "true", "new"] and appended["target"].tolist() == ["1", "0", "1"]


EVERY_ID = pa.array(["a", "b", "c", "d"])


def test_files_with_different_columns_or_types_make_one_frame_of_the_labelled_rows() -> None:
    numbers = pa.table({"x0": [1.0, 2.0], pr.ID: ["a", "b"]})
    without_x0 = pa.table({pr.ID: ["c"]})
    as_text = pa.table({"x0": ["3.5"], pr.ID: ["d"]})
    same = pr._concatenated([numbers, without_x0], EVERY_ID)  # through Arrow: the missing column is null
    assert same[pr.ID].tolist() == ["a", "b", "c"] and same["x0"].tolist()[:2] == [1.0, 2.0]
    assert pd.isna(same["x0"].iloc[2])
    mixed = pr._concatenated([numbers, as_text], EVERY_ID)  # a text column and a number column: through pandas
    assert mixed["x0"].tolist() == [1.0, 2.0, "3.5"]
    conformed, valid = pr.conform(
        mixed.assign(**{pr.TIME: 0.0, pr.LABEL_TIME: 0.0, "target": "yes"}), SNAPSHOT, "target", Task.CLASSIFICATION
    )
    assert conformed["x0"].tolist() == [1.0, 2.0, 3.5] and valid.all()
    only_b_and_d = pa.array(["b", "d"])
    assert pr._concatenated([numbers, as_text], only_b_and_d)[pr.ID].tolist() == ["b", "d"]
    assert pr._concatenated([numbers, without_x0], only_b_and_d)[pr.ID].tolist() == ["b"]
