"""A fuzzing harness for the EVTX read: seeded mutations of real Windows files, each read the
way an analysis reads it (under the watchdog), checked against pyevtx-rs alone on the same bytes.

    python -m tests.fuzz --cases 10000 [--seed 1] [--real ../shared/real-evtx] [--keep DIR]

A case fails when reading raises, takes over `--slow` seconds, or delivers fewer records than
rs alone yields (distinct record numbers, counted in a child that is killed if rs hangs, keeping
what it yielded until then). Failing inputs are written to `--keep` (a temporary folder by
default: they derive from the real files, so they are not committed); a case is reproduced from
its seed (`case_of`), which is how a failure becomes a regression test in tests/test_fuzz.py.
That test also runs a short seeded slice in CI; docs/performance.md ("Hostile input") records
the long runs.
"""

from __future__ import annotations

import hashlib
import random
import struct
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from evtxdoc.models import DiscoveredFile, FileKind
from evtxdoc.parse.watchdog import _in_child, read_watched

FILE_HEADER, CHUNK = 4096, 65536
Mutation = Callable[[bytearray, random.Random], str]


def _flip_bits(data: bytearray, rng: random.Random) -> str:
    count = rng.choice((1, 2, 8, 64))
    for _ in range(count):
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    return f"flip {count} bit(s)"


def _byte_run(data: bytearray, rng: random.Random) -> str:
    at, size = rng.randrange(len(data)), rng.choice((4, 16, 256, 4096))
    value = rng.choice((0x00, 0xFF, 0x41, rng.randrange(256)))
    data[at : at + size] = bytes([value]) * len(data[at : at + size])
    return f"run of {size} x {value:#04x} at {at:#x}"


