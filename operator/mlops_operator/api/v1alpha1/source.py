"""A Dataset whose data moves: the window over a prefix source, what a version was made from, and the
outcome of a requested refresh.

A prefix source (a URI ending in `/`) is every data file under it, in path order, optionally in
Hive-style partitions (`date=2026-11-30/part-0.parquet`). A window narrows it to the newest files; the
profile Job lists the prefix, applies the window, and a listing equal to the current version's makes
no version and reads no data (docs/workloads.md).
"""

from __future__ import annotations

import enum
import re
from datetime import datetime, timedelta
from typing import Annotated, Final

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from mlops_operator.api.base import CRModel, Message, ShortText

# 36h, 30d, 8w: a whole number of hours, days or weeks (no months: they have no fixed length).
DURATION_PATTERN: Final = r"^[1-9][0-9]{0,4}[hdw]$"
_UNITS: Final = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
# Lineage lists a version's source files by name only when there are at most this many.
LINEAGE_MAX_FILES: Final = 5

Duration = Annotated[str, StringConstraints(max_length=8, pattern=DURATION_PATTERN)]


def parse_duration(text: str) -> timedelta:
    """`30d` as a timedelta (36h, 30d, 8w); ValueError for anything else."""
    if not re.match(DURATION_PATTERN, text):
        raise ValueError(f"not a duration: {text!r} (a whole number of h, d or w, e.g. 30d)")
    return int(text[:-1]) * _UNITS[text[-1]]


class SourceWindow(CRModel):
    """Which files of a prefix source make a version: the files of the last duration, or the newest N
    partitions. Omitted, or neither given: every file. A file's time is the date (and hour) in its
    partition path, `date=`, `dt=` or `ds=` with YYYY-MM-DD (or YYYYMMDD) and `hour=` or `hr=` with HH,
    in UTC; a file without one has its modification time."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!(has(self.last) && has(self.lastPartitions))",
                    "message": "give last or lastPartitions, not both",
                }
            ]
        }
    )

    last: Duration | None = None
    """Files whose time is within this long before the refresh: 36h, 30d or 8w. A partition dated
    2026-11-30 counts as 2026-11-30T00:00Z, so with 30d a refresh during a day keeps the 30 newest
    daily partitions."""
    last_partitions: int | None = Field(default=None, ge=1, le=100_000)
    """The newest N partitions. A partition is the directory a file is in under the prefix
    (`date=2026-11-30/`); a file directly under the prefix is a partition of its own. Newest by time
    (as for `last`; for a directory, its newest file's), then by path."""

    @model_validator(mode="after")
    def _one_of(self) -> SourceWindow:
        if self.last is not None and self.last_partitions is not None:
            raise ValueError("give last or lastPartitions, not both")
        return self

    def duration(self) -> timedelta | None:
        return parse_duration(self.last) if self.last else None


class VersionLineage(CRModel):
    """What a version was made from (the version directory's lineage.json lists every file)."""

    source_files: int = Field(ge=0)
    """How many source files the version holds (after the window)."""
    source_digest: ShortText
    """sha256 of the file list: each file's path under the source and the sha256 of its bytes, in order."""
    files: Annotated[list[ShortText], Field(max_length=LINEAGE_MAX_FILES)] | None = None
    """The files' paths under the source, when there are at most five."""
    rules_sha256: ShortText
    """sha256 of the schema, quality rules, window and format the version was made under."""
    parent: ShortText | None = None
    """The version that was current when this one was made; omitted for the first."""
    rows_read: int = Field(ge=0)
    """Rows in the source files, before cleaning."""
    rows: int = Field(ge=0)
    """Rows after cleaning: what the snapshot holds."""


class RefreshOutcome(enum.StrEnum):
    NEW_VERSION = "NewVersion"
    UNCHANGED = "Unchanged"
    FAILED = "Failed"


class LastRefresh(CRModel):
    """The latest refresh asked for with the mlops.dev/refresh-requested annotation, and its outcome."""

    request: ShortText
    """The annotation's value, `<RFC3339 time>;<reason>`, as given."""
    requested_at: datetime | None = None
    """The time in the request; omitted when it could not be read."""
    reason: ShortText | None = None
    """The reason in the request (after the `;`)."""
    job: ShortText | None = None
    """The profile Job answering the request."""
    finished_at: datetime | None = None
    """When the outcome was recorded; omitted while the refresh runs."""
    outcome: RefreshOutcome | None = None
    """NewVersion; Unchanged (the source listing matched the current version's: no data was read, no
    version made, no training started); or Failed. Omitted while the refresh runs."""
    version: ShortText | None = None
    """The current version after the refresh: the new one, or the unchanged one."""
    message: Message | None = None
    """What the refresh found, in words."""


__all__ = [
    "DURATION_PATTERN",
    "LINEAGE_MAX_FILES",
    "LastRefresh",
    "RefreshOutcome",
    "SourceWindow",
    "VersionLineage",
    "parse_duration",
]
