"""Join attempts: each device's steps lined up with what the connector did, skew-aware.

The flow (issue 4, design.md §3, domain.md (d)):
1. `evidence`: pick the step and connector events out of the timeline (vectorized).
2. `machines`: tie a device's OOBE name to its new name; attach supporting files.
3. `clock`: put each device's events on its own final clock (clock sets).
4. `attempts`: split each device's steps into attempts and judge each from the device side.
5. here: match connector requests to attempts by computer name, then device id (EntDMID, or
   the Entra device id), and only then by time window; estimate each device's offset against
   its connector from causal order; correct times; report what matched nothing.
"""

from __future__ import annotations

import gc
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from evtxdoc.correlate import clock as clocks
from evtxdoc.correlate import evidence, machines
from evtxdoc.correlate.attempts import Draft, Verdict, judge, split
from evtxdoc.correlate.clock import Interval, LocalClock
from evtxdoc.correlate.facts import DeviceFacts, guid_in, join_method_of
from evtxdoc.models import (
    Attempt,
    ChannelCoverage,
    ClockOffset,
    ConnectorNotice,
    ConnectorRequest,
    Correlation,
    DamageSpan,
    DeviceIdentity,
    EventRef,
    Outcome,
    Step,
    SupportingFile,
)
from evtxdoc.normalize import format_time_ns

SECOND = 1_000_000_000
ASSUMED_SKEW_NS = 5 * 60 * SECOND  # time-window matching without any offset evidence
WINDOW_SLACK_NS = 2 * 60 * SECOND
OPEN_WAIT_NS = 2 * 3600 * SECOND  # a wait with no end logged is searched this far
CONNECTOR_CHANNEL = "Microsoft-Intune-ODJConnectorService/Operational"
CONNECTOR_LOGS = set(evidence.CONNECTOR_UPDATED + evidence.CONNECTOR_LEGACY)
NO_FACTS = DeviceFacts()  # shared by devices without supporting files; never modified


@dataclass
class _Device:
    """One device machine while correlating."""

    key: str
    hosts: list[str]
    facts: DeviceFacts
    clock: LocalClock
    channels: set[str]
    drafts: list[Draft] = field(default_factory=list)
    pairs: dict[int, list[ConnectorRequest]] = field(default_factory=dict)  # draft → requests
    basis: dict[int, str] = field(default_factory=dict)
    residual: Interval | None = None
    reference: str | None = None
    ambiguous: set[int] = field(default_factory=set)  # drafts with several candidates
    candidates: set[int] = field(default_factory=set)  # id() of the requests they could be
    conflicts: dict[int, list[ConnectorRequest]] = field(default_factory=dict)  # set aside
    orphan_steps: int = 0  # ESP / registration events outside any attempt


def correlate(frame: pd.DataFrame, supporting: Sequence[SupportingFile] = (),
              coverage: Sequence[ChannelCoverage] = ()) -> Correlation:
    """Every join attempt in the timeline, matched and judged (see the module docstring)."""
    collecting = gc.isenabled()
    gc.disable()  # many small objects, no cycles: the collector only costs time here
    try:
        return _correlate(frame, supporting, coverage)
    finally:
        if collecting:
            gc.enable()


