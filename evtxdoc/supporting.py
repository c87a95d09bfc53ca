"""Supporting files as evidence: each file's facts become one event of the timeline.

A bundle of only supporting files (a lone `AutopilotDDSZTDFile.json`, a dsregcmd output) is
analyzed, not refused. Every supporting file whose reader found facts gives one event on the
channel `Supporting/<kind>` (event id 0, level 4, or 2 when the file states an error), with the
facts as its fields, so that:
- rules match them like any event (`channel: Supporting/AutopilotDDSZTDFile.json`);
- the report shows them as evidence, in coverage and in the event table, named by file.

The event's host is the device whose logs lie beside the file (one device in the same folder or
archive), else the device name the file states (dsregcmd), else the file's name. Its time is
the time the file states (`PolicyDownloadDate`), else the last event of its host, else the
newest event of the bundle; a bundle with no time at all gets the Unix epoch and the event says
`time: unknown`. The events are added after correlation (which reads the files itself), so
the host is the machine correlation grouped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import pandas as pd

from evtxdoc import event_summary, timeline
from evtxdoc.correlate.exchange import SETTINGS, read_settings, tally
from evtxdoc.correlate.facts import DeviceFacts, read
from evtxdoc.correlate.machines import container, display_name
from evtxdoc.event_summary import summarize
from evtxdoc.models import ChannelCoverage, Correlation, Machine, SupportingFile
from evtxdoc.parse.batch import ColumnBatch
from evtxdoc.parse.payload import encode_payload
from evtxdoc.parse.times import format_time_ns, parse_time_ns

CHANNELS = {  # supporting-file kind → the channel its event is on
    "autopilot_ztd_json": "Supporting/AutopilotDDSZTDFile.json",
    "registry_dump": "Supporting/MdmDiagReport_RegistryDump.reg",
    "dsregcmd_status": "Supporting/dsregcmd-status",
    "exchange_connector_config": "Supporting/OnPremisesExchangeConnectorServiceConfiguration.xml",
    "exchange_tracing_config": "Supporting/TracingConfiguration.xml",
}
SYNC_CHANNEL = "Summary/Exchange connector syncs"  # one event per Exchange connector
PROVIDER = "evtxdoc"
ERROR_LEVEL, INFO_LEVEL = 2, 4


def add_events(
    frame: pd.DataFrame,
    coverage: Sequence[ChannelCoverage],
    files: Sequence[SupportingFile],
    correlation: Correlation,
    summary: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, tuple[ChannelCoverage, ...]]:
    """The timeline, the summary of every event (by default the timeline's) and coverage,
    with one event per supporting file that states something."""
    whole = summarize(frame) if summary is None else summary
    batches = events(files, whole, correlation.machines) + sync_events(correlation)
    if not batches:
        return frame, whole, tuple(coverage)
    extra = timeline.build_frame(batches)
    added = summarize(extra)
    return (
        timeline.append(frame, extra),
        event_summary.joined(whole, added),
        (*coverage, *timeline.coverage(added)),
    )


def events(
    supporting: Sequence[SupportingFile], summary: pd.DataFrame, machines: Sequence[Machine] = ()
) -> list[ColumnBatch]:
    """One batch per supporting file that states something (see the module docstring);
    `summary`: of every event (evtxdoc/event_summary.py) or the events themselves."""
    summary = summarize(summary)
    owners = _owners(machines)
    newest = int(summary["last"].array.asi8.max()) if len(summary) else None
    last_of: dict[str, int] | None = None  # host → its last event, computed once if needed
    batches = []
    for item in supporting:
        channel = CHANNELS.get(item.subkind)
        if channel is None:
            continue
        if item.subkind in SETTINGS:  # an Exchange connector's settings file
            facts = DeviceFacts()
            fields = read_settings(item.subkind, item.content)
        else:
            facts = read(item.subkind, item.content, item.display)
            fields = _fields(facts)
        if not fields:
            continue
        host = _owner(owners, container(item.display)) or facts.device_name or item.display
        ts = parse_time_ns(facts.policy_downloaded or "") if facts.policy_downloaded else None
        if ts is None:
            last_of = event_summary.last_by_host(summary) if last_of is None else last_of
            ts = last_of.get(host, newest)
        if ts is None:
            fields["time"] = "unknown (the bundle states no time)"
        error = facts.error_code not in (None, 0, "0") or "Error" in fields
        level = ERROR_LEVEL if error else INFO_LEVEL
        batch = ColumnBatch(item.display)
        batch.append_row(
            (
                ts or 0,
                0,
                0,
                level,
                0,
                0,
                1,
                host,
                channel,
                PROVIDER,
                None,
                None,
                None,
                encode_payload({"EventData": fields}),
                True,
                1,
            )
        )
        batch.flush()
        batches.append(batch)
    return batches


def sync_events(correlation: Correlation) -> list[ColumnBatch]:
    """One event per Exchange connector stating what its syncs add up to (correlate/exchange.py),
    at the connector's last trace event, so rules can judge the syncs with the settings."""
    machine_of = {h.lower(): m for m in correlation.machines for h in m.hosts}
    batches = []
    for state in correlation.exchange:
        machine = machine_of.get(state.host.lower())
        host = display_name(machine.hosts) if machine else state.host
        syncs, failed, longest = tally(correlation.syncs, state.host)
        fields: dict[str, Any] = {
            "Status": state.status,
            "Syncs": syncs,
            "FailedSyncs": failed,
            "LastFullSync": _time(state.last_full_ok_ns),
            "LastQuickSync": _time(state.last_quick_ok_ns),
            "FailingSince": _time(state.failing_since_ns),
            "TraceEnds": _time(state.trace_ends_ns),
            "LogsEnd": _time(state.host_ends_ns),
            "MaxDevicesSynced": state.max_devices,
            "LongestFullSyncSeconds": longest,
            "Organization": state.organization,
            "SameOrganizationAs": ", ".join(state.same_organization_as) or None,
            **dict(state.settings),
        }
        batch = ColumnBatch(f"(syncs of {host})")
        level = ERROR_LEVEL if state.status in ("failing", "stopped", "no_syncs") else INFO_LEVEL
        batch.append_row(
            (
                state.trace_ends_ns or 0,
                0,
                0,
                level,
                0,
                0,
                1,
                host,
                SYNC_CHANNEL,
                PROVIDER,
                None,
                None,
                None,
                encode_payload({"EventData": {k: v for k, v in fields.items() if v is not None}}),
                True,
                1,
            )
        )
        batch.flush()
        batches.append(batch)
    return batches


def _time(ns: int | None) -> str | None:
    return format_time_ns(ns) if ns is not None else None


def _fields(facts: DeviceFacts) -> dict[str, Any]:
    names = {
        "error_code": "ErrorCode",
        "error_reason": "ErrorReason",
        "join_method": "JoinMethod",
        "skip_dc_check": "HybridJoinSkipDCConnectivityCheck",
        "profile_name": "DeploymentProfileName",
        "tenant_domain": "TenantDomain",
        "tenant_id": "TenantId",
        "ztdid": "ZtdRegistrationId",
        "entdmid": "EntDMID",
        "serial": "SerialNumber",
        "odj_applied": "ODJApplied",
        "time_zone": "TimeZone",
        "device_name": "DeviceName",
        "domain": "DomainName",
        "entra_device_id": "DeviceId",
        "policy_downloaded": "PolicyDownloadDate",
        "azure_ad_joined": "AzureAdJoined",
        "domain_joined": "DomainJoined",
    }
    values = asdict(facts)
    return {names[k]: v for k, v in values.items() if k in names and v is not None}


def _owners(machines: Sequence[Machine]) -> dict[str, set[str]]:
    """Folder/archive → the names of the machines whose logs lie there."""
    found: dict[str, set[str]] = {}
    for machine in machines:
        name = display_name(machine.hosts, machine.key)
        for source in machine.sources:
            found.setdefault(container(source), set()).add(name)
    return found


def _owner(owners: dict[str, set[str]], place: str) -> str | None:
    """The one machine whose logs lie in `place`, else in the folders/archives below it (a
    live copy's `winevt/Logs`, the nested cab of a Collect-diagnostics zip)."""
    found = owners.get(place) or {
        name
        for other, names in owners.items()
        if other.startswith((place + "/", place + "!/"))
        for name in names
    }
    return next(iter(found)) if len(found) == 1 else None
