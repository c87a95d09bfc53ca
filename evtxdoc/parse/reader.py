"""Read EVTX files into column batches: one file per call, many files across processes.

Per file: the structural scan (problems, exact times), then pyevtx-rs; when rs raised or
delivered fewer records than the scan counted, python-evtx (if installed) renders the records
rs missed, and the union by EventRecordID is kept. A failure in one file is a problem of that
file, never the loss of the bundle.
"""

from __future__ import annotations

import gc
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np

from evtxdoc.models import DamageSpan, DiscoveredFile, FileKind, FileReport, Problem, Severity
from evtxdoc.parse import (
    RawRecord,
    Structure,
    fallback_available,
    python_evtx_records,
    rs_available,
    rs_records,
    scan,
)
from evtxdoc.parse.batch import BLOCK_ROWS, ColumnBatch, Skeleton
from evtxdoc.parse.normalize import row
from evtxdoc.parse.structure import (
    AMBIGUOUS,
    CHUNK_SIZE,
    FILE_HEADER_SIZE,
    DamageMark,
    filetime_to_ns,
    record_times,
)
from evtxdoc.parse.svclog import read_trace

# python-evtx is ~200× slower than rs and, on some damaged files, spends 8–23 s yielding nothing
# (issue 18): it gets this long per file, then stops with a problem saying so.
FALLBACK_BUDGET_S = 5.0
MAX_ERRORS_LISTED = 20
# A rendered time and the record's own FILETIME are the same instant if this close: rs renders
# µs (rounded), python-evtx's float conversion is off by a few µs. Farther apart means the
# header id matched another record, and the rendered time is kept.
REFINE_TOLERANCE_NS = 10_000

Progress = Callable[[str, int, int, str], None]  # (stage, done, total, detail)
RecordSource = Callable[..., Iterator[RawRecord]]  # (path, on_error, *, strict) like rs_records


@dataclass
class FileResult:
    """A file's report and its events; picklable so worker processes can return it."""

    report: FileReport
    batch: ColumnBatch  # every event, or only those something reads (`kept` says which)
    skeleton: Skeleton | None = None  # every event, when `batch` holds only some
    kept: np.ndarray | None = None  # the positions in `skeleton` of `batch`'s rows


def _no_heartbeat() -> None:
    pass


