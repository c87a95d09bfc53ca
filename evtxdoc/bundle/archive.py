"""Safe extraction of untrusted .zip and .cab archives.

Members are written flat into a folder we own, under names we make, so no entry can escape it
(zip-slip entries are still reported, and skipped, because they are hostile). Symlinks are never
created or followed. One `Budget` is shared by every archive of a bundle, nested ones included:
it caps total unpacked bytes, entry count and compression ratio.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import struct
import subprocess
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from evtxdoc.models import Problem, Severity

COPY_BLOCK = 1024 * 1024
RATIO_MIN_BYTES = 1024 * 1024  # small entries (empty preallocated logs) compress ~1000:1 legally
CAB_COMPRESSION = {0: "none", 1: "MSZIP", 2: "Quantum", 3: "LZX"}
EXTERNAL_CAB_TIMEOUT_S = 300


@dataclass
class Budget:
    """Limits shared by all archives of one bundle, and what has been spent of them."""

    max_total_bytes: int
    max_entries: int
    max_ratio: float
    total_bytes: int = 0
    entries: int = 0
    problems: list[Problem] = field(default_factory=list)

    def refuse(self, source: str, kind: str, message: str, hint: str | None = None) -> None:
        self.problems.append(Problem(source, kind, message, Severity.ERROR, hint=hint))

    def admit(self, archive: str, member: str, declared: int, compressed: int | None) -> bool:
        """Say whether one more entry of `declared` bytes fits; record a problem if not."""
        where = f"{archive}!/{member}"
        if self.entries >= self.max_entries:
            self.refuse(
                where,
                "too_many_entries",
                f"more than {self.max_entries} entries in the bundle; the rest is not unpacked",
                "split the bundle, or raise the entry limit if the input is trusted",
            )
            return False
        if self.total_bytes + declared > self.max_total_bytes:
            self.refuse(
                where,
                "too_large",
                f"unpacking {declared} bytes would exceed the {self.max_total_bytes}-byte limit "
                "for the whole bundle",
                "pass fewer or smaller archives, or raise the size limit if the input is trusted",
            )
            return False
        if compressed and declared > RATIO_MIN_BYTES and declared / compressed > self.max_ratio:
            self.refuse(
                where,
                "compression_ratio",
                f"compression ratio {declared / compressed:.0f}:1 exceeds {self.max_ratio:.0f}:1 "
                "(a decompression bomb?)",
            )
            return False
        self.entries += 1
        return True


@dataclass(frozen=True, slots=True)
class Member:
    """One extracted archive member: its name inside the archive and where it now lies."""

    name: str
    path: Path
    sha256: str
    size: int


def unsafe_member_name(name: str) -> str | None:
    """Return why an archive member name is unsafe (absolute, drive, `..`), or None."""
    posix = name.replace("\\", "/")
    if posix.startswith("/") or re.match(r"^[A-Za-z]:", posix):
        return "absolute path"
    if ".." in PurePosixPath(posix).parts:
        return "path with '..' would escape the extraction folder"
    return None


def _flat_name(index: int, name: str) -> str:
    base = re.sub(r"[^\w.%@ -]", "_", name.replace("\\", "/").rsplit("/", 1)[-1])[:120]
    return f"{index:05d}_{base or 'member'}"


def _copy_bounded(src: IO[bytes], dest: Path, limit: int) -> tuple[str, int] | None:
    """Copy at most `limit` bytes; None if the source holds more (a lying header)."""
    digest, size = hashlib.sha256(), 0
    with dest.open("wb") as out:
        while block := src.read(COPY_BLOCK):
            size += len(block)
            if size > limit:
                return None
            digest.update(block)
            out.write(block)
    return digest.hexdigest(), size


def extract_zip(path: Path, display: str, dest: Path, budget: Budget) -> Iterator[Member]:
    """Yield the regular-file members of a zip, extracted safely into `dest`."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        budget.refuse(
            display,
            "bad_archive",
            f"not a readable zip archive: {exc}",
            "re-download or re-create the zip",
        )
        return
    with archive:
        for index, info in enumerate(archive.infolist()):
            member = f"{display}!/{info.filename}"
            if info.is_dir():
                continue
            if stat.S_ISLNK(info.external_attr >> 16):
                budget.refuse(member, "symlink", "symbolic link entry skipped (never followed)")
                continue
            if why := unsafe_member_name(info.filename):
                budget.refuse(member, "zip_slip", f"entry skipped: {why}")
                continue
            if info.flag_bits & 0x1:
                budget.refuse(
                    member,
                    "encrypted",
                    "entry is password-protected; cannot read it",
                    "re-create the zip without a password",
                )
                continue
            if not budget.admit(display, info.filename, info.file_size, info.compress_size):
                continue
            target = dest / _flat_name(index, info.filename)
            try:
                with archive.open(info) as src:
                    copied = _copy_bounded(src, target, info.file_size)
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:
                budget.refuse(
                    member,
                    "bad_entry",
                    f"entry could not be unpacked: {exc}",
                    "re-create the archive; the other entries were still read",
                )
                target.unlink(missing_ok=True)
                continue
            if copied is None:
                budget.refuse(
                    member,
                    "size_mismatch",
                    "entry holds more data than its header declares; skipped",
                )
                target.unlink(missing_ok=True)
                continue
            budget.total_bytes += copied[1]
            yield Member(info.filename, target, copied[0], copied[1])


