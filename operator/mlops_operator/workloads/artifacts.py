"""Model artifacts: skops files that are hashed on save and verified before they are parsed.

The model server and the trainer (scoring the champion) load models only through
`load_verified_model(uri, sha256)`:
1. the bytes are read once and their sha256 compared with the recorded one, before any parsing
   (a mismatch is an IntegrityError, reason IntegrityError);
2. skops loads them with an explicit list of trusted types (`TRUSTED_TYPES`, on top of skops' own
   defaults: scikit-learn estimators, numpy arrays, builtins); any other type is refused
   (reason UntrustedArtifact). Never `trusted=True`, never pickle.
3. the object must be a fitted scikit-learn Pipeline.

`feature_schema(pipeline)` tells the server which input columns the pipeline expects, in order, and
whether each is numeric or categorical (categorical values are text; numeric ones are floats, with
booleans as 0/1; see workloads.data).
"""

from __future__ import annotations

import hmac
import zipfile
from dataclasses import dataclass
from typing import Any, Final

import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from skops.io.exceptions import UnsupportedTypeException, UntrustedTypesFoundException

from mlops_operator import store
from mlops_operator.api.v1alpha1.dataset import FeatureType
from mlops_operator.workloads.common import IntegrityError

MODEL_FILE: Final = "model.skops"
METRICS_FILE: Final = "metrics.json"
LINEAGE_FILE: Final = "lineage.json"  # written last: a version directory is complete once it exists

PREPROCESS_STEP: Final = "preprocess"
ESTIMATOR_STEP: Final = "estimator"
NUMERIC_BRANCH: Final = "numeric"
CATEGORICAL_BRANCH: Final = "categorical"

# Types skops does not trust by default that the allowlisted estimators (workloads.estimators) hold.
# tests/component/test_train.py fits every allowlisted estimator and checks that this list covers it.
TRUSTED_TYPES: Final[tuple[str, ...]] = (
    "numpy.dtype",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.metrics._dist_metrics.ManhattanDistance64",
    "sklearn.metrics._dist_metrics.ChebyshevDistance64",
    "sklearn.metrics._dist_metrics.MinkowskiDistance64",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
)


@dataclass(frozen=True)
class InputFeature:
    name: str
    kind: FeatureType


def untrusted_types(data: bytes) -> list[str]:
    """Types in a skops payload that neither skops' defaults nor TRUSTED_TYPES cover."""
    return sorted(set(sio.get_untrusted_types(data=data)) - set(TRUSTED_TYPES))


def dump_model(pipeline: Pipeline) -> bytes:
    """The skops bytes of a pipeline; refuses to produce an artifact the server could not load."""
    data: bytes = sio.dumps(pipeline)
    extra = untrusted_types(data)
    if extra:
        # A bug in the allowlist, not a user error: the operator must not register such a model.
        raise RuntimeError(f"the trained pipeline holds types missing from TRUSTED_TYPES: {extra}")
    return data


def loads_verified_model(data: bytes, sha256: str, where: str = "artifact") -> Pipeline:
    """Verify bytes against their recorded sha256, then load them with trusted types only."""
    actual = store.sha256_bytes(data)
    if not hmac.compare_digest(actual, sha256.strip().lower()):
        raise IntegrityError(
            "IntegrityError", f"{where}: sha256 is {actual}, expected {sha256}; refusing to load it"
        )
    try:
        model: Any = sio.loads(data, trusted=list(TRUSTED_TYPES))
    except UntrustedTypesFoundException as exc:
        raise IntegrityError("UntrustedArtifact", f"{where} holds untrusted types: {exc}"[:500]) from exc
    except (UnsupportedTypeException, zipfile.BadZipFile, KeyError, ValueError, TypeError) as exc:
        message = f"{where} is not a readable skops model: {exc}"
        raise IntegrityError("CorruptArtifact", message[:500]) from exc
    if not isinstance(model, Pipeline):
        raise IntegrityError("UntrustedArtifact", f"{where} holds a {type(model).__name__}, not a Pipeline")
    return model


def load_verified_model(uri: str, sha256: str) -> Pipeline:
    """Read an artifact from the store (one read), verify its sha256 first, then load it safely.

    Raises IntegrityError (exit code INTEGRITY_ERROR) or store.StoreError (STORE_ERROR).
    """
    return loads_verified_model(store.read_bytes(uri), sha256, store.redact(uri))


def feature_schema(pipeline: Pipeline) -> list[InputFeature]:
    """The pipeline's input columns in training order, each numeric or categorical."""
    preprocess = pipeline.named_steps.get(PREPROCESS_STEP)
    if not isinstance(preprocess, ColumnTransformer) or not hasattr(preprocess, "transformers_"):
        raise IntegrityError("UntrustedArtifact", "the model is not a fitted mlops-operator pipeline")
    categorical: set[str] = set()
    for branch, _, columns in preprocess.transformers_:
        if branch == CATEGORICAL_BRANCH:
            categorical.update(str(c) for c in columns)
    names = [str(n) for n in pipeline.feature_names_in_]
    return [
        InputFeature(name, FeatureType.CATEGORICAL if name in categorical else FeatureType.NUMERIC)
        for name in names
    ]


__all__ = [
    "LINEAGE_FILE",
    "METRICS_FILE",
    "MODEL_FILE",
    "TRUSTED_TYPES",
    "InputFeature",
    "dump_model",
    "feature_schema",
    "load_verified_model",
    "loads_verified_model",
    "untrusted_types",
]
