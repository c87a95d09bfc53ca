"""The Attempt records, from a device's drafts and pairs: steps on the reference clock, the
connector evidence (damage-aware), durations; connector-only attempts; correlation notes."""

from __future__ import annotations

from collections import defaultdict

import pandas as pd

from evtxdoc.correlate import clock as clocks
from evtxdoc.correlate import evidence
from evtxdoc.correlate.attempts import Draft, Verdict, judge
from evtxdoc.correlate.device import Device, computer_name
from evtxdoc.correlate.matching import shared_ids
from evtxdoc.event_summary import hosts_met
from evtxdoc.models import (
    Attempt,
    ChannelCoverage,
    ClockOffset,
    ConnectorNotice,
    ConnectorRequest,
    DamageSpan,
    DeviceIdentity,
    EventRef,
    Outcome,
    Step,
)
from evtxdoc.parse.times import format_time_ns
from evtxdoc.vocab import SECOND, WINDOW_SLACK_NS

CONNECTOR_CHANNEL = "Microsoft-Intune-ODJConnectorService/Operational"
CONNECTOR_LOGS = set(evidence.CONNECTOR_UPDATED + evidence.CONNECTOR_LEGACY)


def attempts_of(
    device: Device,
    offsets: list[ClockOffset],
    have_connectors: bool,
    connector_cover: list[ChannelCoverage],
) -> list[Attempt]:
    residual = clocks.applied_shift(device.residual)  # 0 unless tight and needed
    out = []
    for index, draft in enumerate(device.drafts):
        verdict = judge(draft, device.facts.join_method, device.channels)
        found = tuple(sorted(device.pairs.get(index, ()), key=lambda r: r.ts))
        steps = tuple(
            Step(
                e.step,
                e.status,
                e.record.ts,
                local - residual,
                EventRef(
                    e.record.host,
                    e.record.channel,
                    e.record.event_id,
                    e.record.record_id,
                    e.record.source_file,
                ),
                e.detail,
            )
            for local, e in draft.events
        )
        name, domain = computer_name(draft)
        named = next((r for r in found if r.device_name), None)
        if not name and named:
            name = named.device_name
        if not domain:
            domain = next((r.domain for r in found if r.domain), None)
        hosts = tuple(dict.fromkeys(e.record.host for _, e in draft.events))
        oobe = tuple(h for h in hosts if not (name and h.lower().partition(".")[0] == name.lower()))
        identity = DeviceIdentity(
            machine=device.key,
            oobe_names=oobe,
            hosts=tuple(device.hosts),
            computer_name=name,
            domain=domain,
            serial=device.facts.serial,
            ztdid=device.facts.ztdid,
            entdmid=device.facts.entdmid,
            tenant_id=device.facts.tenant_id,
            join_method=device.facts.join_method,
            skip_dc_check=device.facts.skip_dc_check,
            sources=tuple(device.facts.sources),
        )
        anchor = next((e for _, e in draft.events if e.step == "odj_request"), draft.events[0][1])
        segment = min(device.clock.segment(anchor.record), len(offsets) - 1)
        evidence_state, missing = _connector_evidence(
            verdict, found, have_connectors, connector_cover, steps, device
        )
        absent_logs = missing_logs(device.channels, verdict)
        conflicts = tuple(device.conflicts.get(index, ()))
        reason = _reason(verdict, found)
        if conflicts and not found:
            evidence_state = "contradictory"
            first = conflicts[0]
            ahead = duration_text(steps_wait_start(draft) - first.ts)
            reason += (
                f"; {first.connector} logged a success for {first.device_name or '?'} "
                f"at {format_time_ns(first.ts)[:19]}Z, {ahead} before the device began "
                "waiting: not this attempt's blob (another deployment of that name or "
                "id, or a device clock off by that much), so it is not matched"
            )
        if evidence_state == "no_request" and index in device.ambiguous:
            evidence_state = "ambiguous"
            missing = (
                *missing,
                "an identity to choose between the several connector "
                "requests in the attempt's window (the device's "
                "MdmDiagReport_RegistryDump.reg gives its EntDMID)",
            )
        out.append(
            Attempt(
                id=f"{(oobe or hosts)[0]}#{index + 1}",
                device=identity,
                number=index + 1,
                steps=steps,
                requests=found,
                connector=found[-1].connector if found else None,
                match_basis=device.basis.get(index),
                connector_evidence=evidence_state,
                outcome=verdict.outcome,
                failed_step=verdict.failed_step,
                reason=reason,
                offset=offsets[segment],
                conflicts=conflicts,
                started=steps[0].ts_corrected,
                ended=steps[-1].ts_corrected,
                durations=_durations(steps, found),
                missing=missing,
                missing_logs=absent_logs,
            )
        )
    return out


