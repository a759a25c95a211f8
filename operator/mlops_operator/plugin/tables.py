"""The tables of `status`, `history` and `drift`: rows of cluster data, rendered like `kubectl get`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mlops_operator import contracts
from mlops_operator.api.base import Condition, ConditionStatus, Resource
from mlops_operator.api.v1alpha1 import BatchScoring, Dataset, DriftMonitor, Model
from mlops_operator.api.v1alpha1.model import VersionState
from mlops_operator.plugin.output import printable
from mlops_operator.plugin.resources import creation_time, human_age, rfc3339


def cell(value: object) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return printable(str(value))


def render_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Left-aligned columns separated by three spaces, like `kubectl get`."""
    texts = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in texts)]) for i, h in enumerate(headers)]
    lines = ["   ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in texts]
    return "\n".join(lines)


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: list[tuple[object, ...]]

    def records(self) -> list[dict[str, object]]:
        """The same data for -o json|yaml: one object per row, keys from the headers."""
        keys = [h.lower().replace("-", "_") for h in self.headers]
        return [dict(zip(keys, row, strict=True)) for row in self.rows]

    def text(self) -> str:
        return render_table(self.headers, self.rows)


def _condition_summary(conditions: Sequence[Condition]) -> str:
    """The first condition that is not True, else nothing: what a user wants to see in a row."""
    for c in conditions:
        if c.status != ConditionStatus.TRUE and c.type != "Degraded":
            return f"{c.type}={c.status} ({c.reason})"
    return ""


def dataset_table(objects: Sequence[Dataset], now: datetime) -> Table:
    rows: list[tuple[object, ...]] = []
    for d in objects:
        s = d.status
        rows.append(
            (
                d.name,
                s.version[:12] if s and s.version else None,
                s.rows if s else None,
                s.columns if s else None,
                s.phase if s else "Pending",
                len(s.findings) if s else 0,
                human_age(creation_time(d), now),
            )
        )
    return Table(("NAME", "VERSION", "ROWS", "COLUMNS", "PHASE", "FINDINGS", "AGE"), rows)


def model_table(objects: Sequence[Model], now: datetime) -> Table:
    rows: list[tuple[object, ...]] = []
    for m in objects:
        s = m.status
        rows.append(
            (
                m.name,
                s.latest_version if s else None,
                s.serving_version if s else None,
                s.metric if s else None,
                s.phase if s else "Pending",
                m.spec.approval.policy,
                human_age(creation_time(m), now),
                _rollout(m),
                (s.message or _condition_summary(s.conditions)) if s else None,
            )
        )
    return Table(("NAME", "LATEST", "SERVING", "METRIC", "PHASE", "APPROVAL", "AGE", "ROLLOUT", "MESSAGE"), rows)


def _rollout(model: Model) -> str | None:
    """The latest Canary or Shadow: `Canary v4 50% (step 1/3)`, `Shadow v4 agreement 95.7%`, or how it ended."""
    record = model.status.rollout if model.status else None
    if record is None:
        return None
    head = f"{record.strategy} v{record.candidate}"
    if record.phase != "Progressing":
        return f"{head} {record.phase}"
    if record.strategy == "Shadow":
        agreement = record.shadow.agreement if record.shadow else None
        return f"{head} agreement {agreement:.1%}" if agreement is not None else f"{head} waiting for mirrored requests"
    return f"{head} {record.weight}% (step {record.step + 1}/{len(model.spec.serving.rollout.steps)})"


def driftmonitor_table(objects: Sequence[DriftMonitor], now: datetime) -> Table:
    rows: list[tuple[object, ...]] = []
    for m in objects:
        s = m.status
        rows.append(
            (
                m.name,
                m.spec.model_ref.name,
                s.last_verdict if s else None,
                s.drifted_share if s else None,
                human_age(s.last_check, now) if s and s.last_check else None,
                s.next_check and rfc3339(s.next_check) if s else None,
                human_age(creation_time(m), now),
            )
        )
    return Table(("NAME", "MODEL", "VERDICT", "DRIFTED", "LAST-CHECK", "NEXT-CHECK", "AGE"), rows)


def batchscoring_table(objects: Sequence[BatchScoring], now: datetime) -> Table:
    rows: list[tuple[object, ...]] = []
    for b in objects:
        s = b.status
        shards = f"{s.shards_succeeded or 0}/{s.shards}" if s and s.shards else None
        rows.append(
            (
                b.name,
                b.spec.model_ref.name,
                s.version if s else None,
                s.phase if s else "Pending",
                s.rows if s else None,
                shards,
                s.rows_per_second if s else None,
                human_age(creation_time(b), now),
            )
        )
    return Table(("NAME", "MODEL", "VERSION", "PHASE", "ROWS", "SHARDS", "ROWS/S", "AGE"), rows)


_STATUS_TABLES: dict[type[Resource], Callable[[Any, datetime], Table]] = {
    Dataset: dataset_table,
    Model: model_table,
    DriftMonitor: driftmonitor_table,
    BatchScoring: batchscoring_table,
}


def status_table(cls: type[Resource], objects: Sequence[Resource], now: datetime) -> Table:
    return _STATUS_TABLES[cls](objects, now)


def with_namespaces(table: Table, objects: Sequence[Resource]) -> Table:
    """The table with a leading NAMESPACE column, as `kubectl get -A` shows it; rows match objects."""
    rows = [(obj.namespace, *row) for obj, row in zip(objects, table.rows, strict=True)]
    return Table(("NAMESPACE", *table.headers), rows)


def conditions_of(obj: Resource) -> list[Condition]:
    status = getattr(obj, "status", None)
    return list(status.conditions) if status is not None else []


def conditions_table(conditions: Sequence[Condition], now: datetime) -> Table:
    rows: list[tuple[object, ...]] = [
        (c.type, c.status, c.reason, human_age(c.last_transition_time, now), c.message) for c in conditions
    ]
    return Table(("TYPE", "STATUS", "REASON", "SINCE", "MESSAGE"), rows)


def history_table(model: Model, now: datetime) -> Table:
    versions = sorted(model.status.versions if model.status else [], key=lambda v: v.version, reverse=True)
    rejected = contracts.rejected_versions(model.annotations)
    rows: list[tuple[object, ...]] = []
    metric = model.spec.validation.metric
    for v in versions:
        score = v.metrics.get(str(metric))
        gate = v.gate and ("passed" if v.gate.passed else f"failed: {v.gate.reason}")
        note = v.message or v.reason
        if v.version in rejected and v.state != VersionState.REJECTED:
            note = f"rejection pending: {rejected[v.version]}"
        rows.append(
            (
                v.version,
                v.state,
                score,
                gate,
                v.dataset_version[:12] if v.dataset_version else None,
                v.trigger,
                human_age(v.trained_at or v.created_at, now),
                note,
            )
        )
    return Table(("VERSION", "STATE", str(metric).upper(), "GATE", "DATASET", "TRIGGER", "AGE", "NOTE"), rows)


def drift_table(monitor: DriftMonitor) -> Table:
    scores = monitor.status.feature_scores if monitor.status else []
    ordered = sorted(scores, key=lambda f: (not f.drifted, f.name))
    rows: list[tuple[object, ...]] = [
        (f.name, f.test, f.score, f.threshold, "yes" if f.drifted else "no") for f in ordered
    ]
    return Table(("FEATURE", "TEST", "SCORE", "THRESHOLD", "DRIFTED"), rows)
