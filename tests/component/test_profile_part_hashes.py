"""A part's row hashes read into one array: np.save's header for the part's row count is matched as
bytes, any other valid .npy header (another numpy's padding, format 2.0) is parsed, and a file that
is not a vector of uint64 row hashes is CorruptObject."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from mlops_operator import store
from mlops_operator.workloads import parts


def _part(directory: Path, name: str, rows: int, raw: bytes) -> parts.Part:
    base = (directory / name).as_uri()
    store.write_bytes_atomic(f"{base}.rows.npy", raw)
    return parts.Part(base, parts.PartSummary.model_construct(rows=rows))


def _npy(values: np.ndarray, version: tuple[int, int] | None = None) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, values, version=version, allow_pickle=False)
    return buffer.getvalue()


def test_hashes_of_every_part_in_order_whatever_the_header(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    first, second, third = (rng.integers(0, 2**63, size=n, dtype=np.uint64) for n in (5, 1000, 7))
    found = [
        _part(tmp_path, "a", first.size, _npy(first)),  # np.save's own header: compared as bytes
        _part(tmp_path, "b", second.size, _npy(second, version=(2, 0))),  # another header: parsed
        _part(tmp_path, "c", third.size, _npy(third)),
    ]
    assert np.array_equal(parts.read_row_hashes(found), np.concatenate([first, second, third]))


@pytest.mark.parametrize(
    ("raw", "rows"),
    [
        (b"not an npy file at all", 3),
        (_npy(np.arange(3, dtype=np.int32)), 3),  # not uint64
        (_npy(np.zeros((2, 2), dtype=np.uint64)), 4),  # not a vector
        (_npy(np.arange(9, dtype=np.uint64))[:-8], 9),  # cut short
        (_npy(np.arange(9, dtype=np.uint64)), 4),  # more hashes than the part has rows
    ],
)
def test_a_file_that_is_not_the_parts_row_hashes_is_corrupt(tmp_path: Path, raw: bytes, rows: int) -> None:
    with pytest.raises(store.StoreError) as caught:
        parts.read_row_hashes([_part(tmp_path, "bad", rows, raw)])
    assert caught.value.reason == "CorruptObject"
