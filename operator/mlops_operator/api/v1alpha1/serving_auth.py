"""spec.serving.auth: the optional bearer-token check on the model server's inference endpoints."""

from __future__ import annotations

from mlops_operator.api.base import CRModel, SecretKeyReference


class ServingAuth(CRModel):
    """Require `Authorization: Bearer <token>` on inference and feedback; health, readiness, metadata and
    /metrics stay open (the kubelet's probes and Prometheus carry no token)."""

    token_secret_ref: SecretKeyReference
    """The Secret key holding the token. It is mounted as a file into the server pods only (the operator
    never reads it); rotating the Secret takes effect within about a minute, without a restart."""
