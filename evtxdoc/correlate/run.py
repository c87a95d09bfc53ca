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
from collections.abc import Sequence

import pandas as pd

from evtxdoc.correlate import clock as clocks
from evtxdoc.correlate import evidence, exchange, machines
from evtxdoc.correlate.device import build_devices
from evtxdoc.correlate.matching import estimate, match_by_identity, match_by_time
from evtxdoc.correlate.results import (
    CONNECTOR_LOGS,
    CONTEXT_NS,
    attempts_of,
    connector_only_attempts,
    notes_of,
)
from evtxdoc.event_summary import EventRows, FrameRows, hosts_met, summarize
from evtxdoc.models import (
    ChannelCoverage,
    ConnectorNotice,
    ConnectorRequest,
    Correlation,
    SupportingFile,
)


def correlate(
    frame: pd.DataFrame,
    supporting: Sequence[SupportingFile] = (),
    coverage: Sequence[ChannelCoverage] = (),
    summary: pd.DataFrame | None = None,
    every: EventRows | None = None,
) -> Correlation:
    """Every join attempt in the timeline, matched and judged (see the module docstring).

    `summary` (evtxdoc/event_summary.py) tells which events exist and `every` gives the rows of
    some hosts when `frame` holds only those something reads (evtxdoc/partition.py); by
    default both come from the frame."""
    collecting = gc.isenabled()
    gc.disable()  # many small objects, no cycles: the collector only costs time here
    try:
        return _correlate(
            frame,
            supporting,
            coverage,
            summarize(frame) if summary is None else summary,
            FrameRows(frame) if every is None else every,
        )
    finally:
        if collecting:
            gc.enable()


def _correlate(
    frame: pd.DataFrame,
    supporting: Sequence[SupportingFile],
    coverage: Sequence[ChannelCoverage],
    summary: pd.DataFrame,
    every: EventRows,
) -> Correlation:
    rows = evidence.select(frame)
    records = evidence.records(rows)
    connector_channels = set(evidence.CONNECTOR_UPDATED + evidence.CONNECTOR_LEGACY)
    connector_records = [r for r in records if r.channel in connector_channels]
    device_events = [
        e
        for r in records
        if r.channel not in connector_channels and (e := evidence.device_event(r))
    ]
    joins = [e.record for e in device_events if e.step == "offline_join"]
    machine_of, sources = machines.group_hosts(summary, joins)
    names = {host.lower(): host for host in hosts_met(summary)}
    role_of = machines.roles(summary, machine_of)
    for item in coverage:  # a server whose connector log is there, damaged to nothing
        if not item.records and item.host and item.channel.lower() in CONNECTOR_LOGS:
            role_of[machine_of.get(item.host.lower(), item.host.lower())] = "connector"
    facts = machines.attach_facts(supporting, sources)
    requests, notices = [], []
    for record in connector_records:
        found = evidence.connector_event(record)
        if isinstance(found, ConnectorRequest):
            requests.append(found)
        elif isinstance(found, ConnectorNotice):
            notices.append(found)
    channels_of = machines.channels_by_machine(summary, machine_of)
    devices = build_devices(every, records, device_events, machine_of, names, facts, channels_of)
    for machine, device in devices.items():
        if device.drafts:
            role_of[machine] = "device"
    match_by_identity(devices, requests)
    for device in devices.values():
        estimate(device)
    for device in match_by_time(devices, requests):
        estimate(device)
    connectors = {m for m, role in role_of.items() if role == "connector"}
    connector_hosts = {names.get(h, h) for h, m in machine_of.items() if m in connectors}
    connector_cover = [
        c
        for c in coverage
        if c.host in connector_hosts or (not c.records and c.channel.lower() in CONNECTOR_LOGS)
    ]
    attempts, offsets = [], []
    for device in sorted(devices.values(), key=lambda d: d.key):
        device_offsets = clocks.offsets_for(
            names.get(device.key, device.key),
            device.reference or "connector",
            device.residual,
            device.clock,
            "synchronized with its time source, assumed to be the connector's domain time",
        )
        offsets.extend(device_offsets)
        attempts.extend(attempts_of(device, device_offsets, bool(connectors), connector_cover))
    claimed = {id(r) for a in attempts for r in a.requests}
    claimed |= {c for d in devices.values() for c in d.candidates}
    claimed |= {id(r) for a in attempts for r in a.conflicts}
    known = {n.lower() for a in attempts for n in (a.device.computer_name, *a.device.hosts) if n}
    known |= {i for d in devices.values() for i in (d.facts.entdmid, d.facts.entra_device_id) if i}
    span = (
        (min(a.started for a in attempts) - CONTEXT_NS, max(a.ended for a in attempts) + CONTEXT_NS)
        if attempts
        else None
    )
    attempts.extend(
        connector_only_attempts([r for r in requests if id(r) not in claimed], known, span)
    )
    claimed = {id(r) for a in attempts for r in (*a.requests, *a.conflicts)}
    unmatched = tuple(sorted((r for r in requests if id(r) not in claimed), key=lambda r: r.ts))
    machine_list = tuple(machines.machines(machine_of, role_of, names, sources))
    syncs, exchange_states = exchange.syncs(frame, machine_list, supporting, summary)
    return Correlation(
        attempts=tuple(attempts),
        machines=machine_list,
        offsets=tuple(offsets),
        unmatched_requests=unmatched,
        connector_notices=tuple(sorted(notices, key=lambda n: n.ts)),
        notes=tuple(notes_of(attempts, role_of, unmatched, notices, summary, devices)),
        syncs=syncs,
        exchange=exchange_states,
    )


# --- devices and drafts -----------------------------------------------------------------------
