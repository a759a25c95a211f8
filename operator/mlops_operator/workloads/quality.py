"""The schema and quality rules of a Dataset, applied to the frame `profile` read.

apply_schema: the target and declared features exist, declared types fit (a feature declared
categorical becomes text). prepare: the schema, then the quality rules in order: missing values,
rows without a target, duplicates, outliers, minimum rows. A failed rule raises QualityCheckFailed
(a DataError) carrying every finding so far; a rule that only warns or drops rows adds a finding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from mlops_operator.api.v1alpha1.dataset import (
    DatasetSpec,
    DuplicatePolicy,
    FeatureType,
    OutlierAction,
    OutlierMethod,
    QualityFinding,
    Severity,
)
from mlops_operator.workloads import data
from mlops_operator.workloads.common import DataError


class QualityCheckFailed(DataError):
    """A quality rule failed; the findings travel with the error into the result."""

    def __init__(self, findings: list[QualityFinding]) -> None:
        errors = [f for f in findings if f.severity == Severity.ERROR]
        super().__init__("QualityCheckFailed", "; ".join(f.message for f in errors[:5]))
        self.findings = findings


@dataclass
class Prepared:
    """The cleaned frame and what cleaning it found."""

    frame: pd.DataFrame
    findings: list[QualityFinding] = field(default_factory=list)


def prepare(frame: pd.DataFrame, spec: DatasetSpec) -> Prepared:
    """Apply the schema, then the quality rules in order: missing, target, duplicates, outliers, rows."""
    frame = apply_schema(frame, spec)
    rules = spec.quality
    prepared = Prepared(frame)
    target = spec.schema_.target
    _check_missing(prepared, rules.max_missing_fraction)
    if target is not None:
        _drop_missing_target(prepared, target)
    _handle_duplicates(prepared, DuplicatePolicy(rules.duplicates))
    if rules.outliers.method != OutlierMethod.NONE:
        _handle_outliers(
            prepared,
            OutlierMethod(rules.outliers.method),
            rules.outliers.threshold,
            OutlierAction(rules.outliers.action),
            exclude={target} if target else set(),
        )
    if len(prepared.frame) < rules.min_rows:
        raise DataError(
            "InsufficientData",
            f"{len(prepared.frame)} rows after cleaning, fewer than quality.minRows={rules.min_rows}",
        )
    if len(prepared.frame) != len(frame):  # rows were dropped: renumber (a copy, so only then)
        prepared.frame = prepared.frame.reset_index(drop=True)
    return prepared


def apply_schema(frame: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    schema = spec.schema_
    columns = [str(c) for c in frame.columns]
    if schema.target is not None and schema.target not in frame.columns:
        raise DataError(
            "MissingTarget",
            f"target column {schema.target!r} is not in the data; columns: {_listing(columns)}",
        )
    if schema.features is None:
        return frame
    missing = [f.name for f in schema.features if f.name not in frame.columns]
    if missing:
        raise DataError(
            "SchemaMismatch",
            f"declared features missing from the data: {_listing(missing)}; columns: {_listing(columns)}",
        )
    kept = [f.name for f in schema.features if f.name != schema.target]
    out = frame[kept + ([schema.target] if schema.target else [])].copy()
    for feature in schema.features:
        out[feature.name] = _coerce(out[feature.name], FeatureType(feature.type))
    return out


def _coerce(series: pd.Series[Any], declared: FeatureType) -> pd.Series[Any]:
    if declared == FeatureType.CATEGORICAL:
        return data.as_categorical(series)
    if data.feature_kind(series) == FeatureType.NUMERIC:
        return series
    numbers = pd.to_numeric(series, errors="coerce")
    bad = series.notna() & numbers.isna()
    if bad.any():
        example = series[bad].iloc[0]
        raise DataError(
            "SchemaMismatch",
            f"column {series.name!r} is declared numeric but {int(bad.sum())} values are not numbers, "
            f"e.g. {str(example)[:40]!r}",
        )
    return numbers.astype(np.float64)


def _listing(names: list[str], limit: int = 20) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" … ({len(names)} in all)" if len(names) > limit else "")


def _check_missing(prepared: Prepared, max_fraction: float) -> None:
    frame = prepared.frame
    missing = frame.isna().sum()
    failed = []
    for column, count in missing.items():
        fraction = count / len(frame)
        if fraction > max_fraction:
            failed.append(
                QualityFinding(
                    rule="maxMissingFraction",
                    severity=Severity.ERROR,
                    feature=str(column),
                    count=int(count),
                    message=f"column {column!r} is {fraction:.1%} missing, more than {max_fraction:.1%}",
                )
            )
    if failed:
        raise QualityCheckFailed(prepared.findings + failed)


def _drop_missing_target(prepared: Prepared, target: str) -> None:
    missing = prepared.frame[target].isna()
    if missing.any():
        count = int(missing.sum())
        prepared.frame = prepared.frame[~missing]
        prepared.findings.append(
            QualityFinding(
                rule="missingTarget", severity=Severity.WARNING, feature=target, count=count,
                message=f"dropped {count} rows without a target value",
            )
        )


def duplicated_rows(frame: pd.DataFrame) -> pd.Series[bool]:
    """frame.duplicated(), about 5x faster on wide frames: hash every row, then compare exactly only
    the rows whose hash repeats. (Rows differing only in NaN payloads or the sign of zero hash apart.)"""
    hashes = pd.util.hash_pandas_object(frame, index=False)
    candidates = hashes.duplicated(keep=False).to_numpy()
    duplicated = np.zeros(len(frame), dtype=bool)
    if candidates.any():
        duplicated[candidates] = frame[candidates].duplicated().to_numpy()
    return pd.Series(duplicated, index=frame.index, dtype=bool)


def _handle_duplicates(prepared: Prepared, policy: DuplicatePolicy) -> None:
    duplicated = duplicated_rows(prepared.frame)
    count = int(duplicated.sum())
    if count == 0:
        return
    if policy == DuplicatePolicy.FAIL:
        finding = QualityFinding(
            rule="duplicates", severity=Severity.ERROR, count=count,
            message=f"{count} duplicate rows and quality.duplicates is fail",
        )
        raise QualityCheckFailed([*prepared.findings, finding])
    if policy == DuplicatePolicy.DROP:
        prepared.frame = prepared.frame[~duplicated]
        prepared.findings.append(
            QualityFinding(rule="duplicates", severity=Severity.INFO, count=count,
                           message=f"dropped {count} duplicate rows")
        )
        return
    prepared.findings.append(
        QualityFinding(rule="duplicates", severity=Severity.WARNING, count=count,
                       message=f"{count} duplicate rows (kept)")
    )


def _handle_outliers(
    prepared: Prepared, method: OutlierMethod, threshold: float, action: OutlierAction, exclude: set[str]
) -> None:
    frame = prepared.frame
    any_outlier = np.zeros(len(frame), dtype=bool)
    for column in frame.columns:
        if column in exclude or data.feature_kind(frame[column]) != FeatureType.NUMERIC:
            continue
        values = frame[column].to_numpy(dtype=np.float64, na_value=np.nan)
        outliers = _outliers(values, method, threshold)
        count = int(outliers.sum())
        if count == 0:
            continue
        any_outlier |= outliers
        if action == OutlierAction.WARN:
            prepared.findings.append(
                QualityFinding(
                    rule=f"outliers.{method}", severity=Severity.WARNING, feature=str(column), count=count,
                    message=f"column {column!r} has {count} outliers by {method} (threshold {threshold:g})",
                )
            )
    dropped = int(any_outlier.sum())
    if action == OutlierAction.DROP and dropped:
        prepared.frame = frame[~any_outlier]
        prepared.findings.append(
            QualityFinding(
                rule=f"outliers.{method}", severity=Severity.INFO, count=dropped,
                message=f"dropped {dropped} rows with an outlier by {method} (threshold {threshold:g})",
            )
        )


def _outliers(values: npt.NDArray[np.float64], method: OutlierMethod, threshold: float) -> npt.NDArray[np.bool_]:
    present = values[np.isfinite(values)]
    if present.size < 2:
        return np.zeros(values.shape, dtype=bool)
    if method == OutlierMethod.IQR:
        q1, q3 = np.quantile(present, [0.25, 0.75])
        low, high = q1 - threshold * (q3 - q1), q3 + threshold * (q3 - q1)
    else:
        mean, std = float(present.mean()), float(present.std())
        if std == 0:
            return np.zeros(values.shape, dtype=bool)
        low, high = mean - threshold * std, mean + threshold * std
    with np.errstate(invalid="ignore"):
        outside: npt.NDArray[np.bool_] = (values < low) | (values > high)
    return outside


__all__ = ["Prepared", "QualityCheckFailed", "apply_schema", "duplicated_rows", "prepare"]
