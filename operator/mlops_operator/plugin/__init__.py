"""`kubectl mlops`: the data scientist's view of Datasets, Models and DriftMonitors.

Every change this plugin makes is a merge patch of the custom resource itself (a spec field or an
annotation the operator honours), so it is visible in `kubectl get -o yaml`, works the same when a
GitOps repository holds the resource, and needs no rights beyond patching the resource.

Contract with the operator (the reconcilers honour these):
  approve MODEL V        spec.approvedVersion = V                      (Manual models)
  reject MODEL V         annotation mlops.dev/rejected-versions, a JSON object {"<V>": "<reason>"}
  retrain MODEL          annotation mlops.dev/retrain-requested = "<RFC3339 now>;<reason>"
  rollback MODEL         spec.approvedVersion = the previously served version; an Automatic model
                         is switched to Manual in the same patch so the next retrain cannot undo it

Pure modules, unit-tested: `tables` (status, history, drift), `explain` (`why`), `actions` (which
version, whether allowed, the patch), `output` (JSON/YAML, terminal-safe text). `cluster` reaches
the API server only through `mlops_operator.kube`; `commands` and `cli` wire them together.
The console script `kubectl-mlops` is `mlops_operator.plugin:main`.
"""

from mlops_operator.plugin.cli import main

__all__ = ["main"]
