"""The dataset profile: per-feature statistics written by `profile`, read by `drift` as the baseline.

Stored as `profile.json` beside `reference.npz` (one sorted float64 array per numeric feature, NaNs
removed, a seeded sample of at most REFERENCE_SAMPLE_MAX values) in the dataset version's directory.
Sorting once at profile time is what lets a drift check merge instead of sort the reference.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal

from pydantic import Field

from mlops_operator.api.base import CRModel
from mlops_operator.api.v1alpha1.dataset import FeatureType, QualityFinding

PROFILE_FILE: Final = "profile.json"
REFERENCE_FILE: Final = "reference.npz"
REFERENCE_SAMPLE_MAX: Final = 200_000
HISTOGRAM_BINS: Final = 20
MAX_CATEGORIES: Final = 1000
OTHER_CATEGORY: Final = "__other__"
QUANTILES: Final = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0)


class NumericSummary(CRModel):
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None
    quantiles: dict[str, float] = Field(default_factory=dict)  # "0.5" -> value
    histogram_edges: list[float] = Field(default_factory=list)
    histogram_counts: list[int] = Field(default_factory=list)
    reference_size: int = 0  # length of the sorted sample in reference.npz


class CategoricalSummary(CRModel):
    categories: dict[str, int] = Field(default_factory=dict)  # value -> count; overflow under OTHER_CATEGORY
    distinct: int = 0


class FeatureProfile(CRModel):
    name: str
    type: FeatureType
    dtype: str
    count: int
    missing: int
    numeric: NumericSummary | None = None
    categorical: CategoricalSummary | None = None


class OfDataset(CRModel):
    """Which Dataset a profile, or the plan that makes it, is about."""

    namespace: str
    dataset: str


class DatasetProfile(OfDataset):
    version: str
    rows: int
    columns: int
    target: str | None = None
    task_hint: Literal["classification", "regression"] | None = None
    features: list[FeatureProfile]
    findings: list[QualityFinding] = Field(default_factory=list)
    reference_uri: str
    data_uri: str
    created_at: datetime

    def feature(self, name: str) -> FeatureProfile | None:
        return next((f for f in self.features if f.name == name), None)
