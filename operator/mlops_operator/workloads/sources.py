"""Listing a Dataset's source: the files, their partitions and times, the window, the fingerprint.

A source is one file, or a prefix (a URI ending in `/`): every data file under it, recursively, in
path order. Names with a segment starting with `_` or `.` are skipped (`_SUCCESS`, `_temporary/`,
`.crc`), and so are empty objects under a prefix (the "directory" markers some tools write). With
`format: auto` a prefix keeps the files ending in .csv, .txt, .parquet or .pq and those without an
extension; a declared format keeps every file.

Each file is listed with its size and a change tag: the store's etag (S3, Azure Blob), else the
modification time in nanoseconds (local files). A file's *time* is the date in its Hive partition path
(`date=`, `dt=`, `ds=`; `hour=`/`hr=` adds the hour), else its modification time. The listing
fingerprint covers every listed file's (path, size, tag) after the window plus the rules, so an equal
fingerprint means the version would be the same, without reading a byte of data.

Content hashes (sha256 of the bytes) are cached in `<dataset dir>/cache/hashes.json`, keyed by the file's
URI, size and tag: a file listed as before is not read again. (A file rewritten with the same size and
the same modification time is taken as unchanged, as rsync does; object stores' etags change on every
write.)
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import orjson
from fsspec.implementations.local import LocalFileSystem

from mlops_operator import store
from mlops_operator.api.v1alpha1.dataset import DataFormat
from mlops_operator.api.v1alpha1.source import SourceWindow
from mlops_operator.workloads import data
from mlops_operator.workloads.common import DataError

log = logging.getLogger(__name__)

SKLEARN_SCHEME: Final = "sklearn://"
DATA_SUFFIXES: Final = (".csv", ".txt", ".parquet", ".pq")
DATE_KEYS: Final = ("date", "dt", "ds")
HOUR_KEYS: Final = ("hour", "hr")
HASH_CACHE: Final = "cache/hashes.json"
_DATE = re.compile(r"^(\d{4})-?(\d{2})-?(\d{2})$")


@dataclass(frozen=True)
class SourceFile:
    """One listed file."""

    uri: str  # full URI, in the source's scheme
    path: str  # under the prefix (a single-file source: its name)
    size: int
    tag: str  # etag, else the modification time in ns
    modified: datetime | None = None

    @property
    def partition(self) -> str:
        """The directory the file is in under the prefix; a top-level file is a partition of its own."""
        head, _, _ = self.path.rpartition("/")
        return head or self.path

    @property
    def time(self) -> datetime | None:
        return partition_time(self.partition) or self.modified


def is_prefix(uri: str) -> bool:
    return uri.endswith("/") and not uri.startswith(SKLEARN_SCHEME)


def list_source(uri: str, data_format: DataFormat | str = DataFormat.AUTO) -> list[SourceFile]:
    """The files of a source in path order. Raises StoreError (ObjectNotFound for a missing file) or
    DataError (EmptyData: a prefix without data files)."""
    if uri.startswith(SKLEARN_SCHEME):
        data.check_sklearn(uri)  # a bundled table: its name and options are its whole listing
        return [SourceFile(uri=uri, path=uri, size=0, tag="bundled")]
    fs, path = store.filesystem(uri)
    if not is_prefix(uri):
        with store.translated(uri):  # the store's error mapping (fsspec's errors → StoreError)
            info = fs.info(path)
        if info.get("type") == "directory":
            raise store.StoreError("ObjectNotFound", f"not a file in the store: {store.redact(uri)}; "
                                   "a prefix source ends in /")
        name = path.rstrip("/").rsplit("/", 1)[-1]
        return [_source_file(uri, name, info)]
    root = path.rstrip("/")
    with store.translated(uri):
        if isinstance(fs, LocalFileSystem):
            found = _walk_local(root)
        else:
            found = fs.find(root, detail=True) if fs.exists(root) else {}
    scheme = uri.split("://", 1)[0]
    files = []
    for name, info in sorted(found.items()):
        relative = name[len(root):].lstrip("/")
        if info.get("type") == "directory" or not _wanted(relative, int(info.get("size") or 0), data_format):
            continue
        full = f"{scheme}://{fs.unstrip_protocol(name).split('://', 1)[1]}"
        files.append(_source_file(full, relative, info))
    if not files:
        raise DataError("EmptyData", f"no data files under {store.redact(uri)}")
    return files


def _walk_local(root: str) -> dict[str, dict[str, Any]]:
    """fsspec's find(detail=True) for local files, from one scandir per directory (fsspec stats each
    entry again, which costs a listing of many partitions several times over)."""
    found: dict[str, dict[str, Any]] = {}
    pending = [root] if os.path.isdir(root) else []
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=True):
                    pending.append(entry.path)
                elif entry.is_file(follow_symlinks=True):
                    info = entry.stat()
                    found[entry.path] = {"type": "file", "size": info.st_size, "mtime_ns": info.st_mtime_ns}
    return found


def _wanted(relative: str, size: int, data_format: DataFormat | str) -> bool:
    if not relative or size == 0 or any(seg.startswith(("_", ".")) for seg in relative.split("/")):
        return False
    name = relative.rsplit("/", 1)[-1].lower()
    return DataFormat(data_format) != DataFormat.AUTO or name.endswith(DATA_SUFFIXES) or "." not in name


def _source_file(uri: str, path: str, info: dict[str, Any]) -> SourceFile:
    modified = _modified(info)
    etag = info.get("ETag") or info.get("etag") or info.get("e_tag")
    if etag:
        tag = str(etag).strip('"')
    elif isinstance(info.get("mtime_ns"), int):
        tag = str(info["mtime_ns"])
    elif modified is not None:
        tag = str(int(modified.timestamp() * 1_000_000_000))
    else:
        tag = ""
    return SourceFile(uri=uri, path=path, size=int(info.get("size") or 0), tag=tag, modified=modified)


def _modified(info: dict[str, Any]) -> datetime | None:
    if isinstance(info.get("mtime_ns"), int):
        return datetime.fromtimestamp(info["mtime_ns"] / 1e9, tz=UTC)
    for key in ("LastModified", "last_modified", "mtime", "modified"):
        value = info.get(key)
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        if isinstance(value, int | float):
            return datetime.fromtimestamp(float(value), tz=UTC)
    return None


def partition_time(directory: str) -> datetime | None:
    """The time in a Hive partition path (`date=2026-11-30/hour=05`), in UTC; None without a date."""
    keys = dict(seg.split("=", 1) for seg in directory.split("/") if "=" in seg)
    date = next((keys[k] for k in DATE_KEYS if k in keys), None)
    match = _DATE.match(date) if date else None
    if match is None:
        return None
    try:
        moment = datetime(int(match[1]), int(match[2]), int(match[3]), tzinfo=UTC)
    except ValueError:
        return None
    hour = next((keys[k] for k in HOUR_KEYS if k in keys), None)
    if hour is not None and hour.isdigit() and int(hour) < 24:
        moment += timedelta(hours=int(hour))
    return moment


def apply_window(files: Sequence[SourceFile], window: SourceWindow | None, as_of: datetime) -> list[SourceFile]:
    """The files a window keeps, in path order. Raises DataError (EmptyData) when it keeps none."""
    kept = list(files)
    duration = window.duration() if window else None
    if duration is not None:
        cutoff = as_of - duration
        kept = [f for f in kept if f.time is None or f.time > cutoff]
    elif window is not None and window.last_partitions is not None:
        newest = _partitions_newest_last(kept)[-window.last_partitions :]
        chosen = set(newest)
        kept = [f for f in kept if f.partition in chosen]
    if not kept:
        raise DataError("EmptyData", f"the window {window.dump() if window else {}} keeps none of {len(files)} files")
    return kept


def _partitions_newest_last(files: Iterable[SourceFile]) -> list[str]:
    newest: dict[str, datetime] = {}
    floor = datetime.min.replace(tzinfo=UTC)
    for f in files:
        newest[f.partition] = max(newest.get(f.partition, floor), f.time or floor)
    return sorted(newest, key=lambda p: (newest[p], p))


def listing_fingerprint(source_uri: str, files: Sequence[SourceFile], rules_sha256: str) -> str:
    """sha256 of the source, the rules and every file's (path, size, tag), in order."""
    listing = {"source": source_uri, "rules": rules_sha256, "files": [[f.path, f.size, f.tag] for f in files]}
    return store.sha256_bytes(orjson.dumps(listing))


