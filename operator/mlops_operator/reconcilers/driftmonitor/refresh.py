"""Refresh first, then retrain: what the Dataset's refresh outcome means for a fired trigger. Pure.

The monitor asks the Model's Dataset to re-read its source (annotation `mlops.dev/refresh-requested:
"<RFC3339>;<reason>"`) and waits for `status.lastRefresh` — `{requestedAt, finishedAt, outcome:
NewVersion | Unchanged | Failed, version}` — to answer its request (the same `request` value, or a
`requestedAt` at least as recent):

- NewVersion: there is data the serving model was not trained on: retrain (the Model's own
  onDatasetChange does it, or the monitor asks with the retrain annotation);
- Unchanged: NoNewData: nothing is trained, and the monitor says so on itself and on the Model;
- Failed: no retrain (RefreshFailed);
- no answer within action.refreshTimeoutSeconds: no retrain (RefreshTimedOut).

The status is read leniently (a Dataset written by an older operator has no lastRefresh; a field of
an unexpected shape counts as absent), and a Dataset whose current version differs from the one it
had when asked has new data whatever lastRefresh says (another refresh may have brought it).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from mlops_operator import contracts
from mlops_operator.api.v1alpha1.driftmonitor import PendingRefresh

# contracts.ANNOTATION_REFRESH_REQUESTED, written by the Dataset side's own change; the name is the
# contract either way, so this module does not wait for that change to land.
ANNOTATION_REFRESH_REQUESTED: Final[str] = getattr(
    contracts, "ANNOTATION_REFRESH_REQUESTED", f"{contracts.GROUP}/refresh-requested"
)
NEW_VERSION, UNCHANGED, FAILED = "NewVersion", "Unchanged", "Failed"


class State(enum.StrEnum):
    PENDING = "Pending"
    NEW_DATA = "NewData"
    NO_NEW_DATA = "NoNewData"
    FAILED = "RefreshFailed"
    TIMED_OUT = "RefreshTimedOut"


@dataclass(frozen=True)
class Outcome:
    state: State
    version: str | None = None  # the dataset version after the refresh
    message: str = ""


def _time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    stamp = value.partition(";")[0].strip().replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def last_refresh(body: dict[str, Any] | None) -> dict[str, Any]:
    status = (body or {}).get("status")
    found = status.get("lastRefresh") if isinstance(status, dict) else None
    return found if isinstance(found, dict) else {}


def current_version(body: dict[str, Any] | None) -> str | None:
    status = (body or {}).get("status")
    version = status.get("version") if isinstance(status, dict) else None
    return version if isinstance(version, str) and version else None


def outcome(pending: PendingRefresh, body: dict[str, Any] | None, now: datetime, timeout_seconds: int) -> Outcome:
    """What became of the refresh `pending` asked for."""
    name = pending.dataset
    if body is None:
        return Outcome(State.FAILED, message=f"Dataset {name} no longer exists")
    last, version = last_refresh(body), current_version(body)
    if version is not None and pending.dataset_version is not None and version != pending.dataset_version:
        # new data since the request, whatever brought it (this refresh, a scheduled one, a spec change)
        return Outcome(State.NEW_DATA, version, f"Dataset {name} has a new version {version[:12]}")
    answered = last.get("request") == pending.request or (
        (at := _time(last.get("requestedAt"))) is not None and at >= pending.requested_at
    )
    if answered and last.get("finishedAt"):
        kind = last.get("outcome")
        if kind == NEW_VERSION:
            new = last.get("version") if isinstance(last.get("version"), str) else version
            return Outcome(State.NEW_DATA, new, f"Dataset {name} has a new version {str(new)[:12]}")
        if kind == UNCHANGED:
            same = (version or pending.dataset_version or "")[:12]
            return Outcome(State.NO_NEW_DATA, version, f"Dataset {name} has no new data (still version {same})")
        if kind == FAILED:
            return Outcome(State.FAILED, version, f"Dataset {name} could not refresh its source")
    if now >= pending.requested_at + timedelta(seconds=timeout_seconds):
        return Outcome(
            State.TIMED_OUT,
            message=f"Dataset {name} reported no refresh outcome within {timeout_seconds} s of the request",
        )
    return Outcome(State.PENDING)


def pending_for(dataset: str, request: str, requested_at: datetime, version: str | None, reason: str) -> PendingRefresh:
    return PendingRefresh(
        dataset=dataset, request=request, requested_at=requested_at, dataset_version=version, reason=reason[:512]
    )


__all__ = ["ANNOTATION_REFRESH_REQUESTED", "Outcome", "State", "last_refresh", "outcome", "pending_for"]
