"""workloads/npz.py writes the bytes zipfile and np.lib.format write, with CRCs computed ahead.

The reference is zipfile itself (ZIP_STORED, members opened for writing with force_zip64) around
np.lib.format.write_array, on the same arrays: byte for byte, for plain, empty, non-ASCII-named and
wide members, with and without members made ahead, to seekable and non-seekable files, at an offset,
and with zipfile's ZIP64 limits lowered so the large-offset entries and the ZIP64 end records are
written by both. np.load reads the result back (CRC checked).
"""

from __future__ import annotations

import io
import zipfile
from typing import IO

import numpy as np
import pytest

from mlops_operator.workloads import npz

FloatArray = np.ndarray


def _samples() -> dict[str, FloatArray]:
    rng = np.random.default_rng(3)
    return {
        "file": np.sort(rng.normal(size=5000)),
        "empty": np.empty(0),
        "signed zeros": np.array([-0.0, 0.0]),
        "température": np.sort(rng.exponential(size=777)),
        "wide": np.sort(rng.normal(size=300_000)),
    }


def _zipfile_bytes(samples: dict[str, FloatArray], prefix: bytes = b"") -> bytes:
    plain = io.BytesIO()
    plain.write(prefix)
    with zipfile.ZipFile(plain, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, values in samples.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, values, allow_pickle=False)
    return plain.getvalue()


class _Unseekable(io.RawIOBase):
    """An upload stream: write only, no tell, no seek."""

    def __init__(self) -> None:
        self.written = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: object) -> int:
        view = memoryview(data).cast("B")  # type: ignore[arg-type]
        self.written += view
        return len(view)


def _written(samples: dict[str, FloatArray], handle: IO[bytes], ahead: bool) -> None:
    members = {name: npz.member(values) for name, values in samples.items()} if ahead else None
    npz.write(handle, samples, members)


@pytest.mark.parametrize("ahead", [False, True], ids=["crc-on-write", "crc-ahead"])
def test_the_archive_is_zipfiles_bytes_and_loads(ahead: bool) -> None:
    samples = _samples()
    expected = _zipfile_bytes(samples)
    seekable = io.BytesIO()
    _written(samples, seekable, ahead)
    assert seekable.getvalue() == expected
    unseekable = _Unseekable()
    _written(samples, unseekable, ahead)  # type: ignore[arg-type]
    assert bytes(unseekable.written) == expected
    with np.load(io.BytesIO(expected), allow_pickle=False) as loaded:
        assert sorted(loaded.files) == sorted(samples)
        for name, values in samples.items():
            np.testing.assert_array_equal(loaded[name], values)


def test_an_archive_written_after_other_bytes_has_zipfiles_offsets() -> None:
    samples = _samples()
    handle = io.BytesIO()
    handle.write(b"x" * 1000)
    npz.write(handle, samples)
    assert handle.getvalue() == _zipfile_bytes(samples, prefix=b"x" * 1000)


def test_zip64_records_match_zipfile_when_the_limits_are_passed(monkeypatch: pytest.MonkeyPatch) -> None:
    # Beyond 2 GiB of members (or 65 535 of them) zipfile adds ZIP64 fields; lowered limits make both
    # writers take those paths on small arrays.
    monkeypatch.setattr(zipfile, "ZIP64_LIMIT", 3000)
    monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 3)
    samples = _samples()
    expected = _zipfile_bytes(samples)
    handle = io.BytesIO()
    npz.write(handle, samples, {"wide": npz.member(samples["wide"])})
    assert handle.getvalue() == expected
    assert b"PK\x06\x06" in expected and b"PK\x06\x07" in expected  # the ZIP64 end record and locator


def test_a_wrong_crc_made_ahead_is_caught_by_the_reader() -> None:
    samples = {"x": np.arange(10, dtype=np.float64)}
    stale = npz.member(np.arange(1, 11, dtype=np.float64))
    handle = io.BytesIO()
    npz.write(handle, samples, {"x": npz.Member(stale.header, samples["x"], stale.crc)})
    with np.load(io.BytesIO(handle.getvalue())) as loaded, pytest.raises(zipfile.BadZipFile, match="CRC"):
        loaded["x"]


def test_a_member_made_from_another_array_is_not_used() -> None:
    samples = {"x": np.arange(10, dtype=np.float64)}
    other = npz.member(np.arange(1, 11, dtype=np.float64))
    handle = io.BytesIO()
    npz.write(handle, samples, {"x": other})
    assert handle.getvalue() == _zipfile_bytes(samples)
