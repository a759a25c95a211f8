"""Refreshing a Dataset whose data moves: an unchanged listing reads and writes nothing, a new partition
is a new version that reads only its own bytes, a rule change is a new version id, and a version
directory is never rewritten; on local files and on S3 (moto) and Azure Blob (Azurite)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from mlops_operator import contracts, store
from mlops_operator.api.results import ProfileResult
from mlops_operator.workloads import data, profile, versions

from .conftest import synthetic_frame
from .test_profile_sources import partitioned, plan

DAYS = ["2026-11-27", "2026-11-28", "2026-11-29"]


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every URI whose bytes the store hands out, in order."""
    seen: list[str] = []
    original = store.read_bytes

    def recording(uri: str) -> bytes:
        seen.append(uri)
        return original(uri)

    monkeypatch.setattr(store, "read_bytes", recording)
    yield seen


def tree(root_uri: str) -> dict[str, tuple[int, str]]:
    """Every object under a root with its size and change tag (mtime or etag)."""
    fs, root = store.filesystem(root_uri)
    found = fs.find(root, detail=True) if fs.exists(root) else {}
    return {k: (int(v.get("size") or 0), str(v.get("mtime") or v.get("ETag") or v.get("etag")))
            for k, v in found.items()}


def _uri(path: Path) -> str:
    return f"file://{path}"  # as listed: Path.as_uri() would write = as %3D


def dataset_dir(store_root: str) -> str:
    return contracts.dataset_dir(store_root, "ns", "ds")


def test_an_unchanged_listing_reads_and_writes_nothing(tmp_path: Path, store_root: str, reads: list[str]) -> None:
    source = tmp_path / "source"
    partitioned(source, DAYS)
    first = profile.profile(plan(store_root, source.as_uri() + "/"))
    before = tree(store_root)
    reads.clear()
    again = profile.profile(plan(store_root, source.as_uri() + "/", current=first))
    assert again.unchanged and again.version == first.version and again.listing_fingerprint == first.listing_fingerprint
    assert (again.rows, again.data_uri, again.lineage) == (None, None, None)
    assert reads == [] and tree(store_root) == before  # no data read, nothing written

    (source / "date=2026-11-28" / "part-0.csv").touch()  # listed otherwise (a newer mtime), same bytes
    touched = profile.profile(plan(store_root, source.as_uri() + "/", current=first))
    assert not touched.unchanged and touched.version == first.version  # the content address is the same
    assert [u for u in reads if u.startswith(source.as_uri())] == [_uri(source / "date=2026-11-28" / "part-0.csv")]


def test_a_new_partition_is_a_new_version_reading_only_its_bytes(
    tmp_path: Path, store_root: str, reads: list[str]
) -> None:
    source = tmp_path / "source"
    partitioned(source, DAYS)
    first = profile.profile(plan(store_root, source.as_uri() + "/"))
    old_dir = tree(contracts.dataset_version_dir(store_root, "ns", "ds", first.version or ""))
    new_file = source / "date=2026-11-30" / "part-0.csv"
    new_file.parent.mkdir()
    synthetic_frame(250, seed=30).to_csv(new_file, index=False)
    reads.clear()
    second = profile.profile(plan(store_root, source.as_uri() + "/", current=first))
    assert second.version != first.version and second.rows == (first.rows or 0) + 250
    assert [u for u in reads if u.startswith(source.as_uri())] == [_uri(new_file)]  # only the new file's bytes
    assert second.lineage is not None and second.lineage.parent == first.version
    assert second.lineage.source_files == 4 and second.lineage.rows_read == 1450
    assert tree(contracts.dataset_version_dir(store_root, "ns", "ds", first.version or "")) == old_dir
    assert len(data.read_snapshot(first.data_uri or "")) == first.rows
    assert len(data.read_snapshot(second.data_uri or "")) == second.rows


def test_a_rule_change_is_a_new_version_and_the_old_snapshot_stays(tmp_path: Path, store_root: str) -> None:
    source = tmp_path / "source"
    frames = partitioned(source, DAYS)
    (source / "date=2026-11-30").mkdir()
    pd.concat([frames[0].iloc[:20], synthetic_frame(80, seed=9)]).to_csv(source / "date=2026-11-30" / "p.csv",
                                                                         index=False)
    kept = profile.profile(plan(store_root, source.as_uri() + "/"))
    old_dir = contracts.dataset_version_dir(store_root, "ns", "ds", kept.version or "")
    old_files = {uri: store.read_bytes(uri) for uri in store.list_prefix(old_dir)}
    old_tree = tree(old_dir)
    dropped = profile.profile(plan(store_root, source.as_uri() + "/", current=kept, quality={"duplicates": "drop"}))
    assert dropped.version != kept.version and dropped.lineage is not None
    assert dropped.lineage.rules_sha256 != (kept.lineage.rules_sha256 if kept.lineage else None)
    assert dropped.lineage.parent == kept.version
    assert {uri: store.read_bytes(uri) for uri in store.list_prefix(old_dir)} == old_files and tree(old_dir) == old_tree
    both = data.read_snapshot(kept.data_uri or ""), data.read_snapshot(dropped.data_uri or "")
    assert (len(both[0]), len(both[1])) == (1300, 1280) and both[0].duplicated().sum() == 20
    looser = profile.profile(plan(store_root, source.as_uri() + "/", quality={"minRows": 5}))
    assert looser.version not in (kept.version, dropped.version)  # any rule is part of the id


