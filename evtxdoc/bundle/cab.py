"""Cabinet files (MdmDiagnosticsTool's output), read as a stream under the bundle's budget.

The layout is MS-CAB's (Microsoft, "[MS-CAB]: Cabinet File Format"): a CFHEADER, one CFFOLDER
per folder (where its CFDATA blocks start, how many, which compression), one CFFILE per file
(size, offset in its folder's uncompressed stream, folder), then each folder's CFDATA blocks
(≤ 32 KiB uncompressed each). An MSZIP block is `CK` and a raw deflate stream whose history is
the previous block's output (MS-MCI). `cabarchive` inflates a whole folder in memory before
anything can be checked (issue 18: 16,384 blocks of zeros declared as 100 bytes took 2.1 GB);
here one block is inflated at a time, never past what the folder's files declare, and each file
is written as it is produced. LZX and Quantum folders go to cabextract/expand (archive.py).
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

BLOCK_MAX = 32768  # a CFDATA block's uncompressed size is at most this (MS-CAB 2.4)
CAB_COMPRESSION = {0: "none", 1: "MSZIP", 2: "Quantum", 3: "LZX"}
CONTINUED = (0xFFFD, 0xFFFE, 0xFFFF)  # iFolder of files continued from/to another cabinet


class CabError(ValueError):
    """The cabinet's structure is not what MS-CAB describes."""


@dataclass(frozen=True, slots=True)
class CabFile:
    name: str
    size: int
    offset: int  # in its folder's uncompressed stream
    folder: int


@dataclass(frozen=True, slots=True)
class CabFolder:
    start: int  # file offset of its first CFDATA
    blocks: int
    compression: str


@dataclass(frozen=True, slots=True)
class CabHeader:
    """What a cabinet's headers declare, read before anything is decompressed."""

    folders: tuple[CabFolder, ...]
    entries: tuple[CabFile, ...]
    data_reserve: int  # bytes reserved in each CFDATA

    @property
    def files(self) -> tuple[tuple[str, int], ...]:
        return tuple((entry.name, entry.size) for entry in self.entries)

    @property
    def compressions(self) -> frozenset[str]:
        return frozenset(folder.compression for folder in self.folders)


def read_cab_header(buf: bytes) -> CabHeader:
    """Parse CFHEADER, CFFOLDER and CFFILE records (MS-CAB 2.1–2.3) without decompressing."""
    try:
        fields = struct.unpack_from("<4sIIIIIBBHHHHH", buf, 0)
    except struct.error as exc:
        raise CabError(f"too short for a cabinet header: {exc}") from exc
    signature, coff_files, folders_count, files_count, flags = (
        fields[0],
        fields[4],
        fields[8],
        fields[9],
        fields[10],
    )
    if signature != b"MSCF":
        raise CabError("no MSCF signature")
    try:
        pos, folder_reserve, data_reserve = 36, 0, 0
        if flags & 0x0004:
            header_reserve, folder_reserve, data_reserve = struct.unpack_from("<HBB", buf, pos)
            pos += 4 + header_reserve
        for present in (flags & 0x0001, flags & 0x0002):  # previous / next cabinet names
            if present:
                for _ in range(2):
                    pos = buf.index(b"\x00", pos) + 1
        folders = []
        for _ in range(folders_count):
            start, blocks, compress = struct.unpack_from("<IHH", buf, pos)
            kind = CAB_COMPRESSION.get(compress & 0x000F, f"type {compress:#x}")
            folders.append(CabFolder(start, blocks, kind))
            pos += 8 + folder_reserve
        entries = []
        pos = coff_files
        for _ in range(files_count):
            size, offset, folder, _date, _time, attribs = struct.unpack_from("<IIHHHH", buf, pos)
            end = buf.index(b"\x00", pos + 16)
            raw = buf[pos + 16 : end]
            name = raw.decode("utf-8" if attribs & 0x80 else "cp1252", errors="replace")
            entries.append(CabFile(name, size, offset, folder))
            pos = end + 1
    except (struct.error, ValueError) as exc:
        raise CabError(f"cabinet headers cut short or garbled: {exc}") from exc
    return CabHeader(tuple(folders), tuple(entries), data_reserve)


