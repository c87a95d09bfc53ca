"""Reading a file under a watchdog: a parser that hangs or dies costs that file's bad chunk, not
the analysis.

pyevtx-rs can spin forever inside one call while holding the GIL (issue 18: after "buffer too
small for cursor.position" the resumed iterator never returns), so neither a thread nor a signal
can stop it; a Rust abort (an allocation failure, a panic across the FFI) ends the process. So
each file is read in a child process (fork: no imports to repeat) that beats a heartbeat as it
advances. When the heartbeat stops for `STALL_S`, the file's budget runs out, or the child dies,
the child is killed and the file is read again *carefully*: each chunk slot is copied into a
one-chunk file and parsed by rs in its own short-lived child with a fixed deadline, and the
records of every chunk that answered are normalized here. Only the chunk that hung is lost, and
a problem says so. Where `fork` does not exist (Windows), files are read in-process, unguarded.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from evtxdoc.models import DiscoveredFile, FileKind, Problem, Severity
from evtxdoc.parse.backends import RawRecord, rs_records
from evtxdoc.parse.reader import FileResult, failed_read, read_file
from evtxdoc.parse.structure import CHUNK_SIZE, FILE_HEADER_SIZE

STALL_S = 4.0  # no heartbeat for this long: the parser is stuck (a healthy one beats every ~40 ms)
CHUNK_DEADLINE_S = 3.0  # one 64 KiB chunk takes rs < 50 ms
BUDGET_BASE_S, BUDGET_PER_MB_S = 60.0, 2.0  # a whole file, even while it progresses
MEMORY_HEADROOM = 3 * 1024**3  # address space a reading child may add to what it inherited,
MEMORY_PER_BYTE = 3  # plus this much per byte it reads: the file's buffer, its columns, the
# pickle sent back (a 2.4 GB log needs ~6 GB; a fixed 3 GB cap sent it down the slow careful path)
_POLL_S = 0.05

ErrorSink = Callable[[str, str], None]
Finish = Callable[[FileResult], FileResult]  # a read file's result cut down (partition.Keep)
Arrive = Callable[[int, FileResult], FileResult]  # (file index, result) → what stays of it


def guarded() -> bool:
    """Whether reads run under the watchdog here (a `fork` start method is needed)."""
    return "fork" in multiprocessing.get_all_start_methods() and os.environ.get(
        "EVTXDOC_WATCHDOG", "1"
    ) not in ("0", "off")


def read_watched(
    file: DiscoveredFile,
    strict: bool = False,
    use_fallback: bool = True,
    *,
    stall_s: float = STALL_S,
    keep: Finish | None = None,
) -> FileResult:
    """`read_file` in a watched child; on a hang, an overrun or a crash, the careful read.
    `keep` cuts the result down where it was read (evtxdoc/partition.py)."""
    if not guarded():
        return _kept(read_file(file, strict, use_fallback), keep)
    budget = BUDGET_BASE_S + BUDGET_PER_MB_S * file.size / 1024**2
    outcome, value = _in_child(
        _read_child, (file, strict, use_fallback), stall_s, budget, reads=file.size, finish=keep
    )
    if outcome == "done":
        assert isinstance(value, FileResult)
        return value
    why = {
        "stalled": f"the parser stopped making progress for {stall_s:.0f} s",
        "overrun": f"reading took longer than its {budget:.0f} s budget",
        "died": f"the reading process died ({value})",
    }[outcome]
    if file.kind is FileKind.TRACE:  # no chunks to read one by one: the trace is lost
        return _kept(failed_read(file, why), keep)
    result = read_file(file, strict, use_fallback=False, records=_chunk_by_chunk)
    problem = Problem(
        file.display,
        "parser_hang" if outcome != "died" else "parser_crash",
        f"{why}; the file was read again chunk by chunk, each under a deadline "
        f"({len(result.batch)} record(s) kept)",
        Severity.WARNING,
        hint="the records of chunks that answered are all kept; a chunk that hung again is "
        "named below. Report the file to the evtxdoc maintainers",
    )
    report = replace(result.report, problems=(problem, *result.report.problems))
    return _kept(replace(result, report=report), keep)


def _kept(result: FileResult, keep: Finish | None) -> FileResult:
    return keep(result) if keep else result


BATCH_MAX_FILES = 64  # small files read one after another in one watched child
BATCH_MAX_BYTES = 16 * 1024**2  # (a fork per file cost a 400-device fleet 3x its time)


def batches(files: list[DiscoveredFile]) -> list[list[DiscoveredFile]]:
    """Files grouped for reading: consecutive small ones together, a large one alone."""
    out: list[list[DiscoveredFile]] = []
    size = 0
    for file in files:
        if (
            not out
            or file.size > BATCH_MAX_BYTES
            or size + file.size > BATCH_MAX_BYTES
            or len(out[-1]) >= BATCH_MAX_FILES
            or out[-1][-1].size > BATCH_MAX_BYTES
        ):
            out.append([])
            size = 0
        out[-1].append(file)
        size += file.size
    return out


def read_watched_batch(
    files: list[DiscoveredFile],
    strict: bool = False,
    use_fallback: bool = True,
    *,
    stall_s: float = STALL_S,
    keep: Finish | None = None,
) -> list[FileResult]:
    """Several files read one after another in one watched child, each result sent as it is
    done. When the child stalls, overruns or dies, the file it was on is read alone under
    `read_watched` (and so carefully, if it hangs again) and the rest go on in a new child:
    a bad file costs what it costs alone, and small files cost one fork between them."""
    if len(files) == 1 or not guarded():
        return [read_watched(f, strict, use_fallback, stall_s=stall_s, keep=keep) for f in files]
    results: list[FileResult] = []
    while len(results) < len(files):
        rest = files[len(results) :]
        budget = BUDGET_BASE_S + BUDGET_PER_MB_S * sum(f.size for f in rest) / 1024**2
        outcome, value = _in_child(
            _read_batch_child,
            (rest, strict, use_fallback),
            stall_s,
            budget,
            many=True,
            reads=max(f.size for f in rest),  # one file at a time: the largest bounds it
            finish=keep,
        )
        results.extend(value)
        if outcome != "done" and len(results) < len(files):
            results.append(
                read_watched(files[len(results)], strict, use_fallback, stall_s=stall_s, keep=keep)
            )
    return results


def _read_batch_child(
    files: list[DiscoveredFile], strict: bool, use_fallback: bool, beat: Any, send: Any
) -> None:
    for file in files:
        send(read_file(file, strict, use_fallback, heartbeat=beat))


def _read_child(file: DiscoveredFile, strict: bool, use_fallback: bool, beat: Any) -> FileResult:
    return read_file(file, strict, use_fallback, heartbeat=beat)


def _chunk_by_chunk(path: str, on_error: ErrorSink, *, strict: bool = False) -> Iterator[RawRecord]:
    """rs's records of every chunk slot, each slot parsed alone in a child with a deadline."""
    size = Path(path).stat().st_size
    slots = max(0, -(-(size - FILE_HEADER_SIZE) // CHUNK_SIZE))
    with Path(path).open("rb") as source, tempfile.TemporaryDirectory(prefix="evtxdoc-") as tmp:
        head = source.read(FILE_HEADER_SIZE)
        for index in range(slots):
            chunk = source.read(CHUNK_SIZE)
            if chunk[:8] != b"ElfChnk\x00":
                continue  # the structural scan names it
            one = Path(tmp) / f"chunk{index}.evtx"
            one.write_bytes(head + chunk + bytes(CHUNK_SIZE - len(chunk)))
            outcome, value = _in_child(
                _chunk_child, (str(one), strict), CHUNK_DEADLINE_S, CHUNK_DEADLINE_S
            )
            if outcome != "done":
                state = "died" if outcome == "died" else "hung"
                on_error(
                    f"chunk {index}", f"the parser {state} on this chunk: its records are lost"
                )
                continue
            records, errors = value
            for where, message in errors:
                on_error(f"chunk {index}" + (f", {where}" if where else ""), message)
            yield from records


def _chunk_child(path: str, strict: bool, beat: Any) -> tuple[list[RawRecord], list[Any]]:
    errors: list[tuple[str, str]] = []
    records = list(rs_records(path, lambda where, message: errors.append((where, message))))
    return records, errors


def _in_child(
    work: Callable[..., Any],
    args: tuple[Any, ...],
    stall_s: float,
    budget_s: float,
    *,
    many: bool = False,
    reads: int = 0,
    finish: Finish | None = None,
) -> tuple[str, Any]:
    """Run `work(*args, beat)` in a forked child, its memory capped for `reads` bytes of input
    → ("done", value) or ("stalled" | "overrun" | "died", detail). With `many`,
    `work(*args, beat, send)` sends several values, and the value is the list of those received
    (what arrived before a failure included). `finish` is applied to each value in the child
    before it is sent, as part of sending. The child is always gone when this returns."""
    context = multiprocessing.get_context("fork")
    counter = context.RawValue("Q", 0)
    receive, send = context.Pipe(duplex=False)
    headroom = MEMORY_HEADROOM + MEMORY_PER_BYTE * reads
    child = context.Process(
        target=_child_main, args=(send, counter, work, args, many, headroom, finish), daemon=True
    )
    child.start()
    send.close()
    start = last_change = time.monotonic()
    seen = 0
    received: list[Any] = []

    def failed(outcome: str, detail: Any) -> tuple[str, Any]:
        return outcome, received if many else detail

    try:
        while True:
            if receive.poll(_POLL_S):
                try:
                    message = receive.recv()
                except (EOFError, OSError):
                    child.join(1)
                    return failed("died", f"exit code {child.exitcode}")
                if not many:
                    return "done", message
                if isinstance(message, str) and message == _DONE:
                    return "done", received
                received.append(message)
                last_change = time.monotonic()
                continue
            now = time.monotonic()
            if counter.value != seen or counter.value & SENDING:
                seen, last_change = counter.value, now
            if not child.is_alive() and not receive.poll(0):
                return failed("died", f"exit code {child.exitcode}")
            if now - last_change > stall_s:
                return failed("stalled", None)
            if now - start > budget_s:
                return failed("overrun", None)
    finally:
        receive.close()
        if child.is_alive():
            child.kill()
        child.join()


_DONE = "evtxdoc-batch-done"
# Set in the heartbeat while the child cuts down (`finish`), pickles and sends a result: a
# 4M-event file's result takes seconds to pickle with no beat (the 2.4 GB log of a 10M-event fleet
# was taken for a hung parser). That is our code, not a parser: the file's budget still bounds it.
SENDING = 1 << 62


def _child_main(
    send: Connection,
    counter: Any,
    work: Callable[..., Any],
    args: tuple[Any, ...],
    many: bool = False,
    headroom: int = MEMORY_HEADROOM,
    finish: Finish | None = None,
) -> None:
    die_with_parent()
    _limit_memory(headroom)

    def beat() -> None:
        counter.value += 1

    def sent(value: Any) -> None:
        counter.value |= SENDING
        send.send(finish(value) if finish and value is not _DONE else value)
        counter.value = (counter.value & ~SENDING) + 1

    try:
        if many:
            work(*args, beat, sent)
            value: Any = _DONE
        else:
            value = work(*args, beat)
    except BaseException as exc:  # read_file never raises for content; this is a bug
        send.close()
        raise SystemExit(f"{type(exc).__name__}: {exc}") from None
    sent(value)
    send.close()


def die_with_parent() -> None:
    """Ask Linux to kill this process when the thread that started it ends (PR_SET_PDEATHSIG):
    a child never outlives an analysis that was killed, nor an analysis its server."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: children end with their work, bounded by the watchdog


def _limit_memory(headroom: int = MEMORY_HEADROOM) -> None:
    """Cap the child's address space at what it inherited plus `headroom`, so a crafted file
    that makes a parser allocate without end ends this child, not the machine."""
    try:
        import resource  # POSIX only, as is fork

        pages = int(Path("/proc/self/statm").read_text().split()[0])
        inherited = pages * os.sysconf("SC_PAGE_SIZE")
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = inherited + headroom
        if hard == resource.RLIM_INFINITY or limit < hard:
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, OSError, ValueError):
        pass
