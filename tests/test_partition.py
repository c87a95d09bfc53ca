"""Partitioned analysis (evtxdoc/partition.py): each file read is cut down to the rows something
reads plus a skeleton of every event, and the report is the one of the whole timeline."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from evtxdoc import pipeline
from evtxdoc.cli import app
from evtxdoc.errors import InternalError
from evtxdoc.models import Analysis, AnalyzeOptions
from evtxdoc.parse.payload import decode_fields
from evtxdoc.partition import Keep, _earliest
from evtxdoc.report.formats import Format, document, write
from evtxdoc.report.redact import could_name_someone, for_analysis, names_someone
from tests.conftest import ROOT, SHARED

SAMPLES = sorted((ROOT / "sample_logs").glob("*/bundle"))
WHOLE = AnalyzeOptions(all_events=True)
CUT = AnalyzeOptions(all_events=False, sample_events=0)  # every row not read is dropped


def comparable(analysis: Analysis, redacted: bool = False) -> str:
    """The JSON document (redacted if asked) without its timings."""
    data = document(analysis, for_analysis(analysis) if redacted else None)
    data = json.loads(json.dumps(data, default=str))
    data["summary"].pop("seconds", None)
    return json.dumps(data, sort_keys=True, indent=1)


def both(bundle: Path, cut: AnalyzeOptions = CUT) -> tuple[Analysis, Analysis]:
    return pipeline.analyze([bundle], WHOLE), pipeline.analyze([bundle], cut)


@pytest.mark.parametrize("bundle", SAMPLES, ids=lambda p: p.parent.name)
def test_a_sample_cut_down_to_what_is_read_gives_the_whole_timeline_s_report(
    bundle: Path,
) -> None:
    whole, cut = both(bundle)
    assert cut.partial and not whole.partial
    assert len(cut.timeline) < len(whole.timeline)  # rows were dropped …
    assert cut.events == whole.events == len(whole.timeline)  # … and every event still counts
    assert comparable(cut) == comparable(whole)
    assert comparable(cut, redacted=True) == comparable(whole, redacted=True)


@pytest.mark.parametrize("folder", ["real-evtx", "hostile-evtx"])
def test_real_and_hostile_logs_cut_down_give_the_same_report(folder: str) -> None:
    bundle = SHARED / folder
    if not bundle.is_dir():
        pytest.skip(f"{bundle} is not here")
    whole, cut = both(bundle)
    assert len(cut.timeline) < len(whole.timeline) / 2
    assert comparable(cut) == comparable(whole)
    assert comparable(cut, redacted=True) == comparable(whole, redacted=True)


def test_a_log_collected_twice_is_de_duplicated_across_the_parts(tmp_path: Path) -> None:
    # the same events in different bytes (chunk 0's string cache is damaged in the second copy)
    real = SHARED / "real-evtx"
    if not real.is_dir():
        pytest.skip(f"{real} is not here")
    for name in ("security.evtx", "security_bad_string_cache.evtx"):
        shutil.copy(real / name, tmp_path / name)
    whole, cut = both(tmp_path)
    assert [r.duplicate_events for r in cut.file_reports] == [0, 2261]
    assert [r.duplicate_events for r in whole.file_reports] == [0, 2261]
    assert cut.events == len(whole.timeline) == 2261
    assert comparable(cut) == comparable(whole)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 devices of about 500 events each (noise in the real mix), logs merged per channel."""
    out = tmp_path_factory.mktemp("fleet")
    made = CliRunner().invoke(
        app,
        ["synth", str(ROOT / "sample_logs" / "healthy-hybrid" / "scenario.yaml"),
         "--scale", "20000", "--devices", "40", "-o", str(out)],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    return out / "bundle"


def test_a_fleet_keeps_a_fraction_of_its_rows_and_the_same_report(fleet: Path) -> None:
    whole, cut = both(fleet, AnalyzeOptions(all_events=False))  # the default sample
    assert len(cut.timeline) < 0.5 * len(whole.timeline)
    assert cut.events == len(whole.timeline) > 15_000
    assert len(cut.correlation.attempts) == len(whole.correlation.attempts) >= 40  # type: ignore[union-attr]
    assert comparable(cut) == comparable(whole)


def test_auto_keeps_every_row_below_the_threshold_and_cuts_above(fleet: Path) -> None:
    small = pipeline.analyze([fleet], AnalyzeOptions())
    assert not small.partial  # a few MB of logs: every row, as before
    large = pipeline.analyze([fleet], AnalyzeOptions(partition_bytes=1024))
    assert large.partial and len(large.timeline) < small.events


def test_the_cli_s_evidence_mode_writes_the_same_json_and_exports_every_event(
    tmp_path: Path,
) -> None:
    bundle = ROOT / "sample_logs" / "multi-device-two-connectors" / "bundle"
    out: dict[str, Any] = {}
    for events in ("all", "evidence"):
        target = tmp_path / f"{events}.json"
        args = ["analyze", str(bundle), "--events", events, "-o", str(target)]
        ran = CliRunner().invoke(app, args)
        assert ran.exit_code == 0, ran.output
        data = json.loads(target.read_text())
        data["summary"].pop("seconds", None)
        out[events] = data
    assert out["all"] == out["evidence"]
    csv = tmp_path / "events.csv"
    ran = CliRunner().invoke(app, ["analyze", str(bundle), "--events", "evidence", "-o", str(csv)])
    assert ran.exit_code == 0, ran.output
    rows = len(csv.read_text(encoding="utf-8").splitlines()) - 1
    assert rows == pipeline.analyze([bundle], WHOLE).events  # csv keeps every event


def test_an_export_of_a_cut_analysis_is_refused_not_silently_short(tmp_path: Path) -> None:
    cut = pipeline.analyze([ROOT / "sample_logs" / "healthy-hybrid" / "bundle"], CUT)
    with (tmp_path / "events.csv").open("wb") as out, pytest.raises(InternalError, match="every"):
        write(cut, Format.csv, out)


def test_the_earliest_rows_keep_everything_tied_with_the_last() -> None:
    ts = pd.to_datetime([5, 1, 3, 3, 9, 3], unit="ns", utc=True)
    frame = pd.DataFrame({"ts": ts})
    rows = np.array([True, True, True, True, True, False])
    assert _earliest(frame, rows, 2).tolist() == [False, True, True, True, False, False]
    assert _earliest(frame, rows, 0).tolist() == [False] * 6
    assert _earliest(frame, rows, 9).tolist() == rows.tolist()


def test_each_file_keeps_its_share_of_the_sample_by_size() -> None:
    keep = Keep(sample=5000, total_bytes=1_000_000)
    assert keep.share(500_000) == 2500
    assert keep.share(10) == 1  # a small file still shows
    assert Keep(sample=0, total_bytes=10).share(10) == 0


@pytest.mark.parametrize("folder", ["real-evtx", "sample_logs"])
def test_the_quick_byte_test_never_misses_a_payload_that_names_someone(folder: str) -> None:
    """`could_name_someone` lets the cut skip decoding most payloads; it must be a superset."""
    bundle = SHARED / folder if folder == "real-evtx" else ROOT / folder
    if not bundle.is_dir():
        pytest.skip(f"{bundle} is not here")
    frame = pipeline.analyze([bundle], WHOLE).timeline
    seen: set[tuple[bytes, str]] = set()
    naming = 0
    for payload, channel in zip(frame["payload"], frame["channel"], strict=True):
        if not isinstance(payload, bytes) or (payload, channel) in seen:
            continue
        seen.add((payload, channel))
        if names_someone(decode_fields(payload, channel)):
            naming += 1
            assert could_name_someone(payload), payload[:300]
    assert naming > 10  # the test saw payloads that name someone


def test_the_quick_byte_test_lets_unicode_through() -> None:
    """`re.IGNORECASE` folds `ſ` to `s`: a key `Uſer` names someone, with no ASCII word in it."""
    payload = '{"EventData":{"Uſer":"alice"}}'.encode()
    assert names_someone(decode_fields(payload))
    assert could_name_someone(payload)
    assert not could_name_someone(b'{"EventData":{"Status":"alice"}}')
