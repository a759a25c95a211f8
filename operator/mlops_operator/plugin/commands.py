"""One function per `kubectl mlops` command: read, decide (actions, tables, explain), patch, print."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from mlops_operator.api.base import Resource
from mlops_operator.api.v1alpha1 import ALL_KINDS, DriftMonitor, Model
from mlops_operator.plugin import actions, serving_history
from mlops_operator.plugin.explain import explain, explanation_text
from mlops_operator.plugin.resources import PluginError, resolve_kind, rfc3339
from mlops_operator.plugin.session import PluginSession
from mlops_operator.plugin.tables import (
    cell,
    conditions_of,
    conditions_table,
    drift_table,
    history_table,
    status_table,
    with_namespaces,
)


def cmd_status(session: PluginSession, args: argparse.Namespace) -> int:
    if args.name:
        if args.all_namespaces:
            raise PluginError("a resource cannot be named across all namespaces: use -n NAMESPACE")
        return _status_of_one(session, resolve_kind(args.kind), args.name)
    kinds: list[type[Resource]] = [resolve_kind(args.kind)] if args.kind else list(ALL_KINDS)
    return _status_of_all(session, kinds, None if args.all_namespaces else session.namespace)


def _status_of_one(session: PluginSession, cls: type[Resource], name: str) -> int:
    obj = session.cluster.get(cls, session.namespace, name)
    table = status_table(cls, [obj], session.now)
    conditions = conditions_table(conditions_of(obj), session.now)
    text = f"{table.text()}\n\nConditions:\n{conditions.text() if conditions.rows else '  none yet'}"
    session.emit({**table.records()[0], "conditions": conditions.records()}, text)
    return 0


def _status_of_all(session: PluginSession, kinds: list[type[Resource]], namespace: str | None) -> int:
    """One table per kind; with namespace None (-A) across all namespaces, with a NAMESPACE column."""
    sections: dict[str, list[dict[str, object]]] = {}
    texts: list[str] = []
    where = f"in namespace {namespace}" if namespace else "in any namespace"
    for cls in kinds:
        objects, skipped = session.cluster.list(cls, namespace)
        for problem in skipped:
            session.warn(f"skipped {problem}")
        table = status_table(cls, objects, session.now)
        if namespace is None:
            table = with_namespaces(table, objects)
        sections[cls.crd.plural] = table.records()
        if len(kinds) > 1:
            texts.append(f"{cls.crd.kind.upper()}S" + ("" if table.rows else "\n  none"))
        if table.rows or len(kinds) == 1:
            texts.append(table.text() if table.rows else f"No {cls.crd.plural} {where}.")
        if len(kinds) > 1:
            texts.append("")
    session.emit(sections if len(kinds) > 1 else sections[kinds[0].crd.plural], "\n".join(texts).rstrip())
    return 0


def cmd_history(session: PluginSession, args: argparse.Namespace) -> int:
    model = session.model(args.model)
    if args.at is not None:
        session.emit(*serving_history.answer_at(model, args.at, session.now))
        return 0
    table = history_table(model, session.now)
    serving = model.status.serving_version if model.status else None
    header = f"Model {model.name}: serving version {cell(serving)}, approval {model.spec.approval.policy}"
    text = f"{header}\n{table.text()}" if table.rows else f"{header}\nNo versions yet."
    periods = serving_history.periods_table(model)
    if periods.rows:
        note = serving_history.older_history_note(model)
        text += f"\n\nServing periods:\n{periods.text()}" + (f"\n{note}" if note else "")
    session.emit(table.records(), text)
    return 0


def cmd_approve(session: PluginSession, args: argparse.Namespace) -> int:
    model = session.model(args.model)
    actions.check_approvable(model, args.version)
    session.cluster.merge_patch(Model, session.namespace, model.name, actions.approve_patch(args.version))
    session.emit(
        {"model": model.name, "approvedVersion": args.version},
        f"model {model.name}: version {args.version} approved (spec.approvedVersion={args.version}). "
        "GitOps: commit the same field, or your tool will revert it.",
    )
    return 0


def cmd_reject(session: PluginSession, args: argparse.Namespace) -> int:
    model = session.model(args.model)
    actions.check_rejectable(model, args.version)
    reason = actions.clean_reason(args.reason)
    patch = actions.reject_patch(model.annotations, args.version, reason)
    session.cluster.merge_patch(Model, session.namespace, model.name, patch)
    session.emit(
        {"model": model.name, "rejectedVersion": args.version, "reason": reason},
        f"model {model.name}: version {args.version} rejected ({reason}); it will never be served.",
    )
    return 0


def cmd_retrain(session: PluginSession, args: argparse.Namespace) -> int:
    model = session.model(args.model)
    value = actions.retrain_annotation(session.now, args.reason)
    session.cluster.merge_patch(Model, session.namespace, model.name, actions.retrain_patch(value))
    session.emit(
        {"model": model.name, "retrainRequested": value},
        f"model {model.name}: retraining requested ({value}). Follow it with `kubectl mlops history {model.name}`.",
    )
    return 0


def cmd_rollback(session: PluginSession, args: argparse.Namespace) -> int:
    model = session.model(args.model)
    target = actions.rollback_target(model, args.to)
    patch = actions.rollback_patch(model, target)
    session.cluster.merge_patch(Model, session.namespace, model.name, patch)
    text = f"model {model.name}: rolling back to version {target} (spec.approvedVersion={target})."
    if "approval" in patch["spec"]:
        text += (
            "\nwarning: the model had approval policy Automatic; it is now Manual so the next "
            "retrain cannot undo the rollback. Set spec.approval.policy back to Automatic and "
            "remove spec.approvedVersion to resume."
        )
    session.emit({"model": model.name, "patch": patch}, text)
    return 0


def cmd_why(session: PluginSession, args: argparse.Namespace) -> int:
    obj = session.cluster.get(resolve_kind(args.kind), session.namespace, args.name)
    explanations = explain(obj, session.now)
    session.emit([asdict(e) for e in explanations], explanation_text(explanations))
    return 0


def cmd_drift(session: PluginSession, args: argparse.Namespace) -> int:
    obj = session.cluster.get(DriftMonitor, session.namespace, args.monitor)
    s = obj.status
    table = drift_table(obj)
    summary = {
        "monitor": obj.name,
        "model": obj.spec.model_ref.name,
        "verdict": s.last_verdict if s else None,
        "driftedShare": s.drifted_share if s else None,
        "lastCheck": rfc3339(s.last_check) if s and s.last_check else None,
        "report": s.report_uri if s else None,
    }
    head = (
        f"DriftMonitor {obj.name} (model {obj.spec.model_ref.name}): verdict {cell(summary['verdict'])}, "
        f"drifted share {cell(summary['driftedShare'])}, last check {cell(summary['lastCheck'])}\n"
        f"report: {cell(summary['report'])}"
    )
    text = f"{head}\n{table.text()}" if table.rows else f"{head}\nNo feature scores yet."
    session.emit({**summary, "features": table.records()}, text)
    return 0
