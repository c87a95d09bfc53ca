"""BinXml as Windows writes it: template definitions, names, substitutions and typed values.

Follows `reference/evtx-format.md` §8.5 and the bytes of real records (security.evtx for the
shape-A System template, system.evtx for shape B). Every offset is chunk-relative, so encoding
happens against a `ChunkTables` (the names and templates already written in the chunk) and at a
known position. The first use of a name or template in a chunk writes it inline; later uses
point back to it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import struct
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

# Value types (MS-EVEN6 / libyal): the ones Windows writes in these logs.
NULL, STRING, INT8, UINT8, INT16, UINT16, INT32, UINT32, INT64, UINT64 = (
    0x00,
    0x01,
    0x03,
    0x04,
    0x05,
    0x06,
    0x07,
    0x08,
    0x09,
    0x0A,
)
BOOL, BINARY, GUID, FILETIME, SID, HEXINT32, HEXINT64, BINXML = (
    0x0D,
    0x0E,
    0x0F,
    0x11,
    0x13,
    0x14,
    0x15,
    0x21,
)
ARRAY = 0x80

TYPE_NAMES = {
    "string": STRING,
    "int8": INT8,
    "uint8": UINT8,
    "int16": INT16,
    "uint16": UINT16,
    "int32": INT32,
    "uint32": UINT32,
    "int64": INT64,
    "uint64": UINT64,
    "bool": BOOL,
    "binary": BINARY,
    "guid": GUID,
    "filetime": FILETIME,
    "sid": SID,
    "hexint32": HEXINT32,
    "hexint64": HEXINT64,
    "string[]": STRING | ARRAY,
    "uint32[]": UINT32 | ARRAY,
}
_INTS = {
    INT8: "<b",
    UINT8: "<B",
    INT16: "<h",
    UINT16: "<H",
    INT32: "<i",
    UINT32: "<I",
    INT64: "<q",
    UINT64: "<Q",
    HEXINT32: "<I",
    HEXINT64: "<Q",
    BOOL: "<I",
}
FILETIME_EPOCH = 116_444_736_000_000_000  # 1970-01-01 in 100 ns since 1601-01-01

# Tokens.
FRAGMENT_HEADER = b"\x0f\x01\x01\x00"
T_EOF, T_OPEN, T_OPEN_ATTRS, T_CLOSE_START, T_CLOSE_EMPTY, T_END = (
    0x00,
    0x01,
    0x41,
    0x02,
    0x03,
    0x04,
)
T_VALUE, T_ATTR_MORE, T_ATTR_LAST, T_TEMPLATE, T_SUB, T_SUB_OPTIONAL = (
    0x05,
    0x46,
    0x06,
    0x0C,
    0x0D,
    0x0E,
)
NO_DEPENDENCY = 0xFFFF

_U16, _U32, _U64 = struct.Struct("<H"), struct.Struct("<I"), struct.Struct("<Q")


# --- the template model ------------------------------------------------------------------


@dataclass(frozen=True)
class Sub:
    """A substitution: the instance's value `index` (of `vtype`) goes here."""

    index: int
    vtype: int
    optional: bool = True  # Windows uses optional (0x0e) substitutions for System values


@dataclass(frozen=True)
class Element:
    """An element of a template: attributes (name → text or Sub) and children."""

    name: str
    attrs: tuple[tuple[str, str | Sub], ...] = ()
    children: tuple[Element | Sub | str, ...] = ()


@dataclass(frozen=True)
class Template:
    """A template definition: one element tree with substitutions, identified by a GUID."""

    root: Element
    guid: bytes = field(default=b"")  # 16 bytes; derived from the structure when empty

    def key(self) -> bytes:
        return self.guid or template_guid(self.root)


def template_guid(root: Element) -> bytes:
    """A stable GUID for a template's structure (Windows derives its own; any fixed one will do)."""
    return hashlib.sha256(repr(root).encode()).digest()[:16]


# --- values ------------------------------------------------------------------------------


