"""Parts: each source file parsed and cleaned once, kept under `<dataset dir>/parts/` by content.

A part is one source file after the per-file rules (the schema applied, rows without a target dropped;
quality.clean_part). Its key is the sha256 of the file's bytes, the schema and the format, so a refresh
reads only the bytes of files it has not seen, and every version holding the file reuses the part. Each
part is four objects, the summary last (its commit marker):

    <key>.parquet    the rows (Parquet, lz4): what a version's snapshot links or copies
    <key>.sample     per numeric column the finite values in a seeded random order, at most
                     REFERENCE_SAMPLE_MAX (little-endian float64, NaN padded), in blocks of
                     SAMPLE_BLOCK rows stored column by column: the first k values of every
                     column (a uniform sample of each) are the first blocks, one ranged read
    <key>.rows.npy   one uint64 hash per row (data.row_hashes), for duplicates across files
    <key>.json       PartSummary: counts, exact per-column statistics, category counts, kinds

Files of one version must have the same columns. Their kinds are unified (text over float over
integer); a part whose kinds differ is derived once into a variant with the unified kinds, so every
part linked into a snapshot shares one Parquet schema.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any, Final

import numpy as np
import numpy.typing as npt
import orjson
import pandas as pd
from pydantic import Field

from mlops_operator import store
from mlops_operator.api.base import CRModel
from mlops_operator.api.profile import REFERENCE_SAMPLE_MAX, FeatureProfile
from mlops_operator.api.v1alpha1.dataset import DataFormat, DatasetSpec, FeatureType
from mlops_operator.workloads import data, quality, sources, summaries
from mlops_operator.workloads.common import DataError

log = logging.getLogger(__name__)

PART_FORMAT: Final = 1  # bump when a part's files change meaning: every part is made again
PARTS_DIR: Final = "parts"
SAMPLE_BLOCK: Final = 1024
INT, FLOAT, TEXT = "int", "float", "text"


class PartSummary(CRModel):
    """What a version needs from a part without reading its rows."""

    format: int
    key: str
    source: str  # the file's path under the source when the part was made
    sha256: str  # of the file's bytes
    rows_read: int  # rows in the file
    rows: int  # rows kept
    missing_target: int  # rows dropped for want of a target
    missing: dict[str, int]  # per column, before rows without a target were dropped
    columns: list[str]  # in the file's order
    kinds: dict[str, str]  # column -> int | float | text
    features: list[FeatureProfile]  # exact statistics of the kept rows
    categories: dict[str, dict[str, int]] = Field(default_factory=dict)  # text columns' counts
    capped: list[str] = Field(default_factory=list)  # text columns with more than PART_CATEGORY_LIMIT values
    target_classes: list[float] | None = None  # a numeric target's few integer values (summaries.target_classes)
    sample_columns: list[str] = Field(default_factory=list)
    sample_lengths: list[int] = Field(default_factory=list)  # finite values sampled per sample column
    sample_rows: int = 0  # the longest sample column (the file holds whole blocks)


@dataclass(frozen=True)
class Part:
    base: str  # <dataset dir>/parts/<key>
    summary: PartSummary

    @property
    def data_uri(self) -> str:
        return f"{self.base}.parquet"

    @property
    def sample_uri(self) -> str:
        return f"{self.base}.sample"

    @property
    def rows_uri(self) -> str:
        return f"{self.base}.rows.npy"


def part_key(sha256: str, spec: DatasetSpec, format_hint: str) -> str:
    """What makes a part: the file's bytes, the schema, the declared format and the file's extension."""
    shape = {"format": PART_FORMAT, "sha256": sha256, "schema": spec.schema_.dump(),
             "sourceFormat": spec.source.format, "hint": format_hint}
    return store.sha256_bytes(orjson.dumps(shape, option=orjson.OPT_SORT_KEYS))


def format_hint(uri: str) -> str:
    """The file name's extension: with format auto it decides how the bytes are read."""
    name = store.redact(uri).rsplit("/", 1)[-1].lower()
    return name.rpartition(".")[2] if "." in name else ""