def _correlate(frame: pd.DataFrame, supporting: Sequence[SupportingFile],
               coverage: Sequence[ChannelCoverage]) -> Correlation:
    rows = evidence.select(frame)
    records = evidence.records(rows)
    connector_channels = set(evidence.CONNECTOR_UPDATED + evidence.CONNECTOR_LEGACY)
    connector_records = [r for r in records if r.channel in connector_channels]
    device_events = [e for r in records if r.channel not in connector_channels
                     and (e := evidence.device_event(r))]
    joins = [e.record for e in device_events if e.step == "offline_join"]
    machine_of, sources = machines.group_hosts(frame, joins)
    names = {str(h).lower(): str(h) for h in frame["host"].unique()} if len(frame) else {}
    role_of = machines.roles(frame, machine_of)
    for machine in machines.beside_unreadable_connector_logs(coverage, sources):
        role_of[machine] = "connector"  # its connector log is there, damaged to nothing
    facts = machines.attach_facts(supporting, sources)
    requests, notices = [], []
    for record in connector_records:
        found = evidence.connector_event(record)
        if isinstance(found, ConnectorRequest):
            requests.append(found)
        elif isinstance(found, ConnectorNotice):
            notices.append(found)
    channels_of = machines.channels_by_machine(frame, machine_of)
    devices = _devices(frame, records, device_events, machine_of, names, facts, channels_of)
    for machine, device in devices.items():
        if device.drafts:
            role_of[machine] = "device"
    _match_by_identity(devices, requests)
    for device in devices.values():
        _estimate(device)
    for device in _match_by_time(devices, requests):
        _estimate(device)
    connectors = {m for m, role in role_of.items() if role == "connector"}
    connector_hosts = {names.get(h, h) for h, m in machine_of.items() if m in connectors}
    connector_cover = [c for c in coverage if c.host in connector_hosts
                       or (not c.records and c.channel.lower() in CONNECTOR_LOGS)]
    attempts, offsets = [], []
    for device in sorted(devices.values(), key=lambda d: d.key):
        device_offsets = clocks.offsets_for(
            names.get(device.key, device.key), device.reference or "connector",
            device.residual, device.clock,
            "synchronized with its time source, assumed to be the connector's domain time")
        offsets.extend(device_offsets)
        attempts.extend(_attempts(device, device_offsets, bool(connectors), connector_cover))
    claimed = {id(r) for a in attempts for r in a.requests}
    claimed |= {c for d in devices.values() for c in d.candidates}
    claimed |= {id(r) for a in attempts for r in a.conflicts}
    known = {n.lower() for a in attempts for n in (a.device.computer_name, *a.device.hosts) if n}
    known |= {i for d in devices.values() for i in (d.facts.entdmid, d.facts.entra_device_id)
              if i}
    span = ((min(a.started for a in attempts) - CONTEXT_NS, max(a.ended for a in attempts)
             + CONTEXT_NS) if attempts else None)
    attempts.extend(connector_only_attempts(
        [r for r in requests if id(r) not in claimed], known, span))
    claimed = {id(r) for a in attempts for r in (*a.requests, *a.conflicts)}
    unmatched = tuple(sorted((r for r in requests if id(r) not in claimed), key=lambda r: r.ts))
    return Correlation(
        attempts=tuple(attempts),
        machines=tuple(machines.machines(machine_of, role_of, names, sources)),
        offsets=tuple(offsets), unmatched_requests=unmatched,
        connector_notices=tuple(sorted(notices, key=lambda n: n.ts)),
        notes=tuple(_notes(attempts, role_of, unmatched, notices, frame, devices)))


# --- devices and drafts -----------------------------------------------------------------------

def _devices(frame: pd.DataFrame, records: list[evidence.Record],
             device_events: list[evidence.DeviceEvent], machine_of: dict[str, str],
             names: dict[str, str], facts: dict[str, DeviceFacts],
             channels_of: dict[str, set[str]]) -> dict[str, _Device]:
    by_machine: dict[str, list[evidence.DeviceEvent]] = defaultdict(list)
    exact = {names.get(lower, lower): machine for lower, machine in machine_of.items()}
    for event in device_events:
        host = event.record.host
        machine = exact.get(host) or machine_of.get(host.lower())
        if machine:
            by_machine[machine].append(event)
    jumps = _distinct_jumps([j for r in records if (j := evidence.clock_jump(r))])
    jumps_of = clocks.jumps_by_machine(jumps, machine_of)
    hosts_of: dict[str, list[str]] = defaultdict(list)
    for lower, machine in machine_of.items():
        hosts_of[machine].append(names.get(lower, lower))
    devices = {}
    for machine, events in by_machine.items():
        machine_jumps = jumps_of.get(machine, [])
        rows = None
        if machine_jumps:
            rows = frame.loc[frame["host"].astype(str).str.lower().isin(
                {h.lower() for h in hosts_of[machine]}).to_numpy()]
        local_clock = LocalClock(machine_jumps, rows)
        device = _Device(machine, sorted(hosts_of[machine]),
                         _with_profile_facts(facts.get(machine, NO_FACTS), events),
                         local_clock, channels_of.get(machine, set()))
        if machine_jumps:
            timed = [(local_clock.local(e.record), e) for e in events]
        else:
            timed = [(e.record.ts, e) for e in events]
        timed.sort(key=lambda item: (item[0], item[1].record.record_id))
        drafts = split(timed)
        hybrid = device.facts.join_method == "hybrid"
        device.drafts = [d for d in drafts if d.anchored or (hybrid and d.has("profile"))]
        device.orphan_steps = sum(1 for d in drafts if not d.anchored for _, e in d.events
                                  if e.step in ("esp", "hybrid_registration"))
        for draft in device.drafts:
            _add_reboot(draft)
        if device.drafts or device.orphan_steps:
            devices[machine] = device
    return devices


