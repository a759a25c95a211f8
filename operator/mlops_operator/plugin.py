"""`kubectl mlops`: the data scientist's view of Datasets, Models and DriftMonitors.

Every change this plugin makes is a merge patch of the custom resource itself (a spec field or an
annotation the operator honours), so it is visible in `kubectl get -o yaml`, works the same when a
GitOps repository holds the resource, and needs no rights beyond patching the resource.

Contract with the operator (the reconcilers honour these):
  approve MODEL V        spec.approvedVersion = V                      (Manual models)
  reject MODEL V         annotation mlops.dev/rejected-versions, a JSON object {"<V>": "<reason>"}
  retrain MODEL          annotation mlops.dev/retrain-requested = "<RFC3339 now>;<reason>"
  rollback MODEL         spec.approvedVersion = the previously served version; an Automatic model
                         is switched to Manual in the same patch so the next retrain cannot undo it

The module is split into pure functions (tables, explanations, version choices: unit-tested) and a
thin `Cluster` wrapper around the Kubernetes client.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

import yaml
from pydantic import ValidationError

from mlops_operator import contracts
from mlops_operator.api.base import Condition, Resource
from mlops_operator.api.v1alpha1 import Dataset, DriftMonitor, Model
from mlops_operator.api.v1alpha1.model import ApprovalPolicy, ModelVersion, VersionState
from mlops_operator.conditions import Reason, Type

ANNOTATION_REJECTED_VERSIONS = contracts.ANNOTATION_REJECTED_VERSIONS
MAX_REASON_LENGTH = 200

KINDS: dict[str, type[Resource]] = {}
_cls: type[Resource]
for _cls in (Dataset, Model, DriftMonitor):
    for _alias in (_cls.crd.singular, _cls.crd.plural, _cls.crd.kind.lower(), *_cls.crd.short_names):
        KINDS[_alias] = _cls
ALL_KINDS: tuple[type[Resource], ...] = (Dataset, Model, DriftMonitor)

# Versions that hold a trained, validated artifact and so can be served again.
SERVABLE_STATES = frozenset(
    {
        VersionState.VALIDATED,
        VersionState.APPROVED,
        VersionState.SERVING,
        VersionState.RETIRED,
        VersionState.ROLLED_BACK,
    }
)


class PluginError(Exception):
    """A problem the user can fix; printed without a traceback."""


# --- pure helpers -------------------------------------------------------------------------------


def resolve_kind(word: str) -> type[Resource]:
    try:
        return KINDS[word.lower()]
    except KeyError:
        raise PluginError(f"unknown kind {word!r}: use dataset (ds), model (mdl) or driftmonitor (dm)") from None


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


def human_age(then: datetime | None, now: datetime) -> str:
    """kubectl's compact age: 45s, 12m, 5h, 3d."""
    if then is None:
        return "-"
    seconds = max(0, int((now - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def creation_time(obj: Resource) -> datetime | None:
    stamp = obj.metadata.get("creationTimestamp")
    return parse_time(stamp) if stamp else None


def parse_time(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def cell(value: object) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


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
    """The first condition that is not True, else the Ready one: what a user wants to see in a row."""
    for c in conditions:
        if c.status != "True" and c.type != "Degraded":
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
                (s.message or _condition_summary(s.conditions)) if s else None,
            )
        )
    return Table(("NAME", "LATEST", "SERVING", "METRIC", "PHASE", "APPROVAL", "AGE", "MESSAGE"), rows)


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


def status_table(cls: type[Resource], objects: Sequence[Resource], now: datetime) -> Table:
    builders: dict[type[Resource], Callable[[Any, datetime], Table]] = {
        Dataset: dataset_table,
        Model: model_table,
        DriftMonitor: driftmonitor_table,
    }
    return builders[cls](objects, now)


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
    rejected = rejected_versions(model.annotations)
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


# --- version choices (pure) -----------------------------------------------------------------------


rejected_versions = contracts.rejected_versions


def with_rejection(annotations: Mapping[str, str], version: int, reason: str) -> str:
    """The annotation value after rejecting one more version (sorted, compact, deterministic)."""
    current = rejected_versions(annotations)
    current[version] = reason
    return json.dumps({str(k): current[k] for k in sorted(current)}, separators=(",", ":"))


def clean_reason(reason: str) -> str:
    """One line, bounded: the reason ends up in an annotation, status and Events."""
    flat = " ".join(reason.split())
    if not flat:
        raise PluginError("--reason must not be empty")
    return flat[:MAX_REASON_LENGTH]


def retrain_annotation(now: datetime, reason: str) -> str:
    return f"{rfc3339(now)};{clean_reason(reason)}"


def find_version(model: Model, version: int) -> ModelVersion:
    for v in model.status.versions if model.status else []:
        if v.version == version:
            return v
    known = ", ".join(str(v.version) for v in (model.status.versions if model.status else [])) or "none yet"
    raise PluginError(f"model {model.name} has no version {version} (versions: {known})")


def check_approvable(model: Model, version: int) -> ModelVersion:
    if model.spec.approval.policy == ApprovalPolicy.AUTOMATIC:
        raise PluginError(
            f"model {model.name} has approval policy Automatic: it approves its own validated versions and "
            f"ignores spec.approvedVersion. To pin version {version}, run "
            f"`kubectl mlops rollback {model.name} --to {version}` (switches it to Manual)."
        )
    target = find_version(model, version)
    if version in rejected_versions(model.annotations):
        raise PluginError(f"version {version} of model {model.name} was rejected; it cannot be approved")
    if target.state not in SERVABLE_STATES:
        why = f": {target.message}" if target.message else ""
        raise PluginError(
            f"version {version} of model {model.name} is {target.state}{why}; only validated versions can be approved"
        )
    return target


def check_rejectable(model: Model, version: int) -> ModelVersion:
    target = find_version(model, version)
    serving = model.status.serving_version if model.status else None
    if version == serving:
        raise PluginError(
            f"version {version} of model {model.name} is serving; "
            f"roll back first: `kubectl mlops rollback {model.name}`"
        )
    if model.spec.approved_version == version:
        raise PluginError(
            f"version {version} is model {model.name}'s spec.approvedVersion; approve another version first"
        )
    return target


def rollback_target(model: Model, requested: int | None) -> int:
    """The version to serve instead of the current one.

    Without --to: the most recently served version before the current one that is neither failed
    nor rejected; that is what "undo the last rollout" means.
    """
    serving = model.status.serving_version if model.status else None
    rejected = rejected_versions(model.annotations)
    if requested is not None:
        target = find_version(model, requested)
        if requested == serving:
            raise PluginError(f"model {model.name} already serves version {requested}")
        if requested in rejected or target.state not in SERVABLE_STATES:
            raise PluginError(f"version {requested} of model {model.name} is {target.state}; it cannot be served")
        return requested
    if serving is None:
        raise PluginError(f"model {model.name} serves no version yet: nothing to roll back")
    served_before = [
        v
        for v in (model.status.versions if model.status else [])
        if v.serving_at is not None
        and v.version != serving
        and v.version not in rejected
        and v.state in SERVABLE_STATES
    ]
    if not served_before:
        raise PluginError(f"model {model.name} has served no other version; name one with --to VERSION")
    return max(served_before, key=lambda v: (v.serving_at or datetime.min.replace(tzinfo=UTC), v.version)).version


def rollback_patch(model: Model, target: int) -> dict[str, Any]:
    spec: dict[str, Any] = {"approvedVersion": target}
    if model.spec.approval.policy == ApprovalPolicy.AUTOMATIC:
        spec["approval"] = {"policy": ApprovalPolicy.MANUAL.value}
    return {"spec": spec}


# --- why: conditions in plain words (pure) ---------------------------------------------------------

# Hints per condition reason (the operator's conditions.Reason, plus the validation gate's reasons).
# {kind}, {kind_lower}, {name} and {namespace} are filled in. A reason without a hint is explained by
# the condition's own message alone: it needs no action (Succeeded, Serving, NoDrift, ...).
R = Reason
HINTS: dict[str, str] = {
    R.READING_REGISTRY: (
        "Before its first training a Model reads the store's registry.json (a few seconds, one small "
        "Job). If this lasts, look at that Job: kubectl -n {namespace} get jobs "
        "-l mlops.dev/model={name},app.kubernetes.io/component=registry"
    ),
    R.INVALID_SPEC: (
        "The spec is valid for the API but not usable (see the message). Fix the spec and apply it again."
    ),
    R.JOB_LOST: (
        "The Job disappeared before it reported a result (deleted by hand or by TTL). The "
        "operator starts a new one on its own."
    ),
    R.JOB_FAILED: (
        "The Job failed. Its pod's termination message is in the condition; the logs say more: "
        "`kubectl logs -n {namespace} -l mlops.dev/{kind_lower}={name}`."
    ),
    R.OOM_KILLED: (
        "The pod ran out of memory. Raise resources.limits.memory in the spec "
        "(spec.trainer.resources for training, spec.resources for Datasets and DriftMonitors)."
    ),
    R.BACKOFF_LIMIT_EXCEEDED: (
        "Every retry of the Job failed. `kubectl logs -n {namespace} -l mlops.dev/{kind_lower}={name}` shows why."
    ),
    R.DEADLINE_EXCEEDED: (
        "The Job ran past its deadline. Raise spec.trainer.activeDeadlineSeconds or choose cheaper hyperparameters."
    ),
    R.DATA_ERROR: (
        "The data broke the schema or a quality rule. `kubectl mlops status dataset <name>` lists"
        " the findings; fix the source or relax spec.quality."
    ),
    R.SPEC_ERROR: (
        "The trainer refused the spec (estimator not in the allowlist, unknown or badly typed "
        "parameter). Fix spec.trainer; the next change of the spec retries."
    ),
    R.STORE_ERROR: (
        "The artifact store could not be read or written. Check the claim (`kubectl get pvc -n "
        "{namespace}`) or the storage credentials; the operator retries on its own."
    ),
    R.INTEGRITY_ERROR: (
        "An artifact does not match the sha256 recorded for it and will not be used. Retrain: "
        "`kubectl mlops retrain {name} --reason integrity`."
    ),
    R.RESULT_UNREADABLE: (
        "The Job finished but its result could not be read. With a custom training image, check "
        "that it writes the result JSON to the termination log."
    ),
    R.DATASET_NOT_FOUND: ("The Dataset in spec.datasetRef does not exist in {namespace}. Create it or fix the name."),
    R.DATASET_NOT_READY: ("The Model waits for its Dataset: `kubectl mlops why dataset <name> -n {namespace}`."),
    R.TARGET_MISSING: ("No target column: set spec.target on the Model or spec.schema.target on the Dataset."),
    R.AWAITING_APPROVAL: (
        "Approval policy Manual: a person decides. `kubectl mlops history {name}` lists the "
        "candidates; `kubectl mlops approve {name} <version>` serves one."
    ),
    R.VERSION_NOT_FOUND: (
        "spec.approvedVersion names a version that does not exist; `kubectl mlops history {name}` lists them."
    ),
    R.VERSION_NOT_APPROVABLE: (
        "spec.approvedVersion names a version that failed validation or was rejected. Approve a "
        "validated version instead."
    ),
    R.REJECTED_BY_USER: (
        "A person rejected this version (annotation mlops.dev/rejected-versions); it is never served. "
        "Remove it from the annotation to make it eligible again."
    ),
    R.NO_VALIDATED_VERSION: (
        "No version passed the validation gate yet; `kubectl mlops history {name}` shows each "
        "version's score and gate verdict."
    ),
    R.ROLLOUT_FAILED: (
        "The new model server pods did not become ready in time; the previous version keeps "
        "serving. `kubectl describe pods -n {namespace} -l mlops.dev/model={name}` shows why."
    ),
    R.SERVING_DISABLED: "spec.serving.enabled is false: nothing is served until it is true again.",
    R.NOTHING_TO_SERVE: "There is no approved version to serve yet.",
    R.MODEL_NOT_FOUND: ("The Model in spec.modelRef does not exist in {namespace}. Create it or fix the name."),
    R.BASELINE_NOT_READY: "The baseline Dataset has no profile yet: `kubectl mlops why dataset <name>`.",
    R.DRIFT: (
        "The scoring inputs drifted from the training data. `kubectl mlops drift {name}` shows "
        "the features and the report; with spec.action.retrain the Model retrains (after the "
        "cooldown)."
    ),
    R.NOT_ENOUGH_DATA: (
        "Fewer scoring inputs than spec.minSamples arrived in the window. Send more traffic, "
        "lower spec.minSamples or widen spec.windowSeconds."
    ),
    R.SCHEMA_MISMATCH: (
        "The collected inputs do not have the baseline's columns. Is the Model trained on the "
        "Dataset the monitor compares with (spec.datasetRef)?"
    ),
    R.CHECK_FAILED: ("The drift check Job failed; `kubectl logs -n {namespace} -l mlops.dev/driftmonitor={name}`."),
    # The validation gate (status.versions[].gate.reason).
    "BelowThreshold": "The new version scored under spec.validation.threshold; the serving version stays.",
    "AboveThreshold": ("The new version's error is above spec.validation.threshold; the serving version stays."),
    "NotBetterThanChampion": (
        "The new version did not beat the serving version; set spec.validation.mustBeatChampion "
        "false to accept it anyway."
    ),
    "InsufficientImprovement": ("The new version beat the serving one by less than spec.validation.minImprovement."),
    "MetricMissing": "The training result lacks the validation metric; with a custom image, report it.",
}

CONDITION_WORDS: dict[tuple[str, str], str] = {
    (Type.READY, "True"): "is ready",
    (Type.READY, "False"): "is not ready",
    (Type.READY, "Unknown"): "is still being reconciled",
    (Type.PROFILED, "True"): "has a validated, profiled version",
    (Type.PROFILED, "False"): "has no validated, profiled version",
    (Type.PROFILED, "Unknown"): "is being profiled",
    (Type.DATASET_RESOLVED, "True"): "found its Dataset",
    (Type.DATASET_RESOLVED, "False"): "cannot use its Dataset",
    (Type.TRAINED, "True"): "has a trained version",
    (Type.TRAINED, "False"): "has no trained version",
    (Type.TRAINED, "Unknown"): "is training",
    (Type.VALIDATED, "True"): "has a version that passed validation",
    (Type.VALIDATED, "False"): "has no version that passed validation",
    (Type.APPROVED, "True"): "has an approved version",
    (Type.APPROVED, "False"): "has no approved version",
    (Type.SERVING, "True"): "serves predictions",
    (Type.SERVING, "False"): "does not serve predictions",
    (Type.SERVING, "Unknown"): "is rolling out",
    (Type.DRIFT_DETECTED, "True"): "sees drift in its model's inputs",
    (Type.DRIFT_DETECTED, "False"): "sees no drift",
    (Type.DRIFT_DETECTED, "Unknown"): "has no drift verdict yet",
}


@dataclass(frozen=True)
class Explanation:
    condition: str
    status: str
    reason: str
    sentence: str
    hint: str | None
    since: str | None


def explain(obj: Resource, now: datetime) -> list[Explanation]:
    """One plain sentence per condition, plus a hint for the reasons we know how to act on."""
    kind, name, namespace = obj.crd.kind, obj.name, obj.namespace
    status = getattr(obj, "status", None)
    if status is None:
        return [
            Explanation(
                "Status",
                "Unknown",
                "NotReconciled",
                f"{kind} {name} has no status yet: the operator has not picked it up.",
                f"Is the operator running, and does it watch namespace {namespace}? "
                "`kubectl get pods -A -l app.kubernetes.io/component=operator,app.kubernetes.io/name=mlops-operator`",
                None,
            )
        ]
    explanations: list[Explanation] = []
    observed = status.observed_generation
    if observed is not None and obj.generation and observed < obj.generation:
        explanations.append(
            Explanation(
                "Status",
                "Unknown",
                "SpecChangePending",
                f"{kind} {name} was changed (generation {obj.generation}) "
                "and the operator has not caught up yet "
                f"(it last handled generation {observed}); the conditions below may be outdated.",
                None,
                None,
            )
        )
    fields = {"kind": kind, "kind_lower": kind.lower(), "name": name, "namespace": namespace}
    for c in status.conditions:
        words = CONDITION_WORDS.get((c.type, str(c.status)), f"has condition {c.type}={c.status}")
        sentence = f"{kind} {name} {words}"
        sentence += f" ({c.reason}): {c.message.rstrip('.')}." if c.message else f" ({c.reason})."
        hint = HINTS.get(c.reason)
        explanations.append(
            Explanation(
                c.type,
                str(c.status),
                c.reason,
                sentence,
                hint.format(**fields) if hint else None,
                human_age(c.last_transition_time, now),
            )
        )
    if not status.conditions:
        explanations.append(
            Explanation("Status", "Unknown", "NoConditions", f"{kind} {name} reports no conditions yet.", None, None)
        )
    return explanations


def explanation_text(explanations: Sequence[Explanation]) -> str:
    lines: list[str] = []
    for e in explanations:
        since = f" (for {e.since})" if e.since and e.since != "-" else ""
        lines.append(f"- {e.sentence}{since}")
        if e.hint:
            lines.append(f"  hint: {e.hint}")
    return "\n".join(lines)


# --- cluster I/O ------------------------------------------------------------------------------------


class Cluster:
    """The few custom-resource calls the plugin makes."""

    def __init__(self, kubeconfig: str | None, context: str | None) -> None:
        from kubernetes import client, config

        try:
            api_client = config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, context=context
            )
        except config.ConfigException as exc:
            raise PluginError(f"cannot load kubeconfig: {exc}") from exc
        self._api = client.CustomObjectsApi(api_client)
        self._kubeconfig, self._context = kubeconfig, context

    def default_namespace(self) -> str:
        from kubernetes import config

        try:
            contexts, active = config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
                config_file=self._kubeconfig
            )
        except config.ConfigException:
            return "default"
        chosen = next((c for c in contexts if c["name"] == self._context), active) if self._context else active
        return str((chosen or {}).get("context", {}).get("namespace") or "default")

    def _call(self, fn: Callable[..., Any], cls: type[Resource], namespace: str, *args: Any) -> Any:
        from kubernetes.client.exceptions import ApiException

        try:
            return fn(contracts.GROUP, contracts.VERSION, namespace, cls.crd.plural, *args)
        except ApiException as exc:
            if exc.status == 404:
                what = f"{cls.crd.kind} {args[0]}" if args else f"{cls.crd.plural}"
                raise PluginError(f"{what} not found in namespace {namespace} (are the CRDs installed?)") from exc
            if exc.status == 403:
                raise PluginError(f"forbidden: you may not access {cls.crd.plural} in namespace {namespace}") from exc
            if exc.status == 422:
                detail = json.loads(exc.body or "{}").get("message", exc.reason)
                raise PluginError(f"the API server refused the change: {detail}") from exc
            raise PluginError(f"API error {exc.status}: {exc.reason}") from exc

    def get(self, cls: type[Resource], namespace: str, name: str) -> Resource:
        return parse_resource(cls, self._call(self._api.get_namespaced_custom_object, cls, namespace, name))

    def list(self, cls: type[Resource], namespace: str) -> list[Resource]:
        body = self._call(self._api.list_namespaced_custom_object, cls, namespace)
        return sorted((parse_resource(cls, item) for item in body.get("items", [])), key=lambda r: r.name)

    def merge_patch(self, cls: type[Resource], namespace: str, name: str, patch: dict[str, Any]) -> Resource:
        # The client sends a dict body as a JSON merge patch for custom objects.
        body = self._call(self._api.patch_namespaced_custom_object, cls, namespace, name, patch)
        return parse_resource(cls, body)