def folder_stream(source: IO[bytes], header: CabHeader, index: int, limit: int) -> Iterator[bytes]:
    """The uncompressed bytes of folder `index`, a block at a time, never more than `limit`
    (what its files declare): a bomb's blocks past that are never inflated."""
    folder = header.folders[index]
    source.seek(folder.start)
    history = b""
    produced = 0
    for number in range(folder.blocks):
        if produced >= limit:
            return
        head = source.read(8 + header.data_reserve)
        if len(head) < 8:
            raise CabError(f"folder {index}: data block {number} cut short")
        _checksum, packed, unpacked = struct.unpack_from("<IHH", head, 0)
        data = source.read(packed)
        if len(data) < packed or unpacked > BLOCK_MAX:
            raise CabError(f"folder {index}: data block {number} cut short or oversized")
        if folder.compression == "none":
            block = data[:unpacked]
        elif folder.compression == "MSZIP":
            if data[:2] != b"CK":
                raise CabError(f"folder {index}: data block {number} has no MSZIP signature")
            inflate = (
                zlib.decompressobj(-zlib.MAX_WBITS, zdict=history)
                if history
                else (zlib.decompressobj(-zlib.MAX_WBITS))
            )
            try:
                block = inflate.decompress(data[2:], BLOCK_MAX)
            except zlib.error as exc:
                raise CabError(f"folder {index}: data block {number}: {exc}") from exc
        else:
            raise CabError(f"folder {index}: {folder.compression} is read by an external tool")
        history = (history + block)[-BLOCK_MAX:]
        block = block[: limit - produced]
        produced += len(block)
        yield block


@dataclass
class Written:
    """One file of a folder being written from the stream."""

    entry: CabFile
    target: Path | None  # None: not written (refused), its bytes are skipped
    digest: Any  # a hashlib sha256 object
    size: int = 0


def write_folder(
    source: IO[bytes], header: CabHeader, index: int, targets: dict[CabFile, Path | None]
) -> Iterator[tuple[CabFile, Path, str, int]]:
    """Write the files of folder `index` (each to its target; None: skipped) from one pass over
    its stream; yield (entry, path, sha256, size) as each file is complete."""
    entries = sorted(
        (entry for entry in header.entries if entry.folder == index), key=lambda e: e.offset
    )
    if not entries:
        return
    limit = max(entry.offset + entry.size for entry in entries)
    pending = [Written(e, targets.get(e), hashlib.sha256()) for e in entries]
    handles: dict[int, IO[bytes]] = {}
    position = 0
    try:
        for block in folder_stream(source, header, index, limit):
            end = position + len(block)
            for item in pending:
                start, stop = item.entry.offset, item.entry.offset + item.entry.size
                if stop <= position or start >= end or item.target is None:
                    continue
                piece = block[max(start, position) - position : min(stop, end) - position]
                handle = handles.get(id(item))
                if handle is None:
                    handle = handles[id(item)] = item.target.open("wb")
                handle.write(piece)
                item.digest.update(piece)
                item.size += len(piece)
            position = end
            while pending and pending[0].entry.offset + pending[0].entry.size <= position:
                done = pending.pop(0)
                if done.target is not None:
                    if (handle := handles.pop(id(done), None)) is not None:
                        handle.close()
                    else:
                        done.target.write_bytes(b"")
                    yield done.entry, done.target, done.digest.hexdigest(), done.size
        if pending and any(item.target is not None for item in pending):
            raise CabError(f"folder {index} ends before its files do ({position} of {limit} bytes)")
    finally:
        for handle in handles.values():
            handle.close()
