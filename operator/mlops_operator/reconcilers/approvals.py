"""Who approved what, from the API server's authentication; and four-eyes. Pure.

Two halves share the annotation format (contracts.ANNOTATION_APPROVALS, ANNOTATION_TRIGGERED_BY):

- `admit`: what the operator's mutating admission webhook writes on a Model's CREATE or UPDATE, from
  the AdmissionReview's `userInfo` (never from the object a client sent): an Approve entry when
  spec.approvedVersion is set or changed or the `mlops.dev/approve` annotation asks for one, a Reject
  entry for each newly rejected version, and who triggered training (create, a spec edit other than
  approvedVersion, a retrain request). Whatever a client wrote into those annotations is replaced by
  the previous object's value: only the webhook moves them.
- `merge`, `tally`: the reconciler moves the entries into each version's record (`approvals`) and
  counts distinct people toward approval.requiredApprovers, leaving out those outside approverGroup
  and, with separationOfDuties, the version's trigger.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from pydantic import ValidationError

from mlops_operator import contracts
from mlops_operator.api.v1alpha1.approvals import Approval, ApprovalAction, ApprovalSpec
from mlops_operator.api.v1alpha1.model import ModelVersion
from mlops_operator.reconcilers.annotated import version_number

MAX_ENTRIES: Final = 50  # kept in the annotation; the reconciler has moved older ones into status
MAX_PER_VERSION: Final = 20  # ModelVersion.approvals' bound
MAX_GROUPS: Final = 32
LEGACY_BY: Final = "spec.approvedVersion"  # who put a version in service when no approval was recorded


class Entry(Approval):
    """One line of the approvals annotation: an Approval of `version`."""

    version: int


# --- the webhook's half ----------------------------------------------------------------------------


def identity(userinfo: Mapping[str, Any]) -> tuple[str, list[str]]:
    """(user, groups) of an AdmissionReview's userInfo, bounded as status stores them."""
    user = str(userinfo.get("username") or "")[:256]
    groups = [str(g)[:256] for g in (userinfo.get("groups") or [])][:MAX_GROUPS]
    return user, groups


def entries(annotations: Mapping[str, str]) -> list[Entry]:
    """The approvals annotation's entries; a malformed value or entry reads as none (only the
    webhook writes it, so that means it was written around the webhook)."""
    raw = annotations.get(contracts.ANNOTATION_APPROVALS)
    if not raw:
        return []
    try:
        parsed = json.loads(raw)
    except (ValueError, RecursionError):
        return []
    found = []
    for item in parsed if isinstance(parsed, list) else []:
        try:
            found.append(Entry.model_validate(item))
        except ValidationError:
            continue
    return found


def _annotations(obj: Mapping[str, Any] | None) -> dict[str, str]:
    return dict(((obj or {}).get("metadata") or {}).get("annotations") or {})


def _spec_without_approval(obj: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in ((obj or {}).get("spec") or {}).items() if k != "approvedVersion"}


def _dump(items: Iterable[Entry]) -> str:
    kept = list(items)[-MAX_ENTRIES:]
    return json.dumps(
        [e.model_dump(mode="json", by_alias=True, exclude_defaults=True) for e in kept], separators=(",", ":")
    )


def admit(
    operation: str, userinfo: Mapping[str, Any], old: Mapping[str, Any] | None, new: Mapping[str, Any], now: datetime
) -> dict[str, str | None]:
    """The annotations the webhook sets on `new` (None: removed), for a CREATE or an UPDATE."""
    user, groups = identity(userinfo)
    before = _annotations(old) if operation != "CREATE" else {}
    after = _annotations(new)
    recorded = entries(before)
    stamp = {"user": user, "groups": groups, "at": now}

    def add(version: int, action: ApprovalAction) -> None:
        recorded.append(Entry.model_validate({"version": version, "action": action, **stamp}))

    old_approved = ((old or {}).get("spec") or {}).get("approvedVersion") if operation != "CREATE" else None
    new_approved = (new.get("spec") or {}).get("approvedVersion")
    if isinstance(new_approved, int) and new_approved != old_approved:
        add(new_approved, ApprovalAction.APPROVE)
    # a request, not a state: only when this request sets it (one left by a time without the webhook is
    # dropped here, not counted for whoever happens to edit the Model next)
    request = after.get(contracts.ANNOTATION_APPROVE)
    asked = version_number(request) if request != before.get(contracts.ANNOTATION_APPROVE) else None
    if asked is not None and not (asked == new_approved and new_approved != old_approved):
        add(asked, ApprovalAction.APPROVE)
    already = contracts.rejected_versions(before)
    for version in sorted(set(contracts.rejected_versions(after)) - set(already)):
        add(version, ApprovalAction.REJECT)
    result: dict[str, str | None] = {
        contracts.ANNOTATION_APPROVE: None,
        contracts.ANNOTATION_APPROVALS: _dump(recorded) if recorded else None,
        contracts.ANNOTATION_TRIGGERED_BY: before.get(contracts.ANNOTATION_TRIGGERED_BY),
    }
    retrain = contracts.ANNOTATION_RETRAIN_REQUESTED
    triggers = (
        operation == "CREATE"
        or _spec_without_approval(old) != _spec_without_approval(new)
        or (after.get(retrain) and after.get(retrain) != before.get(retrain))
    )
    if triggers:
        result[contracts.ANNOTATION_TRIGGERED_BY] = json.dumps(
            {"user": user, "groups": groups, "at": now.strftime("%Y-%m-%dT%H:%M:%SZ")}, separators=(",", ":")
        )
    return result