def _with_profile_facts(facts: DeviceFacts, events: list[evidence.DeviceEvent]) -> DeviceFacts:
    """The device's facts with what its profile events say where no file said it: the join
    method and the skip-DC setting (Autopilot 101), the ZTD id and tenant (103)."""
    found: dict[str, object] = {}
    for event in events:
        setting = evidence.profile_setting(event.record)
        if setting:
            found.setdefault(setting[0], setting[1])
        elif event.record.channel == evidence.AUTOPILOT and event.record.event_id == 103:
            name = str(event.record.fields.get("Message1") or "")
            found.setdefault(name, event.record.fields.get("Message2"))
    skip = found.get("HybridJoinSkipDCConnectivityCheck")
    learned = DeviceFacts(
        join_method=join_method_of(found.get("CloudAssignedDomainJoinMethod")),
        skip_dc_check=None if skip is None else skip == 1,
        ztdid=guid_in(found.get("ZtdRegistrationId")),
        tenant_domain=str(found["CloudAssignedTenantDomain"])
        if found.get("CloudAssignedTenantDomain") else None)
    if learned == DeviceFacts():
        return facts
    learned.sources.append("Autopilot profile events (101/103)")
    merged = DeviceFacts()
    merged.merge(facts)
    merged.merge(learned)
    return merged


def _distinct_jumps(jumps: list[evidence.ClockJump]) -> list[evidence.ClockJump]:
    """One clock set is logged by Kernel-General 1 and Time-Service 261: keep one of each."""
    kept: list[evidence.ClockJump] = []
    for jump in sorted(jumps, key=lambda j: (j.record.channel != "system", j.new)):
        if not any(abs(jump.new - k.new) < 5 * SECOND and abs(jump.offset - k.offset)
                   < 5 * SECOND and jump.record.host.lower() == k.record.host.lower()
                   for k in kept):
            kept.append(jump)
    return kept


def _add_reboot(draft: Draft) -> None:
    """The ODJ reboot shows as the first step event under the new name after the join."""
    joined = draft.first("offline_join", "ok") or draft.first("blob_applied")
    if not joined:
        return
    before = joined[1].record.host.lower()
    for local, event in draft.events:
        if local > joined[0] and event.record.host.lower() != before:
            reboot = evidence.DeviceEvent(event.record, "reboot", "ok",
                                          f"first event under the new name {event.record.host}")
            draft.events.insert(draft.events.index((local, event)), (local, reboot))
            draft.seen.update(("reboot", ("reboot", "ok")))
            return


def _computer_name(draft: Draft) -> tuple[str | None, str | None]:
    """(computer name, domain) from 4098/4099, else the renamed host (cached on the draft)."""
    if draft.name is None:
        draft.name = _find_name(draft)
    return draft.name


def _find_name(draft: Draft) -> tuple[str | None, str | None]:
    found = draft.last("offline_join")
    if found:
        fields = found[1].record.fields
        name, domain = fields.get("ComputerName"), fields.get("DomainName")
        if name:
            return str(name), str(domain) if domain else None
    for _, event in draft.events:
        host = event.record.host
        if "." in host and event.step in ("reboot", "esp", "hybrid_registration"):
            name, _, domain = host.partition(".")
            return name, domain
    return None, None


# --- matching ---------------------------------------------------------------------------------

