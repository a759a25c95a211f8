"""Prediction ids: one per answered request, kept from the client when it sends one.

A generated id is a per-process random prefix and a counter ("3f9c2a1b7d4e-42"): unique across the
server's processes and restarts without a uuid4 per request. A client's own id (the V2 request `id`,
else an `X-Request-Id` header) is kept when it is 1-128 printable ASCII characters; otherwise the
request is refused (400), since a label must later name exactly this id.

A collected row's id (contracts.COLLECT_ID_COLUMN) is the request's id for a one-row request and
"<id>:<i>" for row i of a larger batch; the feedback endpoint takes labels for those row ids.
"""

from __future__ import annotations

import itertools
import re
import uuid
from typing import Final

from mlops_operator.workloads.serve.errors import InvalidInput

MAX_ID_CHARS: Final = 128
_VALID: Final = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]{0,126}[\x21-\x7e])?")
_PREFIX: Final = uuid.uuid4().hex[:12]
_COUNTER = itertools.count(1)


def new_id() -> str:
    """A fresh id (cheap: a counter, no system call)."""
    return f"{_PREFIX}-{next(_COUNTER)}"


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


__all__ = ["MAX_ID_CHARS", "checked", "new_id", "row_ids", "valid"]
