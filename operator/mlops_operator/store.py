"""The artifact store: a few typed operations over fsspec URIs.

`file:///var/lib/mlops/...` (a PVC path) works out of the box; `az://container/...` (adlfs) and
`s3://bucket/...` (s3fs) work through the same code once the `azure` or `s3` extra is installed.
Credentials come from the environment the way each fsspec backend reads them (for Azure: workload
identity or AZURE_STORAGE_* variables; for S3: the AWS_* variables or an IAM role).

Atomic writes, so a crash never leaves a half artifact under its final name:
- local files are written to a hidden temporary name in the same directory, flushed and fsynced, then
  renamed over the final name (`os.replace`, atomic on POSIX), and the directory is fsynced;
- object stores have no atomic rename (it is copy + delete), but a single object PUT is atomic: the
  object appears only when the upload completes (S3 multipart uploads and Azure block lists are
  committed on close). So the payload goes straight to the final key and an upload that fails is
  discarded (aborted) instead of committed.
Multi-file artifacts are committed by writing their marker file last (see the workloads).

Every failure becomes a `StoreError` with a CamelCase reason; workloads map it to
`contracts.ExitCode.STORE_ERROR`. Messages never carry credentials: URIs are redacted.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import uuid
from collections.abc import Iterator
from typing import IO, Any

import fsspec
import orjson
from fsspec.implementations.local import LocalFileSystem

CHUNK_SIZE = 1 << 20

_EXTRAS = {"s3": "s3", "az": "azure", "abfs": "azure", "abfss": "azure"}


class StoreError(Exception):
    """The store is unreachable, denies access, is full, or lacks the object.

    `reason` is one of ObjectNotFound, AccessDenied, StoreFull, StoreUnavailable, CorruptObject.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def redact(uri: str) -> str:
    """Drop userinfo and query strings (SAS tokens, keys) from a URI before it reaches a log."""
    uri = re.sub(r"^([a-z0-9+.-]+://)[^/@]*@", r"\1***@", uri, flags=re.IGNORECASE)
    return uri.split("?", 1)[0]


def error_from(exc: BaseException, uri: str) -> StoreError:
    """The StoreError for a backend's exception on `uri` (for a caller that must tell a failed write
    through atomic_writer's handle from its own errors; elsewhere use `translated`)."""
    where = redact(uri)
    if isinstance(exc, StoreError):
        return exc
    if isinstance(exc, FileNotFoundError):
        return StoreError("ObjectNotFound", f"not found in the store: {where}")
    if isinstance(exc, PermissionError):
        return StoreError("AccessDenied", f"access denied by the store: {where}")
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StoreError("StoreFull", f"the store is full writing {where}")
    if isinstance(exc, IsADirectoryError | NotADirectoryError):
        return StoreError("ObjectNotFound", f"not a file in the store: {where}")
    detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    return StoreError("StoreUnavailable", f"store error on {where}: {detail}")


@contextlib.contextmanager
def translated(uri: str) -> Iterator[None]:
    """Around store operations only (never a caller's code): backends raise their own exception
    types for a dead endpoint or bad credentials (botocore's EndpointConnectionError, azure-core's
    ServiceRequestError), so anything short of BaseException is a store failure here."""
    try:
        yield
    except Exception as exc:
        raise error_from(exc, uri) from exc