def _match_by_identity(devices: dict[str, _Device], requests: list[ConnectorRequest]) -> None:
    by_name: dict[str, list[ConnectorRequest]] = defaultdict(list)
    by_id: dict[str, list[ConnectorRequest]] = defaultdict(list)
    for request in requests:
        if request.device_name:
            by_name[request.device_name.lower()].append(request)
        if request.device_id:
            by_id[request.device_id].append(request)
    for device in devices.values():
        for index in (i for i, d in enumerate(device.drafts) if d.asked):
            name, domain = _computer_name(device.drafts[index])
            if name:
                found = [r for r in by_name.get(name.lower(), ())
                         if not (domain and r.domain and r.domain.lower() != domain.lower())]
                if found:
                    device.pairs[index] = found
                    device.basis[index] = "computer_name"
    learned = _connector_ids(devices)
    shared = _shared_ids(devices)
    for device in devices.values():
        asked = [i for i, d in enumerate(device.drafts) if d.asked]
        ids = [(i, label) for i, label in ((device.facts.entdmid, "entdmid"),
                                           (device.facts.entra_device_id, "entra_device_id"))
               if i and i not in shared]
        ids += [(i, "connector_device_id") for i in sorted(learned.get(device.key, ()))
                if i not in {known for known, _ in ids}]
        for device_id, label in ids:
            found = [r for r in by_id.get(device_id, ())
                     if not any(r in pair for pair in device.pairs.values())]
            if not found:
                continue
            open_drafts = [i for i in asked if i not in device.pairs]
            if not open_drafts:
                continue
            for request in found:
                index = _nearest_draft(device, open_drafts, request)
                device.pairs.setdefault(index, []).append(request)
                device.basis[index] = label
    for device in devices.values():
        _set_aside_contradictions(device)


def _shared_ids(devices: dict[str, _Device]) -> set[str]:
    """Device ids (EntDMID, Entra device id) that more than one machine holds: a cloned image
    or a reused registry dump. They cannot tell the machines apart, so no match uses them."""
    owners: dict[str, int] = defaultdict(int)
    for device in devices.values():
        for device_id in {device.facts.entdmid, device.facts.entra_device_id} - {None}:
            owners[device_id] += 1
    return {device_id for device_id, count in owners.items() if count > 1}


CONTRADICTION_NS = ASSUMED_SKEW_NS + WINDOW_SLACK_NS


def _set_aside_contradictions(device: _Device) -> None:
    """A blob created (success) well before the device began waiting cannot be the blob of an
    attempt that then timed out without one: it is another deployment's (the same name or
    id) or the device clock was far off. Such requests are not matched silently: they are set
    aside on the attempt and said so (connector_evidence `contradictory`)."""
    for index, found in list(device.pairs.items()):
        draft = device.drafts[index]
        if draft.blob_at is not None or draft.gave_up_at is None or draft.wait_start is None:
            continue
        odd = [r for r in found if r.succeeded and r.ts < draft.wait_start - CONTRADICTION_NS]
        if not odd:
            continue
        device.conflicts[index] = odd
        kept = [r for r in found if r not in odd]
        if kept:
            device.pairs[index] = kept
        else:
            del device.pairs[index]
            device.basis.pop(index, None)


def _connector_ids(devices: dict[str, _Device]) -> dict[str, set[str]]:
    """Per device, the DeviceIds the connector logged in requests matched to it by name, kept
    only where no other device's requests carry the same id. Whatever id the connector logs
    (domain.md (d) leaves it open), its other requests for that device carry it too: a retry's
    failed request names a computer the device never became, but not another device."""
    found = {key: {r.device_id for pair in device.pairs.values() for r in pair if r.device_id}
             for key, device in devices.items()}
    owners: dict[str, int] = defaultdict(int)
    for ids in found.values():
        for device_id in ids:
            owners[device_id] += 1
    return {key: {i for i in ids if owners[i] == 1} for key, ids in found.items()}


def _nearest_draft(device: _Device, candidates: list[int], request: ConnectorRequest) -> int:
    """The attempt whose wait window (device final clock) holds the request, else the nearest."""
    residual = device.residual.estimate[0] if device.residual else 0

    def distance(index: int) -> int:
        draft = device.drafts[index]
        start = (draft.wait_start or draft.events[0][0]) - residual
        end = (draft.blob_at or draft.gave_up_at or start + OPEN_WAIT_NS) - residual
        if start - WINDOW_SLACK_NS <= request.ts <= end + WINDOW_SLACK_NS:
            return 0
        return min(abs(request.ts - start), abs(request.ts - end))

    return min(candidates, key=lambda i: (distance(i), i))


