"""Blocking access to the API server for command-line tools (`kubectl mlops`).

The same REST primitive as the operator's `Kube` (`Kube.request_sync`), called directly rather than
in a worker thread: a command makes a handful of requests, one after the other. Credentials come
from a kubeconfig file and context, as kubectl's do.
"""

from __future__ import annotations

from typing import Any

import kubernetes
from kubernetes.client import ApiClient

from mlops_operator.kube.client import MERGE_PATCH, ApiError, Kube, list_items
from mlops_operator.kube.kinds import Kind


class KubeconfigError(Exception):
    """The kubeconfig could not be loaded: no file, an unknown context, unusable credentials."""


class Unreachable(ApiError):
    """No HTTP answer at all (connection refused, name resolution, TLS, timeout); `message` is one line."""

    def __init__(self, server: str, cause: str) -> None:
        super().__init__(0, "Unreachable", cause)
        self.server = server


def root_cause(exc: BaseException) -> str:
    """The innermost error's own words, on one line: 'Connection refused', not urllib3's pool repr."""
    seen: set[int] = set()
    current = exc
    while id(current) not in seen:
        seen.add(id(current))
        reason = getattr(current, "reason", None)
        deeper = reason if isinstance(reason, BaseException) else current.__cause__ or current.__context__
        if deeper is None:
            break
        current = deeper
    strerror = current.strerror if isinstance(current, OSError) else None
    text = str(strerror or current or type(current).__name__)
    return " ".join(text.split())


def kubeconfig_namespace(kubeconfig: str | None, context: str | None) -> str:
    """The namespace of the chosen (else the current) context, as kubectl picks it; else "default"."""
    try:
        contexts, active = kubernetes.config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
            config_file=kubeconfig
        )
    except kubernetes.config.ConfigException:
        return "default"
    chosen = next((c for c in contexts if c["name"] == context), active) if context else active
    return str((chosen or {}).get("context", {}).get("namespace") or "default")


class BlockingKube:
    """get, list and merge-patch, each one blocking request; errors are `ApiError`s, `Unreachable`
    when the server never answered."""

    def __init__(self, kube: Kube, server: str) -> None:
        self._kube = kube
        self.server = server

    @classmethod
    def from_kubeconfig(
        cls, kubeconfig: str | None, context: str | None = None, *, timeout: float = 30.0
    ) -> BlockingKube:
        """The kubeconfig file (None: KUBECONFIG or ~/.kube/config) and context (None: its current one)."""
        configuration = kubernetes.client.Configuration()
        try:
            kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, context=context, client_configuration=configuration
            )
        except (kubernetes.config.ConfigException, OSError) as exc:
            raise KubeconfigError(str(exc)) from exc
        return cls(Kube(ApiClient(configuration), timeout=timeout), str(configuration.host))

    def close(self) -> None:
        self._kube.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            return self._kube.request_sync(method, path, **kwargs)
        except ApiError as exc:
            if exc.status == 0:
                raise Unreachable(self.server, root_cause(exc)) from exc
            raise

    def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any]:
        """The object; `NotFound` if there is none."""
        obj: dict[str, Any] = self._request("GET", kind.path(namespace, name))
        return obj

    def list(self, kind: Kind, namespace: str | None) -> list[dict[str, Any]]:
        """Every object of the kind in the namespace (None: in all namespaces), with apiVersion and kind."""
        return list_items(self._request("GET", kind.path(namespace)), kind)

    def merge_patch(self, kind: Kind, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """A JSON merge patch of the object itself (not a subresource); returns the object after it."""
        obj: dict[str, Any] = self._request("PATCH", kind.path(namespace, name), body=patch, content_type=MERGE_PATCH)
        return obj
