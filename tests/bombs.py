"""Archive bombs, built by the tests themselves (issue 18): each small on disk, huge unpacked."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path

MIB = 1024 * 1024


def cab_of_zero_blocks(path: Path, blocks: int = 16_384, declared: int = 100) -> Path:
    """One MSZIP folder of `blocks` 32 KiB blocks of zeros, holding one file that declares
    `declared` bytes (cabarchive inflated all of it: 1.4 MB took 2.1 GB)."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = b"CK" + deflate.compress(bytes(32768)) + deflate.flush()
    name = b"MdmLogs.evtx\x00"
    header_size, folder_size, file_size = 36, 8, 16 + len(name)
    data_start = header_size + folder_size + file_size
    cfdata = struct.pack("<IHH", 0, len(block), 32768) + block
    total = data_start + blocks * len(cfdata)
    with path.open("wb") as out:
        out.write(
            struct.pack(
                "<4sIIIIIBBHHHHH",
                b"MSCF",
                0,
                total,
                0,
                header_size + folder_size,
                0,
                3,
                1,
                1,
                1,
                0,
                0,
                0,
            )
        )
        out.write(struct.pack("<IHH", data_start, blocks, 1))  # CFFOLDER: MSZIP
        out.write(struct.pack("<IIHHHH", declared, 0, 0, 0x5A21, 0x6000, 0x20) + name)
        for _ in range(blocks):
            out.write(cfdata)
    return path


def zeros_zip(
    size: int, name: str = "System.evtx", method: int = zipfile.ZIP_DEFLATED, tail: bytes = b""
) -> bytes:
    """A zip holding one entry of `size` zero bytes (then `tail`), written a MiB at a time."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive, archive.open(name, "w") as entry:
        zero = bytes(MIB)
        for _ in range(size // MIB):
            entry.write(zero)
        entry.write(bytes(size % MIB) + tail)
    return buffer.getvalue()


def nested_unique_zips(path: Path, leaf: int = 4 * MIB, copies: int = 10, levels: int = 3) -> Path:
    """`levels` of zips, each holding `copies` zips of the level below, every one of them and
    every leaf distinct (no copy is skipped as a duplicate): leaf × copies^(levels-1) bytes."""
    path.write_bytes(_nested(levels, copies, leaf, "x"))
    return path


def _nested(levels: int, copies: int, leaf: int, tag: str) -> bytes:
    if levels == 1:
        return zeros_zip(leaf, tail=tag.encode())
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for copy in range(copies):
            inner = _nested(levels - 1, copies, leaf, f"{tag}.{copy}")
            archive.writestr(f"level{levels - 1}-{copy}.zip", inner)
    return buffer.getvalue()


def many_entries_zip(path: Path, entries: int = 100_000) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for number in range(entries):
            archive.writestr(f"logs/{number:06d}.txt", b"x")
    return path


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