def _match_by_time(devices: dict[str, _Device],
                   requests: list[ConnectorRequest]) -> list[_Device]:
    """Attempts with no identity match: the one unclaimed request inside their wait window.

    Two or more candidates are never guessed between: the attempt is marked ambiguous.
    Returns the devices that gained a pair.
    """
    changed: list[_Device] = []
    claimed = {id(r) for d in devices.values() for rs in d.pairs.values() for r in rs}
    known_names = set()
    known_ids = set()
    for device in devices.values():
        for draft in device.drafts:
            name, _ = _computer_name(draft)
            if name:
                known_names.add(name.lower())
        known_ids.update(i for i in (device.facts.entdmid, device.facts.entra_device_id) if i)
    known_ids -= _shared_ids(devices)  # an id two machines hold names neither
    free = sorted((r for r in requests if id(r) not in claimed
                   and not (r.device_name and r.device_name.lower() in known_names)
                   and not (r.device_id and r.device_id in known_ids)), key=lambda r: r.ts)
    times = [r.ts for r in free]
    taken: set[int] = set()
    for device in devices.values():
        own_ids = {i for i in (device.facts.entdmid, device.facts.entra_device_id) if i}
        if device.residual is None:
            shift, width = 0, ASSUMED_SKEW_NS
        else:
            shift, half = device.residual.estimate
            if half is None:
                continue
            width = half
        for index, draft in enumerate(device.drafts):
            if index in device.pairs or not draft.asked or draft.wait_start is None:
                continue
            name, domain = _computer_name(draft)
            start = draft.wait_start - shift - width - WINDOW_SLACK_NS
            end = (draft.blob_at or draft.gave_up_at or draft.wait_start + OPEN_WAIT_NS)
            end = end - shift + width + WINDOW_SLACK_NS
            found = [free[p] for p in range(bisect_left(times, start), bisect_right(times, end))
                     if id(free[p]) not in taken and _compatible(free[p], own_ids, name, domain)]
            if len(found) == 1:
                device.pairs[index] = found
                device.basis[index] = ("time_window" if device.residual is not None
                                       else "time_window_assumed")
                taken.add(id(found[0]))
                if not changed or changed[-1] is not device:
                    changed.append(device)
            elif found:  # two or more candidates: no guess, and none is another device's
                device.ambiguous.add(index)
                device.candidates.update(id(r) for r in found)
    return changed


def _compatible(request: ConnectorRequest, own_ids: set[str], name: str | None,
                domain: str | None) -> bool:
    """No identity in the request contradicts the attempt's."""
    if own_ids and request.device_id and request.device_id not in own_ids:
        return False
    if name and request.device_name and request.device_name.lower() != name.lower():
        return False
    return not (domain and request.domain and request.domain.lower() != domain.lower())


def _estimate(device: _Device) -> None:
    """The device's final-clock offset against its connector, from every matched pair."""
    intervals, references = [], defaultdict(int)
    for index, found in device.pairs.items():
        draft = device.drafts[index]
        if draft.wait_start is None:
            continue
        for request in found:
            references[request.connector] += 1
            intervals.append(clocks.causal_interval(draft.wait_start, request.ts,
                                                    draft.blob_at, draft.gave_up_at))
    synced = None
    if device.clock.jumps:
        synced = Interval(-clocks.JUMP_PRECISION_NS, clocks.JUMP_PRECISION_NS,
                          ["clock set to its time source during the attempt"])
    causal, _ = clocks.combine(intervals)  # an inconsistent hull says so in its basis
    device.reference = max(references, key=lambda k: references[k]) if references else None
    if causal is None:
        device.residual = synced
        return
    if synced is not None:
        device.residual = causal.intersect(synced) or causal
        return
    device.residual = causal


# --- attempts ---------------------------------------------------------------------------------