RETRY_GAP_NS = 2 * 3600 * SECOND  # requests for one name this close are one deployment's
CONTEXT_NS = 24 * 3600 * SECOND  # connector-only failures this close to a device's attempt


def connector_only_attempts(
    requests: list[ConnectorRequest], known: set[str], span: tuple[int, int] | None = None
) -> list[Attempt]:
    """Failed connector requests for devices the bundle has no logs of, as attempts seen from
    the connector side only, so that the rules name the cause and its fix (access denied on
    the OU for computer X…). Requests for one computer name (or device id) close in time are
    one attempt; an attempt whose last request succeeded is a served device, not a finding.
    Outcome unknown: the device's side is not in the bundle. When the bundle has device
    attempts, only failures within a day of them (`span`) are judged: older ones are another
    deployment's (listed as unmatched requests)."""
    groups: dict[str, list[ConnectorRequest]] = defaultdict(list)
    for request in sorted(requests, key=lambda r: r.ts):
        key = (request.device_name or request.device_id or "").lower()
        if not key or key in known or (request.device_id or "").lower() in known:
            continue
        groups[key].append(request)
    out = []
    for found in groups.values():
        runs: list[list[ConnectorRequest]] = []
        for request in found:
            if runs and request.ts - runs[-1][-1].ts <= RETRY_GAP_NS:
                runs[-1].append(request)
            else:
                runs.append([request])
        for number, run in enumerate(runs, start=1):
            if run[-1].succeeded or (span and not span[0] <= run[-1].ts <= span[1]):
                continue
            out.append(_connector_only(tuple(run), number))
    return sorted(out, key=lambda a: a.started)


def _connector_only(found: tuple[ConnectorRequest, ...], number: int) -> Attempt:
    last = found[-1]
    name = next((r.device_name for r in found if r.device_name), None)
    label = name or (last.device_id or "device")
    code = last.diagnostic_code or last.error_code
    reason = (
        f"only the connector side is in the bundle: {last.connector} failed the "
        f"request for {label}"
        + (f" (DiagnosticCode {code})" if code else "")
        + (f": {last.diagnostic_text[:200]}" if last.diagnostic_text else "")
        + "; the device's own logs are not in the bundle"
    )
    identity = DeviceIdentity(
        machine=f"connector-only:{label.lower()}",
        oobe_names=(),
        hosts=(label,),
        computer_name=name,
        domain=next((r.domain for r in found if r.domain), None),
    )
    return Attempt(
        id=f"{label}#{number}",
        device=identity,
        number=number,
        steps=(),
        requests=found,
        connector=last.connector,
        match_basis="connector_only",
        connector_evidence="matched",
        outcome=Outcome.UNKNOWN,
        failed_step=None,
        reason=reason,
        offset=None,
        started=found[0].ts,
        ended=last.ts,
        durations={"total": round((last.ts - found[0].ts) / SECOND, 3)},
        missing=(
            f"the logs of the device {label} (its MdmDiagnosticsTool or Collect "
            "diagnostics bundle), to see how the attempt ended on the device",
        ),
    )


def steps_wait_start(draft: Draft) -> int:
    return draft.wait_start if draft.wait_start is not None else draft.events[0][0]


def duration_text(ns: int) -> str:
    minutes = abs(ns) // (60 * SECOND)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"