def _base(dataset_dir: str, key: str) -> str:
    return store.join(dataset_dir, PARTS_DIR, key)


def load(dataset_dir: str, key: str) -> Part | None:
    """The part if it is complete (its summary exists and has this format)."""
    base = _base(dataset_dir, key)
    try:
        raw = store.read_bytes(f"{base}.json")
    except store.StoreError as exc:
        if exc.reason == "ObjectNotFound":
            return None
        raise
    try:
        summary = PartSummary.model_validate_json(raw)
    except ValueError:  # another format, or damaged: made again
        return None
    return Part(base, summary) if summary.format == PART_FORMAT else None


def build(dataset_dir: str, key: str, path: str, uri: str, raw: bytes, sha256: str, spec: DatasetSpec) -> Part:
    """Parse one file's bytes (`sha256` is theirs), apply the per-file rules, and store the part."""
    resolved = data.resolve_format(uri, raw, DataFormat(spec.source.format))
    # One file of a prefix may hold no rows (a writer's empty output); a version needs rows in all.
    many = sources.is_prefix(spec.source.uri)
    frame = data.parse_table(raw, resolved, store.redact(uri), text_as_objects=False, allow_no_rows=many)
    cleaning = quality.clean_part(frame, spec)
    return _store(dataset_dir, key, path, sha256, cleaning, spec)


def _store(
    dataset_dir: str, key: str, path: str, sha256: str, cleaning: quality.PartCleaning, spec: DatasetSpec
) -> Part:
    frame = cleaning.frame
    features, finite = summaries.column_summaries(frame)
    target = spec.schema_.target
    summary = PartSummary(
        format=PART_FORMAT, key=key, source=path, sha256=sha256, rows_read=cleaning.rows_read,
        rows=len(frame), missing_target=cleaning.missing_target, missing=cleaning.missing,
        columns=[str(c) for c in frame.columns], kinds={str(c): kind_of(frame[c]) for c in frame.columns},
        features=features,
        target_classes=summaries.target_classes(frame[target]) if target and kind_of(frame[target]) != TEXT else None,
    )
    for feature in features:
        if feature.type == FeatureType.CATEGORICAL:
            summary.categories[feature.name], capped = summaries.category_counts(frame[feature.name])
            if capped:
                summary.capped.append(feature.name)
    sample = _sample_matrix(summary, finite, seed=int(key[:16], 16))
    part = Part(_base(dataset_dir, key), summary)
    data.write_snapshot(frame, part.data_uri)
    store.write_bytes_atomic(part.sample_uri, sample)
    store.write_bytes_atomic(part.rows_uri, _npy(data.row_hashes(frame)))
    store.write_json_atomic(f"{part.base}.json", summary.dump())
    return part


def kind_of(series: pd.Series[Any]) -> str:
    if data.feature_kind(series) == FeatureType.CATEGORICAL:
        return TEXT
    return INT if pd.api.types.is_integer_dtype(series.dtype) else FLOAT


def _sample_matrix(summary: PartSummary, finite: dict[str, summaries.FloatArray], seed: int) -> bytes:
    """The sample file: blocks of SAMPLE_BLOCK rows, each block column by column."""
    rng = np.random.default_rng(seed)
    columns = list(finite)
    kept = [rng.permutation(finite[c])[:REFERENCE_SAMPLE_MAX] for c in columns]
    rows = max((len(k) for k in kept), default=0)
    blocks = -(-rows // SAMPLE_BLOCK)
    matrix = np.full((len(columns), blocks * SAMPLE_BLOCK), np.nan, dtype="<f8")
    for j, values in enumerate(kept):
        matrix[j, : len(values)] = values
    summary.sample_columns, summary.sample_lengths, summary.sample_rows = columns, [len(k) for k in kept], rows
    # (columns, blocks, block) -> (blocks, columns, block): a block's columns one after the other
    return matrix.reshape(len(columns), blocks, SAMPLE_BLOCK).transpose(1, 0, 2).tobytes()


def _npy(values: npt.NDArray[Any]) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, values, allow_pickle=False)
    return buffer.getvalue()