def _attempts(device: _Device, offsets: list[ClockOffset], have_connectors: bool,
              connector_cover: list[ChannelCoverage]) -> list[Attempt]:
    residual = clocks.applied_shift(device.residual)  # 0 unless tight and needed
    out = []
    for index, draft in enumerate(device.drafts):
        verdict = judge(draft, device.facts.join_method, device.channels)
        found = tuple(sorted(device.pairs.get(index, ()), key=lambda r: r.ts))
        steps = tuple(Step(e.step, e.status, e.record.ts, local - residual,
                           EventRef(e.record.host, e.record.channel, e.record.event_id,
                                    e.record.record_id, e.record.source_file), e.detail)
                      for local, e in draft.events)
        name, domain = _computer_name(draft)
        named = next((r for r in found if r.device_name), None)
        if not name and named:
            name = named.device_name
        if not domain:
            domain = next((r.domain for r in found if r.domain), None)
        hosts = tuple(dict.fromkeys(e.record.host for _, e in draft.events))
        oobe = tuple(h for h in hosts if not (name and h.lower().partition(".")[0]
                                              == name.lower()))
        identity = DeviceIdentity(
            machine=device.key, oobe_names=oobe, hosts=tuple(device.hosts),
            computer_name=name, domain=domain, serial=device.facts.serial,
            ztdid=device.facts.ztdid, entdmid=device.facts.entdmid,
            tenant_id=device.facts.tenant_id, join_method=device.facts.join_method,
            skip_dc_check=device.facts.skip_dc_check, sources=tuple(device.facts.sources))
        anchor = next((e for _, e in draft.events if e.step == "odj_request"),
                      draft.events[0][1])
        segment = min(device.clock.segment(anchor.record), len(offsets) - 1)
        evidence_state, missing = _connector_evidence(
            verdict, found, have_connectors, connector_cover, steps, device)
        absent_logs = missing_logs(device.channels, verdict)
        conflicts = tuple(device.conflicts.get(index, ()))
        reason = _reason(verdict, found)
        if conflicts and not found:
            evidence_state = "contradictory"
            first = conflicts[0]
            ahead = duration_text(steps_wait_start(draft) - first.ts)
            reason += (f"; {first.connector} logged a success for {first.device_name or '?'} "
                       f"at {format_time_ns(first.ts)[:19]}Z, {ahead} before the device began "
                       "waiting: not this attempt's blob (another deployment of that name or "
                       "id, or a device clock off by that much), so it is not matched")
        if evidence_state == "no_request" and index in device.ambiguous:
            evidence_state = "ambiguous"
            missing = (*missing, "an identity to choose between the several connector "
                       "requests in the attempt's window (the device's "
                       "MdmDiagReport_RegistryDump.reg gives its EntDMID)")
        out.append(Attempt(
            id=f"{(oobe or hosts)[0]}#{index + 1}", device=identity, number=index + 1,
            steps=steps, requests=found,
            connector=found[-1].connector if found else None,
            match_basis=device.basis.get(index), connector_evidence=evidence_state,
            outcome=verdict.outcome, failed_step=verdict.failed_step,
            reason=reason, offset=offsets[segment], conflicts=conflicts,
            started=steps[0].ts_corrected, ended=steps[-1].ts_corrected,
            durations=_durations(steps, found), missing=missing, missing_logs=absent_logs))
    return out


RETRY_GAP_NS = 2 * 3600 * SECOND  # requests for one name this close are one deployment's
CONTEXT_NS = 24 * 3600 * SECOND  # connector-only failures this close to a device's attempt


def connector_only_attempts(requests: list[ConnectorRequest], known: set[str],
                            span: tuple[int, int] | None = None) -> list[Attempt]:
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
    reason = (f"only the connector side is in the bundle: {last.connector} failed the "
              f"request for {label}" + (f" (DiagnosticCode {code})" if code else "")
              + (f": {last.diagnostic_text[:200]}" if last.diagnostic_text else "")
              + "; the device's own logs are not in the bundle")
    identity = DeviceIdentity(machine=f"connector-only:{label.lower()}", oobe_names=(),
                              hosts=(label,), computer_name=name,
                              domain=next((r.domain for r in found if r.domain), None))
    return Attempt(
        id=f"{label}#{number}", device=identity, number=number, steps=(), requests=found,
        connector=last.connector, match_basis="connector_only", connector_evidence="matched",
        outcome=Outcome.UNKNOWN, failed_step=None, reason=reason, offset=None,
        started=found[0].ts, ended=last.ts,
        durations={"total": round((last.ts - found[0].ts) / SECOND, 3)},
        missing=(f"the logs of the device {label} (its MdmDiagnosticsTool or Collect "
                 "diagnostics bundle), to see how the attempt ended on the device",))


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
        return (f"{verdict.reason}; the connector {last.connector} failed the request"
                + (f" (DiagnosticCode {code})" if code else "")
                + (f": {last.diagnostic_text[:200]}" if last.diagnostic_text else ""))
    return verdict.reason


