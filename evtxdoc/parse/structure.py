"""A structural walk of an EVTX file: headers, checksums, record boundaries, exact times.

No EVTX library is used: this reads the layout of `reference/evtx-format.md` with `struct`.
It serves two purposes the backends do not:
1. it reports damage precisely (dirty header, stale chunk count, bad CRCs, torn records,
   truncation, garbage chunk slots) as `Problem`s located by chunk and offset;
2. `record_times()` reads each record's System/TimeCreated FILETIME from the template
   substitution values, at full 100 ns precision (pyevtx-rs renders TimeCreated truncated to
   microseconds; ingest calls this only for files whose record headers disagree with it).

Records are walked one by one only in chunks whose data CRC fails (or that carry no CRC);
an intact chunk's header says how many records it holds.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from evtxdoc.models import Problem, Severity

FILE_MAGIC = b"ElfFile\x00"
CHUNK_MAGIC = b"ElfChnk\x00"
RECORD_MAGIC = b"\x2a\x2a\x00\x00"
FILE_HEADER_SIZE = 4096
CHUNK_SIZE = 65536
CHUNK_HEADER_SIZE = 512
ZERO_CHUNK = bytes(CHUNK_SIZE)
FLAG_DIRTY = 0x1
FLAG_NO_CRC32 = 0x4
VALUE_FILETIME = 0x11
AMBIGUOUS = -1

_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_RECORD_HEAD = struct.Struct("<4sIQQ")  # magic, size, header record id, written FILETIME
_DESCRIPTOR = struct.Struct("<HBx")


@dataclass(frozen=True)
class DamageMark:
    """Where records may be lost or corrupt, by the header record ids around the damage:
    after `after_id` (None: from the start) and before `before_id` (None: before the next
    record read); `open_end`: nothing after it can be trusted to be complete (truncation)."""

    kind: str
    after_id: int | None
    before_id: int | None = None
    open_end: bool = False


@dataclass
class Structure:
    """What the walk found in one file."""

    format_version: str | None = None
    dirty: bool = False
    header_chunks: int = 0
    valid_chunks: int = 0
    records: int = 0  # records the chunk headers vouch for, or that the walk found
    problems: list[Problem] = field(default_factory=list)
    bad_chunks: set[int] = field(default_factory=set)  # slots whose content is not a chunk
    damage: list[DamageMark] = field(default_factory=list)
    truncated: bool = False  # the last chunk is cut off: read a zero-padded copy too

    @property
    def usable(self) -> bool:
        return self.format_version is not None


def filetime_to_ns(filetime: int) -> int:
    """FILETIME (100 ns since 1601-01-01 UTC) to nanoseconds since the Unix epoch."""
    return (filetime - 116_444_736_000_000_000) * 100


def time_created_filetime(chunk: bytes, record_offset: int) -> int | None:
    """Read the FILETIME substitution of a templated record's System template, if present.

    The record's BinXml is a fragment header (0x0f) and a template instance (0x0c); when the
    template definition is inline it is skipped; then come the value descriptors and values.
    System templates carry exactly one FILETIME (TimeCreated).
    """
    pos = record_offset + 24
    try:
        if chunk[pos] != 0x0F or chunk[pos + 4] != 0x0C:
            return None  # plain BinXml (forwarded/exported records): times are text there
        pos += 14
        definition = _U32.unpack_from(chunk, pos - 4)[0]
        if definition == pos:
            pos += 24 + _U32.unpack_from(chunk, pos + 20)[0]
        elif definition > pos:
            return None
        count = _U32.unpack_from(chunk, pos)[0]
        if count > 256:
            return None
        pos += 4
        value_pos = pos + 4 * count
        for size, value_type in _DESCRIPTOR.iter_unpack(chunk[pos:value_pos]):
            if value_type == VALUE_FILETIME and size == 8:
                filetime: int = _U64.unpack_from(chunk, value_pos)[0]
                return filetime
            value_pos += size
    except (IndexError, struct.error):
        return None
    return None


class _Walker:
    def __init__(self, display: str):
        self.display = display
        self.out = Structure()
        self.no_crc = False
        self.last_id: int | None = None  # the last record id seen so far (write order)
        self.last_before_chunk: dict[int, int | None] = {}  # chunk slot → last id before it

    def problem(
        self,
        kind: str,
        message: str,
        where: str | None = None,
        severity: Severity = Severity.WARNING,
        hint: str | None = None,
    ) -> None:
        self.out.problems.append(Problem(self.display, kind, message, severity, where, hint))

    def file_header(self, head: bytes, size: int) -> bool:
        if len(head) < FILE_HEADER_SIZE or not head.startswith(FILE_MAGIC):
            self.problem(
                "truncated_header",
                f"file is {size} bytes, shorter than the 4096-byte EVTX header",
                severity=Severity.ERROR,
                hint="the file was cut off while copying; export or collect it again",
            )
            return False
        (_first, _last, _next_id, _hsize, minor, major, _block, chunks) = struct.unpack_from(
            "<QQQIHHHH", head, 8
        )
        flags, crc = struct.unpack_from("<II", head, 120)
        out = self.out
        out.format_version, out.header_chunks = f"{major}.{minor}", chunks
        out.dirty = bool(flags & FLAG_DIRTY)
        self.no_crc = bool(flags & FLAG_NO_CRC32)
        if not self.no_crc and zlib.crc32(head[:120]) != crc:
            self.problem("bad_header_crc", "file header checksum does not match", "file header")
        if out.dirty:
            self.problem(
                "dirty_header",
                "log was open when copied (dirty flag); header counts "
                "may be stale, every chunk slot is read anyway",
                "file header",
                Severity.INFO,
            )
        tail = (size - FILE_HEADER_SIZE) % CHUNK_SIZE
        if tail:
            self.problem(
                "truncated_file",
                f"file ends {tail} bytes into a chunk; that last "
                "chunk is incomplete and its records may be lost",
                f"offset {size - tail:#x}",
                Severity.WARNING,
                "the copy was cut off; collect the log again if events are missing",
            )
            out.truncated = True
        return True

    def chunk(self, index: int, chunk: bytes) -> None:
        where = f"chunk {index}"
        self.last_before_chunk[index] = self.last_id
        if len(chunk) < CHUNK_HEADER_SIZE or not chunk.startswith(CHUNK_MAGIC):
            self.out.bad_chunks.add(index)
            return
        self.out.valid_chunks += 1
        free, data_crc = struct.unpack_from("<II", chunk, 48)
        flags, header_crc = struct.unpack_from("<II", chunk, 120)
        check = not (self.no_crc or flags & FLAG_NO_CRC32)
        header_sum = zlib.crc32(chunk[128:CHUNK_HEADER_SIZE], zlib.crc32(chunk[:120]))
        if check and header_sum != header_crc:
            self.problem(
                "bad_chunk_header_crc",
                "chunk header checksum does not match (string/template tables may be damaged)",
                where,
            )
        intact = check
        if not CHUNK_HEADER_SIZE <= free <= len(chunk):
            self.problem(
                "bad_free_space",
                f"chunk claims {free} bytes of records; only {len(chunk)} are present",
                where,
            )
            free, intact = len(chunk), False
        elif check and zlib.crc32(memoryview(chunk)[CHUNK_HEADER_SIZE:free]) != data_crc:
            self.problem(
                "bad_chunk_data_crc",
                "record data checksum does not match: a record "
                "was changed or torn after the chunk was written",
                where,
            )
            intact = False
        first_id, last_id = struct.unpack_from("<QQ", chunk, 24)
        if intact:  # the CRC vouches for every record: count them from the header
            first, last = struct.unpack_from("<QQ", chunk, 8)
            self.out.records += max(0, last - first + 1) if free > CHUNK_HEADER_SIZE else 0
            if free > CHUNK_HEADER_SIZE and last_id >= first_id:
                self.last_id = last_id
        else:
            marks = len(self.out.damage)
            self.records(index, chunk, free)
            if len(self.out.damage) == marks and free > CHUNK_HEADER_SIZE:
                # a changed record the walk cannot point at: the whole chunk is suspect
                self.out.damage.append(
                    DamageMark(
                        "bad_chunk_data_crc",
                        max(0, first_id - 1) if first_id < 2**63 else None,
                        last_id + 1 if last_id < 2**63 else None,
                    )
                )

    def records(self, index: int, chunk: bytes, free: int) -> None:
        offset = CHUNK_HEADER_SIZE
        while offset + 28 <= free:
            magic, size, record_id, _written = _RECORD_HEAD.unpack_from(chunk, offset)
            where = f"chunk {index}, offset {offset:#x}"
            if magic != RECORD_MAGIC or size < 28 or offset + size > len(chunk):
                rest = free - offset
                if not chunk[offset:free].strip(b"\x00"):
                    self.problem(
                        "unflushed_tail",
                        f"the last {rest} bytes the chunk header "
                        "claims are zeros: the end of the log was never flushed to disk "
                        "before the copy",
                        where,
                    )
                    self.out.damage.append(DamageMark("unflushed_tail", self.last_id))
                else:
                    self.problem(
                        "bad_record",
                        f"no valid record header (size {size}); the rest "
                        f"of the chunk ({rest} bytes) cannot be walked",
                        where,
                    )
                    self.out.damage.append(DamageMark("bad_record", self.last_id))
                return
            if _U32.unpack_from(chunk, offset + size - 4)[0] != size:
                self.problem(
                    "torn_record",
                    f"record {record_id} is torn (its trailing size "
                    "copy does not match): the file was copied while being written",
                    where,
                )
                self.out.damage.append(DamageMark("torn_record", record_id - 1, record_id + 1))
            self.out.records += 1
            self.last_id = record_id
            offset += size

    def bad_chunk_ranges(self) -> None:
        ranges: list[list[int]] = []
        for index in sorted(self.out.bad_chunks):
            if ranges and ranges[-1][1] == index - 1:
                ranges[-1][1] = index
            else:
                ranges.append([index, index])
        for first, last in ranges:
            span = f"chunk {first}" if first == last else f"chunks {first}-{last}"
            self.problem(
                "bad_chunk", f"{span}: not a valid chunk (no ElfChnk signature); skipped", span
            )
            self.out.damage.append(DamageMark("bad_chunk", self.last_before_chunk.get(first)))


def scan(path: Path | str, display: str | None = None) -> Structure:
    """Walk the file at `path`; `display` is the name used in problems."""
    path = Path(path)
    walker = _Walker(display or str(path))
    size = path.stat().st_size
    with path.open("rb") as handle:
        if not walker.file_header(handle.read(FILE_HEADER_SIZE), size):
            return walker.out
        index = 0
        while chunk := handle.read(CHUNK_SIZE):
            if chunk != ZERO_CHUNK[: len(chunk)]:
                walker.chunk(index, chunk)
            index += 1
    walker.bad_chunk_ranges()
    out = walker.out
    if out.truncated:
        out.damage.append(DamageMark("truncated_file", None, None, open_end=True))
    if out.valid_chunks > out.header_chunks:
        walker.problem(
            "stale_chunk_count",
            f"header declares {out.header_chunks} chunks but "
            f"{out.valid_chunks} are present; all are read",
            "file header",
            Severity.INFO,
        )
    return out


def record_times(path: Path | str) -> dict[int, int]:
    """Header record id → TimeCreated FILETIME for every templated record (AMBIGUOUS on clash)."""
    times: dict[int, int] = {}
    with Path(path).open("rb") as handle:
        handle.seek(FILE_HEADER_SIZE)
        while chunk := handle.read(CHUNK_SIZE):
            if not chunk.startswith(CHUNK_MAGIC) or len(chunk) < CHUNK_HEADER_SIZE:
                continue
            free = min(_U32.unpack_from(chunk, 48)[0], len(chunk))
            offset = CHUNK_HEADER_SIZE
            while offset + 28 <= free:
                magic, size, record_id, _written = _RECORD_HEAD.unpack_from(chunk, offset)
                if magic != RECORD_MAGIC or size < 28 or offset + size > len(chunk):
                    break
                filetime = time_created_filetime(chunk, offset)
                if filetime is not None:
                    times[record_id] = AMBIGUOUS if record_id in times else filetime
                offset += size
    return times
