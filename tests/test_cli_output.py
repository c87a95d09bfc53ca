"""The CLI's output options behave as in the tools support engineers know (Hayabusa, Chainsaw):
`-o -` is standard output, `--version` works, a suffix that names no format or a folder that
does not exist is refused before the analysis with exit 2, `--tz local` is this machine's zone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evtxdoc import __version__
from evtxdoc.cli import app
from evtxdoc.report.clock import display_zone

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_logs" / "access-denied-legacy" / "bundle"
runner = CliRunner()


def test_dash_writes_to_standard_output_not_a_file_named_dash(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["analyze", str(SAMPLE), "-o", "-", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["schema_version"]
    assert not (tmp_path / "-").exists()
    events = runner.invoke(app, ["events", str(SAMPLE), "-o", "-", "--id", "30132"])
    assert events.exit_code == 0 and not (tmp_path / "-").exists()
    assert all(json.loads(line)["event_id"] == 30132 for line in events.stdout.splitlines())


def test_version_is_a_flag_too() -> None:
    result = runner.invoke(app, ["--version"])
    assert (result.exit_code, result.stdout.strip()) == (0, __version__)


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("report.pdf", "cannot tell the format of 'report.pdf'"),
        ("missing/dir/r.html", "the output's folder does not exist"),
    ],
)
def test_an_output_that_cannot_be_written_is_refused_first(tmp_path, name, says) -> None:
    target = tmp_path / name
    result = runner.invoke(app, ["analyze", str(SAMPLE), "-o", str(target)])
    assert result.exit_code == 2
    assert says in result.output and "Traceback" not in result.output
    assert not target.exists()


def test_a_format_given_overrides_the_suffix(tmp_path) -> None:
    target = tmp_path / "report.data"
    result = runner.invoke(app, ["analyze", str(SAMPLE), "-o", str(target), "-f", "json"])
    assert result.exit_code == 0 and json.loads(target.read_text())["schema_version"]


def test_local_is_the_machines_zone(monkeypatch) -> None:
    monkeypatch.setenv("TZ", "Europe/Paris")
    assert display_zone("local").name == "Europe/Paris"
    monkeypatch.setenv("TZ", "")
    monkeypatch.setattr("evtxdoc.report.clock.local_zone_name", lambda: None)
    with pytest.raises(Exception, match="cannot tell this machine's time zone"):
        display_zone("local")


def test_the_terminal_shows_a_fixs_emphasis_not_its_asterisks() -> None:
    result = runner.invoke(app, ["analyze", str(SAMPLE), "-f", "terminal"])
    assert result.exit_code == 0
    assert "Delegate" in result.stdout or "OU" in result.stdout  # a fix is shown
    assert "**" not in result.stdout and "*Create selected" not in result.stdout


def test_the_header_counts_machines_as_coverage_does() -> None:
    bundle = ROOT / "sample_logs" / "multi-device-two-connectors" / "bundle"
    result = runner.invoke(app, ["analyze", str(bundle), "-f", "terminal"], env={"COLUMNS": "200"})
    assert "5 machine(s) (7 host names)" in result.stdout.splitlines()[0]


def test_the_terminal_counts_the_files_that_need_no_look() -> None:
    bundle = ROOT / "sample_logs" / "multi-device-two-connectors" / "bundle"
    result = runner.invoke(app, ["analyze", str(bundle), "-f", "terminal"], env={"COLUMNS": "200"})
    out = result.stdout
    assert "Files: 23 log file(s) read, 5 archive(s) unpacked, 8 supporting file(s) kept" in out
    assert "Files to look at" in out and "ETW trace" in out  # the skipped .etl is listed
    assert "same content as sample_logs" not in out  # duplicates are counted, not listed


def test_a_fleet_bundle_reports_its_progress(tmp_path) -> None:
    from evtxdoc.synth.scale import write_scaled

    heard: list[tuple[str, int, int]] = []
    write_scaled(tmp_path, 3000, progress=lambda *step: heard.append(step))
    stages = {stage for stage, _, _ in heard}
    assert stages == {"devices", "files"}
    assert all(done <= total for _, done, total in heard)
    assert heard[-1][1] == heard[-1][2]  # the last step says it is done
