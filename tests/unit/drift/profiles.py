"""Dataset profiles for drift tests, written the way api/profile.py specifies them.

profile.json (a DatasetProfile) beside reference.npz (one sorted, NaN-free float64 array per numeric
feature, stored as `<name>.npy` members).
"""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from mlops_operator.api.profile import (
    PROFILE_FILE,
    REFERENCE_FILE,
    CategoricalSummary,
    DatasetProfile,
    FeatureProfile,
    NumericSummary,
)
from mlops_operator.api.v1alpha1.dataset import FeatureType
from mlops_operator.drift import reference


def build_profile(frame: pd.DataFrame, categorical: set[str], directory: Path, dataset: str = "ref") -> DatasetProfile:
    features = []
    for name in frame.columns:
        column = frame[name]
        if name in categorical:
            counts = column.dropna().astype(str).value_counts()
            summary = CategoricalSummary(categories={str(k): int(v) for k, v in counts.items()}, distinct=len(counts))
            features.append(
                FeatureProfile(
                    name=name,
                    type=FeatureType.CATEGORICAL,
                    dtype=str(column.dtype),
                    count=int(column.count()),
                    missing=int(column.isna().sum()),
                    categorical=summary,
                )
            )
        else:
            values = column.to_numpy(dtype=np.float64)
            present = np.sort(values[~np.isnan(values)])
            features.append(
                FeatureProfile(
                    name=name,
                    type=FeatureType.NUMERIC,
                    dtype=str(column.dtype),
                    count=int(present.size),
                    missing=int(values.size - present.size),
                    numeric=NumericSummary(reference_size=int(present.size)),
                )
            )
    return DatasetProfile(
        namespace="default",
        dataset=dataset,
        version="0" * 64,
        rows=len(frame),
        columns=len(frame.columns),
        features=features,
        reference_uri=str(directory / REFERENCE_FILE),
        data_uri=str(directory / "data.parquet"),
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def samples_of(frame: pd.DataFrame, categorical: set[str]) -> dict[str, np.ndarray]:
    samples = {}
    for name in frame.columns:
        if name not in categorical:
            values = frame[name].to_numpy(dtype=np.float64)
            samples[name] = np.sort(values[~np.isnan(values)])
    return samples


def npz_bytes(samples: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, values in samples.items():
            with archive.open(f"{name}.npy", "w") as member:
                np.lib.format.write_array(member, values, allow_pickle=False)
    return buffer.getvalue()


def write_profile(frame: pd.DataFrame, categorical: set[str], directory: Path) -> Path:
    """Write profile.json + reference.npz into `directory`; returns the profile path."""
    directory.mkdir(parents=True, exist_ok=True)
    profile = build_profile(frame, categorical, directory)
    (directory / REFERENCE_FILE).write_bytes(npz_bytes(samples_of(frame, categorical)))
    (directory / PROFILE_FILE).write_text(profile.model_dump_json(by_alias=True))
    return directory / PROFILE_FILE


def in_memory_reference(frame: pd.DataFrame, categorical: set[str]) -> reference.Reference:
    profile = build_profile(frame, categorical, Path("/nonexistent"))
    return reference.build(profile, "sha", samples_of(frame, categorical))
