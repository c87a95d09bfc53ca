"""The engine over real sample bundles (golden) and over compact cases."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from evtxdoc.catalog import RULES_DIR
from evtxdoc.cli import app
from evtxdoc.fixtures import evaluate_case
from evtxdoc.pipeline import analyze
from evtxdoc.rules import load_rules

SAMPLES = Path(__file__).parent.parent / "sample_logs"
SCENARIOS = sorted(p.name for p in SAMPLES.iterdir() if (p / "expected.yaml").exists())
RULES = load_rules([RULES_DIR]).rules
runner = CliRunner()


@pytest.mark.parametrize("name", SCENARIOS)
def test_each_sample_yields_its_expected_root_cause_first(name: str) -> None:
    expected = yaml.safe_load((SAMPLES / name / "expected.yaml").read_text("utf-8"))
    analysis = analyze([SAMPLES / name / "bundle"])
    evaluation = analysis.evaluation
    by_device = {
        (a.device.oobe_names or a.device.hosts)[0]: a for a in analysis.correlation.attempts
    }
    for wanted in expected["attempts"]:
        attempt = by_device[wanted["device"]]
        found = evaluation.for_attempt(attempt.id)
        if wanted["top_finding"] is None:
            assert [f.rule for f in found if f.severity in ("error", "critical")] == []
            assert evaluation.root_cause(attempt.id) is None
            continue
        assert found, f"{name}: no finding for {attempt.id}"
        assert found[0].rule == wanted["top_finding"], [f.rule for f in found]
        failed = wanted["outcome"] not in ("succeeded", "not_hybrid")
        assert (evaluation.root_cause(attempt.id) is not None) is failed
        if failed:
            assert evaluation.root_cause(attempt.id).rule == wanted["top_finding"]


def test_the_healthy_sample_has_no_error_level_finding_anywhere() -> None:
    evaluation = analyze([SAMPLES / "healthy-hybrid" / "bundle"]).evaluation
    assert [f.rule for f in evaluation.findings if f.severity in ("error", "critical")] == []


def test_a_finding_names_the_device_values_and_the_decoded_code() -> None:
    evaluation = analyze([SAMPLES / "msa-ou-not-configured" / "bundle"]).evaluation
    top = evaluation.findings[0]
    assert top.rule == "connector-access-denied-msa" and top.root_cause
    assert "KSK-4N7P2Q8R1T" in top.cause and "contoso.local" in top.cause
    assert "ERROR_ACCESS_DENIED" in top.cause
    assert "OU=Kiosks,OU=Autopilot,DC=contoso,DC=local" in top.fix
    assert top.evidence and top.evidence[0].event_id in (30130, 30140)
    assert "odj-blob-timeout" in top.superseded  # the generic rule was folded into it
    assert "odj-blob-timeout" not in [f.rule for f in evaluation.findings]


def test_in_a_fleet_only_the_failing_device_gets_the_connector_finding() -> None:
    evaluation = analyze([SAMPLES / "multi-device-two-connectors" / "bundle"]).evaluation
    denied = [f for f in evaluation.findings if f.rule == "connector-access-denied-msa"]
    assert [f.attempt for f in denied] == ["DESKTOP-C3V5B7N#1"]


def test_rules_whose_channels_are_absent_are_reported_not_silently_passed() -> None:
    evaluation = analyze([SAMPLES / "healthy-hybrid" / "bundle"]).evaluation
    gaps = {g.rule: g.reason for g in evaluation.gaps}
    assert "connector-access-denied-legacy" in gaps
    assert "ODJ Connector Service" in gaps["connector-access-denied-legacy"]


def test_a_legacy_server_gets_a_host_finding_with_its_real_name() -> None:
    evaluation = analyze([SAMPLES / "legacy-connector-after-msa" / "bundle"]).evaluation
    hosts = [f for f in evaluation.findings if f.rule == "legacy-connector-installed"]
    assert [f.host for f in hosts] == ["ODJLEGACY.contoso.local"]
    assert hosts[0].attempt is None and not hosts[0].root_cause


def test_fail_on_sets_the_exit_code() -> None:
    failing = str(SAMPLES / "blob-rejected" / "bundle")
    healthy = str(SAMPLES / "healthy-hybrid" / "bundle")
    assert (
        runner.invoke(app, ["analyze", failing, "-f", "json", "--fail-on", "error"]).exit_code == 1
    )
    assert (
        runner.invoke(app, ["analyze", healthy, "-f", "json", "--fail-on", "error"]).exit_code == 0
    )
    assert runner.invoke(app, ["analyze", failing, "-f", "json"]).exit_code == 0


def test_connector_evidence_of_another_device_does_not_leak_into_an_attempt() -> None:
    case = {
        "events": [
            {"t": 0, "host": "DESKTOP-1", "channel": "dmedp", "id": 111},
            {"t": 30, "host": "DESKTOP-2", "channel": "dmedp", "id": 111, "file": "d2/logs.evtx"},
            {
                "t": 60,
                "host": "CONN01",
                "channel": "odj",
                "id": 30140,
                "body": {
                    "EventType": "OfflineDomainJoinRequestFailed",
                    "DeviceName": "AP-2",
                    "DiagnosticCode": 5,
                    "DiagnosticText": "denied",
                },
            },
            {
                "t": 61,
                "host": "CONN01",
                "channel": "odj",
                "id": 30130,
                "body": {
                    "EventType": "OfflineDomainJoinRequestProcessed",
                    "DeviceName": "AP-1",
                    "DiagnosticCode": 0,
                },
            },
            {"t": 120, "host": "DESKTOP-1", "channel": "dmedp", "id": 107},
            {
                "t": 121,
                "host": "DESKTOP-1",
                "channel": "system",
                "id": 4098,
                "data": {"DomainName": "contoso.local", "ComputerName": "AP-1"},
            },
            {
                "t": 3630,
                "host": "DESKTOP-2",
                "channel": "system",
                "id": 4099,
                "level": 2,
                "file": "d2/logs.evtx",
                "data": {
                    "DomainName": "contoso.local",
                    "ComputerName": "AP-2",
                    "NetStatusCode": 2709,
                },
            },
        ]
    }
    evaluation = evaluate_case(RULES, case)
    denied = [f for f in evaluation.findings if f.rule == "connector-access-denied-msa"]
    assert [f.attempt for f in denied] == ["DESKTOP-2#1"]
    assert not [
        f for f in evaluation.findings if f.attempt == "DESKTOP-1#1" and f.severity == "error"
    ]