def _chunks(data: bytearray) -> int:
    return max(1, (len(data) - FILE_HEADER) // CHUNK)


def _chunk_header(data: bytearray, rng: random.Random) -> str:
    base = FILE_HEADER + rng.randrange(_chunks(data)) * CHUNK
    field = rng.choice((8, 16, 24, 32, 40, 44, 48, 52, 120, 124))  # numbers, offsets, CRCs
    if base + field + 8 <= len(data):
        data[base + field : base + field + 8] = rng.randbytes(8)
    return f"chunk header field +{field} at {base:#x}"


def _record_size(data: bytearray, rng: random.Random) -> str:
    starts = list(_record_starts(data))
    if not starts:
        return _flip_bits(data, rng)
    at = rng.choice(starts)
    size = rng.choice((0, 1, 24, 0xFFFF, 0xFFFFFFFF, rng.randrange(1 << 32)))
    data[at + 4 : at + 8] = struct.pack("<I", size)
    return f"record size {size:#x} at {at:#x}"


def _string_offsets(data: bytearray, rng: random.Random) -> str:
    base = FILE_HEADER + rng.randrange(_chunks(data)) * CHUNK
    slot = rng.randrange(64 + 32)  # 64 string-table, 32 template-table offsets at +128
    at = base + 128 + 4 * slot
    if at + 4 <= len(data):
        data[at : at + 4] = struct.pack("<I", rng.choice((0, 1, 0xFFFF, rng.randrange(CHUNK))))
    return f"string/template table slot {slot} at {at:#x}"


def _truncate(data: bytearray, rng: random.Random) -> str:
    cut = rng.randrange(1, len(data))
    del data[cut:]
    return f"truncated at {cut:#x}"


def _duplicate(data: bytearray, rng: random.Random) -> str:
    chunk = rng.randrange(_chunks(data))
    start = FILE_HEADER + chunk * CHUNK
    data[start:start] = data[start : start + CHUNK]
    return f"chunk {chunk} duplicated"


def _zero_region(data: bytearray, rng: random.Random) -> str:
    at, size = rng.randrange(len(data)), rng.choice((512, 4096, CHUNK))
    data[at : at + size] = bytes(len(data[at : at + size]))
    return f"{size} bytes zeroed at {at:#x}"


MUTATIONS: tuple[Mutation, ...] = (
    _flip_bits,
    _byte_run,
    _chunk_header,
    _record_size,
    _string_offsets,
    _truncate,
    _duplicate,
    _zero_region,
)


def _record_starts(data: bytearray) -> Iterator[int]:
    at = data.find(b"\x2a\x2a\x00\x00")
    while at >= 0 and at < len(data) - 8:
        yield at
        at = data.find(b"\x2a\x2a\x00\x00", at + 8)


@dataclass(frozen=True)
class Case:
    seed: int
    source: Path
    what: str
    data: bytes


def cases(real: Path, count: int, seed: int = 1, max_bytes: int = 2 * 1024**2) -> Iterator[Case]:
    """`count` seeded mutations of the real files (smaller than `max_bytes`: a case stays fast)."""
    sources = sorted(p for p in real.glob("*.evtx") if p.stat().st_size <= max_bytes)
    originals = {p: p.read_bytes() for p in sources}
    rng = random.Random(seed)
    for index in range(count):
        source = rng.choice(sources)
        data = bytearray(originals[source])
        what = "; ".join(rng.choice(MUTATIONS)(data, rng) for _ in range(rng.choice((1, 1, 2, 3))))
        yield Case(seed * 1_000_000 + index, source, what, bytes(data))


def case_of(real: Path, seed: int, index: int) -> Case:
    """Case number `index` of the run with `seed` (as `cases` printed it: seed·10⁶ + index)."""
    for number, case in enumerate(cases(real, index + 1, seed)):
        if number == index:
            return case
    raise ValueError(f"no case {index} for seed {seed}")


def _rs_alone(path: str, out: str, beat: Callable[[], None]) -> int:
    """pyevtx-rs alone, resuming after errors as a caller would; distinct record numbers are
    appended to `out` as they come, so a hang still leaves what was yielded."""
    from evtx import PyEvtxParser

    seen: set[int] = set()
    with Path(out).open("a") as sink:
        try:
            records = PyEvtxParser(path).records_json()
        except (RuntimeError, OSError, ValueError):
            return 0
        errors = 0
        while errors < 10_000:
            try:
                for record in records:
                    beat()
                    if record["event_record_id"] not in seen:
                        seen.add(record["event_record_id"])
                        sink.write(f"{record['event_record_id']}\n")
                        sink.flush()
                break
            except (RuntimeError, OSError, ValueError):
                errors += 1
    return len(seen)


def rs_alone_count(path: Path, stall_s: float = 3.0) -> tuple[int, bool]:
    """(distinct records rs alone yields, whether it hung)."""
    with tempfile.NamedTemporaryFile("r", suffix=".ids") as ids:
        outcome, _ = _in_child(_rs_alone, (str(path), ids.name), stall_s, 60.0)
        count = len(set(Path(ids.name).read_text().split()))
    return count, outcome != "done"


@dataclass
class Verdict:
    case: Case
    ours: int
    rs: int
    rs_hung: bool
    seconds: float
    error: str | None

    @property
    def failed(self) -> str | None:
        if self.error:
            return f"raised {self.error}"
        if self.ours < self.rs:
            return f"{self.ours} records, rs alone {self.rs}"
        return None


def run_case(case: Case, folder: Path) -> Verdict:
    path = folder / f"case-{case.seed}.evtx"
    path.write_bytes(case.data)
    file = DiscoveredFile(
        path.name, str(path), FileKind.EVTX, len(case.data), hashlib.sha256(case.data).hexdigest()
    )
    start = time.monotonic()
    error = None
    ours = 0
    try:
        ours = len(read_watched(file).batch)
    except Exception as exc:  # the harness exists to find these
        error = f"{type(exc).__name__}: {exc}"
    seconds = time.monotonic() - start
    rs, hung = rs_alone_count(path)
    path.unlink()
    return Verdict(case, ours, rs, hung, seconds, error)
