"""The optional bearer-token check on inference and feedback (Model spec.serving.auth).

The token comes from a file: the Secret volume the Deployment mounts (never an env var, which
`kubectl describe` and crash dumps print). The kubelet rotates a Secret volume by swapping a symlink,
so the file is stat-ed at most once per `RECHECK_SECONDS` and re-read when its identity changes;
a rotation takes effect within that interval without a restart. Only the token's bytes are
compared (constant time); neither the token nor a client's header is ever logged.
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from collections.abc import Iterable

from mlops_operator.workloads.serve.errors import ServeError

log = logging.getLogger(__name__)

RECHECK_SECONDS = 1.0
CHALLENGE = b'Bearer realm="mlops-operator"'
_AUTHORIZATION = b"authorization"
_SCHEME = b"bearer "


class Unauthorized(ServeError):
    """No `Authorization: Bearer <token>`, or a token that does not match."""

    status = 401


class TokenFileError(Exception):
    """The token file is missing, unreadable or empty at start: the server refuses to run open."""


def _read_token(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            token = f.read().strip()
    except OSError as exc:
        raise TokenFileError(f"cannot read the token file {path}: {exc.strerror}") from None
    if not token:
        raise TokenFileError(f"the token file {path} is empty")
    return token


def _identity(path: str) -> tuple[int, int, int]:
    st = os.stat(path)  # follows the kubelet's ..data symlink, so a rotation changes the inode
    return st.st_ino, st.st_mtime_ns, st.st_size


class TokenCheck:
    """Checks a request's headers against the token in `path`, reloading it after a rotation."""

    def __init__(self, path: str, recheck_seconds: float = RECHECK_SECONDS) -> None:
        self.path = path
        self.recheck_seconds = recheck_seconds
        self._token = _read_token(path)
        self._identity = _identity(path)
        self._checked_at = time.monotonic()

    def check(self, headers: Iterable[tuple[bytes, bytes]]) -> None:
        self._maybe_reload()
        for key, value in headers:
            if key == _AUTHORIZATION:
                if value[:7].lower() == _SCHEME and hmac.compare_digest(value[7:].strip(), self._token):
                    return
                raise Unauthorized("invalid bearer token")
        raise Unauthorized("missing bearer token: send Authorization: Bearer <token>")

    def _maybe_reload(self) -> None:
        now = time.monotonic()
        if now - self._checked_at < self.recheck_seconds:
            return
        self._checked_at = now
        try:
            identity = _identity(self.path)
            if identity == self._identity:
                return
            self._token = _read_token(self.path)
            self._identity = identity
            log.info("the inference token file changed; using the new token")
        except (OSError, TokenFileError) as exc:
            # Mid-rotation or a deleted Secret: keep the last good token rather than open the server.
            log.warning("keeping the previous inference token: %s", exc)
