"""A `file://` source stays on the namespace's own claim, also through symlinks, also when they move.

The operator refuses a source URI outside the mount or with `..` (builders.tenancy), but it cannot
see the files: a link on the claim to `/proc/self/environ` or to the image's own files would read
what is not the tenant's data. Two guards, both in the profile Job:

- after listing, every file is resolved (`check_source_files`), and one that ends up outside the
  store's root is a spec error (SourceNotAllowed) before any byte of any file is read;
- each file is then opened by `open_beneath`, one path component at a time from a descriptor of the
  root with O_NOFOLLOW, so a component is never a link the kernel follows by itself: a link met on
  the way is read and resolved here, against the root, and one that leads out of it is refused. A
  link swapped in after the check (time of check to time of use) therefore meets the same refusal,
  and the bytes read are those of the file that was opened, not of whatever the name means later.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence
from typing import Final

from mlops_operator import store
from mlops_operator.workloads.common import SpecError
from mlops_operator.workloads.sources import SourceFile

FILE: str = "file://"
MAX_LINKS: Final = 40  # as the kernel's own limit on links followed in one lookup (ELOOP)
_DIR_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS: Final = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | getattr(os, "O_NONBLOCK", 0)


def check_source_files(source_uri: str, files: Sequence[SourceFile], store_uri: str) -> None:
    """Raise SpecError when a file of a `file://` source that lies under the `file://` store root by
    its path resolves outside it (the operator admits no other `file://` source in a cluster)."""
    if not source_uri.startswith(FILE) or not store_uri.startswith(FILE):
        return
    root = os.path.normpath(store_uri.removeprefix(FILE))
    real_root = os.path.realpath(root)
    for file in files:
        path = os.path.normpath(file.uri.removeprefix(FILE))
        if _under(path, root) and not _under(os.path.realpath(path), real_root):
            raise _escape(file.uri, store_uri)


def read_source_file(uri: str, store_uri: str) -> bytes | None:
    """The bytes of a `file://` source file under the `file://` store root, opened beneath the root
    (`open_beneath`); None for any other file, which the caller reads as it would."""
    if not uri.startswith(FILE) or not store_uri.startswith(FILE):
        return None
    root = os.path.normpath(store_uri.removeprefix(FILE))
    path = os.path.normpath(uri.removeprefix(FILE))
    if not _under(path, root):
        return None
    try:
        fd = open_beneath(root, os.path.relpath(path, root), uri=uri, store_uri=store_uri)
        with os.fdopen(fd, "rb") as handle:
            return handle.read()
    except OSError:
        with store.translated(uri):  # a missing file is ObjectNotFound, as for any read
            raise


def open_beneath(root: str, relative: str, *, uri: str, store_uri: str) -> int:
    """A read-only descriptor of the regular file at `relative` under `root`, every component opened
    with O_NOFOLLOW from its parent's descriptor; links are resolved here and may not leave `root`.

    Raises SpecError (SourceNotAllowed) for a way out, OSError for what is missing or not a file.
    """
    real_root = os.path.realpath(root)
    stack = [os.open(real_root, _DIR_FLAGS)]
    pending = [c for c in relative.split("/") if c]
    links = 0
    try:
        while pending:
            name = pending.pop(0)
            if name == ".":
                continue
            if name == "..":
                if len(stack) == 1:
                    raise _escape(uri, store_uri)
                os.close(stack.pop())
                continue
            last = not pending
            try:
                fd = os.open(name, _FILE_FLAGS if last else _DIR_FLAGS, dir_fd=stack[-1])
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR) or not _is_link(name, stack[-1]):
                    raise
                links += 1
                if links > MAX_LINKS:
                    raise OSError(errno.ELOOP, "too many levels of symbolic links", uri) from exc
                target = os.readlink(name, dir_fd=stack[-1])
                pending = [*_link_components(target, root, real_root, uri, store_uri, stack), *pending]
                continue
            if last:
                return _regular(fd, uri)
            stack.append(fd)
        raise IsADirectoryError(errno.EISDIR, "a directory, not a file", uri)
    finally:
        for fd in stack:
            os.close(fd)


def _is_link(name: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _link_components(target: str, root: str, real_root: str, uri: str, store_uri: str, stack: list[int]) -> list[str]:
    """The components a link's target adds to the walk; an absolute target restarts at the root."""
    if not os.path.isabs(target):
        return target.split("/")
    target = os.path.normpath(target)
    for base in (real_root, root):
        if _under(target, base):
            while len(stack) > 1:
                os.close(stack.pop())
            return os.path.relpath(target, base).split("/")
    raise _escape(uri, store_uri)


def _regular(fd: int, uri: str) -> int:
    """`fd` if it is a regular file (not a FIFO or a device node a tenant made on its claim)."""
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file", uri)
    return fd


def _escape(uri: str, store_uri: str) -> SpecError:
    return SpecError(
        "SourceNotAllowed",
        f"{store.redact(uri)} leads outside the store ({store.redact(store_uri)}) through a "
        "symbolic link: a file:// source reads only files on the namespace's own claim",
    )


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)
