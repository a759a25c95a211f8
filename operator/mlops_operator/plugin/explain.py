"""`why`: a resource's conditions in plain words, with a next step for the reasons that need one. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from mlops_operator import contracts
from mlops_operator.api.base import Condition, Resource
from mlops_operator.api.v1alpha1.model import GateReason
from mlops_operator.conditions import Reason, Type
from mlops_operator.plugin.output import printable
from mlops_operator.plugin.resources import human_age

# Hints per condition reason (the operator's conditions.Reason, plus the validation gate's GateReason).
# {kind}, {name}, {namespace} and the label/annotation names from contracts ({kind_label}, {model_label},
# {component_label}, {rejected_annotation}) are filled in. A reason without a hint is explained by
# the condition's own message alone: it needs no action (Succeeded, Serving, NoDrift, ...).
R, G = Reason, GateReason
HINTS: dict[str, str] = {
    R.READING_REGISTRY: (
        "Before its first training a Model reads the store's registry.json (a few seconds, one small "
        "Job). If this lasts, look at that Job: kubectl -n {namespace} get jobs "
        "-l {model_label}={name},{component_label}=registry"
    ),
    R.INVALID_SPEC: (
        "The spec is valid for the API but not usable (see the message). Fix the spec and apply it again."
    ),
    R.EXCEEDS_LIMITS: (
        "The spec asks for more than this cluster's administrator allows (the message names each value and "
        "its ceiling). Lower those values, or ask the administrator to raise the operator's MLOPS_MAX_* settings."
    ),
    R.CHILD_REJECTED: (
        "The API server refused an object the operator rendered from this spec (the message has its words, "
        "e.g. requests above limits, or a namespace quota). Fix the spec; the operator tries again when it changes."
    ),
    R.IMAGE_NOT_ALLOWED: (
        "trainer.image is not on this operator's list of trainer images: a custom image runs with the store's "
        "credentials. Use trainer.estimator, or ask the cluster administrator to allow the image "
        "(MLOPS_ALLOWED_TRAINER_IMAGES)."
    ),
    R.SOURCE_NOT_ALLOWED: (
        "The Dataset's source is outside this namespace's own prefix of the store (or a file:// path off its "
        "claim). Copy the data under the prefix the message names, or ask the administrator to allow the "
        "source (MLOPS_ALLOWED_SOURCES)."
    ),
    R.SHARED_STORE_CREDENTIALS: (
        "The object store's credentials are not declared per namespace, so every team's pods could read "
        "every other's data. The cluster administrator gives each namespace its own Secret or identity "
        "(store.credentials: perNamespace), or accepts sharing (store.credentials: shared)."
    ),
    R.NAME_CONFLICT: (
        "An object the operator needs to create already exists and belongs to someone else, so it is left "
        "alone. Rename or delete that object (`kubectl -n {namespace} get all -l {kind_label}={name}` lists "
        "ours), or give this {kind} another name."
    ),
    R.JOB_LOST: (
        "The Job disappeared before it reported a result (deleted by hand or by TTL). The "
        "operator starts a new one on its own."
    ),
    R.JOB_FAILED: (
        "The Job failed. Its pod's termination message is in the condition; the logs say more: "
        "`kubectl logs -n {namespace} -l {kind_label}={name}`."
    ),
    R.OOM_KILLED: (
        "The pod ran out of memory. Raise resources.limits.memory in the spec "
        "(spec.trainer.resources for training, spec.resources for Datasets and DriftMonitors)."
    ),
    R.BACKOFF_LIMIT_EXCEEDED: (
        "Every retry of the Job failed. `kubectl logs -n {namespace} -l {kind_label}={name}` shows why."
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
        "candidates; `kubectl mlops approve {name} <version>` serves one. With approval.requiredApprovers, "
        "each approver runs it with their own credentials; the message says who is still missing."
    ),
    R.VERSION_NOT_FOUND: (
        "spec.approvedVersion names a version that does not exist; `kubectl mlops history {name}` lists them."
    ),
    R.VERSION_NOT_APPROVABLE: (
        "spec.approvedVersion names a version that failed validation or was rejected. Approve a "
        "validated version instead."
    ),
    R.REJECTED_BY_USER: (
        "A person rejected this version (annotation {rejected_annotation}); it is never served. "
        "Remove it from the annotation to make it eligible again."
    ),
    R.NO_VALIDATED_VERSION: (
        "No version passed the validation gate yet; `kubectl mlops history {name}` shows each "
        "version's score and gate verdict."
    ),
    R.ROLLOUT_FAILED: (
        "The new model server pods did not become ready in time; the previous version keeps "
        "serving. `kubectl describe pods -n {namespace} -l {model_label}={name}` shows why."
    ),
    R.ANALYSIS_FAILED: (
        "The candidate of a Canary or Shadow rollout broke spec.serving.rollout's bounds (error rate, p99 "
        "latency or agreement: the numbers are in status.rollout and the RolledBack Event); the previous "
        "version keeps serving. Fix the model, or loosen rollout.analysis, then retrain or approve it again."
    ),
    R.SERVING_DISABLED: "spec.serving.enabled is false: nothing is served until it is true again.",
    R.NOTHING_TO_SERVE: "There is no approved version to serve yet.",
    R.MODEL_NOT_FOUND: ("The Model in spec.modelRef does not exist in {namespace}. Create it or fix the name."),
    R.MODEL_INVALID: (
        "The Model in spec.modelRef has a spec the operator cannot use; "
        "`kubectl mlops why model <name> -n {namespace}` says what to fix."
    ),
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
    R.CHECK_FAILED: ("The drift check Job failed; `kubectl logs -n {namespace} -l {kind_label}={name}`."),
    R.REFRESH_PENDING: (
        "A trigger fired and the monitor asked the Dataset to re-read its source first; it asks for a "
        "retrain only if that brings a new dataset version (spec.action.refreshTimeoutSeconds at most)."
    ),
    R.RETRAIN_REQUESTED: (
        "A trigger fired and the Dataset had new data: the monitor asked the Model to retrain. "
        "Follow it with `kubectl mlops history <model> -n {namespace}`."
    ),
    R.NEW_DATA: (
        "A trigger fired and the Dataset had new data; the Model retrains on a new dataset version by "
        "itself (spec.retrain.onDatasetChange). `kubectl mlops history <model> -n {namespace}` follows it."
    ),
    R.NO_NEW_DATA: (
        "A drift or quality trigger fired, but the Dataset has no version the serving model was not "
        "trained on: retraining on the same data cannot help, so nothing was trained. Add fresh, "
        "labelled data to the Dataset's source; `kubectl mlops retrain <model> --reason ...` retrains "
        "on the same data anyway."
    ),
    R.REFRESH_FAILED: (
        "A trigger fired but re-reading the Dataset failed, so no retrain was asked for: "
        "`kubectl mlops why dataset <name> -n {namespace}`."
    ),
    R.REFRESH_TIMED_OUT: (
        "A trigger fired but the Dataset reported no refresh outcome within "
        "spec.action.refreshTimeoutSeconds, so no retrain was asked for. Is its profile Job stuck? "
        "`kubectl -n {namespace} get jobs -l {component_label}=profile`"
    ),
    # The validation gate (status.versions[].gate.reason).
    G.BELOW_THRESHOLD: "The new version scored under spec.validation.threshold; the serving version stays.",
    G.ABOVE_THRESHOLD: "The new version's error is above spec.validation.threshold; the serving version stays.",
    G.NOT_BETTER: (
        "The new version did not beat the serving version; set spec.validation.mustBeatChampion "
        "false to accept it anyway."
    ),
    G.INSUFFICIENT_IMPROVEMENT: "The new version beat the serving one by less than spec.validation.minImprovement.",
    G.METRIC_MISSING: "The training result lacks the validation metric; with a custom image, report it.",
    G.CHAMPION_NOT_SCORED: (
        "The serving version could not be scored on the new version's test split, so the two were not "
        "compared. The training Job's log says why: `kubectl logs -n {namespace} -l {model_label}={name}`."
    ),
}

CONDITION_WORDS: dict[tuple[str, str], str] = {
    (Type.READY, "True"): "is ready",
    (Type.READY, "False"): "is not ready",
    (Type.READY, "Unknown"): "is still being reconciled",
    (Type.RECONCILING, "True"): "is working toward its spec",
    (Type.STALLED, "True"): "is stuck until its spec or its data changes",
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
    (Type.RETRAIN_REQUESTED, "True"): "asked for a retrain on new data",
    (Type.RETRAIN_REQUESTED, "False"): "did not ask for a retrain after its trigger fired",
    (Type.RETRAIN_REQUESTED, "Unknown"): "waits for its Dataset's refresh before asking for a retrain",
}


@dataclass(frozen=True)
class Explanation:
    condition: str
    status: str
    reason: str
    sentence: str
    hint: str | None
    since: str | None


def _not_reconciled(obj: Resource) -> Explanation:
    return Explanation(
        "Status",
        "Unknown",
        "NotReconciled",
        f"{obj.crd.kind} {obj.name} has no status yet: the operator has not picked it up.",
        f"Is the operator running, and does it watch namespace {obj.namespace}? "
        f"`kubectl get pods -A -l {contracts.LABEL_COMPONENT}=operator,{contracts.LABEL_NAME}=mlops-operator`",
        None,
    )


def _spec_change_pending(obj: Resource, observed: int) -> Explanation:
    return Explanation(
        "Status",
        "Unknown",
        "SpecChangePending",
        f"{obj.crd.kind} {obj.name} was changed (generation {obj.generation}) "
        "and the operator has not caught up yet "
        f"(it last handled generation {observed}); the conditions below may be outdated.",
        None,
        None,
    )


def hint_fields(kind: str, name: str, namespace: str) -> dict[str, str]:
    """What a hint's placeholders are filled with."""
    return {
        "kind": kind,
        "name": name,
        "namespace": namespace,
        "kind_label": f"{contracts.GROUP}/{kind.lower()}",  # LABEL_DATASET, LABEL_MODEL, LABEL_DRIFT_MONITOR
        "model_label": contracts.LABEL_MODEL,
        "component_label": contracts.LABEL_COMPONENT,
        "rejected_annotation": contracts.ANNOTATION_REJECTED_VERSIONS,
    }


