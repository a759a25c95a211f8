"""Annotations people write, read so that no value can break a reconcile. Pure.

Anyone who may edit an object may write anything into its annotations: a key like "²" (a digit to
`str.isdigit`, not to `int`), a 5,000-digit version (beyond `int`'s conversion limit), JSON nested
past the recursion limit, a request longer than the status field that records it. Each reader here
takes what is well-formed, ignores the rest, and says what it ignored (`problems`, posted as one
Warning Event per distinct problem: Events are named after their content).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final

from mlops_operator import contracts
from mlops_operator.reconcilers.context import EventSpec, warning

IGNORED: Final = "AnnotationIgnored"
MAX_REQUEST: Final = 512  # status.handledRetrainRequest holds at most this many characters
MAX_REASON: Final = 1024
_VERSION = re.compile(r"[0-9]{1,9}")  # ASCII digits only; versions stay far below a billion
RETRAIN_FORMAT: Final = '"<RFC3339 time>;<reason>", e.g. "2026-01-01T00:00:00Z;new data"'


def version_number(text: object) -> int | None:
    """A version number written as text, or None when it is not one."""
    return int(text) if isinstance(text, str) and _VERSION.fullmatch(text) else None


def request_time(annotation: str) -> datetime | None:
    """The time of a retrain request `"<RFC3339>;<reason>"` (UTC when it names no zone), None when it has none."""
    stamp, _, _ = annotation.partition(";")
    try:
        moment = datetime.fromisoformat(stamp.strip())
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _excerpt(value: str) -> str:
    return repr(value[:60]) + ("…" if len(value) > 60 else "")


def retrain_request(annotations: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(the retrain request, why it was ignored); a request must be `<RFC3339 time>;<reason>`."""
    value = annotations.get(contracts.ANNOTATION_RETRAIN_REQUESTED)
    if not value:
        return None, None
    key = contracts.ANNOTATION_RETRAIN_REQUESTED
    if len(value) > MAX_REQUEST:
        return None, f"{key} is {len(value)} characters long, at most {MAX_REQUEST} are read: the request is ignored"
    if request_time(value) is None:
        return None, f"{key} must be {RETRAIN_FORMAT}; {_excerpt(value)} is ignored"
    return value, None


def rejected_versions(annotations: Mapping[str, str]) -> tuple[dict[int, str], list[str]]:
    """The versions a person rejected (`{"3": "why"}`), and what was ignored in the annotation."""
    raw = annotations.get(contracts.ANNOTATION_REJECTED_VERSIONS)
    if not raw:
        return {}, []
    key = contracts.ANNOTATION_REJECTED_VERSIONS
    try:
        parsed = json.loads(raw)
    except (ValueError, RecursionError):
        return {}, [f"{key} is not JSON ({_excerpt(raw)}): no version is rejected by it"]
    if not isinstance(parsed, dict):
        return {}, [f'{key} must be a JSON object like {{"3": "reason"}}, got {_excerpt(raw)}: it is ignored']
    rejected: dict[int, str] = {}
    bad: list[str] = []
    for entry, reason in parsed.items():
        version = version_number(entry)
        if version is None:
            bad.append(_excerpt(entry))
        else:
            rejected[version] = reason[:MAX_REASON] if isinstance(reason, str) else ""
    if not bad:
        return rejected, []
    more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
    problem = f"{key}: ignored the entries {', '.join(bad[:5])}{more}: a key must be a version number"
    return rejected, [problem]


def problems(annotations: Mapping[str, str]) -> list[EventSpec]:
    """A Warning Event for each annotation of a Model that is ignored, in whole or in part."""
    _, rejected_problems = rejected_versions(annotations)
    _, request_problem = retrain_request(annotations)
    found = [*rejected_problems, *([request_problem] if request_problem else [])]
    return [warning(IGNORED, p) for p in found]
