"""The approvals webhook's entry in its MutatingWebhookConfiguration. Pure.

Only approval-relevant requests reach the webhook (`matchConditions`, evaluated by the API server):
a create that approves, turns on separation of duties or carries one of the webhook's own
annotations; an update that changes spec.approvedVersion, the rejected versions or the webhook's
annotations, or asks for an approval (sets `mlops.dev/approve`); and, on a Model with separationOfDuties,
any spec edit or retrain request (who triggered training). Everything else (the operator's own
status and annotation writes, ordinary spec edits) never calls it, so while the webhook is down only
approvals (and, with separationOfDuties, training triggers) are refused: failurePolicy Fail, short
timeout.
"""

from __future__ import annotations

from typing import Any, Final

from mlops_operator import contracts
from mlops_operator.settings import Settings

HANDLER_ID: Final = "approvals"  # kopf routes <server>/<handler id> to the handler
WEBHOOK_NAME: Final = f"approvals.models.{contracts.GROUP}"


def _ann(obj: str, key: str) -> str:
    """The annotation's value, '' when absent."""
    annotations = f"{obj}.metadata.annotations"
    return f"((has({annotations}) && '{key}' in {annotations}) ? {annotations}['{key}'] : '')"


def _approved(obj: str) -> str:
    return f"(has({obj}.spec.approvedVersion) ? {obj}.spec.approvedVersion : 0)"


def _sod(obj: str) -> str:
    return (
        f"(has({obj}.spec.approval) && has({obj}.spec.approval.separationOfDuties) && "
        f"{obj}.spec.approval.separationOfDuties)"
    )


OWN: Final = (contracts.ANNOTATION_APPROVALS, contracts.ANNOTATION_TRIGGERED_BY, contracts.ANNOTATION_APPROVE)


def match_expression() -> str:
    """The CEL condition under which the API server calls the webhook."""
    on_create = " || ".join(
        ["has(object.spec.approvedVersion)", _sod("object"), *(f"{_ann('object', k)} != ''" for k in OWN)]
    )
    changed = [f"{_approved('object')} != {_approved('oldObject')}"]
    for key in (*OWN, contracts.ANNOTATION_REJECTED_VERSIONS):  # a new approve request, or a forged record
        changed.append(f"{_ann('object', key)} != {_ann('oldObject', key)}")
    retrain = contracts.ANNOTATION_RETRAIN_REQUESTED
    edited = f"(object.spec != oldObject.spec || {_ann('object', retrain)} != {_ann('oldObject', retrain)})"
    changed.append(f"(({_sod('object')} || {_sod('oldObject')}) && {edited})")
    return f"request.operation == 'CREATE' ? ({on_create}) : ({' || '.join(changed)})"


def client_config(settings: Settings, ca_bundle: str | None) -> dict[str, Any]:
    """Where the API server sends the reviews: the operator's Service, or a URL (out of cluster)."""
    config: dict[str, Any]
    if settings.admission_service:
        namespace, _, name = settings.admission_service.partition("/")
        config = {"service": {"namespace": namespace, "name": name, "port": 443, "path": f"/{HANDLER_ID}"}}
    else:
        config = {"url": f"{settings.admission_url.rstrip('/')}/{HANDLER_ID}"}
    if ca_bundle:
        config["caBundle"] = ca_bundle
    return config


def webhooks(settings: Settings, ca_bundle: str | None) -> list[dict[str, Any]]:
    """The configuration's `webhooks`: one entry, for Models, in the watched namespaces."""
    webhook: dict[str, Any] = {
        "name": WEBHOOK_NAME,
        "admissionReviewVersions": ["v1"],
        "sideEffects": "None",
        "failurePolicy": "Fail",
        "timeoutSeconds": settings.admission_timeout_seconds,
        "matchPolicy": "Equivalent",
        "reinvocationPolicy": "Never",
        "rules": [
            {
                "apiGroups": [contracts.GROUP],
                "apiVersions": [contracts.VERSION],
                "resources": ["models"],
                "operations": ["CREATE", "UPDATE"],
                "scope": "Namespaced",
            }
        ],
        "matchConditions": [{"name": "approval-relevant", "expression": match_expression()}],
        "clientConfig": client_config(settings, ca_bundle),
    }
    if settings.namespaces:
        selector = {"key": "kubernetes.io/metadata.name", "operator": "In", "values": sorted(settings.namespaces)}
        webhook["namespaceSelector"] = {"matchExpressions": [selector]}
    return [webhook]


def configuration(settings: Settings, ca_bundle: str | None) -> dict[str, Any]:
    """The whole MutatingWebhookConfiguration, for when it does not exist yet."""
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {
            "name": settings.admission_configuration,
            "labels": {contracts.LABEL_MANAGED_BY: contracts.MANAGED_BY},
        },
        "webhooks": webhooks(settings, ca_bundle),
    }
