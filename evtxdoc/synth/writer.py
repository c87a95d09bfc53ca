"""An EVTX writer that lays files out the way Windows does (reference/evtx-format.md §8).

- 4 KiB file header + 64 KiB chunks, CRCs on the file header, chunk headers and record data;
- records appended from offset 512; a record that does not fit starts a new chunk, and every
  chunk is self-contained (names and template definitions written again on first use there);
- the standard System template with optional substitutions and the computer name baked in
  (shape A for manifest providers; shape B, with provider and channel literal too, for classic
  event sources such as Service Control Manager or the legacy ODJ connector), and a nested
  per-event-shape EventData/UserData template instance (both built in events.py);
- record sizes padded to 8 bytes; string and template hash tables filled;
- optional damage, as real files show it: dirty flag with stale header counts, a torn last
  record, a bad chunk CRC, a truncated file, chunk slack holding older records.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evtxdoc.synth.binxml import (
    BINXML,
    FILETIME,
    FRAGMENT_HEADER,
    GUID,
    HEXINT64,
    NULL,
    SID,
    STRING,
    T_EOF,
    UINT8,
    UINT16,
    UINT32,
    UINT64,
    ChunkTables,
    Encoder,
    Value,
    encode_value,
    filetime,
)
from evtxdoc.synth.events import (
    SynthEvent,
    payload_fields,
    payload_template,
    system_template,
)

CHUNK_SIZE = 65536
CHUNK_HEADER_SIZE = 512
FILE_HEADER_SIZE = 4096
RECORD_OVERHEAD = 28  # magic, size, id, time … size copy
KEYWORDS_CLASSIC = 0x80000000000000  # Windows' "Classic" keyword on event-source events


@dataclass(frozen=True)
class Damage:
    """Damage to apply when the file is written, each as real files show it."""

    dirty: bool = False  # flag 1, header chunk count / last chunk / next id left behind
    torn_last_record: bool = False  # last record's values and size copy never flushed
    bad_crc_chunk: int | None = None  # this chunk's record-data CRC is wrong
    truncate_at: int | None = None  # the file ends after this many bytes
    truncate_at_record: int | None = None  # the file ends halfway into its Nth record (1-based)
    slack_records: int = 0  # copies of this many earlier records left after the free space


@dataclass
class _Chunk:
    data: bytearray = field(default_factory=lambda: bytearray(CHUNK_SIZE))
    tables: ChunkTables = field(default_factory=ChunkTables)
    free: int = CHUNK_HEADER_SIZE
    first_number: int = 0
    last_number: int = 0
    first_id: int = 0
    last_id: int = 0
    last_offset: int = 0
    records: list[tuple[int, int, int]] = field(default_factory=list)  # (offset, size, values_at)


# --- the writer -----------------------------------------------------------------------------


class EvtxWriter:
    """Collects events and lays them out as an EVTX file; `to_bytes()` gives the file."""

    def __init__(self, minor_version: int = 1, first_record_id: int = 1):
        self.minor_version = minor_version
        self.next_id = first_record_id
        self.next_number = 1  # the record's sequence number in the log (ids may differ)
        self.chunks: list[_Chunk] = []

    def extend(self, events: Iterable[SynthEvent]) -> None:
        for event in events:
            self.add(event)

    def add(self, event: SynthEvent) -> int:
        """Append one event; returns its EventRecordID."""
        record_id = self.next_id
        if not self.chunks:
            self.chunks.append(_Chunk())
        chunk = self.chunks[-1]
        record = self._record(event, record_id, chunk)
        if record is None:
            chunk = _Chunk()
            self.chunks.append(chunk)
            record = self._record(event, record_id, chunk)
            if record is None:
                raise ValueError(
                    f"event {event.event_id} of {event.provider} does not fit in "
                    "one 64 KiB chunk; shorten its field values"
                )
        data, tables, values_at = record
        offset = chunk.free
        chunk.data[offset : offset + len(data)] = data
        chunk.tables = tables
        number = self.next_number
        self.next_number += 1
        if not chunk.records:
            chunk.first_number, chunk.first_id = number, record_id
        chunk.last_number, chunk.last_id = number, record_id
        chunk.last_offset = offset
        chunk.records.append((offset, len(data), offset + values_at))
        chunk.free = offset + len(data)
        self.next_id += 1
        return record_id

    def _record(
        self, event: SynthEvent, record_id: int, chunk: _Chunk
    ) -> tuple[bytes, ChunkTables, int] | None:
        """The record's bytes at the chunk's free offset, or None if it does not fit."""
        tables = chunk.tables.copy()
        encoder = Encoder(tables, chunk.free + 24)
        encoder.out += FRAGMENT_HEADER
        system = system_template(
            event.computer,
            (event.provider, event.provider_guid, event.channel) if event.classic else None,
        )

        def nested(inner: Encoder) -> None:
            if event.classic:
                inner.out += FRAGMENT_HEADER
            values = [
                (f.vtype, None if f.value is None else encode_value(f.vtype, f.value))
                for f in payload_fields(event)
            ]
            inner.template_instance(payload_template(event), values)
            inner.u8(T_EOF)

        values_at = encoder.template_instance(system, self._system_values(event, record_id, nested))
        encoder.u8(T_EOF)
        binxml = bytes(encoder.out)
        size = 24 + len(binxml) + 4
        size += -size % 8
        if chunk.free + size > CHUNK_SIZE:
            return None
        padding = size - 28 - len(binxml)
        record = (
            b"\x2a\x2a\x00\x00"
            + struct.pack("<IQQ", size, record_id, filetime(event.time_ns))
            + binxml
            + bytes(padding)
            + struct.pack("<I", size)
        )
        return record, tables, 24 + values_at

    @staticmethod
    def _system_values(event: SynthEvent, record_id: int, nested: Any) -> list[Value]:
        def opt(vtype: int, value: Any) -> Value:
            return (vtype, None if value is None else encode_value(vtype, value))

        values: list[Value] = [
            opt(UINT8, event.level),
            opt(UINT8, event.opcode),
            opt(UINT16, event.task),
            opt(UINT16, event.event_id),
            opt(UINT16, event.qualifiers),
            opt(HEXINT64, event.keywords),
            opt(FILETIME, event.time_ns),
            opt(GUID, event.activity_id),
            opt(UINT32, event.process_id),
            opt(UINT32, event.thread_id),
            opt(UINT64, record_id),
            opt(UINT8, event.version),
            opt(SID, event.user_sid),
        ]
        if event.classic:
            values += [(NULL, None)] * 5 + [opt(GUID, event.related_activity_id), (BINXML, nested)]
        else:
            values += [
                opt(GUID, event.related_activity_id),
                opt(STRING, event.provider),
                opt(GUID, event.provider_guid),
                opt(STRING, event.channel),
                (BINXML, nested),
            ]
        return values

    # --- output ---------------------------------------------------------------------------

    def to_bytes(self, damage: Damage | None = None) -> bytes:
        """The whole file: header and chunks (an empty log gets one empty chunk)."""
        damage = damage or Damage()
        chunks = self.chunks or [_Chunk()]
        blobs = [self._chunk_bytes(c, number, damage, chunks) for number, c in enumerate(chunks)]
        header = self._file_header(len(chunks), damage)
        data = header + b"".join(blobs)
        if damage.truncate_at is not None:
            data = data[: damage.truncate_at]
        if damage.truncate_at_record is not None:
            data = data[: self._record_middle(damage.truncate_at_record)]
        return data

    def _record_middle(self, number: int) -> int:
        """The file offset halfway into the `number`th record (write order, 1-based)."""
        seen = 0
        for index, chunk in enumerate(self.chunks):
            for offset, size, _ in chunk.records:
                seen += 1
                if seen == number:
                    return FILE_HEADER_SIZE + index * CHUNK_SIZE + offset + size // 2
        raise ValueError(f"truncate_at_record {number}: the log holds {seen} record(s)")

    def write(self, path: Path | str, damage: Damage | None = None) -> None:
        Path(path).write_bytes(self.to_bytes(damage))

    def _file_header(self, count: int, damage: Damage) -> bytes:
        header = bytearray(FILE_HEADER_SIZE)
        next_id = self.next_id
        last, chunk_count, flags = count - 1, count, 0
        if damage.dirty:  # Windows updates these lazily while the log is open
            flags = 1
            chunk_count = max(1, count - 1)
            last = chunk_count - 1
            next_id = self.chunks[last].last_id + 1 if self.chunks else next_id
        struct.pack_into(
            "<8sQQQIHHHH",
            header,
            0,
            b"ElfFile\x00",
            0,
            last,
            next_id,
            128,
            self.minor_version,
            3,
            FILE_HEADER_SIZE,
            chunk_count,
        )
        struct.pack_into("<I", header, 120, flags)
        struct.pack_into("<I", header, 124, zlib.crc32(header[:120]))
        return bytes(header)

    def _chunk_bytes(
        self, chunk: _Chunk, number: int, damage: Damage, chunks: list[_Chunk]
    ) -> bytes:
        data = bytearray(chunk.data)
        last_chunk = number == len(chunks) - 1
        if chunk.records:
            struct.pack_into(
                "<8sQQQQIII",
                data,
                0,
                b"ElfChnk\x00",
                chunk.first_number,
                chunk.last_number,
                chunk.first_id,
                chunk.last_id,
                128,
                chunk.last_offset,
                chunk.free,
            )
        else:  # an empty chunk, as Windows writes one for a new or cleared log
            struct.pack_into(
                "<8sQQQQIII",
                data,
                0,
                b"ElfChnk\x00",
                1,
                2**64 - 1,
                2**64 - 1,
                2**64 - 1,
                128,
                0,
                CHUNK_HEADER_SIZE,
            )
        struct.pack_into("<I", data, 120, 1)
        struct.pack_into("<64I", data, 128, *chunk.tables.string_table)
        struct.pack_into("<32I", data, 384, *chunk.tables.template_table)
        records_crc = zlib.crc32(data[CHUNK_HEADER_SIZE : chunk.free])
        if damage.bad_crc_chunk == number:
            records_crc ^= 0xDEADBEEF
        struct.pack_into("<I", data, 52, records_crc)
        struct.pack_into("<I", data, 124, zlib.crc32(data[:120] + data[128:512]))
        if last_chunk and damage.torn_last_record and chunk.records:
            offset, size, values_at = chunk.records[-1]
            data[values_at : offset + size] = bytes(offset + size - values_at)  # CRC now stale
        if last_chunk and damage.slack_records:
            self._fill_slack(data, chunk, damage.slack_records, chunks)
        return bytes(data)

    @staticmethod
    def _fill_slack(data: bytearray, chunk: _Chunk, count: int, chunks: list[_Chunk]) -> None:
        """Leave copies of earlier records after the free space, as an overwritten log does."""
        position = chunk.free
        for other in chunks:
            for offset, size, _ in other.records[:count]:
                if position + size > CHUNK_SIZE or count <= 0:
                    return
                data[position : position + size] = other.data[offset : offset + size]
                position += size
                count -= 1
