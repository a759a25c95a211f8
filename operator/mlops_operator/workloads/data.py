"""Reading a dataset source into a DataFrame, and the column kinds every workload agrees on.

Sources: any store URI (`file://`, `az://`, `s3://`, or a plain path) holding CSV or Parquet, or
`sklearn://<name>` for a dataset bundled with scikit-learn (no download): iris, wine, breast_cancer,
diabetes, digits. A bundled dataset may be resized for demos: `sklearn://wine?rows=100000&seed=1`
resamples rows with replacement and `shift=0.5` moves every numeric feature by half its standard
deviation (a drifted copy).

Normalization, so that training and serving see the same kinds: integers, floats and booleans are
numeric (booleans as 0/1); strings, dates and times are categorical (as text). A column is one or the
other, see `feature_kind`.
"""

from __future__ import annotations

import io
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from mlops_operator import store
from mlops_operator.api.v1alpha1.dataset import DataFormat, FeatureType
from mlops_operator.workloads.common import DataError, SpecError

PARQUET_MAGIC: Final = b"PAR1"
SKLEARN_SCHEME: Final = "sklearn://"
SKLEARN_TARGET: Final = "target"
MAX_RESAMPLED_ROWS: Final = 10_000_000


@dataclass(frozen=True)
class Source:
    frame: pd.DataFrame
    version: str  # sha256 of the source bytes (of a canonical CSV for sklearn://)
    format: DataFormat


def read_source(uri: str, data_format: DataFormat | str = DataFormat.AUTO) -> Source:
    """Read a source and compute its content version. Raises DataError, SpecError or StoreError.

    Text columns stay in pandas' Arrow-backed `str` dtype here (profiling needs no Python objects).
    """
    if uri.startswith(SKLEARN_SCHEME):
        return _read_sklearn(uri)
    data = store.read_bytes(uri)
    resolved = resolve_format(uri, data, DataFormat(data_format))
    frame = parse_table(data, resolved, store.redact(uri), text_as_objects=False)
    return Source(frame=frame, version=store.sha256_bytes(data), format=resolved)


def resolve_format(uri: str, data: bytes, declared: DataFormat) -> DataFormat:
    if declared != DataFormat.AUTO:
        return declared
    path = store.redact(uri).lower()
    if path.endswith((".parquet", ".pq")):
        return DataFormat.PARQUET
    if path.endswith((".csv", ".txt")):
        return DataFormat.CSV
    return DataFormat.PARQUET if data[:4] == PARQUET_MAGIC else DataFormat.CSV


def parse_table(
    data: bytes, data_format: DataFormat, name: str, text_as_objects: bool = True, allow_no_rows: bool = False
) -> pd.DataFrame:
    """A DataFrame from CSV or Parquet bytes; text columns as object arrays of str with NaN for missing
    (what scikit-learn's imputers expect) unless `text_as_objects` is false. A table without rows is
    EmptyData unless `allow_no_rows` (one file of many)."""
    if not data.strip():
        raise DataError("EmptyData", f"{name} is empty (0 bytes)")
    table = _parse_parquet(data, name) if data_format == DataFormat.PARQUET else _parse_csv(data, name)
    if table.num_columns == 0:
        raise DataError("EmptyData", f"{name} has no columns")
    if table.num_rows == 0 and not allow_no_rows:
        raise DataError("EmptyData", f"{name} has a header but no rows")
    return _to_frame(_normalize(table, name), text_as_objects)


def _parse_csv(data: bytes, name: str) -> pa.Table:
    convert = pa_csv.ConvertOptions(strings_can_be_null=True, timestamp_parsers=[])
    try:
        return pa_csv.read_csv(io.BytesIO(data), convert_options=convert)
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError) as exc:
        raise DataError("MalformedData", f"{name} is not valid CSV: {_csv_problem(data, exc)}") from exc


