"""Orchestration: read the world (kube), decide (pure), act (kube), record (status)."""