class _Reader:
    """Reads one file; collects its problems as it goes."""

    def __init__(
        self,
        file: DiscoveredFile,
        strict: bool,
        use_fallback: bool,
        heartbeat: Callable[[], None] | None = None,
        records: RecordSource | None = None,
    ):
        self.file = file
        self.records = records  # None: rs over the whole file
        self.tick = heartbeat or _no_heartbeat  # the watchdog's sign of progress
        self.strict = strict
        self.use_fallback = use_fallback and not strict
        self.batch = ColumnBatch(file.display)
        self.unrendered: list[int] = []  # header ids of records that held no <Event>
        self.problems: list[Problem] = []
        self.backends: list[str] = []
        self.errors: list[tuple[str, str]] = []

    def on_error(self, where: str, message: str) -> None:
        self.errors.append((where, message))
        self.tick()

    def _step(self, name: str, step: Callable[[], None]) -> None:
        """Run one step of reading; a failure costs that step, never the records read so far."""
        try:
            step()
        except Exception as exc:  # a crafted file can break any step: keep what was read
            self.problems.append(
                Problem(
                    self.file.display,
                    "read_step_failed",
                    f"{name} failed ({type(exc).__name__}: {str(exc)[:200]}); "
                    f"the {len(self.batch)} record(s) read until then are kept",
                    Severity.WARNING,
                    hint="report this file to the evtxdoc maintainers",
                )
            )

    def consume(self, records: Iterator[RawRecord]) -> None:
        """Append every record, then drop those seen before (by EventRecordID and header id).
        The hottest loop: records are taken and turned into rows a block at a time by C-level
        `islice` and `map`, with no Python statement per record."""
        to_row, batch, tick = row, self.batch, self.tick
        try:
            while True:
                raws = list(islice(records, BLOCK_ROWS))
                if not raws:
                    break
                rows = list(map(to_row, raws))
                kept = list(filter(None, rows))  # a row is a non-empty tuple: None is a miss
                if len(kept) != len(rows):
                    for raw, values in zip(raws, rows, strict=True):
                        if values is None:
                            self.unrendered.append(raw[0])
                            self.on_error(f"record {raw[0]}", "no <Event> in the rendered record")
                batch.append_rows(kept)
                tick()
        finally:  # also when a step fails: what was read is kept, each record once
            self._drop_repeats()

    def header_ids(self) -> set[int]:
        """The header ids of every record read (rendered or not)."""
        return set(self.batch.reading("header_id").tolist()) | set(self.unrendered)

    def _drop_repeats(self) -> None:
        """Keep the first of the rows that are the same record: EventRecordID and header id
        both agree (chunk slack, the padded re-read); a damaged EventRecordID (0, or another
        record's) must not make two records one. One sort of the keys, no per-row Python."""
        record_ids = self.batch.numeric("record_id")
        header_ids = self.batch.reading("header_id")
        if len(record_ids) < 2:
            return
        if (
            record_ids.min() >= 0
            and record_ids.max() < 2**31
            and header_ids.min() >= 0
            and (header_ids.max() < 2**32)
        ):
            keys = (record_ids << 32) | header_ids
            ordered = np.sort(keys)
            if not (ordered[1:] == ordered[:-1]).any():
                return
            order = np.argsort(keys, kind="stable")
        else:
            order = np.lexsort((header_ids, record_ids))  # stable: the first one leads
        same = (record_ids[order][1:] == record_ids[order][:-1]) & (
            header_ids[order][1:] == header_ids[order][:-1]
        )
        if not same.any():
            return
        keep = np.ones(len(record_ids), dtype=bool)
        keep[order[1:][same]] = False
        self.batch = self.batch.take(np.flatnonzero(keep))

    def read(self) -> FileResult:
        structure = scan(self.file.path, self.file.display)
        self.problems.extend(structure.problems)
        self.tick()
        if structure.usable:
            collecting = gc.isenabled()
            gc.disable()  # rows create no reference cycles; the collector only costs time here
            try:
                self._step("reading records", lambda: self._read_records(structure))
            finally:
                if collecting:
                    gc.enable()
            self._step("refining times", self._refine_times)
            self._step("naming channels", self._inherit_channel)
        self.batch.close()
        return FileResult(
            FileReport(
                self.file.display,
                self.file.sha256,
                self.file.size,
                len(self.batch),
                tuple(self.backends),
                structure.format_version,
                structure.dirty,
                tuple(self.problems),
                damage=self._damage(structure.damage),
            ),
            self.batch,
        )

    def _inherit_channel(self) -> None:
        """A torn record can lose its channel name; a log file holds one channel, so a record
        without one is put in the channel of the file's other records."""
        codes = self.batch.codes("channel")  # flushes the rows; writes land in the batch
        names = self.batch.categories["channel"]
        named = [name for name in names if name]
        if len(named) != 1:
            return
        lost = (codes == -1) | np.isin(codes, [code for name, code in names.items() if not name])
        if lost.any():
            codes[lost] = names[named[0]]
            self.problems.append(
                Problem(
                    self.file.display,
                    "channel_inferred",
                    f"{int(lost.sum())} damaged record(s) without a channel name put in "
                    f"{named[0]}, the file's channel",
                    Severity.INFO,
                )
            )

    def _damage(self, marks: list[DamageMark]) -> tuple[DamageSpan, ...]:
        """The damage marks of the scan as time spans, from the records that were read."""
        if not marks:
            return ()
        ids = self.batch.numeric("record_id")
        times = self.batch.numeric("ts")
        order = ids.argsort(kind="stable")
        ids, times = ids[order], times[order]
        spans = []
        for mark in marks:
            if mark.after_id is None:
                after = None if not mark.open_end or not len(ids) else int(times[-1])
                position = 0
            else:
                position = int(ids.searchsorted(mark.after_id, "right"))
                after = int(times[:position].max()) if position else None
            if mark.open_end:
                before = None
            else:
                start = (
                    position
                    if mark.before_id is None
                    else int(ids.searchsorted(mark.before_id, "left"))
                )
                before = int(times[start:].min()) if start < len(ids) else None
            spans.append(DamageSpan(mark.kind, after, before))
        return tuple(dict.fromkeys(spans))

    def _refine_times(self) -> None:
        """Give µs-only times their 100 ns digit from the records' own FILETIMEs."""
        inexact = np.flatnonzero(~self.batch.reading("exact_time"))
        if not len(inexact):
            return
        header_ids = self.batch.reading("header_id")
        exact = record_times(self.file.path)
        column = self.batch.numeric("ts")  # writes land in the batch
        for index in inexact.tolist():
            filetime = exact.get(int(header_ids[index]))
            if filetime is not None and filetime != AMBIGUOUS:
                ns = filetime_to_ns(filetime)  # a Python int: a crafted FILETIME may not fit
                if abs(ns - int(column[index])) < REFINE_TOLERANCE_NS:
                    column[index] = ns

    def _records_seen(self) -> int:
        """How many distinct records (by header id) the parsers gave, rendered or not."""
        if self.unrendered:
            return len(self.header_ids())
        header_ids = self.batch.reading("header_id")
        if len(header_ids) < 2 or bool((header_ids[1:] > header_ids[:-1]).all()):
            return len(header_ids)  # rising, as rs reads a log that never wrapped
        return int(np.unique(header_ids).size)

    def _read_records(self, structure: Structure) -> None:
        if rs_available():
            self.backends.append("evtx")
            source = self.records or rs_records
            self.consume(source(self.file.path, self.on_error, strict=self.strict))
        unopened = any(message.startswith("cannot open") for _, message in self.errors)
        self._report_errors("undecodable_record", "evtx")
        careful = self.records is not None  # chunk by chunk: a cut-off chunk is padded there
        if not careful and structure.truncated and self._records_seen() < structure.records:
            self._read_padded()
        missing = unopened or not rs_available() or self._records_seen() < structure.records
        if missing and self.use_fallback and fallback_available():
            self._fallback()
        elif not rs_available():
            self.problems.append(
                Problem(
                    self.file.display,
                    "no_backend",
                    "no EVTX backend is installed",
                    Severity.ERROR,
                    hint="pip install evtx (or, on Windows beside python-evtx, "
                    "evtxdoc[python-evtx])",
                )
            )

    def _read_padded(self) -> None:
        """A cut-off last chunk: rs skips it whole; a copy padded with zeros to a full chunk
        gives its intact records (the zeros read as the end of the chunk's records)."""
        before = len(self.batch)
        size = self.file.size
        tail = (size - FILE_HEADER_SIZE) % CHUNK_SIZE
        with tempfile.NamedTemporaryFile(suffix=".evtx") as padded:
            with Path(self.file.path).open("rb") as source:
                shutil.copyfileobj(source, padded)
            padded.write(bytes(CHUNK_SIZE - tail))
            padded.flush()
            self.consume(rs_records(padded.name, self.on_error, strict=self.strict))
        self.errors.clear()  # the padding's zeros are not records: their errors say nothing
        recovered = len(self.batch) - before
        if recovered:
            self.problems.append(
                Problem(
                    self.file.display,
                    "truncated_records_recovered",
                    f"{recovered} intact record(s) read from the cut-off last chunk",
                    Severity.INFO,
                )
            )

    def _fallback(self) -> None:
        before = len(self.batch)
        self.backends.append("python-evtx")
        deadline = time.monotonic() + FALLBACK_BUDGET_S
        self.consume(
            python_evtx_records(
                self.file.path, self.header_ids(), self.on_error, self.tick, deadline
            )
        )
        recovered = len(self.batch) - before
        failed = len(self.errors)
        self.errors.clear()
        if recovered or failed:
            self.problems.append(
                Problem(
                    self.file.display,
                    "fallback_used",
                    f"python-evtx recovered {recovered} record(s) the main parser missed"
                    + (
                        f"; {failed} record(s) or chunk(s) it could not read either"
                        if failed
                        else ""
                    ),
                    Severity.INFO,
                )
            )

    def _report_errors(self, kind: str, backend: str) -> None:
        for where, message in self.errors[:MAX_ERRORS_LISTED]:
            self.problems.append(
                Problem(
                    self.file.display,
                    kind,
                    f"{backend}: {message}",
                    Severity.WARNING,
                    where or None,
                )
            )
        if len(self.errors) > MAX_ERRORS_LISTED:
            self.problems.append(
                Problem(
                    self.file.display,
                    kind,
                    f"{len(self.errors) - MAX_ERRORS_LISTED} more records could not be decoded",
                    Severity.WARNING,
                )
            )
        self.errors.clear()


