"""Right on what Windows really writes (issue 15): the real hybrid deployment of
reference/real-logs/, replayed event by event, and one test per event meaning corrected there.

Each meaning test fails on the documentation-only reading it replaced."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from evtxdoc import timeline
from evtxdoc.correlate import correlate
from evtxdoc.fixtures import build_case
from evtxdoc.models import Analysis, Outcome
from evtxdoc.pipeline import analyze
from evtxdoc.synth import replay
from tests.conftest import SHARED

SEQUENCE = SHARED / "reference" / "real-logs" / "hybrid-deployment-sequence.md"
START_NS = 1_739_869_200 * 1_000_000_000  # 2025-02-18T09:00:00Z
HOST = "AP-HYB0001.corp.contoso.local"
AUTOPILOT = "autopilot"

needs_sequence = pytest.mark.skipif(not SEQUENCE.exists(), reason=f"{SEQUENCE} missing")


@pytest.fixture(scope="module")
def real_deployment(tmp_path_factory: pytest.TempPathFactory) -> Analysis:
    out = tmp_path_factory.mktemp("real-hybrid")
    replay.write(SEQUENCE, out, START_NS, HOST)
    return analyze([out])


@needs_sequence
def test_the_replay_holds_every_event_of_the_table(real_deployment: Analysis) -> None:
    rows = replay.read_table(SEQUENCE)
    assert len(real_deployment.timeline) == len(rows) > 6000
    assert not real_deployment.problems


@needs_sequence
def test_the_real_deployment_is_one_attempt_that_succeeded(real_deployment: Analysis) -> None:
    attempts = real_deployment.correlation.attempts
    assert len(attempts) == 1
    attempt = attempts[0]
    assert attempt.outcome is Outcome.SUCCEEDED, attempt.reason
    chain = [(s.name, s.status) for s in attempt.steps if s.name in ("odj_request", "odj_blob")]
    assert chain == [("odj_request", "waiting"), ("odj_request", "waiting"), ("odj_blob", "ok")]
    assert any(s.name == "hybrid_registration" and s.status == "ok" for s in attempt.steps)
    assert attempt.device.join_method == "hybrid"  # from Autopilot 101, no profile file
    assert attempt.device.skip_dc_check is True


@needs_sequence
def test_the_real_deployment_has_no_error_or_warning_finding(real_deployment: Analysis) -> None:
    findings = real_deployment.evaluation.findings
    loud = [(f.rule, f.severity) for f in findings if f.severity not in ("info",)]
    assert loud == []
    assert not any(f.root_cause for f in findings)


@needs_sequence
def test_every_attempt_finding_cites_events_inside_its_attempt(real_deployment: Analysis) -> None:
    attempt = real_deployment.correlation.attempts[0]
    frame = real_deployment.timeline
    for finding in real_deployment.evaluation.findings:
        if finding.attempt != attempt.id:
            continue
        for ref in finding.evidence:
            row = frame[
                (frame["record_id"] == ref.record_id)
                & (frame["source_file"].astype(str) == ref.source_file)
            ]
            ts = int(row["ts"].array.asi8[0])
            assert attempt.started - 15 * 60 * 10**9 <= ts <= attempt.ended + 30 * 60 * 10**9


# --- one test per corrected meaning ------------------------------------------------------------


def _attempts(events: list[dict[str, Any]]) -> list[Any]:
    frame, supporting = build_case({"events": events})
    return list(correlate(frame, supporting, timeline.coverage(frame)).attempts)


def _odj_state(t: float, state: int) -> dict[str, Any]:
    """DMEDP 109 with its state in HexInt1, as the real deployment wrote it."""
    return {
        "t": t,
        "host": "DESKTOP-1",
        "channel": "dmedp",
        "id": 109,
        "data": {"HexInt1": f"0x{state}"},
    }


def _profile_checks(t: float) -> list[dict[str, Any]]:
    """One real profile check: 153 with numbers, 103 with the correlation id (shapes.md)."""
    return [
        {
            "t": t,
            "host": "DESKTOP-1",
            "channel": AUTOPILOT,
            "id": 153,
            "data": {"InitialState": 0, "UpdateState": 3},
        },
        {
            "t": t,
            "host": "DESKTOP-1",
            "channel": AUTOPILOT,
            "id": 103,
            "data": {
                "Message1": "AutopilotServiceCorrelationId",
                "Message2": "9b2f0c1e-0000-4000-8000-000000000001",
            },
        },
    ]


def test_autopilot_100_is_a_missing_optional_setting_not_a_missing_profile() -> None:
    events = [
        {
            "t": i * 30,
            "host": "DESKTOP-1",
            "channel": AUTOPILOT,
            "id": 100,
            "level": 3,
            "data": {"Message1": name},
        }
        for i, name in enumerate(
            ("CloudAssignedLanguage", "CloudAssignedRegion", "CloudAssignedTenantUpn")
        )
    ]
    events += _profile_checks(120)
    assert _attempts(events) == []  # profile checks alone are no join attempt


def test_a_profile_check_right_after_the_odj_request_stays_in_the_attempt() -> None:
    events = [
        *_profile_checks(0),
        _odj_state(60, 1),
        *_profile_checks(60.003),  # 3 ms later, as the real deployment wrote it
        {
            "t": 60.034,
            "host": "DESKTOP-1",
            "channel": "dmedp",
            "id": 111,
            "data": {"Boolean1": False},
        },
        _odj_state(60.035, 2),
        *_profile_checks(900),
    ]
    attempts = _attempts(events)
    assert len(attempts) == 1
    assert [s.name for s in attempts[0].steps if s.name.startswith("odj")] == [
        "odj_request",
        "odj_request",
        "odj_blob",
    ]


def test_autopilot_101_carries_the_join_method_and_the_skip_dc_setting() -> None:
    events = [
        {
            "t": 0,
            "host": "DESKTOP-1",
            "channel": AUTOPILOT,
            "id": 101,
            "data": {"Message1": "CloudAssignedDomainJoinMethod", "Int1": 1},
        },
        {
            "t": 1,
            "host": "DESKTOP-1",
            "channel": AUTOPILOT,
            "id": 101,
            "data": {"Message1": "HybridJoinSkipDCConnectivityCheck", "Int1": 1},
        },
        _odj_state(60, 1),
    ]
    [attempt] = _attempts(events)
    assert (attempt.device.join_method, attempt.device.skip_dc_check) == ("hybrid", True)


def test_udr_360_device_is_joined_yes_confirms_the_registration() -> None:
    base = [
        _odj_state(0, 1),
        _odj_state(60, 2),
        {
            "t": 70,
            "host": "DESKTOP-1",
            "channel": "udr",
            "id": 360,
            "level": 3,
            "data": {"DeviceIsJoined": "No", "AADPrt": "No"},
        },
    ]
    [pending] = _attempts(base)
    assert not any(s.name == "hybrid_registration" for s in pending.steps)
    joined = [
        *base,
        {
            "t": 3000,
            "host": "DESKTOP-1",
            "channel": "udr",
            "id": 360,
            "level": 3,
            "data": {"DeviceIsJoined": "Yes", "AADPrt": "Yes"},
        },
    ]
    [attempt] = _attempts(joined)
    assert ("hybrid_registration", "ok") in [(s.name, s.status) for s in attempt.steps]


def test_udr_304_reads_its_exit_code() -> None:
    events = [
        _odj_state(0, 1),
        _odj_state(60, 2),
        {
            "t": 600,
            "host": "DESKTOP-1",
            "channel": "udr",
            "id": 304,
            "level": 2,
            "data": {"ExitCode": -2145647630, "JoinType": "sync"},
        },
    ]
    [attempt] = _attempts(events)
    step = next(s for s in attempt.steps if s.name == "hybrid_registration")
    assert "0x801C03F2" in step.detail


def test_a_lone_profile_with_a_hybrid_join_method_is_an_attempt_waiting_for_its_request() -> None:
    events = [
        {
            "t": 0,
            "host": "DESKTOP-1",
            "channel": AUTOPILOT,
            "id": 101,
            "data": {"Message1": "CloudAssignedDomainJoinMethod", "Int1": 1},
        },
        *_profile_checks(10),
    ]
    [attempt] = _attempts(events)
    assert attempt.outcome is Outcome.INCOMPLETE


def test_replay_parses_rows_cut_at_200_characters() -> None:
    cut = (
        '{"ExitCode": -2145647629, "ServerErrorMessage": "The device object by the given '
        'id (<guid>) is not found.", "DebugOutput": "joinMode: Join\\ndrsInstance: azu'
    )
    fields = dict(replay.parse_fields(cut))
    assert fields["ExitCode"] == -2145647629
    assert fields["DebugOutput"].startswith("joinMode: Join\ndrsInstance: azu")


def test_replay_names_channels_in_full() -> None:
    assert replay.full_channel("ModernDeployment/Autopilot") == (
        "Microsoft-Windows-ModernDeployment-Diagnostics-Provider/Autopilot"
    )
    assert replay.full_channel("DMEDP/Admin").endswith(
        "DeviceManagement-Enterprise-Diagnostics-Provider/Admin"
    )
    assert Path(replay.full_channel("User Device Registration/Admin")).name == "Admin"


SAMPLES = sorted((Path(__file__).resolve().parent.parent / "sample_logs").glob("*/bundle"))


@pytest.mark.parametrize("bundle", SAMPLES, ids=lambda p: p.parent.name)
def test_no_sample_has_an_error_on_a_healthy_attempt_or_evidence_outside_its_attempt(
    bundle: Path,
) -> None:
    analysis = analyze([bundle])
    attempts = {a.id: a for a in analysis.correlation.attempts}
    frame = analysis.timeline
    keys = zip(frame["source_file"].astype(str), frame["record_id"].tolist(), strict=True)
    times = dict(zip(keys, frame["ts"].array.asi8.tolist(), strict=True))
    for finding in analysis.evaluation.findings:
        attempt = attempts.get(finding.attempt)
        if attempt is None:
            continue
        if attempt.outcome in (Outcome.SUCCEEDED, Outcome.NOT_HYBRID):
            assert finding.severity not in ("error", "critical"), finding.rule
        device_hosts = {h.lower() for h in attempt.device.hosts}
        for ref in finding.evidence:
            if ref.host.lower() not in device_hosts:
                continue  # connector evidence: matched to the attempt by the correlation
            ts = times[(ref.source_file, ref.record_id)]
            assert (
                attempt.started
                - 15 * 60 * 10**9
                - abs(attempt.offset.offset_ns if attempt.offset else 0)
                <= ts
            )
            assert ts <= attempt.ended + 30 * 60 * 10**9 + abs(
                attempt.offset.offset_ns if attempt.offset else 0
            ), (finding.rule, ref)


def test_the_real_shaped_sample_is_one_success_with_its_blob_processed() -> None:
    analysis = analyze([SAMPLES[0].parent.parent / "real-shaped-hybrid-success" / "bundle"])
    [attempt] = analysis.correlation.attempts
    assert attempt.outcome is Outcome.SUCCEEDED
    assert ("odj_blob", "ok") in [(s.name, s.status) for s in attempt.steps]
    assert not [f for f in analysis.evaluation.findings if f.severity in ("error", "critical")]
    levels = analysis.timeline["level"].value_counts()
    assert levels.get(2, 0) > 50 and levels.get(3, 0) > 50  # the noise of a healthy device
