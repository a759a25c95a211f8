"""What retention has deleted from the store for one Dataset or Model (docs/security.md, Retention)."""

from __future__ import annotations

from datetime import datetime

from mlops_operator.api.base import CRModel


class StorePruned(CRModel):
    """What retention has deleted from the store for this resource, every Job's deletions added up."""

    versions: int = 0
    """Versions deleted: a Dataset's version snapshots, or a Model's version artifact directories."""
    objects: int = 0
    """Objects (files) deleted, the versions' and any collected rows' and labels' together."""
    bytes: int = 0
    """Their bytes."""
    last_time: datetime | None = None
    """When the latest Job that deleted something reported it."""

    def add(self, versions: int, objects: int, size: int, now: datetime) -> StorePruned:
        """These totals plus one Job's deletions (unchanged when it deleted nothing)."""
        if not (versions or objects):
            return self
        return StorePruned(
            versions=self.versions + versions, objects=self.objects + objects, bytes=self.bytes + size, last_time=now
        )