def read_file(
    file: DiscoveredFile,
    strict: bool = False,
    use_fallback: bool = True,
    heartbeat: Callable[[], None] | None = None,
    records: RecordSource | None = None,
) -> FileResult:
    """Read one EVTX file (or an E2E trace, parse/svclog.py); never raises for bad content (that
    becomes problems). `heartbeat` is called as reading advances (the watchdog of
    parse/watchdog.py listens to it); `records` replaces rs over the whole file (the watchdog's
    chunk-by-chunk read)."""
    try:
        if file.kind is FileKind.TRACE:  # an E2E trace (.svclog), not EVTX
            return FileResult(*read_trace(file, heartbeat))
        return _Reader(file, strict, use_fallback, heartbeat, records).read()
    except BaseException as exc:  # pyo3 panics derive from BaseException
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        return failed_read(file, f"{type(exc).__name__}: {exc}")


def failed_read(file: DiscoveredFile, why: str) -> FileResult:
    problem = Problem(
        file.display,
        "unreadable",
        f"file could not be read: {why}",
        Severity.ERROR,
        hint="the rest of the bundle was still read; export this "
        "log again, or report the file to the evtxdoc maintainers",
    )
    return FileResult(
        FileReport(file.display, file.sha256, file.size, 0, (), None, False, (problem,)),
        ColumnBatch(file.display),
    )