def filetime(ns: int) -> int:
    """UTC ns since the Unix epoch → FILETIME (100 ns since 1601)."""
    return ns // 100 + FILETIME_EPOCH


def guid_bytes(text: str) -> bytes:
    """`{GUID}` text → the 16 bytes Windows writes (mixed-endian)."""
    return uuid.UUID(text.strip("{}")).bytes_le


def sid_bytes(text: str) -> bytes:
    """`S-1-5-21-…` → binary SID (revision, count, 6-byte big-endian authority, u32 LE subs)."""
    parts = text.split("-")
    if len(parts) < 3 or parts[0].upper() != "S":
        raise ValueError(f"not a SID: {text!r}")
    subs = [int(p) for p in parts[3:]]
    return (
        bytes([int(parts[1]), len(subs)])
        + int(parts[2]).to_bytes(6, "big")
        + b"".join(_U32.pack(s) for s in subs)
    )


def encode_value(vtype: int, value: Any) -> bytes:
    """One substitution value as its bytes in the instance data."""
    if value is None or vtype == NULL:
        return b""
    if vtype == STRING:
        return str(value).encode("utf-16-le")
    if vtype in _INTS:
        if isinstance(value, str):
            value = int(value, 0)
        return struct.pack(_INTS[vtype], int(value))
    if vtype == GUID:
        return guid_bytes(value) if isinstance(value, str) else bytes(value)
    if vtype == SID:
        return sid_bytes(value) if isinstance(value, str) else bytes(value)
    if vtype == FILETIME:
        if isinstance(value, dt.datetime):
            value = int(value.timestamp() * 1_000_000) * 1000
        return _U64.pack(filetime(int(value)))
    if vtype == BINARY:
        return bytes.fromhex(value) if isinstance(value, str) else bytes(value)
    if vtype == STRING | ARRAY:
        return b"".join(str(item).encode("utf-16-le") + b"\x00\x00" for item in value)
    if vtype & ARRAY and (vtype & ~ARRAY) in _INTS:
        return b"".join(struct.pack(_INTS[vtype & ~ARRAY], int(item)) for item in value)
    raise ValueError(f"value type 0x{vtype:02x} is not supported by the writer")


def name_hash(name: str) -> int:
    """MS-EVEN6 name hash: low 16 bits of h = h * 65599 + code unit."""
    h = 0
    for unit in struct.unpack(f"<{len(name)}H", name.encode("utf-16-le")):
        h = (h * 65599 + unit) & 0xFFFFFFFF
    return h & 0xFFFF


def template_bucket(guid: bytes) -> int:
    """Template pointer table bucket (best effort, evtx-format.md §8.6)."""
    h = 0
    for (word,) in struct.iter_unpack("<H", guid):
        h = (h * 65599 + word) & 0xFFFFFFFF
    return h % 32


Value = tuple[int, "bytes | Callable[[Encoder], None] | None"]


# --- chunk state and encoding ----------------------------------------------------------------


@dataclass
class ChunkTables:
    """Names and templates already written in one chunk, plus the header hash tables."""

    names: dict[str, int] = field(default_factory=dict)  # name → offset of its `next` field
    templates: dict[bytes, int] = field(default_factory=dict)  # guid → offset of its `next`
    string_table: list[int] = field(default_factory=lambda: [0] * 64)
    template_table: list[int] = field(default_factory=lambda: [0] * 32)

    def copy(self) -> ChunkTables:
        return ChunkTables(
            dict(self.names),
            dict(self.templates),
            list(self.string_table),
            list(self.template_table),
        )


