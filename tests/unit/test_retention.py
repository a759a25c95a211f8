"""What retention keeps and what goes: partitions by their end, drift runs by recency, dataset versions
by recency unless referenced, model artifacts by status; the boundaries included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mlops_operator.workloads.retention import (
    dataset_versions_beyond,
    expired_partitions,
    model_versions_beyond,
    partition_end,
    runs_beyond,
)

NOW = datetime(2026, 3, 10, 12, 30, tzinfo=UTC)


def test_a_partition_ends_with_its_hour_or_day() -> None:
    assert partition_end("date=2026-03-10/hour=23") == datetime(2026, 3, 11, tzinfo=UTC)
    assert partition_end("date=2026-03-10/hour=00/") == datetime(2026, 3, 10, 1, tzinfo=UTC)
    assert partition_end("date=2026-03-10") == datetime(2026, 3, 11, tzinfo=UTC)


def test_names_that_are_not_partitions_are_never_expired() -> None:
    odd = ["team-export", "date=2026-02-30", "date=2026-03-01/hour=24", "date=2026-3-1", "date=2026-03-01/x"]
    assert [partition_end(p) for p in odd] == [None] * len(odd)
    assert expired_partitions(odd, NOW + timedelta(days=3650)) == []


def test_only_partitions_wholly_before_the_cutoff_go() -> None:
    cutoff = NOW - timedelta(days=7)  # 2026-03-03 12:30
    partitions = [
        "date=2026-03-03/hour=11",  # ends 12:00: expired
        "date=2026-03-03/hour=12",  # ends 13:00, rows after the cutoff: kept
        "date=2026-03-02",  # a labels day, ends 03-03 00:00: expired
        "date=2026-03-03",  # ends 03-04: kept
        "date=2026-03-09/hour=05",
    ]
    assert expired_partitions(partitions, cutoff) == ["date=2026-03-02", "date=2026-03-03/hour=11"]
    exact = datetime(2026, 3, 3, 12, tzinfo=UTC)  # a range ending exactly at the cutoff goes
    assert "date=2026-03-03/hour=11" in expired_partitions(partitions, exact)
    assert expired_partitions(partitions, exact - timedelta(microseconds=1)) == ["date=2026-03-02"]


def test_the_newest_runs_and_the_current_one_stay() -> None:
    stamps = ["20260301T000000Z", "20260302T000000Z", "20260303T000000Z", "20260304T000000Z"]
    assert runs_beyond(stamps, 2) == ["20260301T000000Z", "20260302T000000Z"]
    assert runs_beyond(stamps, 2, current="20260301T000000Z") == ["20260302T000000Z"]
    assert runs_beyond(stamps, 4) == [] and runs_beyond([], 1) == []


def test_dataset_versions_past_the_newest_go_unless_referenced() -> None:
    day = datetime(2026, 1, 1, tzinfo=UTC)
    stored = {f"d{i}": day + timedelta(days=i) for i in range(6)}  # the store's marker times
    assert dataset_versions_beyond(stored, [], 3, referenced=()) == ["d0", "d1", "d2"]
    assert dataset_versions_beyond(stored, [], 3, referenced={"d1", "d5"}) == ["d0", "d2"]
    assert dataset_versions_beyond(stored, [], 6, referenced=()) == []
    assert dataset_versions_beyond(stored, [], 1, referenced=()) == ["d0", "d1", "d2", "d3", "d4"]


def test_the_operators_record_orders_the_newest_before_the_store_times() -> None:
    day = datetime(2026, 1, 1, tzinfo=UTC)
    stored = {f"d{i}": day + timedelta(days=i) for i in range(5)}
    # d0 was made again (same content): the record lists it newest, though its marker is the oldest
    assert dataset_versions_beyond(stored, ["d0", "d4"], 2, referenced=()) == ["d1", "d2", "d3"]
    # recorded versions the store no longer holds take no place among the newest
    assert dataset_versions_beyond(stored, ["gone", "d0"], 2, referenced=()) == ["d1", "d2", "d3"]
    assert dataset_versions_beyond({}, ["d0"], 1, referenced=()) == []


def test_model_artifacts_go_when_status_no_longer_lists_them() -> None:
    assert model_versions_beyond([1, 2, 3, 4, 5, 6], keep={2, 5, 6}) == [1, 3, 4]  # 2: the serving one
    assert model_versions_beyond([1, 2, 3, 7], keep={2, 3}) == [1]  # 7: above all listed, may be training
    assert model_versions_beyond([1, 2], keep=set()) == []  # status lists none (not read back yet)
    assert model_versions_beyond([3], keep={3}) == []
