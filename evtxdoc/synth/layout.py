"""Lay a scenario's host logs out as the bundles support engineers receive (domain.md (e)).

Devices:
- `cab` / `zip`: MdmDiagnosticsTool `-area Autopilot` output — lowercase channel names with "/"
  as "-" (spaces kept), `AutopilotDDSZTDFile.json`, `MdmDiagReport_RegistryDump.reg`, an ETL
  trace. The System log is not in it (domain.md (e): not confirmed for that area).
- `intune`: an Intune "Collect diagnostics" zip: System log, dsregcmd output and the nested
  `mdmlogs-<date>.cab` (the MdmDiagnosticsTool part). Item naming inside the zip is not
  confirmed (domain.md (f) 8): ours is plain.
- `live`: a copy of `winevt\\Logs` — every channel under its `%4` name.
Connector servers: `export`, a folder of exported logs (arbitrary names, as a person saves them).
Everything is deterministic: archive member times come from the scenario, never the clock.
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from pathlib import Path

import cabarchive

from evtxdoc.synth.scenario import HostLog, Scenario
from evtxdoc.synth.writer import Damage, EvtxWriter
from evtxdoc.vocab import SECOND

MDM_AREA_CHANNELS = {  # domain.md (e): what `-area Autopilot` collects, plus two [REAL] ones
    "Microsoft-Windows-DeviceManagement-Enterprise-Diagnostics-Provider/Admin",
    "Microsoft-Windows-ModernDeployment-Diagnostics-Provider/Autopilot",
    "Microsoft-Windows-ModernDeployment-Diagnostics-Provider/ManagementService",
    "Microsoft-Windows-Provisioning-Diagnostics-Provider/Admin",
    "Microsoft-Windows-User Device Registration/Admin",
    "Microsoft-Windows-AAD/Operational",
    "Microsoft-Windows-Shell-Core/Operational",
}
CONNECTOR_EXPORT_NAMES = {
    "Microsoft-Intune-ODJConnectorService/Operational": "ODJConnectorService-Operational.evtx",
    "Microsoft-Intune-ODJConnectorService/Admin": "ODJConnectorService-Admin.evtx",
    "ODJ Connector Service": "ODJ Connector Service.evtx",
    "System": "System.evtx",
}


def cab_name(channel: str) -> str:
    """MdmDiagnosticsTool's file name for a channel: lowercase, "/" → "-", spaces kept."""
    return channel.lower().replace("/", "-") + ".evtx"


def live_name(channel: str) -> str:
    """The live log file name: "/" → "%4"."""
    return channel.replace("/", "%4") + ".evtx"


def evtx_bytes(log: HostLog, channel: str, damage: Damage | None = None) -> bytes:
    writer = EvtxWriter()
    writer.extend(log.events.get(channel, []))
    return writer.to_bytes(damage)


def _damage_for(scenario: Scenario, host: str, channel: str) -> Damage | None:
    for entry in scenario.damage:
        if entry.get("host") == host and entry.get("channel") == channel:
            return Damage(**{k: v for k, v in entry.items() if k not in ("host", "channel")})
    return None