class Encoder:
    """Appends BinXml to a buffer whose first byte lies at chunk offset `base`."""

    def __init__(self, tables: ChunkTables, base: int):
        self.tables = tables
        self.base = base
        self.out = bytearray()

    @property
    def pos(self) -> int:
        return self.base + len(self.out)

    def u8(self, value: int) -> None:
        self.out.append(value)

    def u16(self, value: int) -> None:
        self.out += _U16.pack(value)

    def u32(self, value: int) -> None:
        self.out += _U32.pack(value)

    def patch32(self, at: int, value: int) -> None:
        _U32.pack_into(self.out, at, value)

    def name(self, text: str) -> None:
        """A name reference; the name itself inline when this chunk has not written it yet."""
        known = self.tables.names.get(text)
        if known is not None:
            self.u32(known)
            return
        here = self.pos + 4
        self.u32(here)
        digest = name_hash(text)
        bucket = digest % 64
        self.u32(self.tables.string_table[bucket])  # chain to the bucket's previous name
        self.u16(digest)
        self.u16(len(text))
        self.out += text.encode("utf-16-le") + b"\x00\x00"
        self.tables.names[text] = here
        self.tables.string_table[bucket] = here

    def text(self, value: str) -> None:
        self.u8(T_VALUE)
        self.u8(STRING)
        self.u16(len(value))
        self.out += value.encode("utf-16-le")

    def substitution(self, sub: Sub) -> None:
        self.u8(T_SUB_OPTIONAL if sub.optional else T_SUB)
        self.u16(sub.index)
        self.u8(sub.vtype)

    def element(self, element: Element) -> None:
        dependency = next((c.index for c in element.children if isinstance(c, Sub)), NO_DEPENDENCY)
        self.u8(T_OPEN_ATTRS if element.attrs else T_OPEN)
        self.u16(dependency)
        size_at = len(self.out)
        self.u32(0)
        self.name(element.name)
        if element.attrs:
            list_at = len(self.out)
            self.u32(0)
            for number, (attr, value) in enumerate(element.attrs):
                self.u8(T_ATTR_LAST if number == len(element.attrs) - 1 else T_ATTR_MORE)
                self.name(attr)
                self._content(value)
            self.patch32(list_at, len(self.out) - list_at - 4)
        if element.children:
            self.u8(T_CLOSE_START)
            for child in element.children:
                self._content(child)
            self.u8(T_END)
        else:
            self.u8(T_CLOSE_EMPTY)
        self.patch32(size_at, len(self.out) - size_at - 4)

    def _content(self, node: Element | Sub | str) -> None:
        if isinstance(node, Element):
            self.element(node)
        elif isinstance(node, Sub):
            self.substitution(node)
        else:
            self.text(node)

    def template_instance(self, template: Template, values: Sequence[Value]) -> int:
        """`0c 01 id defoff [definition]`, then the value descriptors and values.

        `values` holds (type, data) per substitution index: bytes, None for a NULL value (the
        optional element or attribute is then dropped), or for a BinXml value a callable that
        encodes it in place, since its offsets depend on where it lands. Returns where (in
        `out`) the values begin.
        """
        guid = template.key()
        self.u8(T_TEMPLATE)
        self.u8(0x01)
        self.out += guid[:4]
        known = self.tables.templates.get(guid)
        if known is not None:
            self.u32(known)
        else:
            here = self.pos + 4
            self.u32(here)
            bucket = template_bucket(guid)
            self.u32(self.tables.template_table[bucket])
            self.out += guid
            size_at = len(self.out)
            self.u32(0)
            self.out += FRAGMENT_HEADER
            self.element(template.root)
            self.u8(T_EOF)
            self.patch32(size_at, len(self.out) - size_at - 4)
            self.tables.templates[guid] = here
            self.tables.template_table[bucket] = here
        self.u32(len(values))
        descriptors_at = len(self.out)
        self.out += bytes(4 * len(values))
        values_at = len(self.out)
        for index, (vtype, data) in enumerate(values):
            start = len(self.out)
            if callable(data):  # a nested BinXml value, encoded where it lands
                data(self)
            elif data is not None:
                self.out += data
            size = len(self.out) - start
            if size > 0xFFFF:
                raise ValueError(f"value {index} is {size} bytes; BinXml values hold 65,535")
            struct.pack_into(
                "<HBx", self.out, descriptors_at + 4 * index, size, NULL if data is None else vtype
            )
        return values_at