def _condition(obj: Resource, c: Condition, now: datetime) -> Explanation:
    kind = obj.crd.kind
    words = CONDITION_WORDS.get((c.type, str(c.status)), f"has condition {c.type}={c.status}")
    sentence = f"{kind} {obj.name} {words}"
    sentence += f" ({c.reason}): {c.message.rstrip('.')}." if c.message else f" ({c.reason})."
    hint = HINTS.get(c.reason)
    fields = hint_fields(kind, obj.name, obj.namespace)
    return Explanation(
        c.type,
        str(c.status),
        c.reason,
        sentence,
        hint.format(**fields) if hint else None,
        human_age(c.last_transition_time, now),
    )


def explain(obj: Resource, now: datetime) -> list[Explanation]:
    """One plain sentence per condition, plus a hint for the reasons we know how to act on."""
    status = getattr(obj, "status", None)
    if status is None:
        return [_not_reconciled(obj)]
    explanations: list[Explanation] = []
    observed = status.observed_generation
    if observed is not None and obj.generation and observed < obj.generation:
        explanations.append(_spec_change_pending(obj, observed))
    explanations += [_condition(obj, c, now) for c in status.conditions]
    if not status.conditions:
        explanations.append(
            Explanation(
                "Status", "Unknown", "NoConditions", f"{obj.crd.kind} {obj.name} reports no conditions yet.", None, None
            )
        )
    return explanations


def explanation_text(explanations: Sequence[Explanation]) -> str:
    """One item per explanation; a message from the cluster stays on its item's line."""
    lines: list[str] = []
    for e in explanations:
        since = f" (for {e.since})" if e.since and e.since != "-" else ""
        lines.append(f"- {printable(e.sentence)}{since}")
        if e.hint:
            lines.append(f"  hint: {printable(e.hint)}")
    return "\n".join(lines)