# --- one schema for a version's parts -------------------------------------------------------------
def unify(parts: Sequence[Part], dataset_dir: str, spec: DatasetSpec) -> list[Part]:
    """Check that every part has the first one's columns and give them one kind per column (text over
    float over int); a part whose kinds differ is replaced by its variant (made once, then reused).
    Parts without rows are left out: they add nothing to the table, and their kinds are guesses."""
    parts = [p for p in parts if p.summary.rows_read]
    if not parts:
        raise DataError("EmptyData", "the source's files hold no rows")
    first = parts[0].summary
    for part in parts[1:]:
        if set(part.summary.kinds) != set(first.kinds):
            raise DataError(
                "SchemaMismatch",
                f"{part.summary.source} has columns {_names(part.summary.columns)} but {first.source} has "
                f"{_names(first.columns)}; every file of a source needs the same columns",
            )
    kinds = {c: _unified([p.summary.kinds[c] for p in parts]) for c in first.columns}
    return [p if _aligned(p, kinds) else _variant(p, kinds, dataset_dir, spec) for p in parts]


def _names(names: list[str], limit: int = 12) -> str:
    return str(names[:limit]) + (f" … ({len(names)} in all)" if len(names) > limit else "")


def _unified(kinds: list[str]) -> str:
    return TEXT if TEXT in kinds else FLOAT if FLOAT in kinds else INT


def _aligned(part: Part, kinds: dict[str, str]) -> bool:
    return part.summary.columns == list(kinds) and all(part.summary.kinds[c] == k for c, k in kinds.items())


def _variant(part: Part, kinds: dict[str, str], dataset_dir: str, spec: DatasetSpec) -> Part:
    key = store.sha256_bytes(orjson.dumps({"part": part.summary.key, "kinds": list(kinds.items())}))
    existing = load(dataset_dir, key)
    if existing is not None:
        return existing
    log.info("part of %s: columns cast to the version's kinds", part.summary.source)
    frame = data.read_parts([part.data_uri], text_as_objects=False)[list(kinds)]
    for column, kind in kinds.items():
        if part.summary.kinds[column] != kind:
            frame[column] = data.as_categorical(frame[column]) if kind == TEXT else frame[column].astype(np.float64)
    summary = part.summary
    cleaning = quality.PartCleaning(frame, summary.rows_read, dict(summary.missing), summary.missing_target)
    return _store(dataset_dir, key, summary.source, summary.sha256, cleaning, spec)


# --- reading what a version needs ------------------------------------------------------------------
# Reads go straight into their destination (readinto): a refresh reads tens of MB of samples and
# hashes, and a fresh bytes object per file would cost a copy and a page fault per 4 KiB of it.
class _Opener:
    """Opens files of a few directories (a version's parts) with one fsspec lookup per directory:
    parsing every file's URI anew costs about 0.1 ms a file, twice per part in a refresh."""

    def __init__(self) -> None:
        self._directories: dict[str, tuple[Any, str]] = {}

    @contextlib.contextmanager
    def open(self, uri: str) -> Iterator[IO[bytes]]:
        directory, _, name = uri.rpartition("/")
        if directory not in self._directories:
            self._directories[directory] = store.filesystem(directory)
        fs, path = self._directories[directory]
        with store.translated(uri), fs.open(f"{path}/{name}", "rb") as handle:  # the store's error mapping
            yield handle


def read_row_hashes(parts: Sequence[Part]) -> npt.NDArray[np.uint64]:
    """Every kept row's hash, part after part, in one array."""
    hashes = np.empty(sum(p.summary.rows for p in parts), dtype=np.uint64)
    opener, at = _Opener(), 0
    for part in parts:
        with opener.open(part.rows_uri) as handle:
            at += _read_vector_into(handle, part.rows_uri, hashes[at:], part.summary.rows)
    return hashes[:at]


