"""The plugin's few calls to the cluster, through `mlops_operator.kube`: typed resources in and out,
and every failure as one sentence the user can act on."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from mlops_operator import kube
from mlops_operator.api.base import Resource
from mlops_operator.api.v1alpha1 import BatchScoring, Dataset, DriftMonitor, Model
from mlops_operator.plugin.resources import PluginError, parse_resource

R = TypeVar("R", bound=Resource)

KIND_OF: dict[type[Resource], kube.Kind] = {
    Dataset: kube.DATASET,
    Model: kube.MODEL,
    DriftMonitor: kube.DRIFT_MONITOR,
    BatchScoring: kube.BATCH_SCORING,
}


@contextmanager
def _plain_words(cls: type[Resource], namespace: str | None, name: str | None = None) -> Iterator[None]:
    """kube's errors as PluginErrors: the message says what failed and what to check."""
    try:
        yield
    except kube.Unreachable as exc:
        raise PluginError(f"cannot reach the API server at {exc.server}: {exc.message}") from exc
    except kube.ApiError as exc:
        what = f"{cls.crd.kind} {name}" if name else cls.crd.plural
        if exc.status == 404:
            where = f"namespace {namespace}" if namespace else "any namespace"
            raise PluginError(f"{what} not found in {where} (are the CRDs installed?)") from exc
        if exc.status == 403:
            where = f"namespace {namespace}" if namespace else "all namespaces (name one with -n)"
            raise PluginError(f"forbidden: you may not access {cls.crd.plural} in {where}") from exc
        if exc.status == 422:
            raise PluginError(f"the API server refused the change: {exc.message or exc.reason}") from exc
        raise PluginError(f"API error {exc.status}: {exc.reason}") from exc


class Cluster:
    """get, list and merge-patch of Datasets, Models and DriftMonitors, parsed with the api/ models."""

    def __init__(self, kubeconfig: str | None, context: str | None) -> None:
        try:
            self._kube = kube.BlockingKube.from_kubeconfig(kubeconfig, context)
        except kube.KubeconfigError as exc:
            raise PluginError(f"cannot load kubeconfig: {exc}") from exc
        self._kubeconfig, self._context = kubeconfig, context

    def close(self) -> None:
        self._kube.close()

    def default_namespace(self) -> str:
        return kube.kubeconfig_namespace(self._kubeconfig, self._context)

    def get(self, cls: type[R], namespace: str, name: str) -> R:
        with _plain_words(cls, namespace, name):
            body = self._kube.get(KIND_OF[cls], namespace, name)
        return _typed(cls, body)

    def list(self, cls: type[Resource], namespace: str | None) -> tuple[list[Resource], list[str]]:
        """Sorted by namespace, then name; namespace None lists all namespaces. One object this plugin
        cannot parse (someone else's bad spec, a newer operator) must not hide every other one: it is
        left out and named in the second list."""
        with _plain_words(cls, namespace):
            items = self._kube.list(KIND_OF[cls], namespace)
        parsed: list[Resource] = []
        skipped: list[str] = []
        for item in items:
            try:
                parsed.append(parse_resource(cls, item))
            except PluginError as exc:
                where = item.get("metadata", {}).get("namespace", "?")
                skipped.append(f"{where}/{exc}")
        return sorted(parsed, key=lambda r: (r.namespace, r.name)), skipped

    def merge_patch(self, cls: type[R], namespace: str, name: str, patch: dict[str, Any]) -> R:
        with _plain_words(cls, namespace, name):
            body = self._kube.merge_patch(KIND_OF[cls], namespace, name, patch)
        return _typed(cls, body)


def _typed(cls: type[R], body: dict[str, Any]) -> R:
    obj = parse_resource(cls, body)
    assert isinstance(obj, cls)
    return obj