def _csv_problem(data: bytes, arrow_error: Exception) -> str:
    """pyarrow's message lacks line numbers; pandas' parser names the line, so ask it on failure."""
    try:
        pd.read_csv(io.BytesIO(data), engine="c", nrows=1_000_000)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        return _one_line(exc)
    return _one_line(arrow_error)


def _parse_parquet(data: bytes, name: str) -> pa.Table:
    try:
        return pq.read_table(io.BytesIO(data))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
        raise DataError("MalformedData", f"{name} is not valid Parquet: {_one_line(exc)}") from exc


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def _normalize(table: pa.Table, name: str) -> pa.Table:
    """Map every Arrow type onto numeric (float/int) or categorical (string)."""
    columns = []
    for field, column in zip(table.schema, table.columns, strict=True):
        kind = field.type
        if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
            raise DataError("MalformedData", f"{name}: column {field.name!r} is not valid UTF-8 text")
        if pa.types.is_boolean(kind) or pa.types.is_decimal(kind) or pa.types.is_null(kind):
            column = column.cast(pa.float64())
        elif pa.types.is_temporal(kind) or pa.types.is_dictionary(kind):
            column = column.cast(pa.string())
        elif not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_string(kind)
                  or pa.types.is_large_string(kind)):
            raise DataError("MalformedData", f"{name}: column {field.name!r} has unsupported type {kind}")
        columns.append(column)
    names = [str(n) for n in table.column_names]
    if len(set(names)) != len(names):
        duplicated = sorted({n for n in names if names.count(n) > 1})
        raise DataError("MalformedData", f"{name}: duplicate column names {duplicated[:10]}")
    return pa.table(columns, names=names)


DISTINCT_ATTR: Final = "distinct"


def _to_frame(table: pa.Table, text_as_objects: bool) -> pd.DataFrame:
    """The DataFrame, with the distinct-value count of each text column in `frame.attrs["distinct"]`
    (counted by Arrow, far cheaper than pandas on Python strings)."""
    frame: pd.DataFrame = table.to_pandas()
    distinct: dict[str, int] = {}
    for column in frame.columns:
        if feature_kind(frame[column]) == FeatureType.CATEGORICAL:
            distinct[str(column)] = int(pc.count_distinct(table.column(str(column))).as_py())
            if text_as_objects:
                repeated = distinct[str(column)] <= len(frame) // 2
                frame[column] = _shared_text_objects(frame[column]) if repeated else as_categorical(frame[column])
    frame.attrs[DISTINCT_ATTR] = distinct
    return frame


def feature_kind(series: pd.Series[Any]) -> FeatureType:
    """Numeric for integer/float/bool dtypes, categorical for everything else (text)."""
    if pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_numeric_dtype(series.dtype):
        return FeatureType.NUMERIC
    return FeatureType.CATEGORICAL


def as_categorical(series: pd.Series[Any]) -> pd.Series[Any]:
    """Text values in an object column with NaN for missing: what scikit-learn's imputers expect."""
    if isinstance(series.dtype, pd.StringDtype) and series.dtype.na_value is np.nan:
        return series.astype(object)  # pandas' default text dtype: missing values are already NaN
    missing = series.isna()
    if pd.api.types.infer_dtype(series, skipna=True) not in ("string", "empty"):
        series = series.map(str, na_action="ignore")  # numbers or mixed values declared categorical
    return series.astype(object).where(~missing, np.nan)


def _shared_text_objects(series: pd.Series[Any]) -> pd.Series[Any]:
    """`as_categorical` of Arrow-backed text, with one str object per distinct value shared by its rows
    (`astype(object)` makes one per row). Equal values: the same model and fingerprints; but the
    imputer's Counter, the one-hot encoder's lookups and hashing then hit the cached hash and the
    identity check, 3-7x faster. Only for repeated values: mostly distinct ones cost 4x more this way."""
    if not (isinstance(series.dtype, pd.StringDtype) and series.dtype.na_value is np.nan):
        return as_categorical(series)
    codes, distinct = pd.factorize(series)  # Arrow's dictionary encoding for Arrow-backed text
    objects = np.append(np.asarray(distinct, dtype=object), np.nan)  # code -1 (missing) picks the NaN
    return pd.Series(objects[codes], index=series.index, name=series.name, dtype=object)