# --- commands ------------------------------------------------------------------------------------------


@dataclass
class Context:
    cluster: Cluster
    namespace: str
    output: str
    out: TextIO
    err: TextIO
    now: datetime

    def emit(self, data: object, text: str) -> None:
        if self.output == "json":
            print(json.dumps(data, indent=2, default=str), file=self.out)
        elif self.output == "yaml":
            print(
                yaml.safe_dump(json.loads(json.dumps(data, default=str)), sort_keys=False).rstrip(),
                file=self.out,
            )
        else:
            print(text, file=self.out)

    def model(self, name: str) -> Model:
        obj = self.cluster.get(Model, self.namespace, name)
        assert isinstance(obj, Model)
        return obj


def cmd_status(ctx: Context, args: argparse.Namespace) -> int:
    if args.name:
        cls = resolve_kind(args.kind)
        obj = ctx.cluster.get(cls, ctx.namespace, args.name)
        table = status_table(cls, [obj], ctx.now)
        conditions = conditions_table(conditions_of(obj), ctx.now)
        text = f"{table.text()}\n\nConditions:\n{conditions.text() if conditions.rows else '  none yet'}"
        ctx.emit({**table.records()[0], "conditions": conditions.records()}, text)
        return 0
    kinds = [resolve_kind(args.kind)] if args.kind else list(ALL_KINDS)
    sections: dict[str, list[dict[str, object]]] = {}
    texts: list[str] = []
    for cls in kinds:
        table = status_table(cls, ctx.cluster.list(cls, ctx.namespace), ctx.now)
        sections[cls.crd.plural] = table.records()
        if len(kinds) > 1:
            texts.append(f"{cls.crd.kind.upper()}S" + ("" if table.rows else "\n  none"))
        if table.rows or len(kinds) == 1:
            texts.append(table.text() if table.rows else f"No {cls.crd.plural} in namespace {ctx.namespace}.")
        if len(kinds) > 1:
            texts.append("")
    ctx.emit(sections if len(kinds) > 1 else sections[kinds[0].crd.plural], "\n".join(texts).rstrip())
    return 0