def missing_logs(device_channels: set[str], verdict: Verdict) -> tuple[str, ...]:
    """The device logs this attempt would need and the bundle lacks (short names)."""
    out = []
    if "system" not in device_channels and verdict.hybrid:
        out.append("system")
    if (evidence.UDR not in device_channels and verdict.hybrid
            and verdict.outcome in (Outcome.SUCCEEDED, Outcome.INCOMPLETE)):
        out.append("user_device_registration")
    return tuple(out)


MISSING_WORDS = {
    "system": "the device's System log (offline join 4098/4099, NETLOGON 5719)",
    "user_device_registration": "the device's Microsoft-Windows-User Device Registration/Admin"
                                " log",
}


def _connector_evidence(verdict: Verdict, found: tuple[ConnectorRequest, ...],
                        have_connectors: bool, connector_cover: list[ChannelCoverage],
                        steps: tuple[Step, ...], device: _Device) -> tuple[str, tuple[str, ...]]:
    missing = [MISSING_WORDS[name] for name in missing_logs(device.channels, verdict)]
    if not any(s.name == "odj_request" for s in steps):
        return "not_applicable", tuple(missing)
    if found:
        return "matched", tuple(missing)
    wanted = (f"the Intune Connector for AD logs ({CONNECTOR_CHANNEL}) of the connector "
              "serving the device's domain, covering the attempt")
    logs = [c for c in connector_cover if c.channel.lower() in CONNECTOR_LOGS]
    unreadable = [c for c in logs if not c.records and c.damaged]
    if not have_connectors and not unreadable:
        return "no_connector_logs", (*missing, wanted)
    start = min(s.ts_corrected for s in steps if s.name == "odj_request")
    end = max(s.ts_corrected for s in steps)
    damaged = [(c, span) for c in logs for span in c.damaged
               if span.overlaps(start - WINDOW_SLACK_NS, end + WINDOW_SLACK_NS)]
    if damaged:  # a claim of absence on destroyed evidence is no claim: say what is unknown
        return "damaged", (*missing, *(
            f"an intact {c.channel} log of {c.host or c.sources[0]}: it is damaged "
            f"({span.kind}) {damage_text(span)}, inside the attempt's wait; export it again"
            for c, span in damaged[:3]))
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


DURATIONS = (("profile", "enrollment"), ("enrollment", "odj_request"),
             ("odj_request", "connector"), ("connector", "blob"), ("odj_request", "blob"),
             ("odj_request", "timed_out"), ("blob", "offline_join"),
             ("offline_join", "reboot"), ("offline_join", "esp"),
             ("esp", "hybrid_registration"))