# --- snapshots (Parquet written by profile, read by train) ------------------------------------
def write_snapshot(frame: pd.DataFrame, uri: str) -> None:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with store.atomic_writer(uri) as handle:
        # lz4: reads back about 5x faster than zstd; numeric columns barely compress either way.
        pq.write_table(table, handle, compression="lz4")


def read_snapshot(uri: str) -> pd.DataFrame:
    """A version's cleaned snapshot: a directory of Parquet parts sharing one schema, read in name
    order as one table (or, for versions written before parts, one Parquet file)."""
    fs, path = store.filesystem(uri)
    with store.translated(uri):  # the store's error mapping
        names = sorted(p for p in fs.ls(path, detail=False) if p.endswith(".parquet")) if fs.isdir(path) else []
    if not names:
        return parse_table(store.read_bytes(uri), DataFormat.PARQUET, store.redact(uri))
    scheme = uri.split("://", 1)[0] if "://" in uri else ""
    uris = [f"{scheme}://{fs.unstrip_protocol(n).split('://', 1)[1]}" if scheme else n for n in names]
    return read_parts(uris)


def read_parts(uris: list[str], text_as_objects: bool = True) -> pd.DataFrame:
    """Parquet files as one table, in the order given (an integer column promoted to float where a
    file has floats)."""
    tables = [_parse_parquet(store.read_bytes(u), store.redact(u)) for u in uris]
    table = pa.concat_tables(tables, promote_options="permissive")
    name = store.redact(uris[0]).rsplit("/", 1)[0] if uris else "snapshot"
    if table.num_rows == 0:
        raise DataError("EmptyData", f"{name} has no rows")
    return _to_frame(_normalize(table, name), text_as_objects)


# --- row fingerprints (which rows a model trained on) --------------------------------------------
def row_fingerprints(features: pd.DataFrame, target: pd.Series[Any]) -> npt.NDArray[np.uint64]:
    """One uint64 per row, a hash of its feature values (columns in name order) and then its target.

    Equal values give an equal fingerprint whatever the column order of the source file and whether
    a number is stored as an integer or a float: numeric columns are hashed as float64 (every NaN
    alike, -0.0 as 0.0), text columns as str with NaN for missing (`as_categorical`). Row labels and
    column names are not hashed. The value is pandas' `hash_pandas_object(index=False)` of a frame of
    those canonical columns, computed column by column without building the frame: 64 bits, so two
    different rows share a fingerprint with a chance of 2^-64 per pair compared.
    """
    return _combined_hash([features[name] for name in sorted(features.columns, key=str)] + [target], len(target))


def row_hashes(frame: pd.DataFrame) -> npt.NDArray[np.uint64]:
    """One uint64 per row over every column in name order, canonical as in `row_fingerprints`: equal
    rows hash equal in any file, whatever its column order or integer/float storage."""
    return _combined_hash([frame[name] for name in sorted(frame.columns, key=str)], len(frame))


def _combined_hash(ordered: list[pd.Series[Any]], rows: int) -> npt.NDArray[np.uint64]:
    # pandas' combine_hash_arrays (CPython's tuple hash) over the per-column hashes.
    hashed = np.full(rows, 0x345678, dtype=np.uint64)
    multiplier = np.uint64(1000003)
    for position, series in enumerate(ordered):
        hashed ^= pd.util.hash_array(_canonical(series))
        hashed *= multiplier
        multiplier += np.uint64(82520 + 2 * (len(ordered) - position))
    hashed += np.uint64(97531)
    return hashed


def _canonical(series: pd.Series[Any]) -> npt.NDArray[Any]:
    if feature_kind(series) == FeatureType.NUMERIC:
        values = series.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
        values[np.isnan(values)] = np.nan  # one bit pattern for every NaN
        values += 0.0  # -0.0 becomes 0.0
        return values
    return as_categorical(series).to_numpy(dtype=object)


