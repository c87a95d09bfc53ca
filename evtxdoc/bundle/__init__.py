"""Discover the inputs of an analysis: loose files, folders, zips and cabs, nested.

`discover()` walks every input, unpacks archives into a folder the caller owns, identifies
each file by content, reads each distinct content once (by SHA-256) and returns the inventory:
EVTX logs to parse, supporting files for later stages, and what was skipped and why.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from evtxdoc.bundle.archive import Budget, capped, extract_cab, extract_zip
from evtxdoc.bundle.identify import HEAD_BYTES, SUPPORTING_KINDS, identify
from evtxdoc.errors import InputError
from evtxdoc.models import (
    AnalyzeOptions,
    DiscoveredFile,
    FileKind,
    Problem,
    Severity,
    SupportingFile,
)

SUPPORTING_MAX_BYTES = 32 * 1024 * 1024

__all__ = ["SUPPORTING_KINDS", "Bundle", "discover"]


@dataclass
class Bundle:
    """Everything found in the inputs, in discovery order."""

    files: list[DiscoveredFile] = field(default_factory=list)
    supporting: list[SupportingFile] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def evtx_files(self) -> list[DiscoveredFile]:
        """The distinct EVTX files to parse (duplicates by content left out)."""
        return [f for f in self.files if f.kind is FileKind.EVTX and f.duplicate_of is None]

    @property
    def log_files(self) -> list[DiscoveredFile]:
        """The distinct logs to read: EVTX files and E2E traces (.svclog)."""
        kinds = (FileKind.EVTX, FileKind.TRACE)
        return [f for f in self.files if f.kind in kinds and f.duplicate_of is None]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


def _sha256_or_none(path: Path) -> str | None:
    try:
        return _sha256(path)
    except OSError:
        return None  # add_path reads it again and reports the error


def _hash_all(paths: list[Path]) -> list[str | None]:
    """SHA-256 of each file, on every core: hashlib releases the GIL while it hashes."""
    if len(paths) < 2:
        return [_sha256_or_none(p) for p in paths]
    with ThreadPoolExecutor(max_workers=min(len(paths), os.cpu_count() or 1, 8)) as pool:
        return list(pool.map(_sha256_or_none, paths))


def _walk_folder(folder: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            yield Path(root, name)


class _Discovery:
    """One discovery run: the shared budget, the content index and the output bundle."""

    def __init__(self, workdir: Path, options: AnalyzeOptions):
        self.workdir = workdir
        self.options = options
        self.budget = Budget(
            options.max_total_bytes,
            options.max_entries,
            options.max_ratio,
            passwords=tuple(p.encode("utf-8") for p in options.zip_passwords),
        )
        self.bundle = Bundle()
        self.seen: dict[str, str] = {}  # sha256 -> display of first copy
        self.archive_count = 0

    def add_path(self, path: Path, display: str, depth: int, sha256: str | None = None) -> None:
        try:
            size = path.stat().st_size
            with path.open("rb") as handle:
                head = handle.read(HEAD_BYTES)
            digest = sha256 or _sha256(path)
        except OSError as exc:
            self.bundle.problems.append(
                Problem(
                    display,
                    "unreadable",
                    f"cannot read file: {exc.strerror or exc}",
                    Severity.ERROR,
                    hint="check the path and its permissions",
                )
            )
            return
        ident = identify(display, head, size)
        first = self.seen.get(digest) if size else None
        if first is not None:
            self.bundle.files.append(
                DiscoveredFile(
                    display,
                    str(path),
                    ident.kind,
                    size,
                    digest,
                    ident.subkind,
                    "same content as " + first,
                    duplicate_of=first,
                )
            )
            return
        self.seen[digest] = display
        record = DiscoveredFile(
            display, str(path), ident.kind, size, digest, ident.subkind, ident.reason
        )
        self.bundle.files.append(record)
        if ident.kind is FileKind.ARCHIVE:
            self._open_archive(path, display, ident.subkind or "", depth)
        elif ident.kind is FileKind.SUPPORTING:
            self._keep_supporting(path, record)
        elif ident.kind is FileKind.SKIPPED and display.lower().endswith(".evtx"):
            self.bundle.problems.append(
                Problem(
                    display,
                    "empty_file" if size == 0 else "not_evtx",
                    f"{ident.reason}; file skipped",
                    Severity.ERROR,
                    hint="export the log again from Event Viewer or re-collect the bundle",
                )
            )

    def _keep_supporting(self, path: Path, record: DiscoveredFile) -> None:
        if record.size > SUPPORTING_MAX_BYTES:
            self.bundle.problems.append(
                Problem(
                    record.display,
                    "too_large",
                    f"supporting file larger than {SUPPORTING_MAX_BYTES} bytes; not kept",
                    Severity.WARNING,
                )
            )
            return
        self.bundle.supporting.append(
            SupportingFile(record.display, record.subkind or "", record.sha256, path.read_bytes())
        )

    def _open_archive(self, path: Path, display: str, kind: str, depth: int) -> None:
        if depth >= self.options.max_depth:
            self.budget.refuse(
                display,
                "nesting_too_deep",
                f"archive nested more than {self.options.max_depth} levels deep; not unpacked",
                "unpack the outer archives by hand",
            )
            return
        self.archive_count += 1
        if depth == 0:
            self.budget.input_bytes += path.stat().st_size
        dest = self.workdir / f"a{self.archive_count:04d}"
        dest.mkdir(parents=True, exist_ok=True)
        extract = extract_zip if kind == "zip" else extract_cab
        for member in extract(path, display, dest, self.budget):
            self.add_path(member.path, f"{display}!/{member.name}", depth + 1, member.sha256)


def discover(inputs: Iterable[Path | str], workdir: Path, options: AnalyzeOptions) -> Bundle:
    """Find every file in `inputs`, unpacking archives under `workdir` (owned by the caller)."""
    run = _Discovery(Path(workdir), options)
    found: list[tuple[Path, str]] = []
    root = Path(options.display_root) if options.display_root else None

    def shown(path: Path) -> str:
        """The name a user knows a file by: relative to `display_root` when under it."""
        if root is not None and path.is_relative_to(root):
            return path.relative_to(root).as_posix()
        return str(path)

    for raw in inputs:
        path = Path(raw)
        if not path.exists():
            raise InputError(
                "no such file or folder",
                where=str(raw),
                hint="check the path; pass folders, .evtx, .zip or .cab files",
            )
        if path.is_dir():
            files = [(file, shown(file)) for file in _walk_folder(path)]
            if not files:
                run.bundle.problems.append(
                    Problem(str(raw), "empty_folder", "folder holds no files", Severity.WARNING)
                )
            found.extend(files)
        else:
            found.append((path, shown(path) if root is not None else str(raw)))
    digests = _hash_all([path for path, _ in found])
    for (path, display), digest in zip(found, digests, strict=True):
        run.add_path(path, display, depth=0, sha256=digest)
    found_here = capped(run.bundle.problems)  # e.g. 255 leaves of a bomb named *.evtx
    run.bundle.problems[:] = [*run.budget.problems, *run.budget.summary(), *found_here]
    return run.bundle