def cmd_history(ctx: Context, args: argparse.Namespace) -> int:
    model = ctx.model(args.model)
    table = history_table(model, ctx.now)
    serving = model.status.serving_version if model.status else None
    header = f"Model {model.name}: serving version {cell(serving)}, approval {model.spec.approval.policy}"
    ctx.emit(table.records(), f"{header}\n{table.text()}" if table.rows else f"{header}\nNo versions yet.")
    return 0


def cmd_approve(ctx: Context, args: argparse.Namespace) -> int:
    model = ctx.model(args.model)
    check_approvable(model, args.version)
    ctx.cluster.merge_patch(Model, ctx.namespace, model.name, {"spec": {"approvedVersion": args.version}})
    ctx.emit(
        {"model": model.name, "approvedVersion": args.version},
        f"model {model.name}: version {args.version} approved (spec.approvedVersion={args.version}). "
        "GitOps: commit the same field, or your tool will revert it.",
    )
    return 0


def cmd_reject(ctx: Context, args: argparse.Namespace) -> int:
    model = ctx.model(args.model)
    check_rejectable(model, args.version)
    reason = clean_reason(args.reason)
    value = with_rejection(model.annotations, args.version, reason)
    ctx.cluster.merge_patch(
        Model, ctx.namespace, model.name, {"metadata": {"annotations": {ANNOTATION_REJECTED_VERSIONS: value}}}
    )
    ctx.emit(
        {"model": model.name, "rejectedVersion": args.version, "reason": reason},
        f"model {model.name}: version {args.version} rejected ({reason}); it will never be served.",
    )
    return 0


