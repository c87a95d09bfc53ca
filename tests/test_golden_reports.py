"""Snapshot tests: the JSON document and the terminal summary of every sample scenario.

A change to either output shows up here as a diff. When the change is intended, regenerate:
`EVTXDOC_UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_golden_reports.py` and review the diff
of tests/golden/ before committing it.
"""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

import pytest

from evtxdoc import pipeline
from evtxdoc.report.formats import Format, OutputOptions, document, write

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).parent / "golden"
SAMPLES = sorted(p.parent.name for p in (ROOT / "sample_logs").glob("*/bundle"))
UPDATE = os.environ.get("EVTXDOC_UPDATE_GOLDEN") == "1"


def _outputs(name: str, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    monkeypatch.chdir(ROOT)  # paths in the outputs stay relative to the repository
    analysis = pipeline.analyze([Path("sample_logs") / name / "bundle"])
    data = document(analysis)
    data["summary"]["seconds"] = 0.0  # the one value that varies between runs
    text = io.BytesIO()
    write(analysis, Format.terminal, text, OutputOptions(width=100))
    terminal = re.sub(
        r"problem\(s\), [0-9.]+ s;", "problem(s), 0.0 s;", text.getvalue().decode("utf-8")
    )
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n", terminal


@pytest.mark.parametrize("name", SAMPLES)
def test_json_and_terminal_output_match_the_snapshot(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    json_text, terminal = _outputs(name, monkeypatch)
    for suffix, got in ((".json", json_text), (".txt", terminal)):
        path = GOLDEN / f"{name}{suffix}"
        if UPDATE:
            path.parent.mkdir(exist_ok=True)
            path.write_text(got, encoding="utf-8")
        assert path.exists(), f"no snapshot {path}: run with EVTXDOC_UPDATE_GOLDEN=1"
        assert got == path.read_text(encoding="utf-8"), (
            f"{path.name} changed: review, then EVTXDOC_UPDATE_GOLDEN=1 to accept"
        )


def test_terminal_output_fits_100_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    _, terminal = _outputs("multi-device-two-connectors", monkeypatch)
    assert max(len(line) for line in terminal.splitlines()) <= 100
    assert "Verdict per device" in terminal and "timed out at odj_blob" in terminal
