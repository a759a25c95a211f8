"""How many API requests the operator sends, by verb and resource: in total, and per reconcile.

`Kube` notes every request it sends (`note`); the totals are `Kube.requests`, and a reconcile
that runs inside `counting()` gets its own count as well (tasks started inside, asyncio.gather,
share it). The controller logs each reconcile's count at DEBUG with the time it waited in the
queue and the time it worked, which is how one finds where a cycle's requests go.

The verbs are the API server's own (get, list, create, patch, delete) and the resource is the
plural with its subresource ("models/status", "jobs"), so a count reads like an audit log.
kopf's own requests (watches, its annotations, finalizers) do not go through `Kube`: the scale
benchmark and tests/integration/test_request_budget.py count those at the API server.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

RequestKind = tuple[str, str]  # (verb, resource), e.g. ("patch", "models/status")
Requests = Counter[RequestKind]

_current: ContextVar[Requests | None] = ContextVar("mlops_kube_requests", default=None)
_VERBS = {"POST": "create", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}


def kind_of_request(method: str, path: str) -> RequestKind:
    """(verb, resource) of one REST request: /api/v1/namespaces/ns/jobs/j1/status, PATCH →
    ("patch", "jobs/status"); a GET of a collection is a list."""
    parts = [p for p in path.split("?", 1)[0].split("/") if p]
    rest = parts[2:] if parts[:1] == ["api"] else parts[3:]  # after /api/v1 or /apis/group/version
    if rest[:1] == ["namespaces"] and len(rest) > 2:
        rest = rest[2:]  # a namespaced resource (not the namespace itself)
    resource = rest[0] if rest else "?"
    named, subresource = len(rest) > 1, rest[2] if len(rest) > 2 else None
    verb = _VERBS.get(method.upper(), method.lower())
    if method.upper() == "GET":
        verb = "get" if named else "list"
    return verb, f"{resource}/{subresource}" if subresource else resource


@contextmanager
def counting() -> Iterator[Requests]:
    """Count, into the Counter it yields, every request `Kube` sends inside."""
    requests: Requests = Counter()
    token = _current.set(requests)
    try:
        yield requests
    finally:
        _current.reset(token)


def note(totals: Requests, method: str, path: str) -> None:
    """One request: into `totals` and into the count of the reconcile in progress, if any."""
    kind = kind_of_request(method, path)
    totals[kind] += 1
    current = _current.get()
    if current is not None:
        current[kind] += 1


def describe(requests: Requests) -> str:
    """'3 (get models 1, list jobs 1, patch models/status 1)', most frequent first."""
    parts = ", ".join(f"{verb} {resource} {n}" for (verb, resource), n in requests.most_common())
    return f"{sum(requests.values())} ({parts})" if parts else "0"
