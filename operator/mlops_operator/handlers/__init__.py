"""kopf registration only: every handler is one call into the controller.

`build_registry()` returns a fresh registry, so an operator started twice in one process (tests)
never registers a handler twice.
"""

from __future__ import annotations

import kopf

from mlops_operator.handlers import children, lifecycle, resources


def build_registry() -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    lifecycle.register(registry)
    resources.register(registry)
    children.register(registry)
    return registry


__all__ = ["build_registry"]