@functools.lru_cache(maxsize=64)
def _hashes_header(rows: int) -> bytes:
    """The .npy header np.save writes for `rows` row hashes (format 1.0)."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<u8", "fortran_order": False, "shape": (rows,)})
    return buffer.getvalue()


def _read_vector_into(handle: IO[bytes], uri: str, into: npt.NDArray[np.uint64], rows: int) -> int:
    """An .npy file's uint64 vector into the start of `into`; how many values it held. The header
    np.save writes for the part's `rows` is compared as bytes; any other is parsed (ast, slower)."""
    expected = _hashes_header(rows)
    if handle.read(len(expected)) == expected:
        count = rows
    else:
        handle.seek(0)
        count = _parse_hashes_header(handle, uri)
    if count > into.size:
        raise store.StoreError("CorruptObject", f"not the part's row hashes: {store.redact(uri)}")
    if _read_into(handle, into[:count].data.cast("B")) != count * 8:
        raise store.StoreError("CorruptObject", f"short row hashes file: {store.redact(uri)}")
    return count


def _parse_hashes_header(handle: IO[bytes], uri: str) -> int:
    try:
        version = np.lib.format.read_magic(handle)
        header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = header(handle)
    except ValueError as exc:
        raise store.StoreError("CorruptObject", f"not an .npy file: {store.redact(uri)}") from exc
    if len(shape) != 1 or dtype != np.dtype("<u8"):
        raise store.StoreError("CorruptObject", f"not the part's row hashes: {store.redact(uri)}")
    return int(shape[0])


def _read_into(handle: Any, view: memoryview) -> int:
    done = 0
    while done < len(view):
        read = handle.readinto(view[done:])
        if not read:
            break
        done += read
    return done


class SampleReader:
    """The first blocks of parts' sample files, read one part after another through one buffer."""

    def __init__(self) -> None:
        self._buffer = np.empty(0, dtype="<f8")
        self._opener = _Opener()

    def blocks(self, part: Part, rows: int) -> npt.NDArray[np.float64]:
        """The first blocks of the part's sample holding at least `rows` values of each column (one
        ranged read), as an array (blocks, columns, SAMPLE_BLOCK), valid until the next call:
        copy_column_values takes a column's first values from it."""
        summary = part.summary
        width = len(summary.sample_columns)
        count = -(-min(rows, summary.sample_rows) // SAMPLE_BLOCK)
        size = count * width * SAMPLE_BLOCK
        if size == 0:
            return np.empty((0, width, SAMPLE_BLOCK), dtype=np.float64)
        if self._buffer.size < size:
            self._buffer = np.empty(size, dtype="<f8")
        values = self._buffer[:size]
        with self._opener.open(part.sample_uri) as handle:
            read = _read_into(handle, values.data.cast("B"))
        if read != size * 8:
            raise store.StoreError("CorruptObject", f"short sample file: {store.redact(part.sample_uri)}")
        return values.reshape(count, width, SAMPLE_BLOCK)


def copy_column_values(blocks: npt.NDArray[np.float64], column: int, into: npt.NDArray[np.float64]) -> None:
    """The first `into.size` sampled values of one column from SampleReader.blocks, copied once."""
    whole, rest = divmod(into.size, SAMPLE_BLOCK)
    into[: whole * SAMPLE_BLOCK].reshape(whole, SAMPLE_BLOCK)[...] = blocks[:whole, column, :]
    if rest:
        into[whole * SAMPLE_BLOCK :] = blocks[whole, column, :rest]


__all__ = [
    "PART_FORMAT",
    "Part",
    "PartSummary",
    "SampleReader",
    "build",
    "copy_column_values",
    "format_hint",
    "kind_of",
    "load",
    "part_key",
    "read_row_hashes",
    "unify",
]
