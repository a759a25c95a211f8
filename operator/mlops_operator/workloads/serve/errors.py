"""Client-facing errors: each one is an HTTP status and a message, never a traceback.

Everything a request handler raises on purpose is a `ServeError`; the app turns it into
`{"error": message}` with its status. Anything else is a server bug and becomes a 500 (logged).
"""

from __future__ import annotations


class ServeError(Exception):
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(ServeError):
    """Malformed JSON, a payload that is not an inference request, or values that do not fit the model."""

    status = 400


class ModelNotFound(ServeError):
    """A path this server does not serve: an unknown model, version of the model, or route.

    (Not named `NotFound`: that is `kube.client.NotFound`, a Kubernetes object that does not exist.)"""

    status = 404


class MethodNotAllowed(ServeError):
    status = 405

    def __init__(self, message: str, allow: str) -> None:
        super().__init__(message)
        self.allow = allow


class PayloadTooLarge(ServeError):
    """Body over the byte limit, or a batch over the row limit."""

    status = 413


class UnsupportedMediaType(ServeError):
    """A Content-Type other than JSON, or the binary tensor data extension."""

    status = 415


class NotReady(ServeError):
    status = 503


class ArtifactRefused(Exception):
    """The artifact's sha256 does not match, or it holds types we do not trust: never load it."""


class ArtifactUnavailable(Exception):
    """The store could not deliver the artifact (missing, unreachable, access denied): retryable."""
