"""The zip format, as much of it as the package needs (PKWARE APPNOTE 6.3): deflated entries, a central
directory, and zip64 records wherever a size, an offset or the number of entries needs them.

Every entry is written with its CRC-32 and sizes in its local header (no data descriptor): the package is a block
blob, so an entry's header can be staged after its data was compressed and still come first in the block list.
That is also what lets a task compress a file it has just written and stage it as its entry of the package
(`deflate_entry`): the package's writer then only places that block and lists it in the central directory.

Pure functions over bytes: nothing here touches storage.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

DEFLATED: Final = 8
LEVEL: Final = 6  # zlib's default, as zipfile's
UTF8_NAMES: Final = 0x0800  # general purpose flag bit 11: the name is UTF-8
VERSION_DEFLATE: Final = 20
VERSION_ZIP64: Final = 45
MADE_BY: Final = (3 << 8) | VERSION_ZIP64  # Unix, so the permissions below mean the same everywhere
FILE_ATTRIBUTES: Final = 0o100644 << 16  # a regular file, rw-r--r--
LIMIT_32: Final = 0xFFFFFFFF
LIMIT_16: Final = 0xFFFF

ZipTime = tuple[int, int, int, int, int, int]


def dos_time(when: ZipTime) -> tuple[int, int]:
    """(time, date) fields of a zip entry: two-second resolution, years from 1980."""
    year, month, day, hour, minute, second = when
    return (hour << 11) | (minute << 5) | (second // 2), ((year - 1980) << 9) | (month << 5) | day


@dataclass(frozen=True)
class Entry:
    """What the central directory says of one entry; `header` is the length of its local header."""

    name: str
    crc32: int
    compressed: int
    size: int
    header: int

    @property
    def length(self) -> int:
        """Bytes of the entry in the zip: local header and compressed data."""
        return self.header + self.compressed

    def as_dict(self) -> dict[str, int]:
        return {"crc32": self.crc32, "compressed": self.compressed, "size": self.size, "header": self.header}

    @classmethod
    def from_dict(cls, name: str, data: dict[str, int]) -> Entry:
        return cls(name, int(data["crc32"]), int(data["compressed"]), int(data["size"]), int(data["header"]))


def local_header(name: str, crc32: int, compressed: int, size: int, when: ZipTime) -> bytes:
    encoded = name.encode()
    large = compressed >= LIMIT_32 or size >= LIMIT_32
    extra = struct.pack("<HHQQ", 0x0001, 16, size, compressed) if large else b""
    time, date = dos_time(when)
    return (
        struct.pack(
            "<IHHHHHIIIHH",
            0x04034B50,
            VERSION_ZIP64 if large else VERSION_DEFLATE,
            UTF8_NAMES,
            DEFLATED,
            time,
            date,
            crc32,
            LIMIT_32 if large else compressed,
            LIMIT_32 if large else size,
            len(encoded),
            len(extra),
        )
        + encoded
        + extra
    )


class Deflater:
    """Compresses one entry's data as it comes, keeping its CRC-32 and both sizes."""

    def __init__(self) -> None:
        self._zlib = zlib.compressobj(LEVEL, zlib.DEFLATED, -15)  # raw deflate, as zip entries hold it
        self.crc32 = 0
        self.size = 0
        self.compressed = 0

    def feed(self, data: bytes) -> bytes:
        self.crc32 = zlib.crc32(data, self.crc32)
        self.size += len(data)
        out = self._zlib.compress(data)
        self.compressed += len(out)
        return out

    def finish(self) -> bytes:
        out = self._zlib.flush()
        self.compressed += len(out)
        return out

    def entry(self, name: str, when: ZipTime) -> tuple[Entry, bytes]:
        """After finish(): the entry and its local header."""
        header = local_header(name, self.crc32, self.compressed, self.size, when)
        return Entry(name, self.crc32, self.compressed, self.size, len(header)), header


def deflate_entry(name: str, data: bytes, when: ZipTime) -> tuple[Entry, bytes]:
    """One whole entry (local header + deflated data) of a file held in memory."""
    deflater = Deflater()
    body = deflater.feed(data) + deflater.finish()
    entry, header = deflater.entry(name, when)
    return entry, header + body


def central_directory(entries: Iterable[tuple[Entry, int]], offset: int, when: ZipTime) -> bytes:
    """The central directory and end records of a zip whose entries (each with its local header's offset) end
    at `offset`, where the directory begins."""
    time, date = dos_time(when)
    records = bytearray()
    count = 0
    for entry, at in entries:
        count += 1
        encoded = entry.name.encode()
        wide = [
            value for value in (entry.size, entry.compressed, at) if value >= LIMIT_32
        ]  # in this order, only those that do not fit (APPNOTE 4.5.3)
        extra = struct.pack(f"<HH{len(wide)}Q", 0x0001, 8 * len(wide), *wide) if wide else b""
        records += struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            MADE_BY,
            VERSION_ZIP64 if wide else VERSION_DEFLATE,
            UTF8_NAMES,
            DEFLATED,
            time,
            date,
            entry.crc32,
            min(entry.compressed, LIMIT_32),
            min(entry.size, LIMIT_32),
            len(encoded),
            len(extra),
            0,  # comment
            0,  # disk
            0,  # internal attributes
            FILE_ATTRIBUTES,
            min(at, LIMIT_32),
        )
        records += encoded + extra
    size = len(records)
    if count >= LIMIT_16 or size >= LIMIT_32 or offset >= LIMIT_32:
        end64 = offset + size
        records += struct.pack(
            "<IQHHIIQQQQ", 0x06064B50, 44, MADE_BY, VERSION_ZIP64, 0, 0, count, count, size, offset
        )
        records += struct.pack("<IIQI", 0x07064B50, 0, end64, 1)
    records += struct.pack(
        "<IHHHHIIH",
        0x06054B50,
        0,
        0,
        min(count, LIMIT_16),
        min(count, LIMIT_16),
        min(size, LIMIT_32),
        min(offset, LIMIT_32),
        0,
    )
    return bytes(records)
