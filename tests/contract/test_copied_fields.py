"""The field-name tables by which one model is filled from another "as they are": every name must be
a field of both, of the same type, or a copy silently drops a value or fails at run time."""

from __future__ import annotations

import types
import typing
from typing import Any

import pytest
from pydantic import BaseModel

from mlops_operator.api.plans import DRIFT_SPEC_FIELDS, DriftPlan
from mlops_operator.api.profile import DatasetProfile
from mlops_operator.api.results import (
    LIVE_QUALITY_FIELDS,
    PREDICTION_DRIFT_FIELDS,
    PROFILE_FIELDS,
    LiveQualityResult,
    PredictionDriftResult,
    ProfileResult,
)
from mlops_operator.api.v1alpha1.driftmonitor import DriftMonitorSpec, LiveQuality, PredictionDriftScore

TABLES = [
    pytest.param(PROFILE_FIELDS, DatasetProfile, ProfileResult, id="profile"),
    pytest.param(DRIFT_SPEC_FIELDS, DriftMonitorSpec, DriftPlan, id="drift-spec"),
    pytest.param(LIVE_QUALITY_FIELDS, LiveQualityResult, LiveQuality, id="live-quality"),
    pytest.param(PREDICTION_DRIFT_FIELDS, PredictionDriftResult, PredictionDriftScore, id="prediction-drift"),
]


def _types(annotation: Any) -> set[Any]:
    """The plain types an annotation allows (Annotated constraints and unions unwrapped)."""
    if typing.get_origin(annotation) is typing.Annotated:
        return _types(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return set().union(*(_types(arg) for arg in typing.get_args(annotation)))
    return {annotation}


@pytest.mark.parametrize(("names", "source", "target"), TABLES)
def test_every_copied_field_exists_in_both_with_a_type_the_target_takes(
    names: frozenset[str], source: type[BaseModel], target: type[BaseModel]
) -> None:
    assert names, "an empty table copies nothing"
    for name in sorted(names):
        assert name in source.model_fields, f"{source.__name__} has no field {name}"
        assert name in target.model_fields, f"{target.__name__} has no field {name}"
        given = _types(source.model_fields[name].annotation)
        taken = _types(target.model_fields[name].annotation)
        assert given <= taken, f"{name}: {source.__name__} gives {given}, {target.__name__} takes {taken}"
