"""What each object's last good run read: the resourceVersions of the custom resources (kube.reads).

Two uses:
  - the resync queues only objects whose own version, or a dependency's, moved since (`moved`);
  - a run that moved its own object's version (a status patch, or a change it picked up) wakes at
    once the objects whose last run read an older version of it (`record` returns them): a
    DriftMonitor waiting for its Dataset's refresh, a Model waiting for its Dataset, learn of the new
    status now instead of at their next poll. The chain Dataset → Model → DriftMonitor has no cycle
    (nothing reads a DriftMonitor), so a wake-up never comes back to its origin.
"""

from __future__ import annotations

from mlops_operator.kube import reads
from mlops_operator.reconcilers.context import Key


class SeenVersions:
    def __init__(self) -> None:
        self._versions: dict[Key, reads.Versions] = {}
        self._readers: dict[reads.ObjectId, set[Key]] = {}  # object → the keys whose last run read it

    def record(self, key: Key, versions: reads.Versions) -> list[Key]:
        """Remember what `key`'s run read; the keys that read an older version of `key` (to wake)."""
        self.forget(key)
        self._versions[key] = versions
        for obj in versions:
            if obj != key:
                self._readers.setdefault(obj, set()).add(key)
        own = versions.get(key)
        if own is None:
            return []
        readers = self._readers.get(key, set())
        return sorted(r for r in readers if self._versions.get(r, {}).get(key, own) != own)

    def forget(self, key: Key) -> None:
        for obj in self._versions.pop(key, {}):
            readers = self._readers.get(obj)
            if readers is not None:
                readers.discard(key)
                if not readers:
                    del self._readers[obj]

    def moved(self, now: reads.Versions) -> list[Key]:
        """Given the versions of every object now (a listing), the keys to reconcile: those that never
        ran, or whose last run read a version that moved. Keys of objects no longer listed are forgotten."""
        for gone in [key for key in self._versions if key not in now]:
            self.forget(gone)
        return [Key(*obj) for obj in now if reads.moved(self._versions.get(Key(*obj)), now)]

    def get(self, key: Key) -> reads.Versions | None:
        return self._versions.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._versions

    def __len__(self) -> int:
        return len(self._versions)
