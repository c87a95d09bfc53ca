"""The mutated files that once broke the read (../shared/hostile-evtx, MANIFEST.md): each is read
without raising or hanging, its damage reported, and never fewer records than pyevtx-rs alone
yields on the same bytes (counted in a child that is killed if rs hangs)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from evtxdoc.models import DiscoveredFile, FileKind
from evtxdoc.parse.files import read_files
from evtxdoc.parse.normalize import event_root
from evtxdoc.parse.watchdog import guarded, read_watched
from tests.conftest import SHARED
from tests.fuzz import rs_alone_count

HOSTILE = SHARED / "hostile-evtx"
FILES = sorted(HOSTILE.glob("*.evtx")) if HOSTILE.exists() else []
needs_fork = pytest.mark.skipif(not guarded(), reason="the watchdog needs fork")


def _discovered(path: Path) -> DiscoveredFile:
    data = path.read_bytes()
    return DiscoveredFile(
        path.name, str(path), FileKind.EVTX, len(data), hashlib.sha256(data).hexdigest()
    )


@needs_fork
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_a_hostile_file_gives_every_record_rs_gives(path: Path) -> None:
    result = read_watched(_discovered(path))
    rs, _ = rs_alone_count(path)
    assert len(result.batch) >= rs
    assert result.report.problems, "its damage is reported"
    assert not [p for p in result.report.problems if p.kind in ("unreadable", "read_step_failed")]


@needs_fork
def test_a_parser_that_spins_is_stopped_and_the_file_read_chunk_by_chunk() -> None:
    path = HOSTILE / "parser-spins-after-error.evtx"
    if not path.exists():
        pytest.skip("../shared/hostile-evtx missing")
    result = read_watched(_discovered(path), stall_s=1.0)
    kinds = [p.kind for p in result.report.problems]
    assert kinds[0] == "parser_hang"
    assert len(result.batch) >= 220  # 5 of its 6 chunks answer; rs alone stops at 118
    messages = " ".join(p.message for p in result.report.problems)
    assert "hung on this chunk" in messages


@needs_fork
def test_a_bundle_with_a_spinning_file_still_reads_the_others() -> None:
    if len(FILES) < 3:
        pytest.skip("../shared/hostile-evtx missing")
    results = read_files([_discovered(p) for p in FILES], workers=2)
    assert [r.report.display for r in results] == [p.name for p in FILES]
    by_name = {r.report.display: len(r.batch) for r in results}
    assert by_name["huge-filetime-overflow.evtx"] == 107  # was read as empty
    assert by_name["string-table-offsets-record-dropped.evtx"] == 701


def test_a_file_rs_cannot_open_keeps_its_scan_problems_and_tries_the_fallback() -> None:
    path = HOSTILE / "bad-chunk-count-at-open.evtx"
    if not path.exists():
        pytest.skip("../shared/hostile-evtx missing")
    from evtxdoc.parse.reader import read_file

    report = read_file(_discovered(path)).report
    kinds = {p.kind for p in report.problems}
    assert "unreadable" not in kinds and "truncated_file" in kinds
    assert any("cannot open" in p.message for p in report.problems)


def test_an_event_with_raw_control_characters_or_a_renamed_root_is_kept() -> None:
    system = '"System":{"Provider":{"#attributes":{"Nam\x02":"X"}},"EventID":1}'
    assert event_root('{"Event":{' + system + "}}") == {
        "System": {"Provider": {"#attributes": {"Nam\x02": "X"}}, "EventID": 1}
    }
    assert event_root('{"ent":{' + system + "}}") is not None  # string table renamed the root
    assert event_root('{"ent":{"Other":1}}') is None
    assert event_root("not json") is None


@needs_fork
def test_a_spinning_file_inside_a_batch_costs_only_itself() -> None:
    """Small files share one watched child (parse/watchdog.py batches): when the child stalls
    on one of them, the files before it keep what they read, that file is read alone (and then
    chunk by chunk), and the files after it go on in a new child."""
    from evtxdoc.parse.watchdog import read_watched_batch

    spinning = HOSTILE / "parser-spins-after-error.evtx"
    good = SHARED / "real-evtx" / "system.evtx"
    if not spinning.exists() or not good.exists():
        pytest.skip("../shared/hostile-evtx or real-evtx missing")
    files = [_discovered(good), _discovered(spinning), _discovered(good)]
    alone = read_watched(files[0])
    results = read_watched_batch(files, stall_s=1.0)
    assert [r.report.display for r in results] == ["system.evtx", spinning.name, "system.evtx"]
    assert len(results[0].batch) == len(results[2].batch) == len(alone.batch) > 0
    assert results[1].report.problems[0].kind == "parser_hang"
    assert len(results[1].batch) >= 220
