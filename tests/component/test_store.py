"""The artifact store on real files, and on S3 through s3fs against a local endpoint."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mlops_operator import store
from mlops_operator.store import StoreError


def test_bytes_and_json_round_trip(store_root: str) -> None:
    uri = store.join(store_root, "a", "b", "blob.bin")
    store.write_bytes_atomic(uri, b"\x00payload\xff")
    assert store.exists(uri)
    assert store.read_bytes(uri) == b"\x00payload\xff"
    assert store.size(uri) == 9

    doc = store.join(store_root, "a", "doc.json")
    store.write_json_atomic(doc, {"b": [1, 2.5, None], "a": "ü"})
    assert store.read_json(doc) == {"a": "ü", "b": [1, 2.5, None]}


def test_overwrite_replaces_the_whole_object(store_root: str) -> None:
    uri = store.join(store_root, "x.bin")
    store.write_bytes_atomic(uri, b"a much longer first version")
    store.write_bytes_atomic(uri, b"short")
    assert store.read_bytes(uri) == b"short"


def test_list_prefix_is_recursive_sorted_and_complete(store_root: str) -> None:
    names = ["date=2024-01-02/hour=01/p1.parquet", "date=2024-01-01/hour=23/p0.parquet", "top.json"]
    for name in names:
        store.write_bytes_atomic(store.join(store_root, "col", name), b"x")
    listed = store.list_prefix(store.join(store_root, "col"))
    assert listed == sorted(store.join(store_root, "col", n) for n in names)
    assert all(store.exists(uri) for uri in listed)
    assert store.list_prefix(store.join(store_root, "nothing-here")) == []


def test_sha256_streams_large_objects(store_root: str) -> None:
    payload = os.urandom(3 * store.CHUNK_SIZE + 17)
    uri = store.join(store_root, "big.bin")
    store.write_bytes_atomic(uri, payload)
    assert store.sha256_file(uri) == hashlib.sha256(payload).hexdigest() == store.sha256_bytes(payload)


def test_plain_paths_are_local_files(tmp_path: Path) -> None:
    path = str(tmp_path / "plain" / "file.txt")
    store.write_bytes_atomic(path, b"hi")
    assert Path(path).read_bytes() == b"hi"
    assert store.list_prefix(str(tmp_path / "plain")) == [path]


def test_failed_write_keeps_the_previous_version_and_leaves_no_temp_file(tmp_path: Path) -> None:
    uri = (tmp_path / "model.skops").as_uri()
    store.write_bytes_atomic(uri, b"version 1")
    with pytest.raises(RuntimeError, match="boom"), store.atomic_writer(uri) as handle:
        handle.write(b"half of version 2")
        raise RuntimeError("boom")
    assert store.read_bytes(uri) == b"version 1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.skops"]


def test_failed_first_write_never_creates_the_final_name(tmp_path: Path) -> None:
    uri = (tmp_path / "new.bin").as_uri()
    with pytest.raises(KeyboardInterrupt), store.atomic_writer(uri) as handle:
        handle.write(b"partial")
        raise KeyboardInterrupt
    assert not store.exists(uri)
    assert list(tmp_path.iterdir()) == []


class _FullDisk(io.RawIOBase):
    """A file on a full disk: every write of bytes fails with ENOSPC, as the kernel's would."""

    def writable(self) -> bool:
        return True

    def write(self, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")


def _open_on_a_full_disk(path: str, mode: str) -> io.BufferedWriter:
    Path(path).touch()  # the temporary exists, as it would
    return io.BufferedWriter(_FullDisk(), buffer_size=1 << 16)


def test_the_callers_error_is_not_masked_by_closing_a_handle_on_a_full_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The block's bytes wait in the buffer; closing after the block failed flushes them and fails
    too. The caller must see its own error, and nothing is left behind."""
    monkeypatch.setattr(store, "open", _open_on_a_full_disk, raising=False)
    uri = (tmp_path / "part.parquet").as_uri()
    with pytest.raises(ValueError, match="the caller's own"), store.atomic_writer(uri) as handle:
        handle.write(b"buffered, not yet written")
        raise ValueError("the caller's own error")
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_at_commit_is_a_store_full_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "open", _open_on_a_full_disk, raising=False)
    uri = (tmp_path / "part.parquet").as_uri()
    with pytest.raises(StoreError) as raised, store.atomic_writer(uri) as handle:
        handle.write(b"flushed when the block ends")
    assert raised.value.reason == "StoreFull"
    assert list(tmp_path.iterdir()) == []


def test_killed_writer_never_leaves_partial_content_under_the_final_name(tmp_path: Path) -> None:
    """A real crash: SIGKILL in the middle of a write (no exception handler runs)."""
    final = tmp_path / "data.parquet"
    writer = textwrap.dedent(
        f"""
        import sys, time
        from mlops_operator import store
        with store.atomic_writer({final.as_uri()!r}) as handle:
            handle.write(b"x" * 1_000_000)
            handle.flush()
            print("writing", flush=True)
            time.sleep(60)
            handle.write(b"the end")
        """
    )
    process = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "writing"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert not final.exists()
    leftovers = list(tmp_path.iterdir())
    assert all(p.name.startswith(".data.parquet.") and p.name.endswith(".tmp") for p in leftovers)
    assert leftovers, "the writer should have been killed mid-write, leaving its hidden temp file"


def test_object_stores_use_the_same_code_and_abort_a_failed_upload(object_root: str) -> None:
    """Real s3fs and adlfs against local endpoints (moto, Azurite) on 127.0.0.1: no rename, the upload
    is the commit, and listings answer in the caller's scheme (adlfs's own is abfs://)."""
    root = object_root
    uri = store.join(root, "models", "m", "v1", "model.skops")
    with pytest.raises(RuntimeError), store.atomic_writer(uri) as handle:
        handle.write(os.urandom(6 << 20))  # beyond one part: a multipart upload is under way
        raise RuntimeError("crash before commit")
    assert not store.exists(uri)

    payload = os.urandom(store.CHUNK_SIZE + 5)
    store.write_bytes_atomic(uri, payload)
    store.write_json_atomic(store.join(root, "models", "m", "registry.json"), {"versions": [1]})
    assert store.read_bytes(uri) == payload
    assert store.sha256_file(uri) == hashlib.sha256(payload).hexdigest()
    assert store.list_prefix(store.join(root, "models")) == [
        store.join(root, "models", "m", "registry.json"),
        uri,
    ]
    with pytest.raises(StoreError) as caught:
        store.read_bytes(store.join(root, "missing.bin"))
    assert caught.value.reason == "ObjectNotFound"


def test_missing_object_is_a_store_error(store_root: str) -> None:
    missing = store.join(store_root, "no", "such.parquet")
    for operation in (store.read_bytes, store.sha256_file, store.read_json):
        with pytest.raises(StoreError) as caught:
            operation(missing)
        assert caught.value.reason == "ObjectNotFound"
        assert "no/such.parquet" in caught.value.message


def test_writing_below_a_file_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "occupied").write_text("a file, not a directory")
    with pytest.raises(StoreError) as caught:
        store.write_bytes_atomic((tmp_path / "occupied" / "x.bin").as_uri(), b"x")
    assert caught.value.reason in {"StoreUnavailable", "ObjectNotFound"}


