"""Load a model artifact only after its bytes match the expected sha256, with skops' trusted types.

The bytes are read once: the hash is checked on exactly the bytes that are then parsed, so a file
swapped between the check and the load cannot slip through. pickle/joblib are never accepted.
"""

from __future__ import annotations

import hashlib
import zipfile
from typing import Any

import fsspec
import skops.io as sio

from mlops_operator.workloads.serve.errors import ArtifactRefused

# Types skops does not trust by default but a scikit-learn Pipeline legitimately holds. Anything
# else (a function such as builtins.eval, an arbitrary class) makes the artifact untrusted.
TRUSTED_EXTRA_TYPES: frozenset[str] = frozenset(
    {
        "numpy.dtype",
        "sklearn.tree._tree.Tree",
        "sklearn.compose._column_transformer._RemainderColsList",
        "sklearn._loss.link.Interval",
        "sklearn._loss.link.LogitLink",
        "sklearn._loss.link.IdentityLink",
        "sklearn._loss.link.MultinomialLogit",
        "sklearn._loss.loss.HalfBinomialLoss",
        "sklearn._loss.loss.HalfMultinomialLoss",
        "sklearn._loss.loss.HalfSquaredError",
        "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    }
)


def normalize_sha256(expected: str) -> str:
    digest = expected.strip().lower().removeprefix("sha256:")
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ArtifactRefused(f"expected sha256 {expected!r} is not 64 hex digits")
    return digest


def load_verified_model(uri: str, sha256: str) -> Any:
    """Read `uri` through fsspec, check its sha256, refuse untrusted types, then load it with skops.

    Raises ArtifactRefused for a checksum mismatch, a file that is not skops, or untrusted types;
    OSError (e.g. FileNotFoundError) when the store cannot deliver the bytes.
    """
    expected = normalize_sha256(sha256)
    with fsspec.open(uri, "rb") as f:
        data: bytes = f.read()
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise ArtifactRefused(f"sha256 mismatch for {uri}: expected {expected}, got {actual}")
    try:
        untrusted = sio.get_untrusted_types(data=data)
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise ArtifactRefused(f"{uri} is not a skops artifact: {exc}") from None
    refused = sorted(set(untrusted) - TRUSTED_EXTRA_TYPES)
    if refused:
        raise ArtifactRefused(f"{uri} holds untrusted types: {', '.join(refused)}")
    try:
        model = sio.loads(data, trusted=list(untrusted))
    except Exception as exc:  # skops raises many types on a malformed archive
        raise ArtifactRefused(f"{uri} could not be loaded by skops: {type(exc).__name__}: {exc}") from None
    if not callable(getattr(model, "predict", None)):
        raise ArtifactRefused(f"{uri} does not hold an estimator with predict()")
    return model
