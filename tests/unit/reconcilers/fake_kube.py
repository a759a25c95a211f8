"""An in-memory API server behind the real `Kube`: only `_request` is replaced, so every rule of the
client (ownership checks, uid preconditions, the rejection memo, the Event cache) runs as written."""

from __future__ import annotations

import copy
import itertools
from typing import Any, cast
from urllib.parse import parse_qs

from kubernetes.client import ApiClient

from mlops_operator.kube import ApiError, Conflict, Kube, NotFound
from mlops_operator.kube.client import _error

_UIDS = itertools.count(1)


def uid() -> str:
    return f"00000000-0000-0000-0000-{next(_UIDS):012d}"


class FakeKube(Kube):
    def __init__(self) -> None:
        super().__init__(cast(ApiClient, object()))
        self.objects: dict[str, dict[str, Any]] = {}  # object path → object
        self.calls: list[tuple[str, str, Any]] = []  # (method, path, body or query)
        self.refuse: dict[tuple[str, str], tuple[int, str]] = {}  # (method, path) → (status, message)

    def put(self, collection: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Store `obj` under `collection` (a kind's path in a namespace), as if someone created it."""
        stored = copy.deepcopy(obj)
        stored["metadata"].setdefault("uid", uid())
        stored["metadata"].setdefault("resourceVersion", "1")
        if collection.endswith("/services") and "spec" in stored:  # the API server allocates a ClusterIP
            stored["spec"].setdefault("clusterIP", f"10.96.0.{len(self.objects) % 250 + 2}")
        self.objects[f"{collection}/{stored['metadata']['name']}"] = stored
        return stored

    def writes(self) -> list[tuple[str, str]]:
        return [(m, p) for m, p, _ in self.calls if m != "GET"]

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        path, _, raw_query = path.partition("?")
        query = kwargs.get("query") or {k: v[0] for k, v in parse_qs(raw_query).items()}
        body = kwargs.get("body")
        self.calls.append((method, path, body if method != "GET" else query))
        if (method, path) in self.refuse:
            status, message = self.refuse[method, path]
            raise _error(status, "Invalid", message)
        handler = {"GET": self._get, "POST": self._post, "PATCH": self._patch, "DELETE": self._delete}[method]
        return handler(path, body, query)

    def _get(self, path: str, body: Any, query: dict[str, str]) -> Any:
        if path in self.objects:
            return copy.deepcopy(self.objects[path])
        items = [o for p, o in self.objects.items() if p.rsplit("/", 1)[0] == path]
        if not items and not path.endswith("s"):
            raise NotFound(404, "NotFound", f"{path} not found")
        wanted = dict(pair.split("=", 1) for pair in query.get("labelSelector", "").split(",") if pair)
        chosen = [o for o in items if wanted.items() <= (o["metadata"].get("labels") or {}).items()]
        return {"items": copy.deepcopy(chosen)}

    def _post(self, path: str, body: Any, query: dict[str, str]) -> Any:
        name = body["metadata"]["name"]
        if f"{path}/{name}" in self.objects:
            raise Conflict(409, "AlreadyExists", f"{name} already exists")
        return copy.deepcopy(self.put(path, body))

    def _patch(self, path: str, body: Any, query: dict[str, str]) -> Any:
        base = path.removesuffix("/status")
        if base not in self.objects:
            raise NotFound(404, "NotFound", f"{path} not found")
        stored = self.objects[base]
        before = copy.deepcopy(stored)
        _merge(stored, body)
        if stored != before:  # as the API server: a write that changes the object gives it a new version
            version = str(stored["metadata"].get("resourceVersion") or "1")
            stored["metadata"]["resourceVersion"] = str(int(version) + 1) if version.isdigit() else version
        return copy.deepcopy(stored)

    def _delete(self, path: str, body: Any, query: dict[str, str]) -> Any:
        found = self.objects.get(path)
        if found is None:
            raise NotFound(404, "NotFound", f"{path} not found")
        wanted = ((body or {}).get("preconditions") or {}).get("uid")
        if wanted and wanted != found["metadata"]["uid"]:
            raise Conflict(409, "Conflict", "Precondition failed: UID in precondition does not match")
        del self.objects[path]
        return {"status": "Success"}


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


__all__ = ["ApiError", "FakeKube", "uid"]
