"""Reading the reference side of a drift check: the only module of the engine that does I/O.

The Dataset profile (api/profile.py) already holds what a check needs: `profile.json` with category
counts and `reference.npz` with one sorted, NaN-free float64 sample per numeric feature. `load` reads
them (store, local cache), checks them, and hands them to features.build, which prepares `Reference`
without any I/O. The reference types are re-exported here for callers that load and use them.

Both files are copied into a local cache directory keyed by the sha256 of profile.json, so repeated
checks against the same dataset version read the (possibly remote, possibly large) sample once.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pydantic

from mlops_operator import store
from mlops_operator.api.profile import PROFILE_FILE, REFERENCE_FILE, DatasetProfile
from mlops_operator.api.v1alpha1.dataset import FeatureType
from mlops_operator.drift.features import (
    FEW_DISTINCT_VALUES,
    CategoricalReference,
    FeatureReference,
    NumericReference,
    Reference,
    build,
    prepare_categorical,
    prepare_numeric,
)
from mlops_operator.drift.stats import FloatArray

log = logging.getLogger(__name__)


class ReferenceDataError(Exception):
    """The profile or its reference sample is malformed (a data error: retrying cannot help)."""


def parse_profile(data: bytes) -> DatasetProfile:
    try:
        return DatasetProfile.model_validate_json(data)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<root>"
        raise ReferenceDataError(f"profile.json is not a valid dataset profile: {where}: {first['msg']}") from exc


def parse_samples(data: bytes, profile: DatasetProfile) -> dict[str, FloatArray]:
    """Read reference.npz without pickles and check each array is what the profile promises."""
    numeric = {f.name for f in profile.features if f.type == FeatureType.NUMERIC}
    samples: dict[str, FloatArray] = {}
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            for name in archive.files:
                if name not in numeric:
                    continue
                values = archive[name]
                if values.ndim != 1 or values.dtype != np.float64:
                    raise ReferenceDataError(
                        f"reference sample {name!r} is {values.dtype}{list(values.shape)}, not 1-D float64"
                    )
                if values.size and (np.isnan(values).any() or (np.diff(values) < 0).any()):
                    raise ReferenceDataError(f"reference sample {name!r} is not sorted or holds NaNs")
                samples[name] = values
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ReferenceDataError(f"reference.npz cannot be read: {type(exc).__name__}: {exc}") from exc
    return samples


def default_cache_dir() -> Path:
    return Path(tempfile.gettempdir()) / "mlops-drift-cache"


def load(profile_uri: str, cache_dir: Path | None = None) -> Reference:
    """Read the profile, fetch its reference sample through the local cache, and prepare both.

    The profile is small and always read, since its hash is the cache key; the sample is read from the
    store only on a cache miss. A corrupt cache entry is dropped and fetched again.
    """
    profile_bytes = store.read_bytes(profile_uri)
    sha = store.sha256_bytes(profile_bytes)
    profile = parse_profile(profile_bytes)
    cached = (cache_dir or default_cache_dir()) / sha / REFERENCE_FILE
    sample_bytes = _read_cached(cached)
    if sample_bytes is not None:
        try:
            return build(profile, sha, parse_samples(sample_bytes, profile))
        except ReferenceDataError:
            log.warning("dropping a corrupt cached reference %s", cached)
            with contextlib.suppress(OSError):
                cached.unlink()
    sample_bytes = store.read_bytes(_reference_uri(profile_uri, profile))
    reference = build(profile, sha, parse_samples(sample_bytes, profile))
    _write_cached(cached, sample_bytes)
    return reference


def _reference_uri(profile_uri: str, profile: DatasetProfile) -> str:
    if profile.reference_uri:
        return profile.reference_uri
    return profile_uri.removesuffix(PROFILE_FILE) + REFERENCE_FILE


def _read_cached(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _write_cached(path: Path, data: bytes) -> None:
    """Best effort: a read-only or full cache directory only costs the next check a re-read."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_bytes(data)
        os.replace(temporary, path)
    except OSError as exc:
        log.info("reference cache not written (%s): %s", path.parent, exc)
        with contextlib.suppress(OSError):
            temporary.unlink()


__all__ = [
    "FEW_DISTINCT_VALUES",
    "CategoricalReference",
    "FeatureReference",
    "NumericReference",
    "Reference",
    "ReferenceDataError",
    "build",
    "default_cache_dir",
    "load",
    "prepare_categorical",
    "prepare_numeric",
]
