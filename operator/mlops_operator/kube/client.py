"""Async access to the API server: the official `kubernetes` client run in worker threads.

Why not kopf's own client: it is private API (`kopf._cogs.clients`) and may change under us in any
release. Why not the typed `*Api` classes: the operator thinks in plain dicts (builders render
dicts, observe reads dicts), so every call here is one raw REST request on the shared ApiClient,
returning parsed JSON. Every call carries an explicit timeout (the client has none by default).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import kubernetes
from kubernetes.client import ApiClient

from mlops_operator import contracts
from mlops_operator.kube import accounting, guards, reads
from mlops_operator.kube.cache import CUSTOM, ObjectCache
from mlops_operator.kube.kinds import EVENT, POD, Kind, kind_of
from mlops_operator.kube.presence import Presence

if TYPE_CHECKING:
    import kopf

log = logging.getLogger(__name__)
MERGE_PATCH = "application/merge-patch+json"
PARTIAL_METADATA = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
POOL_SIZE = 16  # connections to the API server, and the threads that use them


class ApiError(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message

    @property
    def transient(self) -> bool:
        return self.status in (0, 429) or self.status >= 500


class NotFound(ApiError):
    pass


class Conflict(ApiError):
    pass


class Rejected(ApiError):
    """400/422: the API server refuses the object as it is; sending the same body again cannot help.

    `subject` names the object (`Job ns/name`); `retry_in` is how long the same body is held back.
    """

    subject: str = ""
    retry_in: float = 0.0

    def with_subject(self, subject: str, retry_in: float) -> Rejected:
        self.subject, self.retry_in = subject, retry_in
        return self


class ForeignObject(Conflict):
    """An object of a child's name exists and its controller is not the parent: it is left untouched.

    `predecessor`: its controller is a deleted parent of the same kind and name (deleted and created
    again), so the garbage collector is about to remove it.
    """

    def __init__(self, child: dict[str, Any], existing: dict[str, Any]) -> None:
        meta, kind = child["metadata"], child.get("kind", "object")
        refs: list[dict[str, Any]] = meta.get("ownerReferences") or []
        parent = next((r for r in refs if r.get("controller")), {})
        self.subject = f"{kind} {meta['namespace']}/{meta['name']}"
        self.predecessor = guards.predecessor_of(existing, parent)
        owner, controller = f"{parent.get('kind')} {parent.get('name')}", guards.controller_of(existing)
        if self.predecessor:
            message = (
                f"{self.subject} still belongs to the deleted {owner} of the same name ({controller}); the "
                f"garbage collector removes it, then this {parent.get('kind')} creates its own"
            )
        else:
            message = (
                f"{self.subject} already exists and is not controlled by {owner} (its controller: {controller}); "
                f"the operator leaves it untouched. Rename or delete that {kind}, or give the "
                f"{parent.get('kind')} another name"
            )
        super().__init__(409, "NameConflict", message)


def login(kubeconfig: str | None, **kwargs: Any) -> kopf.ConnectionInfo | None:
    """kopf's credentials from the same source as ours: an explicit kubeconfig file, else kopf's own
    discovery (in-cluster, then the default kubeconfig)."""
    import kopf  # here, not at the top: kubectl-mlops imports this module and need not load kopf

    if kubeconfig is None:
        return kopf.login_via_client(**kwargs)
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=kubeconfig, client_configuration=configuration
    )
    header = str(configuration.api_key.get("authorization") or configuration.api_key.get("BearerToken") or "")
    return kopf.ConnectionInfo(
        server=configuration.host,
        ca_path=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        username=configuration.username or None,
        password=configuration.password or None,
        scheme="Bearer" if header else None,
        token=header.removeprefix("Bearer ").strip() or None,
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
    )


def _selector(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def list_items(result: dict[str, Any], kind: Kind) -> list[dict[str, Any]]:
    """The items of a list response, each with the apiVersion and kind a list leaves out."""
    items: list[dict[str, Any]] = result.get("items") or []
    for item in items:
        item.setdefault("apiVersion", kind.api_version)
        item.setdefault("kind", kind.kind)
    return items


class Kube:
    def __init__(self, api_client: ApiClient, *, timeout: float = 30.0) -> None:
        self._api = api_client
        self._timeout = timeout
        self._instance = os.environ.get("HOSTNAME") or socket.gethostname()
        self._refusals = guards.RejectionMemo()
        self._events = guards.RecentEvents()
        self.presence = Presence()  # fed by the watches of our ServiceAccounts, claims, Services, HPAs, PDBs
        self.cache = ObjectCache()  # fed by the watches of our Jobs, Deployments, serving Pods and custom resources
        self.requests: accounting.Requests = accounting.Requests()  # sent so far, by (verb, resource)
        # Our own threads, as many as the connection pool has connections: the loop's default pool
        # (CPUs + 4 threads) is shared with everything else that runs in a thread, and a resync's
        # burst of requests there made a real change's requests wait seconds for a thread.
        configuration = getattr(api_client, "configuration", None)
        pool_size = int(getattr(configuration, "connection_pool_maxsize", 0) or POOL_SIZE)
        self._threads = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="kube")

    @classmethod
    def from_environment(cls, *, kubeconfig: str | None = None, timeout: float = 30.0) -> Kube:
        """In-cluster credentials inside a pod, else the kubeconfig (KUBECONFIG or ~/.kube/config)."""
        configuration = kubernetes.client.Configuration()
        if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            kubernetes.config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, client_configuration=configuration
            )
        configuration.connection_pool_maxsize = POOL_SIZE
        return cls(ApiClient(configuration), timeout=timeout)

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)
        self._api.close()  # type: ignore[no-untyped-call]

    # --- the one request primitive ----------------------------------------------------------
    def request_sync(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        accept: str = "application/json",
    ) -> Any:
        """One blocking REST call returning parsed JSON (the async methods run it in a thread)."""
        if query:
            path = f"{path}?{urlencode(query)}"
        headers = {"Accept": accept, "Content-Type": content_type}
        method_, url, headers_, body_, _ = self._api.param_serialize(
            method, path, header_params=headers, body=body, auth_settings=["BearerToken"]
        )
        try:
            response = self._api.call_api(
                method_, url, header_params=headers_, body=body_, _request_timeout=self._timeout
            )
            data = response.read()  # type: ignore[no-untyped-call]
        except kubernetes.client.exceptions.ApiException as exc:
            raise _error(int(exc.status or 0), str(exc.reason or ""), str(exc.body or "")) from exc
        except Exception as exc:  # urllib3 connection, timeout, TLS errors: transient by nature
            raise ApiError(0, type(exc).__name__, guards.redact(str(exc))) from exc
        status = int(response.status)
        if 200 <= status < 300:
            return json.loads(data) if data else None
        try:
            payload = json.loads(data)
            message, reason = str(payload.get("message", "")), str(payload.get("reason", ""))
        except ValueError:
            message, reason = data.decode(errors="replace")[:500], ""
        raise _error(status, reason or str(response.reason), message)

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        accounting.note(self.requests, method, path)
        call = functools.partial(self.request_sync, method, path, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._threads, call)

    # --- reads ------------------------------------------------------------------------------
    async def get(self, kind: Kind, namespace: str, name: str, *, fresh: bool = False) -> dict[str, Any] | None:
        """The object from the watch cache where it holds it (a miss of a custom resource is asked:
        it may have been created a moment ago), else (and when `fresh`) from the API server."""
        cached = self.cache.holds(kind) and not fresh
        obj = self.cache.get(kind, namespace, name) if cached else None
        if obj is None and (kind in CUSTOM or not cached):
            try:
                obj = await self._request("GET", kind.path(namespace, name))
            except NotFound:
                obj = None
            if obj is not None:
                self.cache.observe(None, {"apiVersion": kind.api_version, "kind": kind.kind, **obj})
        reads.note(kind, namespace, name, obj)
        return obj

    async def job_pods(self, job: dict[str, Any]) -> list[dict[str, Any]]:
        """The pods the Job controller made for `job`: selected by its controller-uid label (server
        side) and kept only when their controller ownerReference is the Job's uid. A pod someone
        created with a `job-name` label, or even the controller-uid label, is not one of them."""
        uid = job["metadata"].get("uid")
        if not uid:
            return []
        selector = {guards.LABEL_CONTROLLER_UID: uid}
        # Asked every time, not read from the watch cache: the cache cannot tell whether it holds
        # every pod of the Job yet (an Indexed Job's shards), nor each one's final status.
        pods = await self.list(POD, job["metadata"]["namespace"], selector)
        return [p for p in pods if guards.controlled_by(p, uid)]

    async def list_metadata(self, kind: Kind, namespace: str | None) -> list[dict[str, Any]]:
        """The metadata of every `kind` object (a PartialObjectMetadataList: no spec, no status)."""
        result = await self._request("GET", kind.path(namespace), accept=PARTIAL_METADATA)
        return [item["metadata"] for item in result.get("items") or []]

    async def list(
        self, kind: Kind, namespace: str | None, labels: dict[str, str] | None = None
    ) -> list[dict[str, Any]]:
        if self.cache.answers(kind, labels):
            return self.cache.list(kind, namespace, labels)
        query = {"labelSelector": _selector(labels)} if labels else None
        return list_items(await self._request("GET", kind.path(namespace), query=query), kind)

    # --- writes -----------------------------------------------------------------------------
    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        kind = kind_of(obj)
        path = kind.path(obj["metadata"]["namespace"])
        created: dict[str, Any] = await self._send("POST", path, obj, f"{kind.kind} {_where(obj)}")
        self.cache.observe(None, {"apiVersion": kind.api_version, "kind": kind.kind, **(created or {})})
        return created

    async def _send(self, method: str, path: str, body: dict[str, Any], subject: str, **kwargs: Any) -> Any:
        """A write of a child, held back while the API server refused this very body (RejectionMemo)."""
        target = f"{method} {path} {subject}"
        held = self._refusals.refused(target, body, time.monotonic())
        if held is not None:
            raise Rejected(422, "Invalid", held[0]).with_subject(subject, held[1])
        try:
            result = await self._request(method, path, body=body, **kwargs)
        except Rejected as exc:
            exc.with_subject(subject, self._refusals.remember(target, body, exc.message, time.monotonic()))
            raise
        self._refusals.forget(target)
        return result

    async def create_or_adopt(self, obj: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Create; on 409 return the existing object if our owner controls it. (obj, created)

        A deterministic name makes a retried or restarted reconcile find its own child instead of
        creating a second one. An object of the same name that the owner does not control (no
        controller ownerReference to its uid) is never adopted: ForeignObject. An object the
        presence cache holds is not created again (no request at all).
        """
        kind, meta, owner = kind_of(obj), obj["metadata"], guards.controller_uid(obj)
        if self.presence.holds(kind):
            cached = self.presence.get(kind, meta["namespace"], meta["name"])
            if cached is not None and (owner is None or guards.controlled_by(cached, owner)):
                return cached, False
        try:
            created = await self.create(obj)
            self.presence.observe("ADDED", created)
            return created, True
        except Conflict:
            existing = await self.get(kind, meta["namespace"], meta["name"], fresh=True)
            if existing is None:  # deleted in between: the next reconcile creates it
                raise
            if owner is not None and not guards.controlled_by(existing, owner):
                raise ForeignObject(obj, existing) from None
            self.presence.observe(None, {"apiVersion": kind.api_version, "kind": kind.kind, **existing})
            return existing, False

    async def _existing(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        """The object from the presence cache where it holds the kind, else from the API server."""
        if self.presence.holds(kind):
            return self.presence.get(kind, namespace, name)
        return await self.get(kind, namespace, name)

    async def ensure(self, obj: dict[str, Any], existing: dict[str, Any] | None = None) -> str:
        """Create or bring up to date by the spec-hash annotation. Returns created|patched|unchanged.

        An existing object the owner does not control is neither patched nor adopted: ForeignObject.
        """
        kind = kind_of(obj)
        meta = obj["metadata"]
        if existing is None:
            existing = await self._existing(kind, meta["namespace"], meta["name"])
        if existing is None:
            await self.create_or_adopt(obj)
            return "created"
        owner = guards.controller_uid(obj)
        if owner is not None and not guards.controlled_by(existing, owner):
            raise ForeignObject(obj, existing)
        have = (existing["metadata"].get("annotations") or {}).get(contracts.ANNOTATION_SPEC_HASH)
        want = (meta.get("annotations") or {}).get(contracts.ANNOTATION_SPEC_HASH)
        if have == want:
            return "unchanged"
        patch = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "status")}
        patch["metadata"] = {k: meta[k] for k in ("labels", "annotations", "ownerReferences") if k in meta}
        path = kind.path(meta["namespace"], meta["name"])
        patched = await self._send("PATCH", path, patch, f"{kind.kind} {_where(obj)}", content_type=MERGE_PATCH)
        self.presence.observe(None, {"apiVersion": kind.api_version, "kind": kind.kind, **(patched or {})})
        self.cache.observe(None, {"apiVersion": kind.api_version, "kind": kind.kind, **(patched or {})})
        return "patched"

    async def patch(
        self, kind: Kind, namespace: str, name: str, patch: dict[str, Any], *, subresource: str | None = None
    ) -> dict[str, Any]:
        result: dict[str, Any] = await self._request(
            "PATCH", kind.path(namespace, name, subresource), body=patch, content_type=MERGE_PATCH
        )
        reads.note(kind, namespace, name, result)  # our own write moved the version: not a change to catch up on
        self.cache.observe(None, {"apiVersion": kind.api_version, "kind": kind.kind, **(result or {})})
        return result

    async def patch_status(self, kind: Kind, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        return await self.patch(kind, namespace, name, {"status": status}, subresource="status")

    async def annotate(
        self, kind: Kind, namespace: str, name: str, annotations: dict[str, str | None]
    ) -> dict[str, Any]:
        return await self.patch(kind, namespace, name, {"metadata": {"annotations": annotations}})

    async def delete_owned(
        self, kind: Kind, namespace: str, name: str, owner_uid: str | None, *, propagation: str = "Background"
    ) -> bool:
        """Delete the child `name` if `owner_uid` controls it. False if gone or not ours (left alone)."""
        existing = await self._existing(kind, namespace, name)
        if existing is None:
            return False
        existing.setdefault("apiVersion", kind.api_version)
        existing.setdefault("kind", kind.kind)
        return await self.delete_child(existing, owner_uid, propagation=propagation)

    async def delete_child(
        self, child: dict[str, Any], owner_uid: str | None, *, propagation: str = "Background"
    ) -> bool:
        """Delete `child` as read, only if `owner_uid` controls it, with a uid precondition: an object
        replaced under the same name since it was read is not deleted. Explicit propagation (a Job
        deleted without it orphans its Pods). False if gone, replaced, or not ours."""
        meta = child["metadata"]
        if not guards.controlled_by(child, owner_uid):
            log.warning(
                "not deleting %s %s/%s: %s",
                child.get("kind"),
                meta.get("namespace"),
                meta.get("name"),
                f"its controller is {guards.controller_of(child)}, not uid {owner_uid}",
            )
            return False
        options = {
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "propagationPolicy": propagation,
            "preconditions": {"uid": meta["uid"]},
        }
        kind = kind_of(child)
        try:
            await self._request("DELETE", kind.path(meta["namespace"], meta["name"]), body=options)
            return True
        except (NotFound, Conflict):  # gone, or a new object of that name (precondition failed)
            return False
        finally:
            self.presence.forget(kind, meta["namespace"], meta["name"])  # the watch brings a successor
            self.cache.deleted(kind, meta["namespace"], meta["name"], meta.get("uid"))

    async def event(self, involved: dict[str, Any], type_: str, reason: str, message: str, *, now: datetime) -> None:
        """Post a core/v1 Event. The name is derived from (object, reason, message), so re-posting the
        same event after a restart is a harmless 409 rather than a duplicate."""
        meta = involved.get("metadata") or {}
        digest = hashlib.sha256(json.dumps([meta.get("uid"), reason, message]).encode()).hexdigest()[:10]
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        name = f"{meta['name'][:200]}.{digest}"
        if self._events.seen(name):  # posted already: the same (object, reason, message) is one Event
            return
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": name,
                "namespace": meta["namespace"],
                "labels": {contracts.LABEL_MANAGED_BY: contracts.MANAGED_BY},
            },
            "involvedObject": {
                "apiVersion": involved.get("apiVersion"),
                "kind": involved.get("kind"),
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": contracts.MANAGED_BY},
            "reportingComponent": f"{contracts.GROUP}/operator",
            "reportingInstance": self._instance[:128],
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        try:
            await self._request("POST", EVENT.path(meta["namespace"]), body=event)
            self._events.add(name)
        except Conflict:
            self._events.add(name)
        except ApiError as exc:  # an Event is an audit aid; losing one must not fail a reconcile
            log.warning("could not post event %s on %s/%s: %s", reason, meta["namespace"], meta["name"], exc)


def _where(obj: dict[str, Any]) -> str:
    return f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"


def _error(status: int, reason: str, message: str) -> ApiError:
    """The error of a non-2xx answer, its message redacted (URL query strings may hold credentials)."""
    error = {400: Rejected, 404: NotFound, 409: Conflict, 422: Rejected}.get(status, ApiError)
    return error(status, reason, guards.redact(message))
