"""Pure parts of a moving source: partition times, windows, the listing fingerprint, the API's rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from mlops_operator.api.v1alpha1.dataset import DataSource
from mlops_operator.api.v1alpha1.source import SourceWindow, parse_duration
from mlops_operator.workloads import sources
from mlops_operator.workloads.common import DataError
from mlops_operator.workloads.sources import SourceFile

AS_OF = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def listed(path: str, age_days: float = 0, size: int = 10, tag: str = "t") -> SourceFile:
    return SourceFile(uri=f"s3://b/p/{path}", path=path, size=size, tag=tag, modified=AS_OF - timedelta(days=age_days))


@pytest.mark.parametrize(
    ("directory", "expected"),
    [
        ("date=2026-11-30", datetime(2026, 11, 30, tzinfo=UTC)),
        ("dt=20261130/hour=05", datetime(2026, 11, 30, 5, tzinfo=UTC)),
        ("region=eu/ds=2026-11-30/hr=23", datetime(2026, 11, 30, 23, tzinfo=UTC)),
        ("date=2026-02-30", None),  # no such day
        ("date=latest", None),
        ("2026-11-30", None),  # not key=value
        ("part-0.csv", None),
    ],
)
def test_partition_time(directory: str, expected: datetime | None) -> None:
    assert sources.partition_time(directory) == expected


def test_a_file_has_its_partitions_date_else_its_modification_time() -> None:
    assert listed("date=2026-11-01/a.csv", age_days=1).time == datetime(2026, 11, 1, tzinfo=UTC)
    assert listed("a.csv", age_days=1).time == AS_OF - timedelta(days=1)
    assert listed("date=2026-11-01/a.csv").partition == "date=2026-11-01"
    assert listed("a.csv").partition == "a.csv"


def test_last_partitions_keeps_whole_partitions_newest_by_time() -> None:
    files = [
        listed("date=2026-11-28/a.csv"), listed("date=2026-11-28/b.csv"),
        listed("date=2026-11-29/a.csv"), listed("z-old.csv", age_days=30), listed("fresh.csv", age_days=0.1),
    ]
    kept = sources.apply_window(files, SourceWindow(last_partitions=2), AS_OF)
    assert [f.path for f in kept] == ["date=2026-11-29/a.csv", "fresh.csv"]  # in path order
    three = sources.apply_window(files, SourceWindow(last_partitions=3), AS_OF)
    assert [f.path for f in three] == ["date=2026-11-28/a.csv", "date=2026-11-28/b.csv", "date=2026-11-29/a.csv",
                                       "fresh.csv"]


def test_last_duration_and_an_empty_window() -> None:
    files = [listed("date=2026-10-31/a.csv"), listed("date=2026-11-01/a.csv"), listed("b.csv", age_days=29.9)]
    assert [f.path for f in sources.apply_window(files, SourceWindow(last="30d"), AS_OF)] == [
        "date=2026-11-01/a.csv", "b.csv"
    ]
    assert sources.apply_window(files, None, AS_OF) == files
    with pytest.raises(DataError, match="keeps none"):
        sources.apply_window(files, SourceWindow(last="1h"), AS_OF)


def test_the_fingerprint_covers_every_file_the_source_and_the_rules() -> None:
    files = [listed("a.csv"), listed("b.csv")]
    base = sources.listing_fingerprint("s3://b/p/", files, "rules")
    assert base == sources.listing_fingerprint("s3://b/p/", list(files), "rules")
    changed = [
        sources.listing_fingerprint("s3://b/p/", [files[0], listed("b.csv", tag="t2")], "rules"),  # a new etag
        sources.listing_fingerprint("s3://b/p/", [files[0], listed("b.csv", size=11)], "rules"),
        sources.listing_fingerprint("s3://b/p/", files[:1], "rules"),
        sources.listing_fingerprint("s3://b/q/", files, "rules"),
        sources.listing_fingerprint("s3://b/p/", files, "other rules"),
    ]
    assert base not in changed and len(set(changed)) == len(changed)


def test_durations() -> None:
    assert parse_duration("36h") == timedelta(hours=36)
    assert parse_duration("30d") == timedelta(days=30)
    assert parse_duration("8w") == timedelta(weeks=8)
    for bad in ("0d", "1m", "d", "1.5d", "-1d", "100000d"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_the_window_takes_one_rule_and_needs_a_prefix() -> None:
    with pytest.raises(ValidationError, match="not both"):
        SourceWindow.model_validate({"last": "30d", "lastPartitions": 3})
    with pytest.raises(ValidationError):
        SourceWindow.model_validate({"lastPartitions": 0})
    for uri in ("s3://b/data.csv", "sklearn://iris/"):
        with pytest.raises(ValidationError, match="prefix"):
            DataSource.model_validate({"uri": uri, "window": {"last": "30d"}})
    source = DataSource.model_validate({"uri": "az://c/events/", "window": {"lastPartitions": 30}})
    assert source.window is not None and source.window.duration() is None
    assert DataSource.model_validate({"uri": "s3://b/events/"}).window is None  # all files
