"""`mlops-operator registry`: mirror a Model's version registry into the artifact store.

The operator never mounts the store (it lives in each team's namespace), so a small Job does the
mirroring: it merges the Model's `status.versions` into `<store>/<ns>/models/<model>/registry.json`
(a version in the plan replaces its stored record, except that its serving periods are united with
the stored ones: status keeps the newest few, the store all; versions status has pruned stay), writes it
atomically, and reports the newest stored records back. A Model that comes back without a status
(recreated, restored from a backup that drops status) is rebuilt from that report, and its next
version continues after the highest one in the store instead of overwriting `v1`.

With a retention plan, the Job then deletes the artifact directories (`v<N>/`) of versions the
Model's status no longer lists (beyond spec.maxVersions; the serving and training ones are never
dropped from status), and, for a Model no DriftMonitor checks, collected rows and labels past
retentionDays (workloads/retention.py). Their records stay in registry.json, and the numbers of the
versions whose artifacts are gone are listed in its `artifactsPruned`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import pydantic

from mlops_operator import contracts, store
from mlops_operator.api import history
from mlops_operator.api.plans import RegistryPlan
from mlops_operator.api.results import RegistryResult
from mlops_operator.api.v1alpha1.model import ModelVersion
from mlops_operator.workloads import common, retention

log = logging.getLogger("mlops_operator.workloads.registry")
KIND = "ModelRegistry"


def merge(
    existing: dict[str, Any] | None, namespace: str, model: str, versions: Iterable[ModelVersion]
) -> dict[str, Any]:
    """The registry document: every version ever recorded, oldest first."""
    by_version: dict[int, dict[str, Any]] = {}
    for entry in (existing or {}).get("versions") or []:
        if isinstance(entry, dict) and isinstance(entry.get("version"), int):
            by_version[entry["version"]] = entry
    for record in versions:
        by_version[record.version] = _with_full_history(by_version.get(record.version), record.dump())
    return {
        "apiVersion": f"{contracts.GROUP}/{contracts.VERSION}",
        "kind": KIND,
        "namespace": namespace,
        "model": model,
        "versions": [by_version[v] for v in sorted(by_version)],
        **({"artifactsPruned": (existing or {})["artifactsPruned"]} if (existing or {}).get("artifactsPruned") else {}),
    }


def _with_full_history(stored: dict[str, Any] | None, current: dict[str, Any]) -> dict[str, Any]:
    """Status's record, its serving periods united with the store's: the store keeps every period."""
    periods = history.merge_periods((stored or {}).get("servingPeriods"), current.get("servingPeriods") or [])
    entry = {k: v for k, v in current.items() if k not in ("servingPeriods", "earlierPeriods")}
    return {**entry, "servingPeriods": periods} if periods else entry


def newest_records(document: dict[str, Any]) -> list[ModelVersion]:
    """Stored records newest first; an entry this version cannot read is skipped, not fatal."""
    records = []
    for entry in reversed(document.get("versions") or []):
        try:
            records.append(ModelVersion.model_validate(history.status_bounded(entry)))
        except pydantic.ValidationError:
            log.warning("registry entry for version %s is unreadable; skipped", entry.get("version"))
    return records


def sync(plan: RegistryPlan) -> RegistryResult:
    existing = store.read_json(plan.registry_uri) if store.exists(plan.registry_uri) else None
    if existing is not None and not isinstance(existing, dict):
        raise common.DataError("RegistryUnreadable", f"{store.redact(plan.registry_uri)} is not a JSON object")
    document = merge(existing, plan.namespace, plan.model, plan.versions)
    if document != existing:
        store.write_json_atomic(plan.registry_uri, document)
    records = newest_records(document)
    log.info("registry %s: %d versions stored", store.redact(plan.registry_uri), len(document["versions"]))
    result = RegistryResult(
        ok=True,
        stored=len(document["versions"]),
        highest_version=max((e["version"] for e in document["versions"]), default=None),
        versions=records,
    )
    return _prune(plan, document, result) if plan.retention is not None else result


def _prune(plan: RegistryPlan, document: dict[str, Any], result: RegistryResult) -> RegistryResult:
    """The plan's retention after the mirror; a store error is logged and retried by the next Job."""
    assert plan.retention is not None
    try:
        with store.translated(plan.retention.model_dir):
            pruned = retention.prune_model(plan.retention, datetime.now(UTC))
        if pruned.versions:
            gone = {int(v.removeprefix("v")) for v in pruned.versions}
            marked = sorted(gone | set(document.get("artifactsPruned") or []))
            store.write_json_atomic(plan.registry_uri, {**document, "artifactsPruned": marked})
    except store.StoreError as exc:
        log.warning("retention skipped this time: %s", exc.message)
        return result
    result.pruned_versions, result.pruned_objects, result.pruned_bytes = (
        len(pruned.versions),
        pruned.objects,
        pruned.bytes,
    )
    return result


def failure(error: common.WorkloadError) -> RegistryResult:
    return RegistryResult(ok=False, error=error.message, reason=error.reason)


def main(argv: Sequence[str]) -> int:
    args = common.plan_parser("registry", __doc__, RegistryPlan).parse_args(list(argv))
    return common.run_plan("registry", args, RegistryPlan, sync, failure)


__all__ = ["main", "merge", "newest_records", "sync"]
