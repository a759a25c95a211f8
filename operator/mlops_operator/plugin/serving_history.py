"""`kubectl mlops history`'s serving periods and its `--at` answer: which version served at an instant."""

from __future__ import annotations

import argparse
from datetime import datetime

from mlops_operator.api import history
from mlops_operator.api.v1alpha1 import Model
from mlops_operator.api.v1alpha1.model import ModelVersion
from mlops_operator.api.v1alpha1.serving_periods import ServingPeriod
from mlops_operator.plugin.resources import PluginError, rfc3339
from mlops_operator.plugin.tables import Table, cell

EXAMPLE = "2026-05-01T12:00:00Z or 2026-05-01T14:00:00+02:00"


def instant(text: str) -> datetime:
    """An RFC 3339 time with its zone, for argparse (a bad one is a usage error, exit status 2)."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an RFC 3339 time (e.g. {EXAMPLE})") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no time zone: add Z (UTC) or an offset (e.g. {EXAMPLE})")
    return moment


def periods_table(model: Model) -> Table:
    """Every serving period status holds, oldest first."""
    versions = model.status.versions if model.status else []
    rows: list[tuple[object, ...]] = [
        (v.version, rfc3339(p.start), rfc3339(p.to) if p.to else "serving", p.ended_by, p.by)
        for v in versions
        for p in v.serving_periods or []
    ]
    rows.sort(key=lambda row: (str(row[1]), int(str(row[0]))))
    return Table(("VERSION", "FROM", "TO", "ENDED-BY", "BY"), rows)


def older_history_note(model: Model) -> str:
    """Where the periods status no longer holds are, when some are not in status."""
    status = model.status
    if status is None:
        return ""
    dropped = sum(v.earlier_periods or 0 for v in status.versions)
    pruned = (status.registry.stored or 0) - len(status.versions) if status.registry else 0
    if not dropped and pruned <= 0:
        return ""
    since = history.earliest_recorded(status.versions)
    return (
        f"status holds serving history since {rfc3339(since) if since else '-'}; "
        "older periods are in the store's registry.json (the registry mirror)"
    )


def answer_at(model: Model, at: datetime, now: datetime) -> tuple[dict[str, object], str]:
    """(data for -o json|yaml, text): the version that served at `at`, or that nothing did."""
    if at > now:
        raise PluginError(f"--at {rfc3339(at)} is in the future (now: {rfc3339(now)})")
    versions = model.status.versions if model.status else []
    found = history.served_at(versions, at)
    if found is None:
        note = older_history_note(model)
        since = history.earliest_recorded(versions)
        text = f"model {model.name}: nothing served at {rfc3339(at)}"
        if note and (since is None or at < since):
            text += f" as far as status knows; {note}"
        return {"model": model.name, "at": rfc3339(at), "version": None, "note": note or None}, text
    return _served(model, at, *found)


def _served(model: Model, at: datetime, record: ModelVersion, period: ServingPeriod) -> tuple[dict[str, object], str]:
    metrics = ", ".join(f"{k}={cell(v)}" for k, v in sorted(record.metrics.items()))
    until = f"until {rfc3339(period.to)} ({period.ended_by})" if period.to else "still serving"
    data: dict[str, object] = {
        "model": model.name,
        "at": rfc3339(at),
        "version": record.version,
        "datasetVersion": record.dataset_version,
        "metrics": record.metrics,
        "approvedBy": period.by,
        "period": period.dump(),
    }
    text = "\n".join(
        [
            f"model {model.name} at {rfc3339(at)}: version {record.version}",
            f"  serving:   from {rfc3339(period.start)}, {until}",
            f"  approver:  {cell(period.by)}",
            f"  dataset:   {cell(record.dataset_version)}",
            f"  metrics:   {metrics or '-'}",
        ]
    )
    return data, text


__all__ = ["answer_at", "instant", "older_history_note", "periods_table"]
