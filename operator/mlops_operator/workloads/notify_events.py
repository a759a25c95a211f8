"""`mlops-operator notify-events`: deliver a batch of release events (CloudEvents) to their sinks.

    mlops-operator notify-events --spec '<EventsPlan JSON>'

Each event is POSTed, in order, to each sink in CloudEvents structured mode
(`Content-Type: application/cloudevents+json`), with the same SSRF protections as `notify`
(https only, public addresses only, no redirects, unless the plan allows more). Every request is
signed with the sink's key (the file `sink-<i>` in $MLOPS_EVENT_KEYS_DIR, a mounted Secret):

    X-Mlops-Timestamp: <unix seconds>
    X-Mlops-Signature: sha256=<hex HMAC-SHA256 of b"<timestamp>." + body>

so a receiver verifies the exact body bytes and rejects an old timestamp (a replay). The key never
appears in a log line or the result.

A request that fails is retried `attempts` times with a doubling pause; when a sink still fails,
that event and the sink's remaining events of the batch are reported as failed (dead letters) rather
than waiting on a receiver that is down. Delivery failures are results, not a failed Job; a plan
that cannot be read, or a key that is missing, exits with SPEC_ERROR.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

from mlops_operator.api.v1alpha1.events import EventsPlan, EventsResult, SinkFailure
from mlops_operator.workloads import common, notify

log = logging.getLogger(__name__)

ENV_KEYS_DIR: Final = "MLOPS_EVENT_KEYS_DIR"
DEFAULT_KEYS_DIR: Final = "/var/run/mlops/event-keys"
CONTENT_TYPE: Final = "application/cloudevents+json"
SIGNATURE_HEADER: Final = "X-Mlops-Signature"
TIMESTAMP_HEADER: Final = "X-Mlops-Timestamp"
ERROR_LIMIT: Final = 200

Sleep = Callable[[float], None]


def main(argv: Sequence[str]) -> int:
    args = common.plan_parser("notify-events", __doc__, EventsPlan).parse_args(list(argv))
    return common.run_plan("notify-events", args, EventsPlan, deliver, failed_result)


def failed_result(error: common.WorkloadError) -> EventsResult:
    return EventsResult(ok=False, reason=error.reason, error=error.message[:ERROR_LIMIT])


def key_of(sink: int) -> bytes:
    path = Path(os.environ.get(ENV_KEYS_DIR, DEFAULT_KEYS_DIR)) / f"sink-{sink}"
    try:
        key = path.read_bytes().strip()
    except OSError:
        raise common.SpecError("MissingEventKey", f"the HMAC key of sink {sink} is not mounted") from None
    if not key:
        raise common.SpecError("MissingEventKey", f"the HMAC key of sink {sink} is empty")
    return key


def body_of(event: dict[str, Any]) -> bytes:
    return json.dumps(event, sort_keys=True, separators=(",", ":")).encode()


def signature(key: bytes, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>`: HMAC-SHA256 over `<timestamp>.` and the body's exact bytes."""
    return "sha256=" + hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def signed_headers(key: bytes, body: bytes, now: float) -> dict[str, str]:
    timestamp = str(int(now))
    return {
        "Content-Type": CONTENT_TYPE,
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: signature(key, timestamp, body),
    }


def deliver(plan: EventsPlan, sleep: Sleep = time.sleep) -> EventsResult:
    """Every event to every sink, in order; which sinks failed from which event on."""
    keys = [key_of(i) for i in range(len(plan.sinks))]
    failures = [f for i, url in enumerate(plan.sinks) if (f := _deliver_to_sink(plan, i, url, keys[i], sleep))]
    took_all = len(plan.sinks) - len(failures)
    log.info("%d events; %d of %d sinks took them all", len(plan.events), took_all, len(plan.sinks))
    return EventsResult(events=len(plan.events), failures=failures)


def _deliver_to_sink(plan: EventsPlan, index: int, url: str, key: bytes, sleep: Sleep) -> SinkFailure | None:
    """The sink's failure, at the first event it did not take after every retry; None when it took all."""
    try:
        destination = notify.destination_of(url, plan)
    except common.WorkloadError as exc:  # a refused or unresolvable URL: fail the whole batch for it
        return _failure(index, 0, 0, exc)
    for position, event in enumerate(plan.events):
        failure = _post_with_retries(plan, destination, key, event, sleep)
        if failure is not None:
            attempts, error = failure
            return _failure(index, position, attempts, error)
    return None


def _post_with_retries(
    plan: EventsPlan, destination: notify.Destination, key: bytes, event: dict[str, Any], sleep: Sleep
) -> tuple[int, notify.DeliveryError] | None:
    """None once the sink took the event; (attempts, last error) when every attempt failed."""
    body = body_of(event)
    pause = plan.backoff_seconds
    for attempt in range(1, plan.attempts + 1):
        try:
            notify.post(destination, body, plan.timeout_seconds, signed_headers(key, body, time.time()))
        except notify.DeliveryError as exc:
            log.warning("event %s, attempt %d of %d: %s", event.get("id"), attempt, plan.attempts, exc.message)
            if attempt == plan.attempts:
                return attempt, exc
            sleep(pause)
            pause *= 2
            continue
        return None
    return None  # attempts >= 1: not reached


def _failure(sink: int, position: int, attempts: int, error: common.WorkloadError) -> SinkFailure:
    status = error.status if isinstance(error, notify.DeliveryError) else None
    return SinkFailure(
        sink=sink,
        first_failed=position,
        attempts=attempts,
        status=status,
        reason=error.reason,
        error=error.message[:ERROR_LIMIT],
    )


__all__ = ["body_of", "deliver", "main", "signature", "signed_headers"]
