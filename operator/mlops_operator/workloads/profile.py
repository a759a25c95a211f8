"""`mlops-operator profile`: list, version, validate, clean and profile one dataset source.

    mlops-operator profile --spec '<ProfilePlan JSON>'

1. List the source (one file, or every data file under a prefix: path, size, etag or modification
   time; workloads/sources.py), apply the window, and fingerprint the listing with the rules. Equal to
   the plan's current listing fingerprint (and the current version is in the store): answer
   `unchanged` at once, having read no data and written nothing.
2. Hash each file's bytes (cached by path, size and tag, so files listed as before are not read) and
   parse each new file once into a part (workloads/parts.py: the schema applied, rows without a target
   dropped, exact statistics, a seeded sample, row hashes), kept by content hash.
3. The version id is the content address of the files' bytes, the schema, the quality rules and the
   window (workloads/versions.py). A complete version directory of that id is reported as it is.
4. Otherwise apply the rules across the parts and profile them (workloads/assemble.py) and write the
   version directory once (never rewritten): data.parquet/ (the parts), reference.npz, profile.json,
   lineage.json, then complete.json.
5. Print a ProfileResult and write it to the termination message.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Final

from mlops_operator import contracts, store
from mlops_operator.api.plans import ProfilePlan
from mlops_operator.api.profile import PROFILE_FILE, REFERENCE_FILE, DatasetProfile
from mlops_operator.api.results import PROFILE_FIELDS, ProfileResult
from mlops_operator.api.v1alpha1.dataset import DatasetSpec, QualityFinding, Severity
from mlops_operator.api.v1alpha1.source import VersionLineage
from mlops_operator.workloads import (
    assemble,
    common,
    confinement,
    data,
    parts,
    quality,
    retention,
    sources,
    summaries,
    versions,
)
from mlops_operator.workloads.sources import SourceFile

log = logging.getLogger(__name__)

DATA_FILE: Final = versions.DATA_DIR
COMPLETE_MARKER: Final = versions.COMPLETE_MARKER
PROFILE_FORMAT: Final = versions.PROFILE_FORMAT
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
    """The run, then the retention of the Dataset's versions that the plan asks for."""
    return retention.after_profile(plan, _profile(plan))


def _profile(plan: ProfilePlan) -> ProfileResult:
    spec = plan.spec
    rules = versions.rules_sha256(spec)
    listed = sources.list_source(spec.source.uri, spec.source.format)
    confinement.check_source_files(spec.source.uri, listed, plan.store_uri)
    files = sources.apply_window(listed, spec.source.window, plan.as_of or datetime.now(UTC))
    fingerprint = sources.listing_fingerprint(spec.source.uri, files, rules)
    log.info("listed %s: %d files, %d in the window", store.redact(spec.source.uri), len(listed), len(files))
    if _unchanged(plan, fingerprint):
        log.info("the listing matches version %s: unchanged, nothing read", (plan.current_version or "")[:12])
        return ProfileResult(ok=True, unchanged=True, version=plan.current_version, listing_fingerprint=fingerprint)
    dataset_dir = contracts.dataset_dir(plan.store_uri, plan.namespace, plan.dataset)
    found = _parts(files, spec, dataset_dir, plan.store_uri)
    version = versions.version_id(rules, [p.summary.sha256 for p in found])
    version_dir = contracts.dataset_version_dir(plan.store_uri, plan.namespace, plan.dataset, version)
    if versions.is_complete(version_dir):
        log.info("version %s is already in the store; nothing to do", version[:12])
    else:
        _make_version(plan, files, found, parts.unify(found, dataset_dir, spec), version, rules)
    result = _stored_result(version_dir)
    result.listing_fingerprint = fingerprint
    return result


def rules_sha256(spec: DatasetSpec) -> str:
    return versions.rules_sha256(spec)


def _make_version(
    plan: ProfilePlan,
    files: Sequence[SourceFile],
    found: Sequence[parts.Part],
    unified: Sequence[parts.Part],
    version: str,
    rules: str,
) -> None:
    """`found`: each file's part; `unified`: the parts with rows, in the version's one schema."""
    built = assemble.build(unified, plan.spec, seed=int(version[:8], 16))
    parent = plan.current_version if plan.current_version != version else None
    named = [(f.path, p.summary.sha256) for f, p in zip(files, found, strict=True)]
    lineage = versions.lineage(named, rules, parent, built.rows_read, built.rows)
    record = {
        "version": version,
        "source": store.redact(plan.spec.source.uri),
        "window": plan.spec.source.window.dump() if plan.spec.source.window else None,
        "lineage": lineage.dump(),
        "files": [{"path": f.path, "size": f.size, "sha256": p.summary.sha256, "part": p.summary.key}
                  for f, p in zip(files, found, strict=True)],
    }
    version_dir = contracts.dataset_version_dir(plan.store_uri, plan.namespace, plan.dataset, version)
    written = versions.commit(version_dir, lambda d: _write(d, version_dir, plan, version, built, record))
    log.info("version %s: %d rows x %d columns (%s)", version[:12], built.rows, len(built.features),
             "written" if written else "written meanwhile by another run")


def _unchanged(plan: ProfilePlan, fingerprint: str) -> bool:
    if not plan.current_version or plan.current_listing_fingerprint != fingerprint:
        return False
    current = contracts.dataset_version_dir(plan.store_uri, plan.namespace, plan.dataset, plan.current_version)
    return versions.is_complete(current)


