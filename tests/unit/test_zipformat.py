"""The zip writer's records, read back by Python's zipfile: entries with their final CRC-32 and sizes in the
local header, and zip64 records where an entry count, a size or an offset does not fit 16 or 32 bits."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

from shared.evidence.zipformat import Deflater, Entry, central_directory, deflate_entry, local_header

WHEN = (2026, 11, 28, 19, 51, 7)


def zip_of(parts: list[tuple[str, bytes]]) -> bytes:
    out, entries = bytearray(), []
    for name, data in parts:
        entry, body = deflate_entry(name, data, WHEN)
        entries.append((entry, len(out)))
        out += body
    return bytes(out + central_directory(entries, len(out), WHEN))


def test_entries_read_back_with_their_names_times_and_bytes():
    parts = [
        ("index.html", b"<p>hello</p>" * 100),
        ("sub/d\u00e9j\u00e0.jsonl", b'{"a":1}\n' * 1000),
        ("empty", b""),
    ]
    archive = zipfile.ZipFile(io.BytesIO(zip_of(parts)))
    assert archive.testzip() is None
    assert [(i.filename, archive.read(i)) for i in archive.infolist()] == parts
    info = archive.getinfo("index.html")
    assert info.date_time == (2026, 11, 28, 19, 51, 6)  # two-second steps
    assert info.compress_type == zipfile.ZIP_DEFLATED
    assert info.external_attr >> 16 == 0o100644
    assert info.flag_bits & 0x08 == 0  # sizes in the local header, no data descriptor
    assert info.compress_size < info.file_size


def test_a_stream_fed_in_pieces_deflates_to_the_bytes_of_the_whole():
    data = b"".join(b'{"run": %d, "status": "Completed"}\n' % i for i in range(20000))
    deflater = Deflater()
    body = b"".join(deflater.feed(data[i : i + 4096]) for i in range(0, len(data), 4096)) + deflater.finish()
    entry, header = deflater.entry("runs.jsonl", WHEN)
    assert (entry.size, entry.crc32) == (len(data), zlib.crc32(data))
    assert zlib.decompress(body, -15) == data
    assert header + body == deflate_entry("runs.jsonl", data, WHEN)[1]


def test_more_than_65535_entries_get_a_zip64_end_record():
    parts = [(f"f{i}", b"") for i in range(70_000)]
    data = zip_of(parts)
    assert struct.pack("<I", 0x06064B50) in data[-200:]
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert len(archive.infolist()) == 70_000
    assert archive.read("f69999") == b""


def test_sizes_and_offsets_past_4_gib_go_to_the_zip64_extra_field():
    # A directory that says its one entry is 6 GiB (5 GiB compressed) at offset 5 GiB: zipfile reads the values
    # from the zip64 extra field (the data itself is not there to read).
    big = Entry("big.jsonl", 0x12345678, 5 * 2**30, 6 * 2**30, 47)
    directory = central_directory([(big, 5 * 2**30)], 10 * 2**30 + 100, WHEN)
    archive = zipfile.ZipFile(io.BytesIO(directory))
    (info,) = archive.infolist()
    assert (info.file_size, info.compress_size, info.CRC) == (6 * 2**30, 5 * 2**30, 0x12345678)
    # zipfile shifts offsets by where it found the directory (0) minus where the directory says it starts
    assert info.header_offset == 5 * 2**30 - (10 * 2**30 + 100)
    header = local_header("big.jsonl", 0x12345678, 5 * 2**30, 6 * 2**30, WHEN)
    assert struct.unpack("<II", header[18:26]) == (0xFFFFFFFF, 0xFFFFFFFF)
    assert struct.unpack("<HHQQ", header[-20:]) == (1, 16, 6 * 2**30, 5 * 2**30)
