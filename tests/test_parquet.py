"""analyze --events-to DIR (report/parquet.py): every event as Parquet, one file per log, written
where the log is read — the same rows, fields, messages and attempts as the CSV export."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from evtxdoc import pipeline
from evtxdoc.cli import app
from evtxdoc.models import Analysis, AnalyzeOptions
from evtxdoc.parse.times import format_time_ns
from evtxdoc.report import events
from evtxdoc.report.parquet import ATTEMPTS, EVENTS, SUPPORTING, part_path
from tests.conftest import ROOT

pytest.importorskip("pyarrow")

MULTI = ROOT / "sample_logs" / "multi-device-two-connectors" / "bundle"


def exported(analysis: Analysis) -> list[tuple[Any, ...]]:
    """The CSV export's rows (before spreadsheet quoting), as sortable tuples."""
    claimed = events.attempt_ids(analysis.timeline, analysis.correlation)
    return sorted(_row(item) for item in events.rows(analysis.timeline, claimed))


def _row(item: dict[str, Any]) -> tuple[Any, ...]:
    fields = item["fields"]
    text = fields if isinstance(fields, str) else events._dumps(fields).decode()
    return tuple(str(item[c]) if c != "fields" else text for c in events.EXPORT_COLUMNS)


def written(folder: Path) -> list[tuple[Any, ...]]:
    frame = pd.concat([pd.read_parquet(p) for p in sorted((folder / EVENTS).glob("*.parquet"))])
    out = []
    for record in frame.astype(object).where(frame.notna(), None).to_dict("records"):
        record["ts"] = format_time_ns(record["ts"].value) if record["ts"] is not None else None
        out.append(_row(record))
    return sorted(out)


@pytest.mark.parametrize("cut", [False, True], ids=["whole", "cut"])
def test_the_parquet_files_hold_the_csv_s_rows_and_attempts(tmp_path: Path, cut: bool) -> None:
    whole = pipeline.analyze([MULTI], AnalyzeOptions(all_events=True))
    options = AnalyzeOptions(all_events=not cut, sample_events=0, events_to=str(tmp_path))
    analysis = pipeline.analyze([MULTI], options)
    assert analysis.partial is cut
    rows = written(tmp_path)
    assert rows == exported(whole)
    assert len(rows) == whole.events > len(analysis.timeline) if cut else True
    assert sum(1 for r in rows if r[events.EXPORT_COLUMNS.index("attempt")] != "None") > 100
    attempts = pd.read_parquet(tmp_path / ATTEMPTS)
    assert sorted(attempts["attempt"]) == sorted(a.id for a in whole.correlation.attempts)


def test_each_log_gets_its_own_file_named_after_it(tmp_path: Path) -> None:
    analysis = pipeline.analyze([MULTI], AnalyzeOptions(events_to=str(tmp_path)))
    with_events = [r.display for r in analysis.file_reports if r.records]
    files = sorted((tmp_path / EVENTS).glob("*.parquet"))
    files.remove(tmp_path / EVENTS / SUPPORTING)  # the registry dumps' and Autopilot JSONs'

    assert len(files) == len(with_events) > 5
    assert sorted(part_path(tmp_path, d) for d in with_events) == files
    assert part_path("x", "a/System.evtx") != part_path("x", "b/System.evtx")
    assert not list((tmp_path / EVENTS).glob("*.tmp"))


def test_the_cli_writes_parquet_and_refuses_to_pretend_it_is_redacted(tmp_path: Path) -> None:
    target = tmp_path / "pq"
    ran = CliRunner().invoke(
        app, ["analyze", str(MULTI), "--events-to", str(target), "-o", str(tmp_path / "r.json")]
    )
    assert ran.exit_code == 0, ran.output
    assert (target / ATTEMPTS).is_file() and list((target / EVENTS).glob("*.parquet"))
    ran = CliRunner().invoke(
        app, ["analyze", str(MULTI), "--events-to", str(target), "--redact", "-f", "json"]
    )
    assert ran.exit_code == 2
    assert "--redact does not apply to --events-to" in ran.output


def test_a_second_export_to_the_same_folder_replaces_the_first(tmp_path: Path) -> None:
    other = ROOT / "sample_logs" / "healthy-hybrid" / "bundle"
    pipeline.analyze([MULTI], AnalyzeOptions(events_to=str(tmp_path)))
    (tmp_path / "notes.txt").write_text("mine")
    analysis = pipeline.analyze([other], AnalyzeOptions(all_events=True, events_to=str(tmp_path)))
    assert written(tmp_path) == exported(analysis)
    assert (tmp_path / "notes.txt").read_text() == "mine"
