"""Model: training request → training Job → gate → ledger of versions → approval → serving → rollback.

    reconciler.py  the reconcile, step by step
    children.py    3. observe: the Dataset and the Jobs this Model owns
    training.py    what to train, its Job, adopting Jobs the status never recorded, results
    versions.py    the ledger of versions (`status.versions`): pure transitions, pruning, rebuild
    mirror.py      the Job that copies the ledger to the store's registry.json, and reads it back
    events.py      release events: the notify Jobs that send the ledger's transitions as CloudEvents
    serving.py     approval, rollout, rollback
    status.py      conditions, phase and message (pure)
"""

from mlops_operator.reconcilers.model.reconciler import reconcile

__all__ = ["reconcile"]