class HashCache:
    """sha256 of each file's bytes by (URI, size, tag), kept in the Dataset's store directory."""

    def __init__(self, uri: str, entries: dict[str, list[Any]]) -> None:
        self.uri = uri
        self.entries = entries
        self.changed = False

    @classmethod
    def load(cls, dataset_dir: str) -> HashCache:
        uri = store.join(dataset_dir, HASH_CACHE)
        entries: dict[str, list[Any]] = {}
        try:
            if store.exists(uri):
                loaded = store.read_json(uri)
                entries = dict(loaded.get("files") or {}) if isinstance(loaded, dict) else {}
        except store.StoreError as exc:
            log.warning("ignoring the hash cache %s: %s", store.redact(uri), exc.message)
        return cls(uri, entries)

    def get(self, file: SourceFile) -> str | None:
        entry = self.entries.get(file.uri)
        if entry and len(entry) == 3 and entry[0] == file.size and entry[1] == file.tag and file.tag:
            return str(entry[2])
        return None

    def put(self, file: SourceFile, sha256: str) -> None:
        self.entries[file.uri] = [file.size, file.tag, sha256]
        self.changed = True

    def save(self, listed: Sequence[SourceFile]) -> None:
        """Write the entries of the files listed now (older ones go), if anything changed."""
        keep = {f.uri for f in listed}
        if self.changed or set(self.entries) - keep:
            files = {k: v for k, v in sorted(self.entries.items()) if k in keep}
            store.write_json_atomic(self.uri, {"files": files})


__all__ = [
    "SourceFile",
    "apply_window",
    "is_prefix",
    "list_source",
    "listing_fingerprint",
    "partition_time",
]
