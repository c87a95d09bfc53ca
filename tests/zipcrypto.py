"""Writes zips whose entries are encrypted with ZipCrypto (PKWARE traditional encryption,
APPNOTE.TXT 6.1), stored uncompressed: what 7-Zip and `zip -P` write by default. The standard
library reads such entries but cannot write them, and a test machine may have no `zip`."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

_TABLE = []
for _n in range(256):
    _c = _n
    for _ in range(8):
        _c = (_c >> 1) ^ 0xEDB88320 if _c & 1 else _c >> 1
    _TABLE.append(_c)


def _crc_byte(crc: int, byte: int) -> int:
    return (crc >> 8) ^ _TABLE[(crc ^ byte) & 0xFF]


def _encrypt(data: bytes, password: bytes) -> bytes:
    keys = [0x12345678, 0x23456789, 0x34567890]

    def update(byte: int) -> None:
        keys[0] = _crc_byte(keys[0], byte)
        keys[1] = ((keys[1] + (keys[0] & 0xFF)) * 134775813 + 1) & 0xFFFFFFFF
        keys[2] = _crc_byte(keys[2], keys[1] >> 24)

    for byte in password:
        update(byte)
    out = bytearray()
    for byte in data:
        temp = (keys[2] | 2) & 0xFFFF
        out.append(byte ^ (((temp * (temp ^ 1)) >> 8) & 0xFF))
        update(byte)
    return bytes(out)


def write_encrypted_zip(path: Path, members: dict[str, bytes], password: str) -> None:
    """A zip at `path` holding `members` (name → bytes), each encrypted with `password`."""
    local, central = bytearray(), bytearray()
    for name, data in members.items():
        crc = zlib.crc32(data)
        header = os.urandom(11) + bytes([crc >> 24])  # the last byte checks the password
        body = _encrypt(header + data, password.encode("utf-8"))
        encoded = name.encode("utf-8")
        offset = len(local)
        fields = (20, 1, 0, 0, 0x21, crc, len(body), len(data), len(encoded), 0)
        local += struct.pack("<IHHHHHIIIHH", 0x04034B50, *fields) + encoded + body
        central += (
            struct.pack("<IH", 0x02014B50, 20)
            + struct.pack("<HHHHHIIIHHHHHII", *fields, 0, 0, 0, 0, offset)
            + encoded
        )
    end = struct.pack(
        "<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), len(local), 0
    )
    path.write_bytes(bytes(local + central + end))
