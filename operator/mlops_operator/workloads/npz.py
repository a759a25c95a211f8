"""reference.npz written in one forward pass, each member's CRC-32 computed ahead of the write.

The archive is byte for byte what `zipfile` (ZIP_STORED, `open(name, "w", force_zip64=True)`) and
`np.lib.format.write_array` (format 1.0) write: a local header with ZIP64 sizes, the member's .npy
header and the array's own memory, per member; then the central directory and the end records.
zipfile computes each member's CRC-32 while writing, on the writing thread, and seeks back to patch
the header. Here the CRC of a member is computed with `member(values)` (zlib releases the GIL for
large buffers, so a refresh computes it on the thread that sorted the sample, beside the others),
and the archive is written without seeking: the same bytes to a local file or an object store's
upload. tests/component/test_profile_merge_reads.py compares the bytes with zipfile's, including
the ZIP64 records (with zipfile's limits lowered).
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Final

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

_LOCAL: Final = struct.Struct("<4s2B4HL2L2H")  # zipfile.structFileHeader
_CENTRAL: Final = struct.Struct("<4s4B4HL2L5H2L")  # zipfile.structCentralDir
_END: Final = struct.Struct("<4s4H2LH")  # zipfile.structEndArchive
_END64: Final = struct.Struct("<4sQ2H2L4Q")  # zipfile.structEndArchive64
_LOCATOR64: Final = struct.Struct("<4sLQL")  # zipfile.structEndArchive64Locator
_ZIP64_VERSION: Final = 45
_PERMISSIONS: Final = 0o600 << 16  # what zipfile gives a member opened for writing by name
_CREATE_SYSTEM: Final = zipfile.ZipInfo("x").create_system
_DOS_1980: Final = (0, 1 << 5 | 1)  # dostime, dosdate of zipfile's default date_time (1980-01-01 00:00)


@dataclass(frozen=True)
class Member:
    """One .npy member: its header, the array (contiguous) and the CRC-32 of both."""

    header: bytes
    values: FloatArray
    crc: int

    @property
    def size(self) -> int:
        return len(self.header) + self.values.nbytes


def member(values: FloatArray) -> Member:
    """The .npy header of `values` (format 1.0, as np.save writes it) and the CRC-32 of the member."""
    values = np.ascontiguousarray(values)
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, np.lib.format.header_data_from_array_1_0(values))
    header = buffer.getvalue()
    return Member(header, values, zlib.crc32(values.data.cast("B"), zlib.crc32(header)))


def write(handle: IO[bytes], samples: Mapping[str, FloatArray], members: Mapping[str, Member] | None = None) -> None:
    """The archive of `samples` (member `<name>.npy` each) into `handle`, from its current position
    on; `members` holds members already made by `member` (used for the very arrays they were made
    from; the others are made here)."""
    members = members or {}
    start = handle.tell() if handle.seekable() else 0
    offset, entries = 0, []
    for name, values in samples.items():
        item = members.get(name)
        if item is None or item.values is not values:  # only a member made from this very array
            item = member(values)
        filename, flags = _encoded(f"{name}.npy")
        zip64 = struct.pack("<HHQQ", 1, 16, item.size, item.size)
        handle.write(
            _LOCAL.pack(
                b"PK\x03\x04",
                _ZIP64_VERSION,
                0,
                flags,
                zipfile.ZIP_STORED,
                *_DOS_1980,
                item.crc,
                0xFFFFFFFF,
                0xFFFFFFFF,
                len(filename),
                len(zip64),
            )
        )
        handle.write(filename + zip64)
        handle.write(item.header)
        handle.write(item.values.data.cast("B"))
        entries.append(_central(filename, flags, item, offset + start))
        offset += _LOCAL.size + len(filename) + len(zip64) + item.size
    directory = b"".join(entries)
    _end(handle, len(entries), len(directory), offset + start, directory)


def _encoded(name: str) -> tuple[bytes, int]:
    try:
        return name.encode("ascii"), 0
    except UnicodeEncodeError:
        return name.encode("utf-8"), 0x800  # zipfile's _MASK_UTF_FILENAME


def _central(filename: bytes, flags: int, item: Member, header_offset: int) -> bytes:
    """A central directory entry as zipfile._write_end_record makes it (its limits read at call time)."""
    extra: list[int] = []
    sizes = item.size
    if item.size > zipfile.ZIP64_LIMIT:
        extra += [item.size, item.size]
        sizes = 0xFFFFFFFF
    if header_offset > zipfile.ZIP64_LIMIT:
        extra.append(header_offset)
        header_offset = 0xFFFFFFFF
    extra_data = struct.pack("<HH" + "Q" * len(extra), 1, 8 * len(extra), *extra) if extra else b""
    entry = _CENTRAL.pack(
        b"PK\x01\x02",
        _ZIP64_VERSION,
        _CREATE_SYSTEM,
        _ZIP64_VERSION,
        0,
        flags,
        zipfile.ZIP_STORED,
        *_DOS_1980,
        item.crc,
        sizes,
        sizes,
        len(filename),
        len(extra_data),
        0,
        0,
        0,
        _PERMISSIONS,
        header_offset,
    )
    return entry + filename + extra_data


def _end(handle: IO[bytes], count: int, size: int, offset: int, directory: bytes) -> None:
    handle.write(directory)
    records = b""
    if count > zipfile.ZIP_FILECOUNT_LIMIT or offset > zipfile.ZIP64_LIMIT or size > zipfile.ZIP64_LIMIT:
        end = offset + size
        records = _END64.pack(b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, size, offset)
        records += _LOCATOR64.pack(b"PK\x06\x07", 0, end, 1)
        count, size, offset = min(count, 0xFFFF), min(size, 0xFFFFFFFF), min(offset, 0xFFFFFFFF)
    handle.write(records + _END.pack(b"PK\x05\x06", 0, 0, count, count, size, offset, 0))


__all__ = ["Member", "member", "write"]
