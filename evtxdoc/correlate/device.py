"""One device machine while correlating: its hosts, facts, clock, attempt drafts and
the pairs matching found; built from the timeline's step events."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from evtxdoc.correlate import clock as clocks
from evtxdoc.correlate import evidence
from evtxdoc.correlate.attempts import Draft, split
from evtxdoc.correlate.clock import Interval, LocalClock
from evtxdoc.correlate.facts import DeviceFacts, guid_in, join_method_of
from evtxdoc.event_summary import EventRows
from evtxdoc.models import (
    ConnectorRequest,
)
from evtxdoc.vocab import SECOND

NO_FACTS = DeviceFacts()  # shared by devices without supporting files; never modified


@dataclass
class Device:
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


def build_devices(
    every: EventRows,
    records: list[evidence.Record],
    device_events: list[evidence.DeviceEvent],
    machine_of: dict[str, str],
    names: dict[str, str],
    facts: dict[str, DeviceFacts],
    channels_of: dict[str, set[str]],
) -> dict[str, Device]:
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
        rows = every.rows({h.lower() for h in hosts_of[machine]}) if machine_jumps else None
        local_clock = LocalClock(machine_jumps, rows)
        device = Device(
            machine,
            sorted(hosts_of[machine]),
            _with_profile_facts(facts.get(machine, NO_FACTS), events),
            local_clock,
            channels_of.get(machine, set()),
        )
        if machine_jumps:
            timed = [(local_clock.local(e.record), e) for e in events]
        else:
            timed = [(e.record.ts, e) for e in events]
        timed.sort(key=lambda item: (item[0], item[1].record.record_id))
        drafts = split(timed)
        hybrid = device.facts.join_method == "hybrid"
        device.drafts = [d for d in drafts if d.anchored or (hybrid and d.has("profile"))]
        device.orphan_steps = sum(
            1
            for d in drafts
            if not d.anchored
            for _, e in d.events
            if e.step in ("esp", "hybrid_registration")
        )
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
        if found.get("CloudAssignedTenantDomain")
        else None,
    )
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
        if not any(
            abs(jump.new - k.new) < 5 * SECOND
            and abs(jump.offset - k.offset) < 5 * SECOND
            and jump.record.host.lower() == k.record.host.lower()
            for k in kept
        ):
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
            reboot = evidence.DeviceEvent(
                event.record, "reboot", "ok", f"first event under the new name {event.record.host}"
            )
            draft.events.insert(draft.events.index((local, event)), (local, reboot))
            draft.seen.update(("reboot", ("reboot", "ok")))
            return


def computer_name(draft: Draft) -> tuple[str | None, str | None]:
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
