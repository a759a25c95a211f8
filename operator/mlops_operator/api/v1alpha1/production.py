"""Learning from production: labelled predictions appended to the next version's training data."""

from __future__ import annotations

from pydantic import Field

from mlops_operator.api.base import CRModel

DAY_SECONDS = 24 * 3600


class ProductionLabelsSpec(CRModel):
    """Labelled production rows in the training data of the next version (docs/production-labels.md).

    The inputs the model server collected (each with its prediction id) are joined by id to the
    ground truth that arrived later (the feedback endpoint or files under the labels prefix); the
    label becomes the target column. Rows that do not fit the Dataset's schema are dropped and
    counted; rows equal to one of the snapshot's are not added twice.
    """

    enabled: bool = False
    """Append labelled production rows to the training data of every new version. With it, a
    DriftMonitor's retrain request on unchanged data trains when labels arrived after the serving
    version was trained (else NoNewData, as without it)."""
    window_seconds: int = Field(default=7 * DAY_SECONDS, ge=3600, le=90 * DAY_SECONDS)
    """Predictions made in this many seconds before the training starts, with the labels that had
    arrived by then."""
    max_rows: int = Field(default=100_000, ge=1, le=10_000_000)
    """At most this many production rows (the most recent predictions first)."""


__all__ = ["ProductionLabelsSpec"]