def cmd_retrain(ctx: Context, args: argparse.Namespace) -> int:
    model = ctx.model(args.model)
    value = retrain_annotation(ctx.now, args.reason)
    ctx.cluster.merge_patch(
        Model,
        ctx.namespace,
        model.name,
        {"metadata": {"annotations": {contracts.ANNOTATION_RETRAIN_REQUESTED: value}}},
    )
    ctx.emit(
        {"model": model.name, "retrainRequested": value},
        f"model {model.name}: retraining requested ({value}). Follow it with `kubectl mlops history {model.name}`.",
    )
    return 0


def cmd_rollback(ctx: Context, args: argparse.Namespace) -> int:
    model = ctx.model(args.model)
    target = rollback_target(model, args.to)
    patch = rollback_patch(model, target)
    ctx.cluster.merge_patch(Model, ctx.namespace, model.name, patch)
    text = f"model {model.name}: rolling back to version {target} (spec.approvedVersion={target})."
    if "approval" in patch["spec"]:
        text += (
            "\nwarning: the model had approval policy Automatic; it is now Manual so the next "
            "retrain cannot undo the rollback. Set spec.approval.policy back to Automatic and "
            "remove spec.approvedVersion to resume."
        )
    ctx.emit({"model": model.name, "patch": patch}, text)
    return 0


