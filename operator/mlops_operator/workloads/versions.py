"""A dataset version: its content address, and its directory, written once and never rewritten.

The version id is the sha256 of everything that shapes the snapshot: the sha256 of each source file's
bytes in path order, the schema, the quality rules, the window and the format (`rules_sha256`). Equal
inputs give an equal id; changing a rule gives a new id, and the old version's files stay as they were.

A version directory holds `data.parquet/` (the snapshot: a directory of Parquet parts sharing one
schema, in name order), `reference.npz`, `profile.json`, `lineage.json` (every source file with its
sha256, the rules, the parent version, rows before and after cleaning) and `complete.json`, last.

It is never rewritten. On local storage (the artifact claim) the files are written into a hidden
temporary directory beside it, which is renamed into place only if the version is absent; if a
complete directory of the same id exists, it is reused and the temporary one removed. Object stores
have no directory rename: the files go under the final prefix only while its `complete.json` is
absent (the marker is written last, so an interrupted write is not a version and is redone), and at
most one profile Job runs per Dataset, so no two writers meet there.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Final

import orjson
from fsspec.implementations.local import LocalFileSystem

from mlops_operator import store
from mlops_operator.api.v1alpha1.dataset import DatasetSpec
from mlops_operator.api.v1alpha1.source import LINEAGE_MAX_FILES, VersionLineage

log = logging.getLogger(__name__)

# Bump when the files of a version change meaning. 2: parts, and rules and window in the id.
PROFILE_FORMAT: Final = 2
DATA_DIR: Final = "data.parquet"
COMPLETE_MARKER: Final = "complete.json"
LINEAGE_FILE: Final = "lineage.json"


def rules_sha256(spec: DatasetSpec) -> str:
    """sha256 of what shapes a version besides the files' bytes: schema, rules, window and format."""
    source = spec.source
    rules = {
        "format": PROFILE_FORMAT,
        "schema": spec.schema_.dump(),
        "quality": spec.quality.dump(),
        "window": source.window.dump() if source.window else None,
        "sourceFormat": source.format,
    }
    return store.sha256_bytes(orjson.dumps(rules, option=orjson.OPT_SORT_KEYS))


def version_id(rules: str, file_hashes: Sequence[str]) -> str:
    return store.sha256_bytes(orjson.dumps({"rules": rules, "files": list(file_hashes)}))


def lineage(
    files: Sequence[tuple[str, str]], rules: str, parent: str | None, rows_read: int, rows: int
) -> VersionLineage:
    """`files`: (path under the source, sha256 of its bytes), in order."""
    return VersionLineage(
        source_files=len(files),
        source_digest=store.sha256_bytes(orjson.dumps([list(f) for f in files])),
        files=[path[:256] for path, _ in files] if len(files) <= LINEAGE_MAX_FILES else None,
        rules_sha256=rules,
        parent=parent,
        rows_read=rows_read,
        rows=rows,
    )


def is_complete(version_dir: str) -> bool:
    return store.exists(store.join(version_dir, COMPLETE_MARKER))


def commit(version_dir: str, write: Callable[[str], None]) -> bool:
    """Write a version's files with `write(directory)` unless the version exists. True: written now."""
    if is_complete(version_dir):
        return False
    fs, final = store.filesystem(version_dir)
    if not isinstance(fs, LocalFileSystem):
        write(version_dir)
        return True
    parent, name = os.path.split(final.rstrip("/"))
    temporary = os.path.join(parent, f".{name}.{uuid.uuid4().hex}.tmp")
    try:
        write(temporary)
        return _rename_if_absent(temporary, final, version_dir)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def _rename_if_absent(temporary: str, final: str, version_dir: str) -> bool:
    with store.translated(version_dir):  # the store's error mapping
        if os.path.isdir(final) and not is_complete(version_dir):
            # Not a version: a directory a writer before PROFILE_FORMAT 2 left half-written.
            log.warning("removing the incomplete version directory %s", final)
            shutil.rmtree(final)
        try:
            os.rename(temporary, final)
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST) and is_complete(version_dir):
                return False  # another writer made the same version first: same id, same content
            raise
        with contextlib.suppress(OSError):
            fd = os.open(os.path.dirname(final), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    return True


def place(sources: Sequence[str], directory: str) -> list[str]:
    """Put part files into a snapshot directory as part-00000.parquet, …: a hard link on local
    storage (a copy where links are refused), a server-side copy on object stores."""
    fs, target = store.filesystem(directory)
    names = []
    with store.translated(directory):
        if isinstance(fs, LocalFileSystem):
            os.makedirs(target, exist_ok=True)
        for index, source in enumerate(sources):
            name = f"part-{index:05d}.parquet"
            _, source_path = store.filesystem(source)
            _place_one(fs, source_path, f"{target.rstrip('/')}/{name}")
            names.append(name)
    return names


def _place_one(fs: Any, source: str, target: str) -> None:
    if not isinstance(fs, LocalFileSystem):
        fs.copy(source, target)
        return
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


__all__ = [
    "COMPLETE_MARKER",
    "DATA_DIR",
    "LINEAGE_FILE",
    "PROFILE_FORMAT",
    "commit",
    "is_complete",
    "lineage",
    "place",
    "rules_sha256",
    "version_id",
]
