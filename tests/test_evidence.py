"""Issue 16: say only what the evidence supports. One time per event in every section; no
claim of absence on damaged evidence, whatever the damage; the issue's cases as samples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evtxdoc.pipeline import analyze
from evtxdoc.report import html
from evtxdoc.report.clock import display_zone
from evtxdoc.synth import layout
from evtxdoc.synth.scenario import build, parse
from tests.conftest import ROOT

SAMPLES = sorted(p for p in (ROOT / "sample_logs").glob("*/bundle"))
ZONE = display_zone("UTC")


def _event_times(view: dict[str, Any]) -> dict[tuple[str, int, str], str]:
    """(host, record id, source) → the time the event table shows."""
    return {(e["host"], e["record_id"], e["source"]): e["time"] for e in view["events"]}


@pytest.mark.parametrize("bundle", SAMPLES, ids=lambda p: p.parent.name)
def test_each_displayed_event_time_is_the_same_in_every_section(bundle: Path) -> None:
    """A step, its row in the event table and its evidence block show one time."""
    analysis = analyze([bundle])
    view = html.build_view(analysis, html.ReportOptions(max_events=100_000))
    shown = _event_times(view)
    compared = 0
    for attempt in analysis.correlation.attempts:
        for step in attempt.steps:
            key = (step.ref.host, step.ref.record_id, step.ref.source_file)
            if key in shown:
                assert shown[key] == ZONE.time(step.ts_corrected), (attempt.id, step.name)
                compared += 1
    for finding in view["findings"]:
        for event in finding["evidence"]:
            key = (event["host"], event["record_id"], event["source"])
            if key in shown:
                assert event["time"] == shown[key]
    steps = sum(len(a.steps) for a in analysis.correlation.attempts)
    assert compared == steps  # every step event is in the table at max_events=100k


def test_a_clock_set_moves_the_event_table_with_the_steps() -> None:
    """device-clock-wrong: 5 h ahead until the set; the table shows the corrected time and
    says the logged one."""
    analysis = analyze([ROOT / "sample_logs" / "device-clock-wrong" / "bundle"])
    view = html.build_view(analysis, html.ReportOptions(max_events=100_000))
    (attempt,) = analysis.correlation.attempts
    request = next(s for s in attempt.steps if s.name == "odj_request")
    assert request.ts != request.ts_corrected
    row = next(
        e
        for e in view["events"]
        if e["record_id"] == request.ref.record_id and e["source"] == request.ref.source_file
    )
    assert row["time"] == ZONE.time(request.ts_corrected)
    assert row["raw_time"] == ZONE.time(request.ts)


DAMAGE_BASE = {
    "name": "damage",
    "seed": 61,
    "start": "2025-10-01T08:00:00Z",
    "noise": 5,
    "connectors": [{"name": "CONN01.contoso.local", "served_before": 4}],
    "devices": [
        {
            "oobe_name": "DESKTOP-DMG0001",
            "layout": "cab",
            "attempts": [
                {
                    "at": "10m",
                    "connector": "CONN01.contoso.local",
                    "fault": "access_denied",
                    "computer_name": "AP-DMG00000001",
                }
            ],
        },
        {
            "oobe_name": "DESKTOP-DMG0002",
            "layout": "cab",
            "attempts": [
                {
                    "at": "40m",
                    "connector": "CONN01.contoso.local",
                    "fault": "quota",
                    "computer_name": "AP-DMG00000002",
                }
            ],
        },
    ],
}
CONNECTOR_LOG = "Microsoft-Intune-ODJConnectorService/Operational"


@settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(record=st.integers(1, 6), torn=st.booleans())
def test_damage_anywhere_in_the_connector_log_never_claims_no_request(
    tmp_path_factory: pytest.TempPathFactory, record: int, torn: bool
) -> None:
    """Both devices' requests are in the log (records 5 and 6). Cut it halfway into any
    record, or tear its last one: an attempt whose request was lost is `damaged`, never
    `no_request`, and no-connector-answered never fires."""
    raw = yaml.safe_load(yaml.safe_dump(DAMAGE_BASE))
    damage: dict[str, Any] = {"host": "CONN01.contoso.local", "channel": CONNECTOR_LOG}
    damage.update(
        {"dirty": True, "torn_last_record": True} if torn else {"truncate_at_record": record}
    )
    raw["damage"] = [damage]
    scenario = parse(raw, "<damage>")
    out = tmp_path_factory.mktemp("damage")
    layout.write_bundle(scenario, build(scenario), out)
    analysis = analyze([out])
    attempts = analysis.correlation.attempts
    assert len(attempts) == 2
    for attempt in attempts:
        assert attempt.connector_evidence in ("matched", "damaged"), attempt.id
        if attempt.connector_evidence == "damaged":
            assert any("damaged" in m and "export it again" in m for m in attempt.missing)
    rules = {f.rule for f in analysis.evaluation.findings}
    assert "no-connector-answered" not in rules
    connector = next(m for m in analysis.correlation.machines if m.key.startswith("conn01"))
    assert connector.role == "connector"  # a cut-off log keeps its host's role


def test_an_id_two_machines_hold_names_neither_after_the_other() -> None:
    """shared-device-id: before, the refused device took the other machine's success by the
    shared EntDMID as well as its own failure."""
    analysis = analyze([ROOT / "sample_logs" / "shared-device-id" / "bundle"])
    for attempt in analysis.correlation.attempts:
        assert {r.device_name for r in attempt.requests} == {attempt.device.computer_name}
        assert attempt.match_basis not in ("entdmid", "entra_device_id")
    assert any("held by 2 machines" in n for n in analysis.correlation.notes)


def test_a_success_before_the_wait_is_set_aside_not_matched() -> None:
    analysis = analyze([ROOT / "sample_logs" / "request-contradicts-device" / "bundle"])
    (attempt,) = analysis.correlation.attempts
    assert attempt.requests == () and len(attempt.conflicts) == 1
    assert attempt.connector_evidence == "contradictory"
    assert not attempt.offset.known  # a set-aside request bounds no offset
    cause = analysis.evaluation.root_cause(attempt.id)
    assert cause.rule == "connector-request-contradicts-device"
    assert "2h30m before the device began waiting" in cause.cause


@pytest.mark.parametrize(("skew", "known"), [("40s", False), ("2h", True), ("-3h", True)])
def test_device_clock_offset_fires_only_on_a_tight_estimate(
    tmp_path: Path, skew: str, known: bool
) -> None:
    """A timed-out wait bounds the offset by the 10-minute latency model: 40 s stays unknown
    (its interval holds zero), hours are tight enough to state and to apply."""
    raw = {
        "name": "skew",
        "seed": 62,
        "start": "2025-10-01T08:00:00Z",
        "noise": 5,
        "connectors": [{"name": "CONN01.contoso.local"}],
        "devices": [
            {
                "oobe_name": "DESKTOP-SKEWED1",
                "layout": "intune",
                "clock_offset": skew,
                "attempts": [
                    {"at": "10m", "connector": "CONN01.contoso.local", "fault": "access_denied"}
                ],
            }
        ],
    }
    scenario = parse(raw, "<skew>")
    layout.write_bundle(scenario, build(scenario), tmp_path)
    analysis = analyze([tmp_path])
    (attempt,) = analysis.correlation.attempts
    assert attempt.offset.known is known
    truth = scenario.devices[0].clock_offset
    fired = [
        f for f in analysis.evaluation.for_attempt(attempt.id) if f.rule == "device-clock-offset"
    ]
    if known:
        assert abs(attempt.offset.offset_ns / 1e9 - truth) <= attempt.offset.uncertainty_ns / 1e9
        assert fired
    else:
        assert attempt.offset.low_ns / 1e9 <= truth <= attempt.offset.high_ns / 1e9
        assert not fired and all(s.ts == s.ts_corrected for s in attempt.steps)
