"""What keeps the operator to its own objects, and its errors quiet and clean. Pure (the clock is passed in).

- `controller_uid` / `controlled_by`: an object is ours to patch, adopt or delete only when its
  controller ownerReference names the parent's uid. An object of the same name without one (a
  Service someone created by hand, another operator's Deployment) is left exactly as it is.
- `redact`: URL query strings (SAS tokens, presigned signatures) never reach a condition, an Event
  or a log line through an API server's error message.
- `RejectionMemo`: a body the API server refused (400/422) is not sent again until it changes or
  its backoff ends, so a spec the server rejects costs one request per backoff, not one per resync.
- `RecentEvents`: the names of Events posted lately, so re-asserting one costs no request.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Final

# Set by the Job controller on every pod of a Job (Kubernetes 1.27+), and the Job's own selector:
# unlike job-name, it cannot be matched by a pod someone creates under a chosen name.
LABEL_CONTROLLER_UID: Final = "batch.kubernetes.io/controller-uid"

_URL_QUERY = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s?#\"'<>\\]*)\?[^\s#\"'<>\\]*")
REDACTED: Final = "?<redacted>"


def controller_uid(obj: dict[str, Any]) -> str | None:
    """The uid of the object's controller ownerReference, if it has one."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller") is True:
            return str(ref.get("uid") or "") or None
    return None


def controller_of(obj: dict[str, Any]) -> str:
    """The controller ownerReference in words (for messages): `Model iris (uid …)`, or `no controller`."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller") is True:
            return f"{ref.get('kind')} {ref.get('name')} (uid {ref.get('uid')})"
    return "no controller"


def controlled_by(obj: dict[str, Any], uid: str | None) -> bool:
    return bool(uid) and controller_uid(obj) == uid


def predecessor_of(obj: dict[str, Any], parent: dict[str, Any]) -> bool:
    """Whether `obj`'s controller is a parent of the same kind and name as `parent` but another uid:
    an object left by a parent that was deleted and created again, which the GC is about to remove."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller") is True:
            same = (ref.get("kind"), ref.get("name")) == (parent.get("kind"), parent.get("name"))
            return same and ref.get("uid") != parent.get("uid")
    return False


def redact(text: str) -> str:
    """Every URL's query string replaced, e.g. `https://a.blob.core.windows.net/c?sv=…&sig=…`."""
    return _URL_QUERY.sub(lambda m: m.group(1) + REDACTED, text)


def digest(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class _Refusal:
    digest: str
    message: str
    until: float
    attempts: int


class RejectionMemo:
    """Bodies the API server refused, by target; backoff FIRST doubling to LONGEST seconds."""

    FIRST: Final = 300.0
    LONGEST: Final = 3600.0

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._items: OrderedDict[str, _Refusal] = OrderedDict()

    def refused(self, target: str, body: Any, now: float) -> tuple[str, float] | None:
        """(message, seconds left) when this very body was refused for `target` and its backoff runs."""
        found = self._items.get(target)
        if found is None or found.digest != digest(body) or now >= found.until:
            return None
        return found.message, found.until - now

    def remember(self, target: str, body: Any, message: str, now: float) -> float:
        """Record a refusal; returns the backoff in seconds (the same body refused again doubles it)."""
        key = digest(body)
        previous = self._items.pop(target, None)
        attempts = previous.attempts + 1 if previous is not None and previous.digest == key else 1
        backoff: float = min(self.FIRST * 2.0 ** (attempts - 1), self.LONGEST)
        self._items[target] = _Refusal(key, message, now + backoff, attempts)
        while len(self._items) > self._size:
            self._items.popitem(last=False)
        return backoff

    def forget(self, target: str) -> None:
        self._items.pop(target, None)


class RecentEvents:
    """The names of the last `size` Events posted (an Event's name derives from its content)."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._names: OrderedDict[str, None] = OrderedDict()

    def seen(self, name: str) -> bool:
        if name in self._names:
            self._names.move_to_end(name)
            return True
        return False

    def add(self, name: str) -> None:
        self._names[name] = None
        while len(self._names) > self._size:
            self._names.popitem(last=False)