def cmd_why(ctx: Context, args: argparse.Namespace) -> int:
    cls = resolve_kind(args.kind)
    obj = ctx.cluster.get(cls, ctx.namespace, args.name)
    explanations = explain(obj, ctx.now)
    ctx.emit([asdict(e) for e in explanations], explanation_text(explanations))
    return 0


def cmd_drift(ctx: Context, args: argparse.Namespace) -> int:
    obj = ctx.cluster.get(DriftMonitor, ctx.namespace, args.monitor)
    assert isinstance(obj, DriftMonitor)
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
    ctx.emit({**summary, "features": table.records()}, text)
    return 0


# --- argument parsing ------------------------------------------------------------------------------


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be a version number >= 1")
    return value


def _global_flags(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """kubectl's flags, accepted before or after the command (the later one wins)."""

    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    parser.add_argument("-n", "--namespace", default=default(None), help="namespace (default: the context's)")
    parser.add_argument("--kubeconfig", default=default(None), help="path to the kubeconfig file")
    parser.add_argument("--context", default=default(None), help="kubeconfig context to use")
    parser.add_argument("-o", "--output", choices=("table", "json", "yaml"), default=default("table"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubectl mlops", description="Inspect and steer Datasets, Models and DriftMonitors (mlops.dev)."
    )
    _global_flags(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, fn: Callable[[Context, argparse.Namespace], int], help_: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_, description=help_)
        _global_flags(sub, suppress=True)
        sub.set_defaults(handler=fn)
        return sub

    p = command("status", cmd_status, "summary of the resources, or of one resource with its conditions")
    p.add_argument("kind", nargs="?", help="dataset|model|driftmonitor (or ds, mdl, dm)")
    p.add_argument("name", nargs="?")
    p = command("history", cmd_history, "a Model's versions: state, score, gate, lineage")
    p.add_argument("model")
    p = command("approve", cmd_approve, "serve a validated version of a Manual Model (sets spec.approvedVersion)")
    p.add_argument("model")
    p.add_argument("version", type=positive_int)
    p = command("reject", cmd_reject, "never serve a version (annotation mlops.dev/rejected-versions)")
    p.add_argument("model")
    p.add_argument("version", type=positive_int)
    p.add_argument("--reason", required=True)
    p = command("retrain", cmd_retrain, "train a new version now (annotation mlops.dev/retrain-requested)")
    p.add_argument("model")
    p.add_argument("--reason", default="requested with kubectl mlops")
    p = command("rollback", cmd_rollback, "serve the previously served version again (or --to VERSION)")
    p.add_argument("model")
    p.add_argument("--to", type=positive_int, default=None, metavar="VERSION")
    p = command("why", cmd_why, "explain a resource's conditions in plain words, with hints")
    p.add_argument("kind")
    p.add_argument("name")
    p = command("drift", cmd_drift, "a DriftMonitor's latest per-feature scores and report link")
    p.add_argument("monitor")
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    args = build_parser().parse_args(argv)
    try:
        if args.command == "status" and args.kind:
            resolve_kind(args.kind)
        cluster = Cluster(args.kubeconfig, args.context)
        ctx = Context(cluster, args.namespace or cluster.default_namespace(), args.output, out, err, datetime.now(UTC))
        result: int = args.handler(ctx, args)
        return result
    except PluginError as exc:
        print(f"error: {exc}", file=err)
        return 1


if __name__ == "__main__":
    sys.exit(main())
