"""Retention of what accumulates in the store: collected rows, labels, drift reports, dataset
versions and model artifacts.

Runs inside workloads that already hold the store credentials (the operator pod has none): the drift
Job (rows, labels, reports), the profile Job (its Dataset's versions) and the registry Job (its Model's
artifacts, and rows and labels of a Model no DriftMonitor checks). The selection functions are pure and
decide what goes; the prune functions list, measure and delete, and return what they removed (objects
and bytes) for the log and the resource's status.

What is never deleted: a partition whose name does not parse (a team's own files), a partition whose
time range reaches past the cutoff, the newest `keep` drift runs and the current one; a dataset
version among the newest `keep`, the current one or one a Model version references (the operator
sends that set: it reads every Model's status, the Job cannot); a dataset directory entry without a
`complete.json` (parts/, cache/, a version being written, a team's own files); a model version
directory the Model's status still lists, or numbered above all it lists (a training Job may be
writing it), and a model directory entry that is not `v<N>` (registry.json).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import fsspec
from fsspec.implementations.local import LocalFileSystem

from mlops_operator import contracts, store
from mlops_operator.api.plans import DatasetRetentionPlan, ModelRetentionPlan, ProfilePlan, RetentionPlan
from mlops_operator.api.results import ProfileResult

log = logging.getLogger(__name__)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # the time of a version whose order `recent` gives

_PARTITION = re.compile(r"^date=(\d{4}-\d{2}-\d{2})(?:/hour=(\d{2}))?$")
_MODEL_VERSION = re.compile(r"^v([1-9]\d{0,8})$")
COMPLETE_MARKER = "complete.json"  # workloads.versions.COMPLETE_MARKER: the last file of a dataset version


@dataclass(frozen=True)
class Pruned:
    objects: int = 0
    bytes: int = 0
    versions: tuple[str, ...] = ()  # dataset versions or model version directories removed

    def __add__(self, other: Pruned) -> Pruned:
        return Pruned(self.objects + other.objects, self.bytes + other.bytes, self.versions + other.versions)


# --- selection (pure) ---------------------------------------------------------------------------
def partition_end(partition: str) -> datetime | None:
    """When the rows of `date=YYYY-MM-DD[/hour=HH]` stop: the end of that day or hour (UTC); None if
    the name is not such a partition."""
    match = _PARTITION.match(partition.strip("/"))
    if match is None:
        return None
    try:
        day = datetime.strptime(match.group(1), "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        return None
    if match.group(2) is None:
        return day + timedelta(days=1)
    hour = int(match.group(2))
    return day + timedelta(hours=hour + 1) if hour < 24 else None


def expired_partitions(partitions: Iterable[str], cutoff: datetime) -> list[str]:
    """The partitions whose every row is older than `cutoff` (their range ends at or before it)."""
    expired = []
    for partition in partitions:
        end = partition_end(partition)
        if end is not None and end <= cutoff:
            expired.append(partition)
    return sorted(expired)


def runs_beyond(stamps: Iterable[str], keep: int, current: str | None = None) -> list[str]:
    """Drift run directories (sortable UTC stamps) past the newest `keep`; never `current`."""
    ordered = sorted(set(stamps), reverse=True)
    return sorted(s for s in ordered[keep:] if s != current)


def dataset_versions_beyond(
    stored: dict[str, datetime], recent: Sequence[str], keep: int, referenced: Collection[str]
) -> list[str]:
    """Stored dataset versions past the newest `keep` that nothing references.

    Newest first is the order of `recent` (the operator's record, where a version made again moves to
    the front), then, for versions the record no longer lists, the store's time of their marker.
    """
    listed = [v for v in dict.fromkeys(recent) if v in stored]
    rest = sorted((v for v in stored if v not in set(listed)), key=lambda v: (stored[v], v), reverse=True)
    return sorted(v for v in [*listed, *rest][keep:] if v not in referenced)


def model_versions_beyond(stored: Iterable[int], keep: Collection[int]) -> list[int]:
    """Model version directories whose version the status no longer lists; never one above every listed
    version (a training Job may be writing it) and none at all when the status lists none."""
    if not keep:
        return []
    highest = max(keep)
    return sorted(v for v in set(stored) if v not in keep and v < highest)


# --- enforcement (lists, measures, deletes) -----------------------------------------------------
def _remove_tree(fs: fsspec.AbstractFileSystem, path: str) -> Pruned:
    files = fs.find(path, detail=True, withdirs=False)
    removed = Pruned(len(files), sum(int(info.get("size") or 0) for info in files.values()))
    fs.rm(path, recursive=True)
    return removed


def _children(fs: fsspec.AbstractFileSystem, path: str) -> list[str]:
    if not fs.exists(path):
        return []
    return [entry.rstrip("/").rsplit("/", 1)[-1] for entry in fs.ls(path, detail=False)]


def prune_partitions(prefix_uri: str, retention: timedelta, now: datetime) -> Pruned:
    """Delete the date/hour partitions under `prefix_uri` older than `retention` (collected rows, labels)."""
    fs, root = store.filesystem(prefix_uri)
    candidates = []
    for day in _children(fs, root):
        if not day.startswith("date="):
            continue
        hours = [h for h in _children(fs, f"{root}/{day}") if h.startswith("hour=")]
        candidates += [f"{day}/{h}" for h in hours] if hours else [day]
    removed = Pruned()
    expired = set(expired_partitions(candidates, now - retention))
    for partition in sorted(expired):
        removed += _remove_tree(fs, f"{root}/{partition}")
    # A day whose every hour expired leaves an empty directory on a file store (object stores have
    # none). Only those go, and only while empty (rmdir, never recursive): a model server may have
    # just created a new hour's directory in a day that looked empty and be about to write into it.
    if isinstance(fs, LocalFileSystem):
        for day in {p.split("/", 1)[0] for p in expired if "/" in p}:
            if all(p in expired for p in candidates if p.split("/", 1)[0] == day):
                with contextlib.suppress(OSError):
                    os.rmdir(f"{root}/{day}")
    if removed.objects:
        log.info(
            "retention: removed %d objects (%d bytes) older than %s under %s",
            removed.objects,
            removed.bytes,
            retention,
            store.redact(prefix_uri),
        )
    return removed


def prune_runs(monitor_dir_uri: str, keep: int, current: str | None = None) -> Pruned:
    """Keep the newest `keep` drift run directories of a monitor (and the current one)."""
    fs, root = store.filesystem(monitor_dir_uri)
    removed = Pruned()
    for stamp in runs_beyond(_children(fs, root), keep, current):
        removed += _remove_tree(fs, f"{root}/{stamp}")
    if removed.objects:
        log.info(
            "retention: removed %d objects (%d bytes) of drift runs beyond the newest %d",
            removed.objects,
            removed.bytes,
            keep,
        )
    return removed


def _modified(fs: fsspec.AbstractFileSystem, path: str) -> datetime:
    stamp: datetime = fs.modified(path)
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def enforce(plan: RetentionPlan, now: datetime, current_run: str) -> Pruned:
    """A drift Job's retention: old partitions of collected rows and labels, then runs past the bound."""
    removed = Pruned()
    for prefix in plan.partition_prefixes:
        removed += prune_partitions(prefix, timedelta(days=plan.max_age_days), now)
    current = current_run.rstrip("/").rsplit("/", 1)[-1]
    return removed + prune_runs(plan.runs_dir, plan.keep_runs, current)