@dataclass(frozen=True, slots=True)
class CabHeader:
    """What a cabinet's headers declare, read before anything is decompressed."""

    files: tuple[tuple[str, int], ...]  # (name, uncompressed size)
    compressions: frozenset[str]


def read_cab_header(buf: bytes) -> CabHeader:
    """Parse CFHEADER, CFFOLDER and CFFILE records (MS-CAB) without decompressing."""
    (
        _sig,
        _r1,
        _cb,
        _r2,
        coff_files,
        _r3,
        _minor,
        _major,
        n_folders,
        n_files,
        flags,
        _set,
        _icab,
    ) = struct.unpack_from("<4sIIIIIBBHHHHH", buf, 0)
    pos = 36
    folder_reserve = 0
    if flags & 0x0004:
        header_reserve, folder_reserve, _data_reserve = struct.unpack_from("<HBB", buf, pos)
        pos += 4 + header_reserve
    for present in (flags & 0x0001, flags & 0x0002):  # previous / next cabinet names
        if present:
            for _ in range(2):
                pos = buf.index(b"\x00", pos) + 1
    compressions = set()
    for _ in range(n_folders):
        (_start, _blocks, type_compress) = struct.unpack_from("<IHH", buf, pos)
        compressions.add(CAB_COMPRESSION.get(type_compress & 0x000F, f"type {type_compress:#x}"))
        pos += 8 + folder_reserve
    files = []
    pos = coff_files
    for _ in range(n_files):
        size, _offset, _folder, _date, _time, attribs = struct.unpack_from("<IIHHHH", buf, pos)
        end = buf.index(b"\x00", pos + 16)
        raw = buf[pos + 16 : end]
        files.append((raw.decode("utf-8" if attribs & 0x80 else "cp1252", errors="replace"), size))
        pos = end + 1
    return CabHeader(tuple(files), frozenset(compressions))