def test_corrupt_json_is_a_store_error(store_root: str) -> None:
    uri = store.join(store_root, "broken.json")
    store.write_bytes_atomic(uri, b"{not json")
    with pytest.raises(StoreError) as caught:
        store.read_json(uri)
    assert caught.value.reason == "CorruptObject"


def test_missing_extra_names_the_package_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import fsspec  # noqa: F401  (loads fsspec.registry)

    # as in an image built without the azure extra: the import fails
    monkeypatch.setitem(sys.modules, "adlfs", None)
    loaded = sys.modules["fsspec.registry"]._registry  # the package re-exports a read-only view
    for protocol in ("az", "abfs", "abfss"):
        monkeypatch.delitem(loaded, protocol, raising=False)
    with pytest.raises(StoreError) as caught:
        store.read_bytes("az://container/key")
    assert caught.value.reason == "StoreUnavailable"
    assert "mlops-operator[azure]" in caught.value.message


def test_redact_drops_credentials_from_uris() -> None:
    redacted = store.redact("az://account:secretkey@container/path/data.csv?sv=2024&sig=SECRET")
    assert "secretkey" not in redacted and "SECRET" not in redacted
    assert redacted == "az://***@container/path/data.csv"
    assert store.redact("file:///var/lib/mlops/x") == "file:///var/lib/mlops/x"


def test_unreachable_s3_endpoint_is_store_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("s3fs", reason="the s3 extra is not installed")
    import fsspec

    for name, value in {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # the discard port: nothing listens
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    fsspec.get_filesystem_class("s3").clear_instance_cache()
    key = "s3://bucket/key"
    for operation in (lambda: store.read_bytes(key), lambda: store.write_bytes_atomic(key, b"x")):
        with pytest.raises(StoreError) as caught:
            operation()
        assert caught.value.reason == "StoreUnavailable"