def _parts(files: Sequence[SourceFile], spec: DatasetSpec, dataset_dir: str, store_uri: str) -> list[parts.Part]:
    """Each file's part: made from its bytes the first time, then reused by content hash. The parts of
    files whose hash is cached are loaded on a second thread meanwhile new files are read and parsed
    (pyarrow's parsing and writing release the GIL)."""
    cache = sources.HashCache.load(dataset_dir)
    found: list[parts.Part | None] = [None] * len(files)
    counts = {"read": 0, "made": 0}
    with ThreadPoolExecutor(max_workers=1) as pool:
        loading = {}
        for i, file in enumerate(files):
            if (sha256 := cache.get(file)) is not None:
                key = parts.part_key(sha256, spec, parts.format_hint(file.uri))
                loading[i] = (sha256, key, pool.submit(parts.load, dataset_dir, key))
        for i, file in enumerate(files):
            if i not in loading:
                raw = _read(file, store_uri)
                counts["read"] += 1
                sha256 = store.sha256_bytes(raw)
                cache.put(file, sha256)
                key = parts.part_key(sha256, spec, parts.format_hint(file.uri))
                found[i] = parts.load(dataset_dir, key) or _build(file, key, raw, sha256, spec, dataset_dir, counts)
        for i, (sha256, key, future) in loading.items():
            part = future.result()
            if part is None:  # its hash is cached but the part is gone (or of another format): made again
                part = _build(files[i], key, _read(files[i], store_uri), sha256, spec, dataset_dir, counts)
            found[i] = part
    cache.save(files)
    made = counts["made"]
    log.info("%d files: %d read, %d parsed, %d reused", len(files), counts["read"], made, len(files) - made)
    return [p for p in found if p is not None]


def _build(
    file: SourceFile, key: str, raw: bytes, sha256: str, spec: DatasetSpec, dataset_dir: str, counts: dict[str, int]
) -> parts.Part:
    counts["made"] += 1
    return parts.build(dataset_dir, key, file.path, file.uri, raw, sha256, spec)


def _read(file: SourceFile, store_uri: str) -> bytes:
    """A file's bytes; a file:// one on the claim is opened beneath the store's root (confinement)."""
    if file.uri.startswith(sources.SKLEARN_SCHEME):
        return data.sklearn_csv(file.uri)
    confined = confinement.read_source_file(file.uri, store_uri)
    return confined if confined is not None else store.read_bytes(file.uri)


def _write(
    directory: str, version_dir: str, plan: ProfilePlan, version: str, built: assemble.Built, record: dict[str, Any]
) -> None:
    """The version's files into `directory` (its final place, or a temporary one renamed into it).
    reference.npz, the largest (tens of MB), is written and synced on a second thread meanwhile."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        reference = pool.submit(_write_reference, store.join(directory, REFERENCE_FILE), built)
        snapshot = store.join(directory, DATA_FILE)
        if built.frame is not None:
            data.write_snapshot(built.frame, store.join(snapshot, "part-00000.parquet"))
        else:
            versions.place(built.part_uris, snapshot)
        profile_ = DatasetProfile(
            namespace=plan.namespace,
            dataset=plan.dataset,
            version=version,
            rows=built.rows,
            columns=len(built.features),
            target=plan.spec.schema_.target,
            task_hint=built.task_hint,
            features=built.features,
            findings=built.findings,
            reference_uri=store.join(version_dir, REFERENCE_FILE),
            data_uri=store.join(version_dir, DATA_FILE),
            created_at=datetime.now(UTC),
        )
        store.write_json_atomic(store.join(directory, PROFILE_FILE), profile_.dump())
        store.write_json_atomic(store.join(directory, versions.LINEAGE_FILE), record)
        reference.result()
    # The marker goes last: a directory without it is not a version.
    marker = {"version": version, "rulesSha256": record["lineage"]["rulesSha256"]}
    store.write_json_atomic(store.join(directory, COMPLETE_MARKER), marker)


def _write_reference(uri: str, built: assemble.Built) -> None:
    with store.atomic_writer(uri) as handle:
        summaries.write_reference(handle, built.samples, built.members)


def _stored_result(version_dir: str) -> ProfileResult:
    profile_ = DatasetProfile.model_validate(store.read_json(store.join(version_dir, PROFILE_FILE)))
    lineage_uri = store.join(version_dir, versions.LINEAGE_FILE)
    record = store.read_json(lineage_uri) if store.exists(lineage_uri) else None
    lineage = VersionLineage.model_validate(record["lineage"]) if isinstance(record, dict) else None
    return ProfileResult(
        ok=True,
        **profile_.model_dump(include=set(PROFILE_FIELDS)),
        profile_uri=store.join(version_dir, PROFILE_FILE),
        findings=_for_result(profile_.findings),
        lineage=lineage,
    )


def _for_result(findings: list[QualityFinding]) -> list[QualityFinding]:
    """Most severe first, at most RESULT_FINDINGS_MAX (the full list is in profile.json)."""
    rank = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}
    return sorted(findings, key=lambda f: rank[Severity(f.severity)])[:RESULT_FINDINGS_MAX]


__all__ = ["main", "profile", "rules_sha256"]