def extract_cab(path: Path, display: str, dest: Path, budget: Budget) -> Iterator[Member]:
    """Yield the members of a cabinet (MdmDiagnosticsTool output), extracted safely."""
    size = path.stat().st_size
    if size > budget.max_total_bytes - budget.total_bytes:
        budget.refuse(display, "too_large", "cabinet larger than the remaining size budget")
        return
    buf = path.read_bytes()
    try:
        header = read_cab_header(buf)
    except (struct.error, ValueError) as exc:
        budget.refuse(
            display,
            "bad_archive",
            f"not a readable cabinet: {exc}",
            "re-collect the logs (MdmDiagnosticsTool -cab) and upload again",
        )
        return
    declared = sum(s for _, s in header.files)
    if declared > RATIO_MIN_BYTES and declared / max(size, 1) > budget.max_ratio:
        budget.refuse(
            display,
            "compression_ratio",
            f"cabinet declares {declared} bytes from {size} ({declared / size:.0f}:1)",
        )
        return
    if budget.total_bytes + declared > budget.max_total_bytes:
        budget.refuse(
            display,
            "too_large",
            f"cabinet declares {declared} bytes, beyond the bundle's remaining budget",
            "pass fewer or smaller archives, or raise the size limit if trusted",
        )
        return
    if header.compressions <= {"none", "MSZIP"}:
        yield from _cab_members_builtin(buf, display, dest, budget)
    else:
        yield from _cab_members_external(path, display, dest, budget, header.compressions)


def _cab_members_builtin(buf: bytes, display: str, dest: Path, budget: Budget) -> Iterator[Member]:
    from cabarchive import CabArchive
    from cabarchive.errors import CorruptionError, NotSupportedError

    try:
        archive = CabArchive(buf)
    except (CorruptionError, NotSupportedError, ValueError, struct.error) as exc:
        budget.refuse(
            display,
            "bad_archive",
            f"cabinet could not be unpacked: {exc}",
            "re-collect the logs (MdmDiagnosticsTool -cab) and upload again",
        )
        return
    for index, (name, entry) in enumerate(sorted(archive.items())):
        data = entry.buf or b""
        yield from _admit_bytes(display, dest, budget, index, name, data)


def _admit_bytes(
    display: str, dest: Path, budget: Budget, index: int, name: str, data: bytes
) -> Iterator[Member]:
    member = f"{display}!/{name}"
    if why := unsafe_member_name(name):
        budget.refuse(member, "zip_slip", f"entry skipped: {why}")
        return
    if not budget.admit(display, name, len(data), None):
        return
    target = dest / _flat_name(index, name)
    target.write_bytes(data)
    budget.total_bytes += len(data)
    yield Member(name, target, hashlib.sha256(data).hexdigest(), len(data))


def _external_cab_command(cab: Path, out: Path) -> list[str] | None:
    if tool := shutil.which("cabextract"):
        return [tool, "-q", "-d", str(out), str(cab)]
    if os.name == "nt" and (tool := shutil.which("expand")):
        return [tool, str(cab), "-F:*", str(out)]
    return None


def _cab_members_external(
    path: Path, display: str, dest: Path, budget: Budget, compressions: frozenset[str]
) -> Iterator[Member]:
    names = "/".join(sorted(compressions))
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        command = _external_cab_command(path, Path(tmp))
        if command is None:
            budget.refuse(
                display,
                "unsupported_compression",
                f"cabinet uses {names} compression, which the built-in reader (cabarchive) "
                "does not support, and no external extractor was found",
                "install cabextract (Debian/Ubuntu: apt install cabextract; macOS: brew install "
                "cabextract) or, on Windows, run `expand -F:* file.cab folder` and pass the folder",
            )
            return
        try:
            subprocess.run(command, check=True, capture_output=True, timeout=EXTERNAL_CAB_TIMEOUT_S)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            budget.refuse(
                display,
                "bad_archive",
                f"{names} cabinet could not be unpacked by {Path(command[0]).name}: {exc}",
                "re-collect the logs",
            )
            return
        index = 0
        for root, _dirs, files in os.walk(tmp, followlinks=False):
            for name in sorted(files):
                file = Path(root, name)
                if file.is_symlink():
                    continue
                rel = file.relative_to(tmp).as_posix()
                yield from _admit_bytes(display, dest, budget, index, rel, file.read_bytes())
                index += 1
