"""The server's one door to artifacts: the shared verified loader (`workloads.artifacts`).

It reads the bytes once, checks their sha256 before parsing, loads with skops and an explicit list of
trusted types (never pickle, never `trusted=True`), and accepts only a scikit-learn Pipeline. Here its
errors become the server's two outcomes: the artifact is refused, or the store failed.
"""

from __future__ import annotations

from sklearn.pipeline import Pipeline

from mlops_operator import store
from mlops_operator.workloads import artifacts
from mlops_operator.workloads.common import IntegrityError
from mlops_operator.workloads.serve.errors import ArtifactRefused, ArtifactUnavailable


def load_verified_model(uri: str, sha256: str) -> Pipeline:
    try:
        return artifacts.load_verified_model(uri, sha256)
    except IntegrityError as exc:
        raise ArtifactRefused(f"{exc.reason}: {exc.message}") from None
    except store.StoreError as exc:
        raise ArtifactUnavailable(f"{exc.reason}: {exc.message}") from None