# --- the reconciler's half -------------------------------------------------------------------------


def trigger_user(annotations: Mapping[str, str]) -> str | None:
    """Who last triggered training (the webhook's record), or None when nothing was recorded."""
    raw = annotations.get(contracts.ANNOTATION_TRIGGERED_BY)
    try:
        parsed = json.loads(raw) if raw else None
    except (ValueError, RecursionError):
        return None
    user = parsed.get("user") if isinstance(parsed, dict) else None
    return str(user)[:256] if isinstance(user, str) and user else None


def merge(versions: Iterable[ModelVersion], recorded: Iterable[Entry]) -> list[tuple[ModelVersion, Approval]]:
    """Copy the recorded entries into their versions' `approvals` (each once); the ones that are new."""
    by_number = {v.version: v for v in versions}
    added = []
    for entry in recorded:
        record = by_number.get(entry.version)
        if record is None:
            continue
        approval = Approval.model_validate(entry.model_dump(exclude={"version"}))
        known = record.approvals or []
        if any((a.user, a.action, a.at) == (approval.user, approval.action, approval.at) for a in known):
            continue
        record.approvals = [*known, approval][-MAX_PER_VERSION:]
        added.append((record, approval))
    return added


@dataclass(frozen=True)
class Tally:
    """Distinct people whose approvals count, and what a person reads about the rest."""

    counted: tuple[str, ...]
    required: int
    group: str | None
    refused: tuple[str, ...]  # "bob's approval does not count: ..."

    @property
    def enough(self) -> bool:
        return len(self.counted) >= self.required

    def message(self, version: int) -> str:
        who = f" ({', '.join(self.counted)})" if self.counted else ""
        missing = self.required - len(self.counted)
        more = "one more" if missing == 1 else f"{missing} more"
        where = f" from group {self.group}" if self.group else ""
        text = f"version {version}: {len(self.counted)} of {self.required} approvals{who}; needs {more}{where}"
        hint = " (`kubectl mlops approve`: each approver with their own credentials)"
        return text + "".join(f"; {r}" for r in self.refused) + hint


def tally(record: ModelVersion, spec: ApprovalSpec) -> Tally:
    """Count the version's approvals (and mark each one counted or not, with why)."""
    counted: list[str] = []
    refused: list[str] = []
    for approval in record.approvals or []:
        if approval.action != ApprovalAction.APPROVE:
            continue
        note = None
        if spec.approver_group and spec.approver_group not in approval.groups:
            note = f"{approval.user} is not in group {spec.approver_group}"
        elif spec.separation_of_duties and record.triggered_by and approval.user == record.triggered_by:
            note = f"{approval.user} triggered its training (separationOfDuties)"
        approval.counted, approval.note = note is None, note
        if note is not None:
            if f"{approval.user}'s approval does not count: {note}" not in refused:
                refused.append(f"{approval.user}'s approval does not count: {note}")
        elif approval.user not in counted:
            counted.append(approval.user)
    return Tally(tuple(counted), spec.required_approvers, spec.approver_group, tuple(refused))


def needs_records(spec: ApprovalSpec) -> bool:
    """Whether serving needs approvals recorded by the webhook (else spec.approvedVersion alone
    suffices, as before the webhook: one approver, no group, no separation of duties)."""
    return spec.required_approvers > 1 or spec.approver_group is not None or spec.separation_of_duties


def put_in_service_by(record: ModelVersion) -> str:
    """Who put the version in service: the latest counted approval's user, else LEGACY_BY."""
    latest = [a for a in record.approvals or [] if a.action == ApprovalAction.APPROVE and a.counted]
    return latest[-1].user if latest else LEGACY_BY
