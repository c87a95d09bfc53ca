"""What analysis of a scenario's bundle must find (written beside it as expected.yaml): each
attempt's outcome, failing step and top finding, from its fault."""

from __future__ import annotations

from typing import Any

from evtxdoc.errors import InputError
from evtxdoc.synth.spec import EXCHANGE_FAULTS, FAULTS, FINDINGS, UNSERVED, Attempt, Scenario

# Exchange connector fault → every finding its server must have (besides the info notice).
EXCHANGE_FINDINGS = {
    "none": (),
    "logon_denied": ("service-cannot-log-on", "exchange-connector-stopped"),
    "cas_unreachable": ("exchange-connector-cas-no-failover", "exchange-connector-sync-errors"),
    "bad_request": ("exchange-connector-bad-request",),
    "missing_cmdlets": ("exchange-connector-cmdlets-denied", "exchange-connector-sync-errors"),
    "large_org": ("exchange-connector-parallel-commands",),
}


def expected(scenario: Scenario) -> dict[str, Any]:
    """What analysis of the scenario's bundle must find (written as expected.yaml)."""
    attempts = []
    for device in scenario.devices:
        for attempt in device.attempts:
            fault = "entra_join" if device.join == "entra" else attempt.fault
            outcome, step = FAULTS[fault]
            unnamed = device.join != "hybrid" or fault in UNSERVED  # nothing logs the name
            attempts.append(
                {  # a device whose logs are not collected is known by its name
                    "device": attempt.computer_name
                    if device.layout == "not_collected"
                    else device.oobe_name,
                    "computer_name": None if unnamed else attempt.computer_name,
                    "domain": None if unnamed else device.domain,
                    "connector": None
                    if outcome == "not_hybrid"
                    or fault in UNSERVED
                    or _not_collected(scenario, attempt.connector)
                    else attempt.connector,
                    "outcome": outcome,
                    "failed_step": step,
                    "fault": fault,
                    "top_finding": _finding(scenario, attempt, fault),
                    **_expect(attempt),
                }
            )
    out: dict[str, Any] = {
        "scenario": scenario.name,
        "summary": scenario.summary,
        "root_cause": scenario.root_cause,
        "attempts": attempts,
    }
    if scenario.exchange:
        out["exchange"] = [
            {
                "connector": spec.name,
                "status": EXCHANGE_FAULTS[spec.fault][0],
                "top_finding": EXCHANGE_FAULTS[spec.fault][1],
                "findings": [*EXCHANGE_FINDINGS[spec.fault], "exchange-connector-end-of-support"],
            }
            for spec in scenario.exchange
        ]
    return out


EXPECT_KEYS = (
    "outcome",
    "failed_step",
    "connector",
    "computer_name",
    "domain",
    "top_finding",
    "connector_evidence",
)


def _expect(attempt: Attempt) -> dict[str, Any]:
    """An attempt's `expect:` overrides: what damage or a missing log changes in the verdict
    (e.g. a torn connector log turns `no_request` into `damaged`)."""
    wanted = attempt.options.get("expect") or {}
    unknown = set(wanted) - set(EXPECT_KEYS)
    if unknown:
        raise InputError(
            f"unknown expect key(s) {sorted(unknown)}",
            where="expect",
            hint=f"one of {', '.join(EXPECT_KEYS)}",
        )
    return dict(wanted)


def _not_collected(scenario: Scenario, name: str | None) -> bool:
    connector = scenario.connector(name)
    return connector is not None and connector.layout == "not_collected"


def _finding(scenario: Scenario, attempt: Attempt, fault: str) -> str | None:
    rule = FINDINGS[fault]
    connector = scenario.connector(attempt.connector)
    if fault == "access_denied" and connector is not None and connector.kind == "legacy":
        return "connector-access-denied-legacy"
    return rule
