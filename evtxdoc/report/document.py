"""The parts of the report document built on top of the inventory: verdicts and coverage.

A verdict says, per device, how its last join attempt ended and the most likely root cause; the
coverage says, per host, what its logs hold against what its role needs, so that "no findings"
never hides "no data".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from evtxdoc.correlate import evidence
from evtxdoc.models import Analysis, Attempt, Correlation, DamageSpan, Evaluation, Machine
from evtxdoc.parse.times import format_time_ns
from evtxdoc.report.zones import time_zones

# Channels each role's logs should hold to judge a hybrid join (domain.md a.1–a.9, (e)).
EXPECTED_CHANNELS = {
    "device": {
        "system": "System (offline join 4098/4099, Netlogon, time jumps)",
        evidence.DMEDP: "DeviceManagement-Enterprise-Diagnostics-Provider/Admin (ODJ states)",
        evidence.AUTOPILOT: "ModernDeployment-Diagnostics-Provider/Autopilot (profile, ESP)",
        evidence.UDR: "User Device Registration/Admin (hybrid Entra registration)",
        "microsoft-windows-aad/operational": "AAD/Operational (Entra sign-in)",
    },
    "connector": {
        "microsoft-intune-odjconnectorservice/admin": "ODJConnectorService/Admin (errors)",
        "microsoft-intune-odjconnectorservice/operational": "ODJConnectorService/Operational "
        "(requests)",
        "system": "System (service start failures 7000/7041)",
    },
    "legacy connector": {
        "odj connector service": "ODJ Connector Service (requests)",
        "system": "System (service start failures 7000/7041)",
    },
}
# The on-premises Exchange connector writes to the Application log (domain.md a.11, S26).
EXCHANGE_PROVIDERS = frozenset(
    p.lower()
    for p in (
        "Microsoft Intune Exchange Connector",
        "Intune Exchange Connector",
        "OnPremisesExchangeConnectorService",
        "Microsoft.Management.Services.OnPremisesExchangeConnector",
    )
)
PROVIDER_CHANNELS = ("application", "wcf trace")  # where a host's role shows by provider
ROLE_WORDS = {
    "device": "device",
    "connector": "ODJ connector server",
    "legacy connector": "ODJ connector server (legacy)",
    "exchange": "Exchange connector",
    "other": "other",
}
VERDICT_WORDS = {
    "succeeded": "healthy",
    "failed": "failed",
    "timed_out": "timed out",
    "incomplete": "incomplete",
    "not_hybrid": "not hybrid (Entra join)",
    "unknown": "unknown",
}


def display_name(oobe_names: Sequence[str], hosts: Sequence[str], computer_name: str | None) -> str:
    """`DESKTOP-A1S2D3F → AP-2W4E6R8T0YU`: the OOBE name, then the name the join gave."""
    name = (list(oobe_names) or list(hosts) or ["?"])[0]
    if computer_name and computer_name.lower() != name.split(".")[0].lower():
        name += f" → {computer_name}"
    return name


def device_name(attempt: Attempt) -> str:
    device = attempt.device
    return display_name(device.oobe_names, device.hosts, device.computer_name)


def verdicts(
    correlation: Correlation | None, evaluation: Evaluation | None
) -> list[dict[str, Any]]:
    """One verdict per device: the last attempt's outcome and its root cause."""
    if correlation is None:
        return []
    by_device: dict[str, list[Attempt]] = defaultdict(list)
    for attempt in correlation.attempts:
        by_device[attempt.device.machine].append(attempt)
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    attempt_device = {a.id: a.device.machine for a in correlation.attempts}
    machine_of_host = {h.lower(): m.key for m in correlation.machines for h in m.hosts}
    for finding in evaluation.findings if evaluation else ():
        device = attempt_device.get(finding.attempt or "") or machine_of_host.get(
            (finding.host or "").lower()
        )
        if device:
            counts[device][finding.severity] += 1
    out: list[dict[str, Any]] = []
    for machine, attempts in by_device.items():
        last = attempts[-1]
        status = str(last.outcome)
        words = VERDICT_WORDS[status]
        if last.failed_step and status in ("failed", "timed_out"):
            words += f" at {last.failed_step}"
        earlier = sum(1 for a in attempts[:-1] if str(a.outcome) != "succeeded")
        if status == "succeeded" and earlier:
            words += f" after {earlier} failed attempt(s)"
        cause = evaluation.root_cause(last.id) if evaluation else None
        if cause is None and evaluation is not None and status == "succeeded" and earlier:
            earlier_causes = (evaluation.root_cause(a.id) for a in reversed(attempts[:-1]))
            cause = next((c for c in earlier_causes if c is not None), None)
        out.append(
            {
                "device": machine,
                "name": device_name(last),
                "status": status,
                "verdict": words,
                "reason": last.reason,
                "attempts": [a.id for a in attempts],
                "last_attempt": last.id,
                "connector": last.connector,
                "root_cause": None
                if cause is None
                else {
                    "rule": cause.rule,
                    "title": cause.title,
                    "severity": cause.severity,
                    "confidence": cause.confidence,
                    "attempt": cause.attempt,
                },
                "findings": dict(counts.get(machine, {})),
            }
        )
    for known in correlation.machines:
        if known.role == "device" and known.key not in by_device:
            out.append(
                {
                    "device": known.key,
                    "name": known.hosts[0],
                    "status": "no_attempt",
                    "verdict": "no join attempt in the logs",
                    "reason": "the device's logs hold no Autopilot join step",
                    "attempts": [],
                    "last_attempt": None,
                    "connector": None,
                    "root_cause": None,
                    "findings": dict(counts.get(known.key, {})),
                }
            )
    order = {
        "failed": 0,
        "timed_out": 1,
        "incomplete": 2,
        "unknown": 3,
        "no_attempt": 4,
        "not_hybrid": 5,
        "succeeded": 6,
    }
    out.sort(key=lambda v: (order.get(v["status"], 9), v["name"].lower()))
    return out