def filesystem(uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec filesystem for a URI and the path inside it. Plain paths mean local files."""
    scheme = uri.split("://", 1)[0] if "://" in uri else "file"
    try:
        fs, path = fsspec.core.url_to_fs(uri)
    except ImportError as exc:
        extra = _EXTRAS.get(scheme, scheme)
        hint = f"pip install 'mlops-operator[{extra}]'"
        raise StoreError("StoreUnavailable", f"{scheme}:// needs the '{extra}' extra: {hint}") from exc
    except Exception as exc:
        raise error_from(exc, uri) from exc
    return fs, path


def _is_local(fs: fsspec.AbstractFileSystem) -> bool:
    return isinstance(fs, LocalFileSystem)


def join(root: str, *parts: str) -> str:
    return "/".join([root.rstrip("/"), *(p.strip("/") for p in parts)])


def exists(uri: str) -> bool:
    fs, path = filesystem(uri)
    with translated(uri):
        return bool(fs.exists(path))


def size(uri: str) -> int:
    fs, path = filesystem(uri)
    with translated(uri):
        return int(fs.size(path))


def read_bytes(uri: str) -> bytes:
    fs, path = filesystem(uri)
    with translated(uri):
        data: bytes = fs.cat_file(path)
        return data


@contextlib.contextmanager
def open_read(uri: str) -> Iterator[IO[bytes]]:
    """A binary file object for streaming reads (pandas and pyarrow accept it)."""
    fs, path = filesystem(uri)
    with translated(uri), fs.open(path, "rb") as handle:
        yield handle


def read_json(uri: str) -> Any:
    data = read_bytes(uri)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise StoreError("CorruptObject", f"not valid JSON: {redact(uri)}: {exc}") from exc


@contextlib.contextmanager
def atomic_writer(uri: str) -> Iterator[IO[bytes]]:
    """Write through a file object; the final name appears only if the block finishes without error.

    Errors of the store become StoreError; an exception raised by the caller's block propagates as is
    (after the partial write is thrown away).
    """
    fs, path = filesystem(uri)
    if _is_local(fs):
        yield from _local_atomic_writer(uri, path)
    else:
        yield from _object_atomic_writer(uri, fs, path)


def _local_atomic_writer(uri: str, path: str) -> Iterator[IO[bytes]]:
    directory = os.path.dirname(path) or "."
    temporary = os.path.join(directory, f".{os.path.basename(path)}.{uuid.uuid4().hex}.tmp")
    with translated(uri):
        os.makedirs(directory, exist_ok=True)
        handle = open(temporary, "wb")  # noqa: SIM115 - closed on every path below
    committed = False
    try:
        yield handle
        with translated(uri):
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
            os.replace(temporary, path)
        committed = True
    finally:
        if not committed:
            # Closing flushes what is still buffered, which fails the way the error being raised did
            # (a full disk): that first error is the one to report, not the close's.
            with contextlib.suppress(OSError):
                handle.close()
            with contextlib.suppress(OSError):
                os.unlink(temporary)
    _fsync_directory(directory)


def _object_atomic_writer(uri: str, fs: fsspec.AbstractFileSystem, path: str) -> Iterator[IO[bytes]]:
    with translated(uri):
        with contextlib.suppress(OSError, NotImplementedError):
            fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)  # a no-op on flat object stores
        handle = fs.open(path, "wb")
    try:
        yield handle
    except BaseException:
        # Abort the upload: closing would commit a partial object under the final key.
        discard = getattr(handle, "discard", None)
        with contextlib.suppress(Exception):
            if discard is not None:
                discard()
            handle.closed = True  # or the file's finalizer would flush (commit) what is left
        raise
    with translated(uri):
        handle.close()


def _fsync_directory(directory: str) -> None:
    # Makes the rename itself durable; some filesystems (and non-Linux hosts) refuse, harmlessly.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_bytes_atomic(uri: str, data: bytes) -> None:
    with atomic_writer(uri) as handle:
        handle.write(data)


def write_json_atomic(uri: str, value: Any) -> None:
    write_bytes_atomic(uri, orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")


def list_prefix(uri: str) -> list[str]:
    """Every object under a prefix, recursively, as full URIs in sorted order; [] if there is none."""
    fs, path = filesystem(uri)
    with translated(uri):
        if not fs.exists(path):
            return []
        found = fs.find(path)
    if "://" not in uri:
        return sorted(found)
    # in the caller's scheme: adlfs would answer abfs:// for az://, which no plan or status uses
    scheme = uri.split("://", 1)[0]
    return sorted(f"{scheme}://{fs.unstrip_protocol(p).split('://', 1)[1]}" for p in found)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(uri: str) -> str:
    """Hash an object by streaming it in 1 MiB chunks (constant memory)."""
    digest = hashlib.sha256()
    with open_read(uri) as handle, translated(uri):
        while chunk := handle.read(CHUNK_SIZE):
            digest.update(chunk)
    return digest.hexdigest()


def remove(uri: str) -> None:
    """Delete an object or a prefix; a missing one is not an error."""
    fs, path = filesystem(uri)
    with translated(uri):
        if fs.exists(path):
            fs.rm(path, recursive=True)


__all__ = [
    "StoreError",
    "atomic_writer",
    "error_from",
    "exists",
    "filesystem",
    "join",
    "list_prefix",
    "open_read",
    "read_bytes",
    "read_json",
    "redact",
    "remove",
    "sha256_bytes",
    "sha256_file",
    "size",
    "translated",
    "write_bytes_atomic",
    "write_json_atomic",
]
