"""Every real Windows-written file is ingested; nothing is lost that pyevtx-rs alone yields."""

from __future__ import annotations

import evtx
import orjson
import pytest

from evtxdoc import pipeline, timeline
from evtxdoc.models import Severity

from .conftest import REAL, real, real_files

# Files that MANIFEST.md describes as dirty, torn, wrapped or corrupt.
DAMAGED = {
    "system.evtx": "stale_chunk_count",
    "sysmon.evtx": "bad_chunk",
    "2-vss_7-System.evtx": "stale_chunk_count",
    "E_Windows_system32_winevt_logs_Microsoft-Windows-Shell-Core%4Operational.evtx": (
        "stale_chunk_count"
    ),
    "Microsoft-Windows-HelloForBusiness%4Operational.evtx": "torn_record",
    "Microsoft-Windows-LanguagePackSetup%4Operational.evtx": "torn_record",
    "2-vss_0-Microsoft-Windows-TerminalServices-RemoteConnectionManager%4Operational.evtx": (
        "torn_record"
    ),
    "sample_with_a_bad_chunk_magic.evtx": "bad_chunk",
    "sample-with-zero-data-size-event.evtx": "bad_record",
    "security_bad_string_cache.evtx": "bad_chunk_header_crc",
}


def rs_unique_record_ids(path) -> set[int]:
    ids: set[int] = set()
    records = evtx.PyEvtxParser(str(path)).records_json()
    while True:
        try:
            record = next(records)
        except StopIteration:
            return ids
        except RuntimeError:
            continue
        system = orjson.loads(record["data"])["Event"]["System"]
        if system.get("EventRecordID") is not None:
            ids.add(int(system["EventRecordID"]))


@pytest.fixture(scope="module")
def whole_folder():
    if not REAL.exists():
        pytest.skip("shared/real-evtx not present")
    return pipeline.analyze([REAL])


@pytest.mark.parametrize("path", real_files(), ids=lambda p: p.name)
def test_real_file_yields_at_least_what_rs_yields(whole_folder, path):
    report = next(r for r in whole_folder.file_reports if r.display == str(path))
    rows = whole_folder.timeline
    mine = set(rows.loc[rows["source_file"] == str(path), "record_id"])
    # events of this file dropped as duplicates of an earlier file are counted in the report
    assert report.records >= len(rs_unique_record_ids(path))
    assert len(mine) + report.duplicate_events == report.records
    assert report.format_version in ("3.1", "3.2")


@pytest.mark.parametrize("name,kind", sorted(DAMAGED.items()))
def test_damaged_real_file_records_its_problem(whole_folder, name, kind):
    path = real(name)
    kinds = {p.kind for p in whole_folder.problems if p.source == str(path)}
    assert kind in kinds, kinds


def test_clean_real_file_has_no_problems(whole_folder):
    path = real("Security_with_size_t.evtx")
    assert [p for p in whole_folder.problems if p.source == str(path)] == []


def test_problems_are_located(whole_folder):
    torn = [p for p in whole_folder.problems if p.kind == "torn_record"]
    assert torn and all(p.where and p.where.startswith("chunk ") for p in torn)
    assert all(p.severity is Severity.WARNING for p in torn)


def test_identical_events_in_two_files_are_kept_once():
    # same events, different bytes (chunk 0's string cache is damaged in the second copy)
    analysis = pipeline.analyze([real("security.evtx"), real("security_bad_string_cache.evtx")])
    first, second = analysis.file_reports
    assert len(analysis.timeline) == first.records == 2261
    assert first.duplicate_events == 0
    assert second.duplicate_events == second.records == 2261


def test_timeline_matches_its_declared_columns_and_dtypes(whole_folder):
    for frame in (whole_folder.timeline, timeline.build_frame([])):
        assert tuple(frame.columns) == timeline.COLUMNS
        assert {c: str(t) for c, t in frame.dtypes.items()} == timeline.DTYPES


def test_per_host_views_split_the_timeline(whole_folder):
    views = timeline.by_host(whole_folder.timeline)
    assert sum(len(v) for v in views.values()) == len(whole_folder.timeline)
    assert set(views["DESKTOP-2KGM189"]["channel"]) == {
        "System",
        "Microsoft-Windows-Sysmon/Operational",
    }


def test_timeline_is_sorted_and_typed(whole_folder):
    frame = whole_folder.timeline
    assert frame["ts"].dropna().is_monotonic_increasing
    assert str(frame["ts"].dtype) == "datetime64[ns, UTC]"
    assert frame["host"].dtype == "category" and frame["channel"].dtype == "category"
    assert frame["event_id"].dtype == "int32"