def _durations(steps: tuple[Step, ...], found: tuple[ConnectorRequest, ...]) -> dict[str, float]:
    """Seconds between the first occurrences of the steps (corrected times)."""
    first: dict[str | tuple[str, str], int] = {}
    for step in steps:
        first.setdefault(step.name, step.ts_corrected)
        first.setdefault((step.name, step.status), step.ts_corrected)
    marks = {
        "profile": first.get("profile"), "enrollment": first.get("enrollment"),
        "odj_request": first.get(("odj_request", "waiting")),
        "connector": found[0].ts if found else None,
        "blob": first.get(("odj_blob", "ok")) or first.get("blob_applied"),
        "offline_join": first.get("offline_join"), "reboot": first.get("reboot"),
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


def _notes(attempts: list[Attempt], role_of: dict[str, str],
           unmatched: tuple[ConnectorRequest, ...], notices: list[ConnectorNotice],
           frame: pd.DataFrame, devices: dict[str, _Device]) -> list[str]:
    notes = []
    for device_id in sorted(_shared_ids(devices)):
        holders = sorted(", ".join(d.hosts) for d in devices.values()
                         if device_id in (d.facts.entdmid, d.facts.entra_device_id))
        notes.append(f"device id {device_id} is held by {len(holders)} machines "
                     f"({'; '.join(holders)}): not used to match connector requests (a cloned "
                     "image or a reused registry dump?)")
    for device in devices.values():
        if device.orphan_steps:
            notes.append(f"{', '.join(device.hosts)}: {device.orphan_steps} ESP / hybrid "
                         "registration event(s) with no join attempt before them (the "
                         "attempt's logs may have rolled over or not be in the bundle)")
    devices = [m for m, r in role_of.items() if r == "device"]
    connectors = [m for m, r in role_of.items() if r == "connector"]
    if not attempts:
        hosts = sorted({str(h) for h in frame["host"].unique()}) if len(frame) else []
        notes.append("no join attempt found: no Autopilot / MDM device step events in the "
                     f"bundle ({len(hosts)} host(s) read; see coverage)")
    if not devices and connectors:
        notes.append("only connector logs: their requests cannot be lined up with a device's "
                     "own story; add the device's MdmDiagnosticsTool or Collect-diagnostics "
                     "bundle")
    if devices and not connectors and any(a.connector_evidence == "no_connector_logs"
                                          for a in attempts):
        notes.append("no Intune Connector for AD logs in the bundle: connector-side causes "
                     "cannot be confirmed")
    by_connector: dict[str, int] = defaultdict(int)
    for notice in notices:
        by_connector[notice.connector] += 1
    for connector, count in sorted(by_connector.items()):
        notes.append(f"{connector} logged {count} event(s) about itself (service configuration"
                     " or proxy), not about a request")
    failed = [r for r in unmatched if not r.succeeded]
    if failed:
        notes.append(f"{len(failed)} failed connector request(s) match no device in the "
                     "bundle")
    alone = [a for a in attempts if a.match_basis == "connector_only"]
    if alone:
        notes.append(f"{len(alone)} device(s) known only from failed connector requests (their "
                     "own logs are not in the bundle): judged from the connector side")
    return notes


def attempts_frame(correlation: Correlation | None) -> pd.DataFrame:
    """One row per attempt (the table the rules engine reads)."""
    columns = ["attempt", "device", "computer_name", "domain", "outcome", "failed_step",
               "connector", "match_basis", "connector_evidence", "offset_s", "offset_error_s",
               "started", "ended", "requests", "failed_requests", "diagnostic_code",
               "join_method", "skip_dc_check", "entdmid", "steps", "missing_logs", "missing"]
    rows = []
    for attempt in correlation.attempts if correlation else ():
        offset = attempt.offset
        failures = [r for r in attempt.requests if not r.succeeded]
        rows.append({
            "attempt": attempt.id,
            "device": (attempt.device.oobe_names or attempt.device.hosts or ("",))[0],
            "computer_name": attempt.device.computer_name, "domain": attempt.device.domain,
            "outcome": str(attempt.outcome), "failed_step": attempt.failed_step,
            "connector": attempt.connector, "match_basis": attempt.match_basis,
            "connector_evidence": attempt.connector_evidence,
            "offset_s": offset.offset_ns / SECOND if offset else None,
            "offset_error_s": (offset.uncertainty_ns / SECOND
                               if offset and offset.uncertainty_ns is not None else None),
            "started": pd.Timestamp(attempt.started, unit="ns", tz="UTC"),
            "ended": pd.Timestamp(attempt.ended, unit="ns", tz="UTC"),
            "requests": len(attempt.requests), "failed_requests": len(failures),
            "diagnostic_code": failures[-1].diagnostic_code if failures else None,
            "join_method": attempt.device.join_method,
            "skip_dc_check": attempt.device.skip_dc_check, "entdmid": attempt.device.entdmid,
            "steps": ",".join(f"{s.name}:{s.status}" for s in attempt.steps),
            "missing_logs": ",".join(attempt.missing_logs),
            "missing": "; ".join(attempt.missing),
        })
    return pd.DataFrame(rows, columns=columns)
