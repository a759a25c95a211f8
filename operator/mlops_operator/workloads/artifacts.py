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

Next to the model, `train_rows.npy` holds the fingerprints of the rows it was trained on (sorted,
unique uint64, see data.row_fingerprints), its sha256 in the version's lineage.json. A later training
run reads them with `load_train_rows` to keep those rows out of the rows it compares the two models on.
"""

from __future__ import annotations

import hmac
import io
import logging
import zipfile
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
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
TRAIN_ROWS_FILE: Final = "train_rows.npy"  # fingerprints of the training rows
# How train_rows.npy was computed (data.row_fingerprints); another scheme is not compared with this one.
TRAIN_ROWS_SCHEME: Final = 1

log = logging.getLogger(__name__)

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


# --- training-row fingerprints ------------------------------------------------------------------
def dump_train_rows(fingerprints: npt.NDArray[np.uint64]) -> bytes:
    """The .npy bytes of the sorted, unique fingerprints."""
    buffer = io.BytesIO()
    ordered = np.sort(fingerprints.astype(np.uint64, copy=False))
    distinct = np.ones(len(ordered), dtype=np.bool_)
    distinct[1:] = ordered[1:] != ordered[:-1]  # np.unique does the same, many times slower on numpy 2.4
    np.save(buffer, ordered[distinct], allow_pickle=False)
    return buffer.getvalue()


def train_rows_record(data: bytes, rows: int) -> dict[str, object]:
    """What lineage.json says about train_rows.npy: how to verify it and how it was computed."""
    return {"file": TRAIN_ROWS_FILE, "sha256": store.sha256_bytes(data), "rows": rows, "scheme": TRAIN_ROWS_SCHEME}


def load_train_rows(artifact_uri: str, artifact_sha256: str) -> npt.NDArray[np.uint64] | None:
    """The training-row fingerprints of the model at `artifact_uri`, verified, or None if it has none.

    The file and the lineage.json that records its sha256 sit next to the artifact. None when the
    file is absent (a model trained before fingerprints were kept, or by a custom image), or when
    lineage.json does not describe this artifact (its sha256 differs) or another scheme. A file whose
    bytes do not match the recorded sha256, or that is not a sorted, unique 1-D uint64 array, is an
    IntegrityError.
    """
    directory = artifact_uri.rsplit("/", 1)[0]
    uri, lineage_uri = store.join(directory, TRAIN_ROWS_FILE), store.join(directory, LINEAGE_FILE)
    if not store.exists(uri):
        return None
    recorded = _recorded_train_rows(store.read_json(lineage_uri) if store.exists(lineage_uri) else None,
                                    artifact_sha256)
    if recorded is None:
        log.warning("%s is not described by the lineage.json of this artifact; not used", store.redact(uri))
        return None
    data = store.read_bytes(uri)
    actual = store.sha256_bytes(data)
    if not hmac.compare_digest(actual, str(recorded.get("sha256", ""))):
        message = f"{store.redact(uri)}: sha256 is {actual}, lineage.json records {recorded.get('sha256')}"
        raise IntegrityError("IntegrityError", message[:500])
    try:
        loaded = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise IntegrityError("CorruptArtifact", f"{store.redact(uri)} is not a .npy array: {exc}"[:500]) from exc
    if not isinstance(loaded, np.ndarray) or loaded.ndim != 1 or loaded.dtype != np.uint64:
        raise IntegrityError("CorruptArtifact", f"{store.redact(uri)} is not a 1-D uint64 array")
    if not bool(np.all(loaded[1:] > loaded[:-1])):
        raise IntegrityError("CorruptArtifact", f"{store.redact(uri)} is not sorted and unique")
    fingerprints: npt.NDArray[np.uint64] = loaded
    return fingerprints


def _recorded_train_rows(lineage: Any, artifact_sha256: str) -> dict[str, Any] | None:
    """lineage.json's trainRows entry, if lineage.json describes this very artifact in our scheme."""
    if not isinstance(lineage, dict):
        return None
    artifact, recorded = lineage.get("artifact"), lineage.get("trainRows")
    if not isinstance(artifact, dict) or not isinstance(recorded, dict):
        return None
    if str(artifact.get("sha256", "")).lower() != artifact_sha256.strip().lower():
        return None
    return recorded if recorded.get("scheme") == TRAIN_ROWS_SCHEME else None


__all__ = [
    "LINEAGE_FILE",
    "METRICS_FILE",
    "MODEL_FILE",
    "TRAIN_ROWS_FILE",
    "TRAIN_ROWS_SCHEME",
    "TRUSTED_TYPES",
    "InputFeature",
    "dump_model",
    "dump_train_rows",
    "feature_schema",
    "load_train_rows",
    "load_verified_model",
    "loads_verified_model",
    "train_rows_record",
    "untrusted_types",
]
