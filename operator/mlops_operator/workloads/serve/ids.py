"""Prediction ids: one per answered request, kept from the client when it sends one.

A generated id is a per-process random prefix, a counter and a check ("3f9c2a1b7d4e-42.9b1c04de"):
unique across the server's processes and restarts without a uuid4 per request. The check is a keyed
blake2s of the rest, keyed by the model's name, so every server of the Model (any version, replica or
restart) recognises the ids any of them issued, and the feedback endpoint refuses (400) a label whose
id is in this form but was issued by no server of this model: a mistyped, truncated or foreign id is
told at once instead of silently never joining. The check is not a secret (the name is not): it
catches mistakes, not forgery, which the optional bearer token is for.

A client's own id (the V2 request `id`, else an `X-Request-Id` header) is kept when it is 1-128
printable ASCII characters; otherwise the request is refused (400), since a label must later name
exactly this id. No server can know which client ids some replica answered, so labels for them are
accepted and the live-quality check counts the ones that never join as `unknown`.

A collected row's id (contracts.COLLECT_ID_COLUMN) is the request's id for a one-row request and
"<id>:<i>" for row i of a larger batch; the feedback endpoint takes labels for those row ids.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import re
import uuid
from typing import Final

from mlops_operator.workloads.serve.errors import InvalidInput

MAX_ID_CHARS: Final = 128
_VALID: Final = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]{0,126}[\x21-\x7e])?")
_PREFIX: Final = uuid.uuid4().hex[:12]
_COUNTER = itertools.count(1)
# A server-issued id, optionally with the ":<row>" suffix of a batch's row (row_ids).
_ISSUED_FORM: Final = re.compile(r"([0-9a-f]{12}-[1-9][0-9]*)\.([0-9a-f]{8})(?::(?:0|[1-9][0-9]*))?")


class Issuer:
    """Issues and recognises the ids of one model's servers."""

    def __init__(self, model_name: str) -> None:
        self._key = hashlib.blake2s(model_name.encode()).digest()

    def _check(self, base: str) -> str:
        return hashlib.blake2s(base.encode(), key=self._key, digest_size=4).hexdigest()

    def new_id(self) -> str:
        """A fresh id (cheap: a counter and one 4-byte blake2s, no system call)."""
        base = f"{_PREFIX}-{next(_COUNTER)}"
        return f"{base}.{self._check(base)}"

    def foreign(self, value: str) -> bool:
        """Whether `value` is in the servers' own form but no server of this model issued it
        (a client's own ids are never foreign: nothing can tell)."""
        match = _ISSUED_FORM.fullmatch(value)
        return match is not None and not hmac.compare_digest(match.group(2), self._check(match.group(1)))


def valid(value: object) -> bool:
    """Whether `value` is an id a client may send: a string of 1-128 printable ASCII characters
    without leading or trailing spaces."""
    return isinstance(value, str) and len(value) <= MAX_ID_CHARS and _VALID.fullmatch(value) is not None


def checked(value: object, where: str) -> str:
    """A client's id, or InvalidInput naming `where` it came from."""
    if not valid(value):
        raise InvalidInput(
            f"{where} must be a string of 1-{MAX_ID_CHARS} printable ASCII characters "
            "without leading or trailing spaces"
        )
    assert isinstance(value, str)
    return value


def row_ids(request_id: str, rows: int) -> list[str]:
    """The collected rows' ids: the request's id for one row, "<id>:<i>" for row i of a batch."""
    if rows == 1:
        return [request_id]
    return [f"{request_id}:{i}" for i in range(rows)]


__all__ = ["MAX_ID_CHARS", "Issuer", "checked", "row_ids", "valid"]