def _reason(verdict: Verdict, found: tuple[ConnectorRequest, ...]) -> str:
    failures = [r for r in found if not r.succeeded]
    if failures and verdict.outcome in (Outcome.TIMED_OUT, Outcome.INCOMPLETE):
        last = failures[-1]
        code = last.diagnostic_code or last.error_code
        return (
            f"{verdict.reason}; the connector {last.connector} failed the request"
            + (f" (DiagnosticCode {code})" if code else "")
            + (f": {last.diagnostic_text[:200]}" if last.diagnostic_text else "")
        )
    return verdict.reason


def missing_logs(device_channels: set[str], verdict: Verdict) -> tuple[str, ...]:
    """The device logs this attempt would need and the bundle lacks (short names)."""
    out = []
    if "system" not in device_channels and verdict.hybrid:
        out.append("system")
    if (
        evidence.UDR not in device_channels
        and verdict.hybrid
        and verdict.outcome in (Outcome.SUCCEEDED, Outcome.INCOMPLETE)
    ):
        out.append("user_device_registration")
    return tuple(out)


MISSING_WORDS = {
    "system": "the device's System log (offline join 4098/4099, NETLOGON 5719)",
    "user_device_registration": "the device's Microsoft-Windows-User Device Registration/Admin log",
}


def _connector_evidence(
    verdict: Verdict,
    found: tuple[ConnectorRequest, ...],
    have_connectors: bool,
    connector_cover: list[ChannelCoverage],
    steps: tuple[Step, ...],
    device: Device,
) -> tuple[str, tuple[str, ...]]:
    missing = [MISSING_WORDS[name] for name in missing_logs(device.channels, verdict)]
    if not any(s.name == "odj_request" for s in steps):
        return "not_applicable", tuple(missing)
    if found:
        return "matched", tuple(missing)
    wanted = (
        f"the Intune Connector for AD logs ({CONNECTOR_CHANNEL}) of the connector "
        "serving the device's domain, covering the attempt"
    )
    logs = [c for c in connector_cover if c.channel.lower() in CONNECTOR_LOGS]
    unreadable = [c for c in logs if not c.records and c.damaged]
    if not have_connectors and not unreadable:
        return "no_connector_logs", (*missing, wanted)
    start = min(s.ts_corrected for s in steps if s.name == "odj_request")
    end = max(s.ts_corrected for s in steps)
    damaged = [
        (c, span)
        for c in logs
        for span in c.damaged
        if span.overlaps(start - WINDOW_SLACK_NS, end + WINDOW_SLACK_NS)
    ]
    if damaged:  # a claim of absence on destroyed evidence is no claim: say what is unknown
        return "damaged", (
            *missing,
            *(
                f"an intact {c.channel} log of {c.host or c.sources[0]}: it is damaged "
                f"({span.kind}) {damage_text(span)}, inside the attempt's wait; export it again"
                for c, span in damaged[:3]
            ),
        )
    if not have_connectors:
        return "no_connector_logs", (*missing, wanted)
    # any log of the connector server running past the window shows it was exported after it
    covered = any(c.first <= end and c.last >= start for c in connector_cover)
    if not covered:
        return "not_covered", (*missing, wanted)
    return "no_request", tuple(missing)


def damage_text(span: DamageSpan) -> str:
    """`between 08:10:00Z and 10:14:06Z`, `after …`, `before …` (UTC, to the second)."""

    def at(ns: int) -> str:
        return format_time_ns(ns)[:19] + "Z"

    if span.after_ns is not None and span.before_ns is not None:
        return f"between {at(span.after_ns)} and {at(span.before_ns)}"
    if span.after_ns is not None:
        return f"after {at(span.after_ns)}"
    if span.before_ns is not None:
        return f"before {at(span.before_ns)}"
    return "throughout"