def test_a_version_directory_is_never_rewritten(tmp_path: Path, store_root: str) -> None:
    source = tmp_path / "source"
    partitioned(source, DAYS)
    first = profile.profile(plan(store_root, source.as_uri() + "/"))
    version_dir = contracts.dataset_version_dir(store_root, "ns", "ds", first.version or "")
    written = tree(version_dir)
    again = profile.profile(plan(store_root, source.as_uri() + "/"))  # no current fingerprint: listed, hashed
    assert again.version == first.version and tree(version_dir) == written

    calls: list[str] = []
    assert versions.commit(version_dir, calls.append) is False and calls == []  # complete: reused as it is

    other = contracts.dataset_version_dir(store_root, "ns", "ds", "f" * 64)
    store.write_bytes_atomic(store.join(other, "data.parquet"), b"left by a writer killed half-way")

    def write(directory: str) -> None:
        store.write_json_atomic(store.join(directory, versions.COMPLETE_MARKER), {"version": "f" * 64})

    assert versions.commit(other, write) is True  # not a version (no marker): replaced whole
    assert [Path(u).name for u in store.list_prefix(other)] == [versions.COMPLETE_MARKER]
    leftovers = [p for p in Path(store.filesystem(dataset_dir(store_root))[1]).iterdir() if p.name.startswith(".")]
    assert leftovers == []  # the temporary directories are gone


def test_the_hash_cache_keeps_unchanged_files_from_being_read(
    tmp_path: Path, store_root: str, reads: list[str]
) -> None:
    source = tmp_path / "source"
    partitioned(source, DAYS)
    profile.profile(plan(store_root, source.as_uri() + "/"))
    reads.clear()
    stricter = profile.profile(plan(store_root, source.as_uri() + "/", quality={"maxMissingFraction": 0.1}))
    assert stricter.ok and not [u for u in reads if u.startswith(source.as_uri())]  # same parts, no bytes read
    reads.clear()
    declared = {"target": "target", "features": [{"name": "x0", "type": "numeric"}]}
    narrower = profile.profile(plan(store_root, source.as_uri() + "/", schema=declared))
    assert narrower.columns == 2  # another schema: new parts, from the files' bytes again
    assert len([u for u in reads if u.startswith(source.as_uri())]) == len(DAYS)


# --- object stores ---------------------------------------------------------------------------------
def _upload(root: str, relative: str, frame: pd.DataFrame) -> None:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    store.write_bytes_atomic(store.join(root, relative), buffer.getvalue().encode())


def test_refresh_on_object_stores(object_root: str, reads: list[str]) -> None:
    """List a prefix of Hive partitions on S3 or Azure Blob, apply a window, refresh unchanged and with a
    new partition; the snapshot is read back through the store."""
    source, store_root = store.join(object_root, "source") + "/", store.join(object_root, "store")
    for i, day in enumerate(DAYS):
        _upload(source, f"date={day}/part-0.csv", synthetic_frame(200, seed=i))
    _upload(source, "_SUCCESS", pd.DataFrame({"x": [1]}))
    run: Callable[..., ProfileResult] = lambda **kw: profile.profile(plan(store_root, source, **kw))  # noqa: E731
    first = run(source={"window": {"lastPartitions": 2}})
    assert first.lineage is not None and first.lineage.files == [f"date={d}/part-0.csv" for d in DAYS[1:]]
    assert first.data_uri is not None and first.data_uri.startswith(object_root)
    assert len(data.read_snapshot(first.data_uri)) == first.rows == 400
    before = tree(store_root)
    reads.clear()
    unchanged = run(source={"window": {"lastPartitions": 2}}, current=first)
    assert unchanged.unchanged and reads == [] and tree(store_root) == before
    _upload(source, "date=2026-11-30/part-0.csv", synthetic_frame(100, seed=7))
    reads.clear()
    second = run(source={"window": {"lastPartitions": 2}}, current=first)
    assert second.version != first.version and second.rows == 300
    assert [u for u in reads if u.startswith(source)] == [store.join(source, "date=2026-11-30/part-0.csv")]
    assert second.lineage is not None and second.lineage.parent == first.version
    assert len(data.read_snapshot(second.data_uri or "")) == 300
    assert tree(contracts.dataset_version_dir(store_root, "ns", "ds", first.version or "")) == {
        k: v for k, v in before.items() if f"/{first.version}/" in k
    }