def prune_dataset_versions(dataset_dir_uri: str, plan: DatasetRetentionPlan, current: str | None) -> Pruned:
    """Delete the versions of a Dataset that `plan` does not keep; `current` (this run's) always stays."""
    fs, root = store.filesystem(dataset_dir_uri)
    recent = [current, *plan.recent] if current else list(plan.recent)
    stored: dict[str, datetime] = {}
    for name in _children(fs, root):
        marker = f"{root}/{name}/{COMPLETE_MARKER}"
        if name.startswith(".") or not fs.exists(marker):
            continue  # parts/, cache/, a version being written, a team's own files: not a version
        stored[name] = _EPOCH if name in recent else _modified(fs, marker)
    referenced = {*plan.referenced, *([current] if current else [])}
    removed = Pruned()
    for version in dataset_versions_beyond(stored, recent, plan.keep, referenced):
        removed += _remove_tree(fs, f"{root}/{version}") + Pruned(versions=(version,))
    if removed.versions:
        log.info(
            "retention: removed %d dataset versions (%d objects, %d bytes) beyond the newest %d",
            len(removed.versions),
            removed.objects,
            removed.bytes,
            plan.keep,
        )
    return removed


def prune_model(plan: ModelRetentionPlan, now: datetime) -> Pruned:
    """A registry Job's retention: artifact directories of versions status dropped, then (for a Model no
    DriftMonitor checks) collected rows and labels past the Model's retentionDays."""
    fs, root = store.filesystem(plan.model_dir)
    numbered = {}
    for name in _children(fs, root):
        match = _MODEL_VERSION.match(name)
        if match is not None:
            numbered[int(match.group(1))] = name
    removed = Pruned()
    for version in model_versions_beyond(numbered, set(plan.keep_versions)):
        removed += _remove_tree(fs, f"{root}/{numbered[version]}") + Pruned(versions=(numbered[version],))
    if removed.versions:
        log.info(
            "retention: removed the artifacts of %d model versions (%d objects, %d bytes) no longer in status",
            len(removed.versions),
            removed.objects,
            removed.bytes,
        )
    for prefix in plan.partition_prefixes:
        removed += prune_partitions(prefix, timedelta(days=plan.max_age_days), plan.now or now)
    return removed


def after_profile(plan: ProfilePlan, result: ProfileResult) -> ProfileResult:
    """A profile Job's retention, after a run that reported a version (new or unchanged): its Dataset's
    versions that the plan does not keep go. A store error is logged and retried by the next run."""
    if plan.retention is None or not result.ok or not result.version:
        return result
    dataset_dir = contracts.dataset_dir(plan.store_uri, plan.namespace, plan.dataset)
    try:
        with store.translated(dataset_dir):
            pruned = prune_dataset_versions(dataset_dir, plan.retention, result.version)
    except store.StoreError as exc:
        log.warning("retention skipped this time: %s", exc.message)
        return result
    recent = set(plan.retention.recent)
    result.pruned_versions = len(pruned.versions)
    result.pruned_recent = [v[:16] for v in pruned.versions if v in recent][:100]
    result.pruned_objects, result.pruned_bytes = pruned.objects, pruned.bytes
    return result
