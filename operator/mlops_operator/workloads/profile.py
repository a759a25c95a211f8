"""`mlops-operator profile`: version, validate, clean and profile one dataset source.

    mlops-operator profile --spec '<ProfilePlan JSON>'

1. Read the source; its version is the sha256 of its bytes (of a canonical CSV for sklearn://).
2. If that version's directory already holds a profile made under the same schema and quality
   rules, report it and stop: re-running is cheap and changes nothing.
3. Apply the schema (target and declared features exist, types are compatible) and the quality rules
   (missing values, duplicates, outliers, minimum rows); a failed rule is a DataError (quality.py).
4. Write, each atomically, to contracts.dataset_version_dir: data.parquet (the cleaned, immutable
   snapshot training reads), reference.npz (per numeric feature a sorted, seeded sample for drift
   tests), profile.json (api.profile.DatasetProfile; summaries.py), then the `complete.json` marker last.
5. Print a ProfileResult and write it to the termination message.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final

import orjson

from mlops_operator import contracts, store
from mlops_operator.api.plans import ProfilePlan
from mlops_operator.api.profile import PROFILE_FILE, REFERENCE_FILE, DatasetProfile
from mlops_operator.api.results import PROFILE_FIELDS, ProfileResult
from mlops_operator.api.v1alpha1.dataset import DatasetSpec, QualityFinding, Severity
from mlops_operator.workloads import common, data, quality, summaries

log = logging.getLogger(__name__)

DATA_FILE: Final = "data.parquet"
COMPLETE_MARKER: Final = "complete.json"
# Bump when the files written here change meaning, so old version directories are recomputed.
PROFILE_FORMAT: Final = 1
RESULT_FINDINGS_MAX: Final = 20


def main(argv: Sequence[str]) -> int:
    args = common.plan_parser("profile", __doc__, ProfilePlan).parse_args(list(argv))
    return common.run_plan("profile", args, ProfilePlan, profile, failed_result)


def failed_result(error: common.WorkloadError) -> ProfileResult:
    findings = error.findings if isinstance(error, quality.QualityCheckFailed) else []
    return ProfileResult(
        ok=False, reason=error.reason, error=error.message, findings=_for_result(findings)
    )


def profile(plan: ProfilePlan) -> ProfileResult:
    spec = plan.spec
    source = data.read_source(spec.source.uri, spec.source.format)
    log.info(
        "read %s: %d rows x %d columns, version %s",
        store.redact(spec.source.uri), len(source.frame), source.frame.shape[1], source.version[:12],
    )
    version_dir = contracts.dataset_version_dir(plan.store_uri, plan.namespace, plan.dataset, source.version)
    rules = rules_sha256(spec)
    existing = _completed_profile(version_dir, rules)
    if existing is not None:
        log.info("version %s is already profiled under these rules; nothing to do", source.version[:12])
        return _result(existing, version_dir)

    prepared = quality.prepare(source.frame, spec)
    target = spec.schema_.target
    task_hint = summaries.infer_task(prepared.frame[target]) if target else None
    features, samples = summaries.profile_features(prepared.frame, seed=int(source.version[:8], 16))
    dataset_profile = DatasetProfile(
        namespace=plan.namespace,
        dataset=plan.dataset,
        version=source.version,
        rows=len(prepared.frame),
        columns=prepared.frame.shape[1],
        target=target,
        task_hint=task_hint,
        features=features,
        findings=prepared.findings,
        reference_uri=store.join(version_dir, REFERENCE_FILE),
        data_uri=store.join(version_dir, DATA_FILE),
        created_at=datetime.now(UTC),
    )
    # The marker goes last: a crash before it leaves a directory that the next run recomputes.
    data.write_snapshot(prepared.frame, dataset_profile.data_uri)
    store.write_bytes_atomic(dataset_profile.reference_uri, summaries.reference_npz(samples))
    store.write_json_atomic(store.join(version_dir, PROFILE_FILE), dataset_profile.dump())
    store.write_json_atomic(
        store.join(version_dir, COMPLETE_MARKER), {"version": source.version, "rulesSha256": rules}
    )
    log.info("profiled %d rows x %d columns into %s", dataset_profile.rows, dataset_profile.columns,
             store.redact(version_dir))
    return _result(dataset_profile, version_dir)


def rules_sha256(spec: DatasetSpec) -> str:
    rules = {"format": PROFILE_FORMAT, "schema": spec.schema_.dump(), "quality": spec.quality.dump()}
    return store.sha256_bytes(orjson.dumps(rules, option=orjson.OPT_SORT_KEYS))


def _completed_profile(version_dir: str, rules: str) -> DatasetProfile | None:
    marker_uri = store.join(version_dir, COMPLETE_MARKER)
    if not store.exists(marker_uri):
        return None
    marker = store.read_json(marker_uri)
    if not isinstance(marker, dict) or marker.get("rulesSha256") != rules:
        return None
    return DatasetProfile.model_validate(store.read_json(store.join(version_dir, PROFILE_FILE)))


def _result(profile_: DatasetProfile, version_dir: str) -> ProfileResult:
    return ProfileResult(
        ok=True,
        **profile_.model_dump(include=set(PROFILE_FIELDS)),
        profile_uri=store.join(version_dir, PROFILE_FILE),
        findings=_for_result(profile_.findings),
    )


def _for_result(findings: list[QualityFinding]) -> list[QualityFinding]:
    """Most severe first, at most RESULT_FINDINGS_MAX (the full list is in profile.json)."""
    rank = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}
    return sorted(findings, key=lambda f: rank[Severity(f.severity)])[:RESULT_FINDINGS_MAX]


__all__ = ["main", "profile", "rules_sha256"]
