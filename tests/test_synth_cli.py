"""`evtxdoc synth` on the command line: scenarios, layouts, errors, --scale."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from evtxdoc import pipeline
from evtxdoc.cli import app
from evtxdoc.synth.scale import EVENTS_PER_DEVICE
from tests.conftest import ROOT

SCENARIO = ROOT / "sample_logs" / "healthy-hybrid" / "scenario.yaml"
runner = CliRunner()


def test_layout_override_writes_a_live_copy(tmp_path: Path) -> None:
    result = runner.invoke(app, ["synth", str(SCENARIO), "-o", str(tmp_path), "--layout", "live"])
    assert result.exit_code == 0, result.output
    logs = tmp_path / "bundle" / "DESKTOP-4F7Q2LM" / "winevt" / "Logs"
    names = {p.name for p in logs.iterdir()}
    assert "Microsoft-Windows-User Device Registration%4Admin.evtx" in names
    assert "System.evtx" in names


def test_unknown_fault_names_the_file_and_the_entry(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"devices": [{"attempts": [{"fault": "gremlins"}]}]}))
    result = runner.invoke(app, ["synth", str(bad), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "bad.yaml: devices[0].attempts[0]" in result.output
    assert "gremlins" in result.output and "no_connector" in result.output


def test_scale_writes_a_fleet_bundle_that_reads_clean(tmp_path: Path) -> None:
    result = runner.invoke(app, ["synth", str(SCENARIO), "-o", str(tmp_path), "--scale", "4000"])
    assert result.exit_code == 0, result.output
    analysis = pipeline.analyze([tmp_path / "bundle"])
    assert analysis.problems == ()
    assert 3200 <= len(analysis.timeline) <= 4800  # about the number asked for
    expected = yaml.safe_load((tmp_path / "expected.yaml").read_text())
    devices = 4000 // EVENTS_PER_DEVICE
    assert len(expected["attempts"]) == devices + devices // 6  # a retry for every sixth
    assert analysis.timeline["host"].nunique() > 100  # OOBE names and final names
