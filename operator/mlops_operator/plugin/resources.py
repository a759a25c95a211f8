"""What the plugin reads: the kinds it knows, objects parsed from the cluster, times."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from mlops_operator.api.base import Resource
from mlops_operator.api.v1alpha1 import ALL_KINDS, Dataset


class PluginError(Exception):
    """A problem the user can fix; printed without a traceback."""


# Every spelling kubectl accepts for our kinds, plus "ds": the CRD's short name for Dataset is
# "dset" (kubectl resolves "ds" to DaemonSets first), but in `kubectl mlops` there is no such clash.
KINDS: dict[str, type[Resource]] = {
    alias: cls
    for cls in ALL_KINDS
    for alias in (cls.crd.singular, cls.crd.plural, cls.crd.kind.lower(), *cls.crd.short_names)
}
KINDS["ds"] = Dataset


def resolve_kind(word: str) -> type[Resource]:
    try:
        return KINDS[word.lower()]
    except KeyError:
        raise PluginError(
            f"unknown kind {word!r}: use dataset (ds), model (mdl), driftmonitor (dm) or batchscoring (bs)"
        ) from None


def parse_resource(cls: type[Resource], body: Mapping[str, Any]) -> Resource:
    """Validate an object read from the cluster; kopf's own bookkeeping in status is not ours to read."""
    cleaned = dict(body)
    if isinstance(cleaned.get("status"), dict):
        cleaned["status"] = {k: v for k, v in cleaned["status"].items() if k != "kopf"}
    try:
        return cls.model_validate(cleaned)
    except ValidationError as exc:
        name = body.get("metadata", {}).get("name", "?")
        raise PluginError(
            f"{cls.crd.kind} {name} does not match this plugin's API "
            "(is the plugin older than the operator?): "
            f"{exc.error_count()} error(s), first: {exc.errors()[0]['msg']} at {exc.errors()[0]['loc']}"
        ) from exc


def parse_time(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def creation_time(obj: Resource) -> datetime | None:
    stamp = obj.metadata.get("creationTimestamp")
    return parse_time(stamp) if stamp else None


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def human_age(then: datetime | None, now: datetime) -> str:
    """kubectl's compact age: 45s, 12m, 5h, 3d."""
    if then is None:
        return "-"
    seconds = max(0, int((now - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
