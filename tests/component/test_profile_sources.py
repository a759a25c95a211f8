"""`profile` on prefix sources: Hive partitions and plain names, windows, and a profile merged from the
files' summaries that matches the profile of the same rows read as one file."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops_operator.api.plans import ProfilePlan
from mlops_operator.api.profile import REFERENCE_SAMPLE_MAX, DatasetProfile, FeatureProfile
from mlops_operator.api.results import ProfileResult
from mlops_operator.workloads import data, profile
from mlops_operator.workloads.common import DataError

from .conftest import synthetic_frame
from .test_profile import _load_profile, _reference

AS_OF = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def plan(store_root: str, uri: str, current: ProfileResult | None = None, **spec: Any) -> ProfilePlan:
    source = {"uri": uri, **spec.pop("source", {})}
    return ProfilePlan.model_validate({
        "namespace": "ns",
        "dataset": "ds",
        "storeUri": store_root,
        "asOf": AS_OF.isoformat(),
        "currentVersion": current.version if current else None,
        "currentListingFingerprint": current.listing_fingerprint if current else None,
        "spec": {"source": source, "schema": {"target": "target"}, **spec},
    })


def write(root: Path, relative: str, frame: pd.DataFrame) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if relative.endswith(".parquet"):
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


def partitioned(root: Path, days: list[str], rows: int = 400) -> list[pd.DataFrame]:
    frames = [synthetic_frame(rows, seed=i) for i in range(len(days))]
    for day, frame in zip(days, frames, strict=True):
        write(root, f"date={day}/part-0.csv", frame)
    return frames


def assert_same_feature(merged: FeatureProfile, whole: FeatureProfile) -> None:
    def key(f: FeatureProfile) -> tuple[Any, ...]:
        return f.name, f.type, f.count, f.missing

    assert key(merged) == key(whole)
    if whole.numeric is not None:
        m, w = merged.numeric, whole.numeric
        assert m is not None
        assert m.mean == pytest.approx(w.mean, rel=1e-9) and m.std == pytest.approx(w.std, rel=1e-9)
        assert (m.min, m.max, m.quantiles) == (w.min, w.max, w.quantiles)
        assert m.histogram_counts == w.histogram_counts
        np.testing.assert_allclose(m.histogram_edges, w.histogram_edges, rtol=1e-12)
        assert m.reference_size == w.reference_size
    else:
        assert merged.categorical == whole.categorical


def assert_same_profile(merged: DatasetProfile, whole: DatasetProfile) -> None:
    assert (merged.rows, merged.columns, merged.task_hint) == (whole.rows, whole.columns, whole.task_hint)
    assert [f.name for f in merged.features] == [f.name for f in whole.features]
    for m, w in zip(merged.features, whole.features, strict=True):
        assert_same_feature(m, w)
    assert [(f.rule, f.count) for f in merged.findings] == [(f.rule, f.count) for f in whole.findings]
    reference, expected = _reference(merged), _reference(whole)
    assert set(reference) == set(expected)
    for name in expected:
        np.testing.assert_array_equal(reference[name], expected[name])


# --- listing ------------------------------------------------------------------------------------
def test_partitions_and_plain_names_are_one_table(tmp_path: Path, store_root: str) -> None:
    source = tmp_path / "source"
    frames = partitioned(source, ["2026-11-28", "2026-11-29"])
    frames.append(synthetic_frame(300, seed=7))
    write(source, "extra.csv", frames[-1])
    for skipped in ("_SUCCESS", "date=2026-11-29/.part-0.csv.crc", "_temporary/0/part-9.csv", "notes.json"):
        (source / skipped).parent.mkdir(parents=True, exist_ok=True)
        (source / skipped).write_text("not data")
    (source / "date=2026-11-30").mkdir()  # an empty partition
    result = profile.profile(plan(store_root, source.as_uri() + "/"))

    assert result.lineage is not None and result.lineage.source_files == 3
    assert result.lineage.files == ["date=2026-11-28/part-0.csv", "date=2026-11-29/part-0.csv", "extra.csv"]
    assert result.lineage.rows_read == result.rows == 1100
    whole = pd.concat(frames, ignore_index=True)
    snapshot = data.read_snapshot(result.data_uri or "")
    pd.testing.assert_frame_equal(snapshot, data.read_snapshot(write(tmp_path, "whole.parquet", whole).as_uri()),
                                  check_dtype=False)
    single = profile.profile(plan(tmp_path.as_uri() + "/store2", write(tmp_path, "whole.csv", whole).as_uri()))
    assert_same_profile(_load_profile(result), _load_profile(single))


def test_parquet_partitions_and_a_declared_format(tmp_path: Path, store_root: str) -> None:
    source = tmp_path / "source"
    frames = [synthetic_frame(200, seed=i) for i in range(3)]
    for i, frame in enumerate(frames):
        write(source, f"dt=2026112{i}/hour=0{i}/part-{i}.parquet", frame)
    frames[0].iloc[:0].to_parquet(source / "dt=20261122" / "hour=02" / "part-extra")  # no rows, no extension
    result = profile.profile(plan(store_root, source.as_uri() + "/", source={"format": "parquet"}))
    assert result.rows == 600 and result.lineage is not None and result.lineage.source_files == 4


def test_a_prefix_without_data_files_is_empty_data(tmp_path: Path, store_root: str) -> None:
    (tmp_path / "source").mkdir()
    (tmp_path / "source" / "_SUCCESS").write_text("")
    with pytest.raises(DataError) as raised:
        profile.profile(plan(store_root, (tmp_path / "source").as_uri() + "/"))
    assert raised.value.reason == "EmptyData" and "no data files" in raised.value.message


# --- windows --------------------------------------------------------------------------------------
def test_last_partitions_and_last_days_by_partition_date(tmp_path: Path, store_root: str) -> None:
    source = tmp_path / "source"
    days = ["2026-10-30", "2026-11-01", "2026-11-29", "2026-11-30"]
    partitioned(source, days, rows=100)
    newest_two = profile.profile(plan(store_root, source.as_uri() + "/", source={"window": {"lastPartitions": 2}}))
    assert newest_two.lineage is not None
    assert newest_two.lineage.files == ["date=2026-11-29/part-0.csv", "date=2026-11-30/part-0.csv"]
    month = profile.profile(plan(store_root, source.as_uri() + "/", source={"window": {"last": "30d"}}))
    assert month.lineage is not None and month.rows == 300  # 2026-10-31T12:00 < 2026-11-01: kept; 10-30 is not
    assert month.lineage.files == [f"date={d}/part-0.csv" for d in days[1:]]
    assert len({newest_two.version, month.version}) == 2
    with pytest.raises(DataError) as raised:
        profile.profile(plan(store_root, source.as_uri() + "/", source={"window": {"last": "1h"}}))
    assert raised.value.reason == "EmptyData" and "keeps none" in raised.value.message


def test_plain_names_are_windowed_by_modification_time(tmp_path: Path, store_root: str) -> None:
    source = tmp_path / "source"
    for age_days, name in [(40, "a.csv"), (20, "b.csv"), (1, "c.csv")]:
        path = write(source, name, synthetic_frame(100, seed=age_days))
        moment = (AS_OF - timedelta(days=age_days)).timestamp()
        os.utime(path, (moment, moment))
    month = profile.profile(plan(store_root, source.as_uri() + "/", source={"window": {"last": "30d"}}))
    assert month.lineage is not None and month.lineage.files == ["b.csv", "c.csv"]
    newest = profile.profile(plan(store_root, source.as_uri() + "/", source={"window": {"lastPartitions": 1}}))
    assert newest.lineage is not None and newest.lineage.files == ["c.csv"]  # each plain file is a partition


# --- one schema, one table ----------------------------------------------------------------------------
def test_integer_and_float_files_share_one_parquet_schema(tmp_path: Path, store_root: str) -> None:
    source = tmp_path / "source"
    ints, floats = synthetic_frame(100, seed=1), synthetic_frame(100, seed=2)
    ints["amount"], floats["amount"] = np.arange(100), np.linspace(0.5, 50, 100)
    write(source, "date=2026-11-01/part-0.csv", ints[list(reversed(ints.columns))])  # another column order too
    write(source, "date=2026-11-02/part-0.csv", floats)
    result = profile.profile(plan(store_root, source.as_uri() + "/"))
    by_any_reader = pd.read_parquet(result.data_uri or "")  # a directory of parts with one schema
    assert by_any_reader["amount"].dtype == np.float64
    assert list(by_any_reader.columns) == list(reversed(floats.columns))  # the first file's order
    assert by_any_reader["amount"].iloc[:100].tolist() == list(range(100))
    amount = _load_profile(result).feature("amount")
    assert amount is not None and amount.dtype == "float64" and amount.count == 200


def test_files_with_other_columns_fail_naming_them(tmp_path: Path, store_root: str) -> None:
    source = tmp_path / "source"
    write(source, "a.csv", synthetic_frame(50, seed=1))
    write(source, "b.csv", synthetic_frame(50, seed=2).drop(columns="x3"))
    with pytest.raises(DataError) as raised:
        profile.profile(plan(store_root, source.as_uri() + "/"))
    assert raised.value.reason == "SchemaMismatch"
    assert "b.csv" in raised.value.message and "a.csv" in raised.value.message


def test_duplicates_across_files_warn_or_drop(tmp_path: Path, store_root: str) -> None:
    source = tmp_path / "source"
    frame = synthetic_frame(200, seed=3)
    write(source, "a.csv", frame)
    write(source, "b.csv", pd.concat([frame.iloc[:15], synthetic_frame(100, seed=4)]))
    warned = profile.profile(plan(store_root, source.as_uri() + "/"))
    assert warned.rows == 315 and [(f.rule, f.count) for f in warned.findings] == [("duplicates", 15)]
    dropped = profile.profile(plan(store_root, source.as_uri() + "/", quality={"duplicates": "drop"}))
    assert dropped.rows == 300 and [(f.rule, f.severity) for f in dropped.findings] == [("duplicates", "info")]
    snapshot = data.read_snapshot(dropped.data_uri or "")
    assert len(snapshot) == 300 and not snapshot.duplicated().any()


def test_outlier_rules_profile_the_whole_table_as_one_file_would(tmp_path: Path, store_root: str) -> None:
    source = tmp_path / "source"
    frames = [synthetic_frame(300, seed=i) for i in range(3)]
    frames[1].loc[:3, "x2"] = 1e6
    for i, frame in enumerate(frames):
        write(source, f"part-{i}.csv", frame)
    rules = {"outliers": {"method": "zscore", "threshold": 6, "action": "drop"}}
    merged = profile.profile(plan(store_root, source.as_uri() + "/", quality=rules))
    whole = write(tmp_path, "whole.csv", pd.concat(frames, ignore_index=True))
    single = profile.profile(plan(tmp_path.as_uri() + "/store2", whole.as_uri(), quality=rules))
    assert merged.rows == single.rows == 896
    assert [(f.rule, f.count) for f in merged.findings] == [(f.rule, f.count) for f in single.findings]
    merged_profile, single_profile = _load_profile(merged), _load_profile(single)
    for m, w in zip(merged_profile.features, single_profile.features, strict=True):
        assert (m.name, m.count, m.missing) == (w.name, w.count, w.missing)


def test_a_sample_beyond_the_cap_is_stratified_and_the_counts_stay_exact(tmp_path: Path, store_root: str) -> None:
    source = tmp_path / "source"
    rng = np.random.default_rng(5)
    frames = [pd.DataFrame({"x": rng.normal(loc=i, size=100_000), "target": rng.integers(0, 2, 100_000)})
              for i in range(3)]
    frames[2].loc[:999, "x"] = np.nan
    for i, frame in enumerate(frames):
        write(source, f"part-{i}.parquet", frame)
    result = profile.profile(plan(store_root, source.as_uri() + "/"))
    feature = _load_profile(result).feature("x")
    assert feature is not None and feature.numeric is not None
    values = pd.concat(frames)["x"].dropna().to_numpy()
    reference = _reference(_load_profile(result))["x"]
    assert reference.size == feature.numeric.reference_size == REFERENCE_SAMPLE_MAX
    assert bool(np.all(np.diff(reference) >= 0))
    assert sum(feature.numeric.histogram_counts) == values.size == feature.count
    assert (feature.numeric.min, feature.numeric.max) == (values.min(), values.max())
    assert feature.numeric.mean == pytest.approx(values.mean(), rel=1e-9)
    assert feature.numeric.std == pytest.approx(values.std(), rel=1e-9)
    for q, v in feature.numeric.quantiles.items():
        assert v == pytest.approx(np.quantile(values, float(q)), abs=0.05)  # a 200 000-value sample
    assert reference.mean() == pytest.approx(values.mean(), abs=0.01)  # each file in proportion to its size
