"""`mlops-operator registry`: mirror a Model's version registry into the artifact store.

The operator never mounts the store (it lives in each team's namespace), so a small Job does the
mirroring: it merges the Model's `status.versions` into `<store>/<ns>/models/<model>/registry.json`
(a version in the plan replaces its stored record; versions status has pruned stay), writes it
atomically, and reports the newest stored records back. A Model that comes back without a status
(recreated, restored from a backup that drops status) is rebuilt from that report, and its next
version continues after the highest one in the store instead of overwriting `v1`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import pydantic

from mlops_operator import contracts, store
from mlops_operator.api.plans import RegistryPlan
from mlops_operator.api.results import RegistryResult
from mlops_operator.api.v1alpha1.model import ModelVersion
from mlops_operator.workloads import common

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
        by_version[record.version] = record.dump()
    return {
        "apiVersion": f"{contracts.GROUP}/{contracts.VERSION}",
        "kind": KIND,
        "namespace": namespace,
        "model": model,
        "versions": [by_version[v] for v in sorted(by_version)],
    }


def newest_records(document: dict[str, Any]) -> list[ModelVersion]:
    """Stored records newest first; an entry this version cannot read is skipped, not fatal."""
    records = []
    for entry in reversed(document.get("versions") or []):
        try:
            records.append(ModelVersion.model_validate(entry))
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
    return RegistryResult(
        ok=True,
        stored=len(document["versions"]),
        highest_version=max((e["version"] for e in document["versions"]), default=None),
        versions=records,
    )


def failure(error: common.WorkloadError) -> RegistryResult:
    return RegistryResult(ok=False, error=error.message, reason=error.reason)


def main(argv: Sequence[str]) -> int:
    args = common.plan_parser("registry", __doc__, RegistryPlan).parse_args(list(argv))
    return common.run_plan("registry", args, RegistryPlan, sync, failure)


__all__ = ["main", "merge", "newest_records", "sync"]
