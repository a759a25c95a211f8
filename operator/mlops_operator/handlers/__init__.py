"""kopf registration only: every handler is one call into the controller.

`build_handler_registry()` returns a fresh kopf handler registry, so an operator started twice in
one process (tests) never registers a handler twice.
"""

from __future__ import annotations

import kopf

from mlops_operator.handlers import admission, children, lifecycle, resources


def build_handler_registry(*, admission_webhook: bool = False) -> kopf.OperatorRegistry:
    """`admission_webhook`: serve the approvals webhook too (MLOPS_ADMISSION_PORT)."""
    handler_registry = kopf.OperatorRegistry()
    lifecycle.register(handler_registry)
    resources.register(handler_registry)
    children.register(handler_registry)
    if admission_webhook:
        admission.register(handler_registry)
    return handler_registry


__all__ = ["build_handler_registry"]