def seen_rows(fingerprints: npt.NDArray[np.uint64], known: npt.NDArray[np.uint64]) -> npt.NDArray[np.bool_]:
    """Which fingerprints are in `known` (sorted, unique): one binary search per row."""
    if len(known) == 0:
        return np.zeros(len(fingerprints), dtype=np.bool_)
    at = np.searchsorted(known, fingerprints).clip(max=len(known) - 1)
    found: npt.NDArray[np.bool_] = known[at] == fingerprints
    return found


# --- scikit-learn's bundled datasets -----------------------------------------------------------
def _bundled() -> dict[str, Callable[..., Any]]:
    from sklearn import datasets  # imported lazily: only sklearn:// sources need the loaders

    return {
        "iris": datasets.load_iris,
        "wine": datasets.load_wine,
        "breast_cancer": datasets.load_breast_cancer,
        "diabetes": datasets.load_diabetes,
        "digits": datasets.load_digits,
    }


def _read_sklearn(uri: str) -> Source:
    canonical = sklearn_csv(uri)
    frame = parse_table(canonical, DataFormat.CSV, uri, text_as_objects=False)
    return Source(frame=frame, version=store.sha256_bytes(canonical), format=DataFormat.CSV)


def sklearn_csv(uri: str) -> bytes:
    """A bundled dataset (resized, shifted) as canonical CSV bytes: equal options, equal bytes."""
    loader, options = check_sklearn(uri)
    frame: pd.DataFrame = loader(as_frame=True).frame
    frame = _resample(frame, **options)
    return frame.to_csv(index=False, float_format="%.17g").encode()


def check_sklearn(uri: str) -> tuple[Callable[..., Any], dict[str, Any]]:
    """The loader and options of a sklearn:// URI; SpecError (UnknownDataset, InvalidSource) if bad."""
    parsed = urllib.parse.urlsplit(uri)
    name = parsed.netloc + parsed.path.rstrip("/")
    loaders = _bundled()
    if name not in loaders:
        raise SpecError(
            "UnknownDataset", f"sklearn://{name} is not a bundled dataset; choose one of {sorted(loaders)}"
        )
    return loaders[name], _sklearn_options(parsed.query)


def _sklearn_options(query: str) -> dict[str, Any]:
    allowed: dict[str, Callable[[str], Any]] = {"rows": int, "seed": int, "shift": float}
    options: dict[str, Any] = {}
    for key, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
        if key not in allowed:
            raise SpecError("InvalidSource", f"unknown sklearn:// option {key!r}; allowed: {sorted(allowed)}")
        try:
            options[key] = allowed[key](value)
        except ValueError as exc:
            raise SpecError("InvalidSource", f"sklearn:// option {key}={value!r} is not a number") from exc
    rows = options.get("rows")
    if rows is not None and not 1 <= rows <= MAX_RESAMPLED_ROWS:
        raise SpecError("InvalidSource", f"sklearn:// rows must be between 1 and {MAX_RESAMPLED_ROWS}")
    return options


def _resample(
    frame: pd.DataFrame, rows: int | None = None, seed: int = 0, shift: float = 0.0
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    if rows is not None:
        frame = frame.iloc[rng.integers(0, len(frame), size=rows)].reset_index(drop=True)
    if shift:
        features = [c for c in frame.columns if c != SKLEARN_TARGET]
        frame = frame.copy()
        frame[features] = frame[features] + shift * frame[features].std(ddof=0)
    return frame


__all__ = [
    "Source",
    "as_categorical",
    "check_sklearn",
    "feature_kind",
    "parse_table",
    "read_parts",
    "read_snapshot",
    "read_source",
    "resolve_format",
    "row_fingerprints",
    "row_hashes",
    "seen_rows",
    "sklearn_csv",
    "write_snapshot",
]
