"""The command line: exit codes, inventory JSON, event export filters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evtxdoc.cli import app

from .conftest import real

runner = CliRunner()


def test_analyze_json_inventory(tmp_path):
    out = tmp_path / "inv.json"
    result = runner.invoke(
        app, ["analyze", str(real("system.evtx")), "--format", "json", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["schema_version"] == "1"
    assert data["summary"]["events"] == 1881
    hosts = {h["host"] for h in data["hosts"]}
    assert "WIN-P4SIAA0SQCO" in hosts
    (entry,) = data["files"]
    assert entry["status"] == "read" and entry["records"] == 1881 and entry["dirty"] is True
    assert {p["kind"] for p in data["problems"]} == {"dirty_header", "stale_chunk_count"}


def test_analyze_terminal_lists_hosts_and_problems():
    result = runner.invoke(
        app, ["analyze", str(real("sysmon.evtx")), "--format", "terminal"], env={"COLUMNS": "160"}
    )
    assert result.exit_code == 0
    assert "Sysmon/Operational (" in result.output  # short names: no cell breaks a name
    assert "not a valid chunk" in " ".join(result.output.split())


def test_terminal_tables_break_no_channel_name_mid_word():
    """At 100 columns every channel fits its cell whole (the short names the table uses), and
    the machines table is one row per machine, renamed devices included."""
    from evtxdoc.report.terminal import short_channel

    sample = Path(__file__).resolve().parent.parent / "sample_logs/multi-device-two-connectors"
    result = runner.invoke(
        app, ["analyze", str(sample / "bundle"), "--format", "terminal"], env={"COLUMNS": "100"}
    )
    table = result.output.split("Machines and their logs")[1].split("Files:")[0]
    cells = [line.split("│")[4].strip() for line in table.splitlines() if line.count("│") == 5]
    words = " ".join(cells).replace(",", " ").split()
    for channel in ("Microsoft-Windows-AAD/Operational",
                    "Microsoft-Windows-DeviceManagement-Enterprise-Diagnostics-Provider/Admin",
                    "Microsoft-Intune-ODJConnectorService/Operational"):  # fmt: skip
        assert short_channel(channel) in words, (channel, cells)
    machines = [line for line in table.splitlines() if line.startswith("│ ") and "│     " in line]
    assert len([line for line in machines if line.split("│")[2].strip().isdigit()]) == 5


def test_missing_path_exits_2_with_a_hint(tmp_path):
    result = runner.invoke(app, ["analyze", str(tmp_path / "nope.cab")])
    assert result.exit_code == 2
    assert "no such file or folder" in result.output and "hint:" in result.output


def test_nothing_readable_exits_2(tmp_path):
    (tmp_path / "a.txt").write_text("hello")
    result = runner.invoke(app, ["analyze", str(tmp_path), "--format", "json"])
    assert result.exit_code == 2
    assert "no readable .evtx" in result.output


def test_strict_fails_on_damage_and_passes_clean_files():
    damaged = runner.invoke(app, ["analyze", str(real("sysmon.evtx")), "--strict"])
    assert damaged.exit_code == 2 and "strict mode" in damaged.output
    clean = runner.invoke(
        app, ["analyze", str(real("Security_with_size_t.evtx")), "--strict", "--format", "json"]
    )
    assert clean.exit_code == 0


def test_events_export_filters_and_formats(tmp_path):
    out = tmp_path / "e.jsonl"
    result = runner.invoke(
        app,
        [
            "events",
            str(real("system.evtx")),
            "--id",
            "6009",
            "--since",
            "2017-07-12T17:00:00Z",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows and all(r["event_id"] == 6009 and r["ts"] >= "2017-07-12T17" for r in rows)
    assert rows[0]["ts"] == "2017-07-12T17:16:28.2141616Z"
    assert rows[0]["fields"]["Data3"] == "Multiprocessor Free"
    csv_out = tmp_path / "e.csv"
    runner.invoke(
        app,
        [
            "events",
            str(real("system.evtx")),
            "--channel",
            "system",
            "--host",
            "win-p4siaa0sqco",
            "--format",
            "csv",
            "-o",
            str(csv_out),
        ],
    )
    lines = csv_out.read_text().splitlines()
    assert lines[0].startswith("ts,host,channel") and len(lines) > 1
    assert all(",WIN-P4SIAA0SQCO,System," in line for line in lines[1:])


def test_bad_since_is_a_usage_error(tmp_path):
    result = runner.invoke(app, ["events", str(real("system.evtx")), "--since", "yesterday-ish"])
    assert result.exit_code == 2


def test_analyze_reports_attempts_in_json_and_terminal(tmp_path):
    bundle = "sample_logs/multi-device-two-connectors/bundle"
    out = tmp_path / "report.json"
    result = runner.invoke(app, ["analyze", bundle, "--format", "json", "-o", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["summary"]["attempts"] == 3
    failed = [a for a in data["attempts"] if a["outcome"] != "succeeded"]
    assert [
        (
            a["device"]["computer_name"],
            a["failed_step"],
            a["connector"],
            a["requests"][0]["diagnostic_code"],
        )
        for a in failed
    ] == [("KSK-8M6N4B2V0C", "odj_blob", "CONN02.contoso.local", "5")]
    result = runner.invoke(app, ["analyze", bundle, "--format", "terminal"], env={"COLUMNS": "100"})
    table = result.output.split("Join attempts")[1].split("Findings")[0]
    lines = [line for line in table.splitlines() if "DESKTOP-C3V5B7N" in line]
    assert len(lines) == 1 and "timed_out" in lines[0] and "odj_blob" in lines[0]
    assert "CONN02.contoso.local" in lines[0]
    [attempt] = [a for a in failed if a["device"]["computer_name"] == "KSK-8M6N4B2V0C"]
    assert attempt["clock_offset"]["known"] is False  # a timed-out wait bounds it too loosely
    assert lines[0].rstrip(" │").endswith("?")
    assert max(len(line) for line in result.output.splitlines()) <= 100


def test_analyze_terminal_shows_the_root_cause_and_its_fix() -> None:
    bundle = "sample_logs/multi-device-two-connectors/bundle"
    result = runner.invoke(app, ["analyze", bundle, "--format", "terminal"], env={"COLUMNS": "100"})
    findings = result.output.split("Findings (")[1].split("Machines and their logs")[0]
    assert "(root cause)" in findings and "connector-access-denied-msa" in findings
    assert "OrganizationalUnitsUsedForOfflineDomainJoin" in findings
    assert max(len(line) for line in result.output.splitlines()) <= 100


ZTD_908 = (
    b'{"CloudAssignedTenantDomain": "contoso.onmicrosoft.com", "ErrorCode": 908, '
    b'"ErrorReason": "HardwareMarkerMismatch, SerialNumberMismatch, ProductKeyIdMismatch,'
    b' TPMEkPubHashMismatch", "PolicyDownloadDate": "2025-02-18T09:00:00Z"}'
)


def test_a_lone_profile_file_with_error_908_is_diagnosed_not_refused(tmp_path):
    ztd = tmp_path / "AutopilotDDSZTDFile.json"
    ztd.write_bytes(ZTD_908)
    out = tmp_path / "report.json"
    result = runner.invoke(app, ["analyze", str(ztd), "-o", str(out), "--fail-on", "error"])
    assert result.exit_code == 1, result.output  # findings at --fail-on, not "no input" (2)
    data = json.loads(out.read_text())
    [finding] = [f for f in data["findings"] if f["rule"] == "autopilot-hardware-mismatch"]
    assert finding["severity"] == "error"
    assert "TPMEkPubHashMismatch" in finding["cause"]
    assert runner.invoke(app, ["analyze", str(ztd), "-o", str(out)]).exit_code == 0


def test_broken_built_in_rules_are_an_internal_error_not_bad_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 17: a broken shipped knowledge base exits 3 (report it), not 2 (bad input)."""
    import shutil

    from evtxdoc import catalog

    shipped = tmp_path / "rules"
    shutil.copytree(catalog.RULES_DIR, shipped)
    rule = shipped / "device" / "odj-blob-timeout.yaml"
    rule.write_text(rule.read_text().replace("severity: error", "severity: dreadful"))
    monkeypatch.setattr(catalog, "RULES_DIR", shipped)
    bundle = "sample_logs/healthy-hybrid/bundle"
    result = runner.invoke(app, ["analyze", bundle, "-f", "json"])
    assert result.exit_code == 3, result.output
    assert "built-in rules" in result.output and "maintainers" in result.output
    # a broken --rules folder stays exit 2: tests/test_rules.py