def _stamp(scenario: Scenario) -> dt.datetime:
    return dt.datetime.fromtimestamp(scenario.start_ns // SECOND, dt.UTC).replace(tzinfo=None)


def _zip(members: dict[str, bytes], when: dt.datetime) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(members):
            info = zipfile.ZipInfo(name, date_time=when.timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, members[name])
    return buffer.getvalue()


def _cab(members: dict[str, bytes], when: dt.datetime) -> bytes:
    archive = cabarchive.CabArchive()
    for name in sorted(members):
        archive[name] = cabarchive.CabFile(members[name], mtime=when)
    return archive.save(compress=True)


def _mdm_members(scenario: Scenario, log: HostLog) -> dict[str, bytes]:
    members = {
        cab_name(channel): evtx_bytes(log, channel, _damage_for(scenario, log.name, channel))
        for channel in sorted(log.events)
        if channel in MDM_AREA_CHANNELS
    }
    members.update(log.supporting)
    stamp = _stamp(scenario).strftime("%Y_%m_%d_%H_%M_%S")
    members[f"DiagnosticLogCSP_Collector_Autopilot_{stamp}.etl"] = b"\x00" * 64  # ETW: skipped
    return members


def write_host(scenario: Scenario, log: HostLog, out: Path) -> list[Path]:
    """Write one host's bundle under `out`; returns the paths written."""
    when = _stamp(scenario)
    if log.role == "exchange":
        return _write_exchange(scenario, log, out / log.name, when)
    if log.role == "connector":
        folder = out / log.name
        folder.mkdir(parents=True, exist_ok=True)
        channels = set(log.events)
        if "Microsoft-Intune-ODJConnectorService/Operational" in channels:
            channels.add("Microsoft-Intune-ODJConnectorService/Admin")  # exists, often empty
        written = []
        for channel in sorted(channels):
            path = folder / CONNECTOR_EXPORT_NAMES.get(channel, live_name(channel))
            path.write_bytes(evtx_bytes(log, channel, _damage_for(scenario, log.name, channel)))
            written.append(path)
        return written
    if log.layout == "live":
        folder = out / log.name / "winevt" / "Logs"
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for channel in sorted(log.events):
            path = folder / live_name(channel)
            path.write_bytes(evtx_bytes(log, channel, _damage_for(scenario, log.name, channel)))
            written.append(path)
        for name, content in log.supporting.items():
            (out / log.name / name).write_bytes(content)
            written.append(out / log.name / name)
        return written
    out.mkdir(parents=True, exist_ok=True)
    members = _mdm_members(scenario, log)
    if log.layout == "cab":
        path = out / f"{log.name}-mdmdiag.cab"
        path.write_bytes(_cab(members, when))
    elif log.layout == "zip":
        path = out / f"{log.name}-mdmdiag.zip"
        path.write_bytes(_zip(members, when))
    else:  # intune "Collect diagnostics"
        outer = {
            f"mdmlogs-{when:%Y-%m-%d-%H-%M-%S}.cab": _cab(members, when),
            "system.evtx": evtx_bytes(log, "System", _damage_for(scenario, log.name, "System")),
            "dsregcmd_status.txt": _dsregcmd(log).encode(),
        }
        path = out / f"DiagLogs-{log.name}-{when:%Y%m%dT%H%MZ}.zip"
        path.write_bytes(_zip(outer, when))
    return [path]


def _write_exchange(
    scenario: Scenario, log: HostLog, folder: Path, when: dt.datetime
) -> list[Path]:
    """An Exchange connector server as support collects it: System.evtx, the settings files
    from %ProgramData%\\Microsoft\\Windows Intune Exchange Connector, and its Logs folder zipped."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for channel in sorted(log.events):
        path = folder / CONNECTOR_EXPORT_NAMES.get(channel, live_name(channel))
        path.write_bytes(evtx_bytes(log, channel, _damage_for(scenario, log.name, channel)))
        written.append(path)
    traces = {k: v for k, v in log.supporting.items() if k.startswith("Logs/")}
    for name, content in log.supporting.items():
        if name not in traces:
            (folder / name).write_bytes(content)
            written.append(folder / name)
    if traces:
        path = folder / "Logs.zip"
        path.write_bytes(_zip(traces, when))
        written.append(path)
    return written


def _dsregcmd(log: HostLog) -> str:
    joined = any(e.event_id == 4098 for e in log.events.get("System", []))
    registered = any(e.event_id == 306 for events in log.events.values() for e in events)
    return "\r\n".join(
        [
            "+----------------------------------------------------------------------+",
            "| Device State                                                         |",
            "+----------------------------------------------------------------------+",
            "",
            f"             AzureAdJoined : {'YES' if registered else 'NO'}",
            "          EnterpriseJoined : NO",
            f"              DomainJoined : {'YES' if joined else 'NO'}",
            "",
        ]
    )


def write_bundle(scenario: Scenario, logs: list[HostLog], out: Path) -> list[Path]:
    """Write every host's bundle under `out`."""
    written: list[Path] = []
    for log in logs:
        if log.layout != "not_collected":  # a server whose logs the bundle lacks
            written += write_host(scenario, log, out)
    return written