DURATIONS = (
    ("profile", "enrollment"),
    ("enrollment", "odj_request"),
    ("odj_request", "connector"),
    ("connector", "blob"),
    ("odj_request", "blob"),
    ("odj_request", "timed_out"),
    ("blob", "offline_join"),
    ("offline_join", "reboot"),
    ("offline_join", "esp"),
    ("esp", "hybrid_registration"),
)


def _durations(steps: tuple[Step, ...], found: tuple[ConnectorRequest, ...]) -> dict[str, float]:
    """Seconds between the first occurrences of the steps (corrected times)."""
    first: dict[str | tuple[str, str], int] = {}
    for step in steps:
        first.setdefault(step.name, step.ts_corrected)
        first.setdefault((step.name, step.status), step.ts_corrected)
    marks = {
        "profile": first.get("profile"),
        "enrollment": first.get("enrollment"),
        "odj_request": first.get(("odj_request", "waiting")),
        "connector": found[0].ts if found else None,
        "blob": first.get(("odj_blob", "ok")) or first.get("blob_applied"),
        "offline_join": first.get("offline_join"),
        "reboot": first.get("reboot"),
        "esp": first.get("esp"),
        "hybrid_registration": first.get(("hybrid_registration", "ok")),
        "timed_out": first.get(("odj_blob", "timed_out")),
    }
    out = {}
    for a, b in DURATIONS:
        start, end = marks[a], marks[b]
        if start is not None and end is not None:
            out[f"{a}→{b}"] = round((end - start) / SECOND, 3)
    if steps:
        out["total"] = round((steps[-1].ts_corrected - steps[0].ts_corrected) / SECOND, 3)
    return out


def notes_of(
    attempts: list[Attempt],
    role_of: dict[str, str],
    unmatched: tuple[ConnectorRequest, ...],
    notices: list[ConnectorNotice],
    summary: pd.DataFrame,
    devices: dict[str, Device],
) -> list[str]:
    notes = []
    for device_id in sorted(shared_ids(devices)):
        holders = sorted(
            ", ".join(d.hosts)
            for d in devices.values()
            if device_id in (d.facts.entdmid, d.facts.entra_device_id)
        )
        notes.append(
            f"device id {device_id} is held by {len(holders)} machines "
            f"({'; '.join(holders)}): not used to match connector requests (a cloned "
            "image or a reused registry dump?)"
        )
    for device in devices.values():
        if device.orphan_steps:
            notes.append(
                f"{', '.join(device.hosts)}: {device.orphan_steps} ESP / hybrid "
                "registration event(s) with no join attempt before them (the "
                "attempt's logs may have rolled over or not be in the bundle)"
            )
    device_machines = [m for m, r in role_of.items() if r == "device"]
    connectors = [m for m, r in role_of.items() if r == "connector"]
    if not attempts:
        hosts = sorted(set(hosts_met(summary)))
        notes.append(
            "no join attempt found: no Autopilot / MDM device step events in the "
            f"bundle ({len(hosts)} host(s) read; see coverage)"
        )
    if not device_machines and connectors:
        notes.append(
            "only connector logs: their requests cannot be lined up with a device's "
            "own story; add the device's MdmDiagnosticsTool or Collect-diagnostics "
            "bundle"
        )
    if (
        device_machines
        and not connectors
        and any(a.connector_evidence == "no_connector_logs" for a in attempts)
    ):
        notes.append(
            "no Intune Connector for AD logs in the bundle: connector-side causes "
            "cannot be confirmed"
        )
    by_connector: dict[str, int] = defaultdict(int)
    for notice in notices:
        by_connector[notice.connector] += 1
    for connector, count in sorted(by_connector.items()):
        notes.append(
            f"{connector} logged {count} event(s) about itself (service configuration"
            " or proxy), not about a request"
        )
    failed = [r for r in unmatched if not r.succeeded]
    if failed:
        notes.append(f"{len(failed)} failed connector request(s) match no device in the bundle")
    alone = [a for a in attempts if a.match_basis == "connector_only"]
    if alone:
        notes.append(
            f"{len(alone)} device(s) known only from failed connector requests (their "
            "own logs are not in the bundle): judged from the connector side"
        )
    return notes
