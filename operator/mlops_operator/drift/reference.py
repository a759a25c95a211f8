"""The reference side of a drift check, prepared once per dataset version.

The Dataset profile (api/profile.py) already holds what a check needs: `profile.json` with category
counts and `reference.npz` with one sorted, NaN-free float64 sample per numeric feature. Loading turns
them into `Reference`: the sorted samples as they are (a check merges into them, never sorts them), and
the few derived numbers (std, decile edges and counts, the distinct values of low-cardinality numeric
features) that cost one pass over a sorted array.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import pydantic

from mlops_operator import store
from mlops_operator.api.profile import OTHER_CATEGORY, PROFILE_FILE, REFERENCE_FILE, DatasetProfile
from mlops_operator.api.v1alpha1.dataset import FeatureType
from mlops_operator.drift import stats
from mlops_operator.drift.stats import FloatArray, IntArray

log = logging.getLogger(__name__)

# Evidently treats a numeric feature with at most this many distinct values like a categorical one.
FEW_DISTINCT_VALUES: Final = 5


class ReferenceDataError(Exception):
    """The profile or its reference sample is malformed (a data error: retrying cannot help)."""


@dataclass(frozen=True, slots=True)
class NumericReference:
    name: str
    sorted_values: FloatArray
    std: float
    decile_edges: FloatArray
    decile_counts: IntArray
    # The distinct values and their counts when there are at most FEW_DISTINCT_VALUES of them.
    few_values: FloatArray | None
    few_counts: IntArray | None

    @property
    def size(self) -> int:
        return int(self.sorted_values.size)


@dataclass(frozen=True, slots=True)
class CategoricalReference:
    name: str
    categories: tuple[str, ...]
    counts: IntArray
    has_overflow: bool  # the profile folded rare categories into OTHER_CATEGORY

    @property
    def size(self) -> int:
        return int(self.counts.sum())


FeatureReference = NumericReference | CategoricalReference


@dataclass(frozen=True, slots=True)
class Reference:
    profile: DatasetProfile
    profile_sha256: str
    features: dict[str, FeatureReference]

    @property
    def rows(self) -> int:
        return self.profile.rows


def prepare_numeric(name: str, sorted_values: FloatArray) -> NumericReference:
    """Everything a check needs from one sorted sample; O(n) on the sorted array, no sort."""
    run_starts = np.flatnonzero(np.diff(sorted_values)) + 1 if sorted_values.size else np.empty(0, np.int64)
    few_values: FloatArray | None = None
    few_counts: IntArray | None = None
    if 0 < run_starts.size + 1 <= FEW_DISTINCT_VALUES:
        starts = np.concatenate(([0], run_starts))
        few_values = sorted_values[starts]
        few_counts = np.diff(np.concatenate((starts, [sorted_values.size]))).astype(np.int64)
    edges = stats.decile_edges(sorted_values)
    return NumericReference(
        name=name,
        sorted_values=sorted_values,
        std=float(np.std(sorted_values)) if sorted_values.size else 0.0,
        decile_edges=edges,
        decile_counts=stats.binned_counts(sorted_values, edges),
        few_values=few_values,
        few_counts=few_counts,
    )


def prepare_categorical(name: str, categories: dict[str, int]) -> CategoricalReference:
    return CategoricalReference(
        name=name,
        categories=tuple(categories),
        counts=np.fromiter(categories.values(), dtype=np.int64, count=len(categories)),
        has_overflow=OTHER_CATEGORY in categories,
    )


def build(profile: DatasetProfile, profile_sha256: str, samples: dict[str, FloatArray]) -> Reference:
    features: dict[str, FeatureReference] = {}
    for feature in profile.features:
        if feature.name == profile.target:
            continue
        if feature.type == FeatureType.NUMERIC:
            features[feature.name] = prepare_numeric(feature.name, samples.get(feature.name, _EMPTY))
        else:
            counts = feature.categorical.categories if feature.categorical else {}
            features[feature.name] = prepare_categorical(feature.name, counts)
    return Reference(profile=profile, profile_sha256=profile_sha256, features=features)


_EMPTY: Final = np.empty(0, dtype=np.float64)


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
