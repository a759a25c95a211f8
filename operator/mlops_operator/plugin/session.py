"""One run of `kubectl mlops`: the cluster, the namespace, the output format and one moment."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TextIO

from mlops_operator.api.v1alpha1 import Model
from mlops_operator.plugin.cluster import Cluster
from mlops_operator.plugin.output import printable, render


@dataclass
class PluginSession:
    """What every command needs. `now` is read once, so every age in one output agrees."""

    cluster: Cluster
    namespace: str
    output: str  # table | json | yaml
    out: TextIO
    err: TextIO
    now: datetime

    def emit(self, data: object, text: str) -> None:
        """Print `data` for -o json|yaml, else `text` (made safe for the terminal)."""
        print(render(data, text, self.output), file=self.out)

    def warn(self, message: str) -> None:
        """One `warning:` line on stderr, whatever the output format (stdout stays parseable)."""
        print(f"warning: {printable(message)}", file=self.err)

    def model(self, name: str) -> Model:
        return self.cluster.get(Model, self.namespace, name)
