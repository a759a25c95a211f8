"""The approvals webhook's MutatingWebhookConfiguration: the operator keeps its `webhooks` current
(the serving certificate's CA, where to call, which requests) each time its webhook server starts."""

from __future__ import annotations

from typing import Any, Final

from mlops_operator.kube.client import MERGE_PATCH, Kube, NotFound
from mlops_operator.kube.kinds import Kind

MUTATING_WEBHOOK_CONFIGURATION: Final = Kind(
    "admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations", "MutatingWebhookConfiguration"
)


async def publish(kube: Kube, configuration: dict[str, Any]) -> str:
    """Patch the configuration's `webhooks` (created with it when it does not exist): "patched" or
    "created". The chart creates it without `webhooks`, so the operator needs only get and patch on it."""
    name = configuration["metadata"]["name"]
    patch = {"webhooks": configuration["webhooks"]}
    try:
        await kube._request(
            "PATCH", MUTATING_WEBHOOK_CONFIGURATION.path(None, name), body=patch, content_type=MERGE_PATCH
        )
    except NotFound:
        await kube._request("POST", MUTATING_WEBHOOK_CONFIGURATION.path(None), body=configuration)
        return "created"
    return "patched"
