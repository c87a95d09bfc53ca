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
import subprocess
import tempfile
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from evtxdoc.bundle.cab import (
    BLOCK_MAX,
    CabError,
    CabFile,
    CabHeader,
    read_cab_header,
    write_folder,
)
from evtxdoc.models import Problem, Severity

COPY_BLOCK = 1024 * 1024
RATIO_MIN_BYTES = 1024 * 1024  # small entries (empty preallocated logs) compress ~1000:1 legally
# Real bundles: EVTX deflates 10-30:1, an empty preallocated log ~1000:1 (a cab of twenty empty
# 1 MiB logs is ~400:1): a floor lets such bundles through whatever their ratio.
EXPANSION_FLOOR = 512 * 1024**2
EXPANSION_RATIO = 100.0
PROBLEMS_PER_KIND = 20
HEADER_READ_MAX = 16 * 1024 * 1024  # a cabinet's headers (CFHEADER, CFFOLDERs, CFFILEs) lie here
EXTERNAL_CAB_TIMEOUT_S = 300


@dataclass
class Budget:
    """Limits shared by all archives of one bundle, nesting included, and what has been spent.

    One expansion limit holds across the whole nesting: the bundle may unpack `EXPANSION_FLOOR`
    bytes whatever it was packed from, and beyond that `EXPANSION_RATIO` times the bytes of the
    archives as they were given — so four levels of 100:1 zips cannot compound to 10⁸:1.
    Problems are kept `PROBLEMS_PER_KIND` per kind; the rest are counted (`summary`)."""

    max_total_bytes: int
    max_entries: int
    max_ratio: float
    total_bytes: int = 0
    entries: int = 0
    input_bytes: int = 0  # the outermost archives' own sizes
    problems: list[Problem] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)
    passwords: tuple[bytes, ...] = field(default=(), repr=False)  # for encrypted zip entries

    def limit(self) -> int:
        """Bytes the whole bundle may unpack."""
        expansion = max(EXPANSION_FLOOR, int(EXPANSION_RATIO * self.input_bytes))
        return min(self.max_total_bytes, expansion)

    def expansion_allows(self, more: int) -> bool:
        return self.total_bytes + more <= self.limit()

    def refuse(self, source: str, kind: str, message: str, hint: str | None = None) -> None:
        self.refused[kind] += 1
        if self.refused[kind] <= PROBLEMS_PER_KIND:
            self.problems.append(Problem(source, kind, message, Severity.ERROR, hint=hint))

    def summary(self) -> list[Problem]:
        """One problem per kind that was refused more often than it was listed."""
        return summarize(self.problems, self.refused)

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
        if not self.expansion_allows(declared):
            self.refuse(
                where,
                "too_large",
                f"unpacking {declared} bytes would exceed the {self.limit()}-byte limit for the "
                f"whole bundle ({self.total_bytes} unpacked so far from {self.input_bytes} "
                "bytes of archives)",
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


def summarize(listed: list[Problem], counts: Counter[str]) -> list[Problem]:
    """For each kind counted beyond `PROBLEMS_PER_KIND`: one problem saying how many more."""
    out = []
    for kind, count in sorted(counts.items()):
        if count > PROBLEMS_PER_KIND:
            first = next(p for p in listed if p.kind == kind)
            out.append(
                Problem(
                    first.source.split("!/", 1)[0],
                    kind,
                    f"{count - PROBLEMS_PER_KIND} more {kind!r} problem(s) like the "
                    f"{PROBLEMS_PER_KIND} above, not listed one by one ({count} in all)",
                    first.severity,
                    hint=first.hint,
                )
            )
    return out


def capped(problems: list[Problem]) -> list[Problem]:
    """`problems` with at most `PROBLEMS_PER_KIND` of each kind, and a count for the rest."""
    counts: Counter[str] = Counter()
    kept = []
    for problem in problems:
        counts[problem.kind] += 1
        if counts[problem.kind] <= PROBLEMS_PER_KIND:
            kept.append(problem)
    return kept + summarize(kept, counts)


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
            encrypted = bool(info.flag_bits & 0x1)
            if encrypted and not budget.passwords:
                budget.refuse(
                    member,
                    "encrypted",
                    "entry is password-protected and no password was given",
                    "give the zip's password (`evtxdoc analyze --zip-password`, or the "
                    "password field of the upload page), or re-create the zip without one",
                )
                continue
            if not budget.admit(display, info.filename, info.file_size, info.compress_size):
                continue
            target = dest / _flat_name(index, info.filename)
            try:
                if encrypted:
                    copied = _copy_encrypted(archive, info, target, budget.passwords)
                else:
                    with archive.open(info) as src:
                        copied = _copy_bounded(src, target, info.file_size)
            except WrongPasswordError:
                budget.refuse(
                    member,
                    "wrong_password",
                    "entry is password-protected and no password given opens it",
                    "check the password (passwords are case-sensitive)",
                )
                continue
            except NotImplementedError as exc:  # AES (WinZip) encryption: not in zipfile
                budget.refuse(
                    member,
                    "encrypted",
                    f"entry could not be unpacked: {exc}",
                    "AES-encrypted zips are not supported: re-create it with ZipCrypto "
                    "(7-Zip: Encryption method ZipCrypto) or without a password",
                )
                target.unlink(missing_ok=True)
                continue
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
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


def _copy_encrypted(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, passwords: tuple[bytes, ...]
) -> tuple[str, int] | None:
    """The entry copied with the first password that opens it (its CRC checked: ZipCrypto's
    one-byte check lets about 1 wrong password in 256 through); WrongPasswordError if none
    does."""
    for password in passwords:
        try:
            with archive.open(info, pwd=password) as src:
                return _copy_bounded(src, target, info.file_size)
        except RuntimeError:  # "Bad password for file"
            continue
        except zipfile.BadZipFile as exc:
            if "CRC" not in str(exc):
                raise
            target.unlink(missing_ok=True)  # the check byte matched by chance
            continue
    raise WrongPasswordError(info.filename)


class WrongPasswordError(Exception):
    """No password given opens an encrypted zip entry."""


def extract_cab(path: Path, display: str, dest: Path, budget: Budget) -> Iterator[Member]:
    """Yield the members of a cabinet (MdmDiagnosticsTool output), extracted safely: headers
    checked against the budget first, then MSZIP/stored folders streamed block by block."""
    size = path.stat().st_size
    if size > budget.max_total_bytes - budget.total_bytes:
        budget.refuse(display, "too_large", "cabinet larger than the remaining size budget")
        return
    with path.open("rb") as source:
        try:
            header = read_cab_header(source.read(min(size, HEADER_READ_MAX)))
        except CabError as exc:
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
        if not budget.expansion_allows(declared):
            budget.refuse(
                display,
                "too_large",
                f"cabinet declares {declared} bytes, beyond the bundle's remaining budget",
                "pass fewer or smaller archives, or raise the size limit if trusted",
            )
            return
        if header.compressions <= {"none", "MSZIP"}:
            yield from _cab_members_streamed(source, header, display, dest, budget)
            return
    yield from _cab_members_external(path, display, dest, budget, header.compressions)


def _cab_members_streamed(
    source: IO[bytes], header: CabHeader, display: str, dest: Path, budget: Budget
) -> Iterator[Member]:
    index_of = {entry: number for number, entry in enumerate(header.entries)}
    for folder in range(len(header.folders)):
        files = [entry for entry in header.entries if entry.folder == folder]
        declared = max((entry.offset + entry.size for entry in files), default=0)
        needed = -(-declared // BLOCK_MAX)
        if header.folders[folder].blocks > needed + 1:
            budget.refuse(
                f"{display}!/{files[0].name}" if files else display,
                "compression_ratio",
                f"cabinet folder {folder} holds {header.folders[folder].blocks} data blocks for "
                f"{declared} declared bytes (at most {needed} needed): the blocks past its files "
                "were not unpacked (a decompression bomb?)",
            )
        targets: dict[CabFile, Path | None] = {}
        for entry in header.entries:
            if entry.folder != folder:
                continue
            member = f"{display}!/{entry.name}"
            if why := unsafe_member_name(entry.name):
                budget.refuse(member, "zip_slip", f"entry skipped: {why}")
                targets[entry] = None
            elif budget.admit(display, entry.name, entry.size, None):
                targets[entry] = dest / _flat_name(index_of[entry], entry.name)
                budget.total_bytes += entry.size  # reserved before it is written
            else:
                targets[entry] = None
        try:
            for entry, target, digest, written in write_folder(source, header, folder, targets):
                yield Member(entry.name, target, digest, written)
        except CabError as exc:
            budget.refuse(
                display,
                "bad_archive",
                f"cabinet could not be unpacked: {exc}",
                "re-collect the logs (MdmDiagnosticsTool -cab) and upload again; the entries "
                "before the damage were still read",
            )
    for entry in header.entries:
        if entry.folder >= len(header.folders):
            budget.refuse(
                f"{display}!/{entry.name}",
                "bad_entry",
                "entry lies in another cabinet of a set, or in a folder this cabinet lacks",
            )


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