def _role(machine: Machine | None, channels: set[str], providers: set[str]) -> str:
    if channels & set(evidence.CONNECTOR_UPDATED):
        return "connector"
    if channels & set(evidence.CONNECTOR_LEGACY):
        return "legacy connector"
    if providers & EXCHANGE_PROVIDERS:
        return "exchange"
    return machine.role if machine else "other"


def coverage(analysis: Analysis) -> list[dict[str, Any]]:
    """Per machine (a device renamed by its join is one machine): role, the channels its hosts
    wrote with counts and spans, and the channels its role needs that hold no event."""
    machines = {
        h.lower(): m
        for m in (analysis.correlation.machines if analysis.correlation else ())
        for h in m.hosts
    }
    providers = _providers_by_host(analysis)
    zones = time_zones(analysis.timeline)
    groups: dict[str, list[Any]] = defaultdict(list)
    for cover in analysis.coverage:
        if not cover.host:  # a log damaged before its first record: in files and problems
            continue
        machine = machines.get(cover.host.lower())
        groups[machine.key if machine else cover.host.lower()].append(cover)
    out = []
    for key, covers in sorted(groups.items()):
        channels = {c.channel.lower() for c in covers}
        hosts = sorted({c.host for c in covers}, key=str.lower)
        role = _role(
            machines.get(hosts[0].lower()),
            channels,
            set().union(*(providers.get(h, set()) for h in hosts)),
        )
        expected = EXPECTED_CHANNELS.get(role, {})
        out.append(
            {
                "machine": key,
                "hosts": hosts,
                "role": role,
                "role_words": ROLE_WORDS.get(role, role),
                "records": sum(c.records for c in covers),
                "first": format_time_ns(min(c.first for c in covers)),
                "last": format_time_ns(max(c.last for c in covers)),
                "channels": [
                    {
                        "host": c.host,
                        "channel": c.channel,
                        "records": c.records,
                        "first": format_time_ns(c.first),
                        "last": format_time_ns(c.last),
                        "sources": list(c.sources),
                        "damaged": [damage_dict(d) for d in c.damaged],
                    }
                    for c in covers
                ],
                "no_events_from": [
                    {"channel": name, "why": why}
                    for name, why in expected.items()
                    if name not in channels
                ],
                "time_zone": max(
                    (zones[h.lower()] for h in hosts if h.lower() in zones),
                    key=lambda zone: zone["seen"],
                    default=None,
                ),
            }
        )
    return out


def damage_dict(span: DamageSpan) -> dict[str, Any]:
    return {
        "kind": span.kind,
        "after": None if span.after_ns is None else format_time_ns(span.after_ns),
        "before": None if span.before_ns is None else format_time_ns(span.before_ns),
    }


def _providers_by_host(analysis: Analysis) -> dict[str, set[str]]:
    frame = analysis.every_event
    if frame.empty:
        return {}
    channel = frame["channel"].cat
    wanted = [  # the Application log, and the connector's own trace (.svclog)
        i for i, name in enumerate(channel.categories) if name.lower() in PROVIDER_CHANNELS
    ]
    pairs = frame.loc[channel.codes.isin(wanted), ["host", "provider"]].drop_duplicates()
    out: dict[str, set[str]] = defaultdict(set)
    for host, provider in zip(
        pairs["host"].astype(str), pairs["provider"].astype(str), strict=True
    ):
        out[host].add(provider.lower())
    return out
