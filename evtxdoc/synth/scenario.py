"""Scenario files (YAML) → the events and supporting files of every host, deterministically.

A scenario names the hosts (devices with their Autopilot profile, connector servers) and the
story of each join attempt with an injected `fault`; `build()` expands it into the event
sequence of reference/domain.md (d), with each host's clock offset applied to what it writes,
plus background noise drawn from the shapes real MDM/Autopilot logs contain. The format is
documented in docs/scenarios.md.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evtxdoc import yamlpos
from evtxdoc.errors import InputError
from evtxdoc.rules.schema import did_you_mean
from evtxdoc.synth import catalog
from evtxdoc.synth.writer import SynthEvent
from evtxdoc.vocab import SECOND

FAULTS = {  # fault → (outcome, failing step), the expectation a scenario states
    "none": ("succeeded", None),
    "access_denied": ("timed_out", "odj_blob"),
    "ou_not_configured": ("timed_out", "odj_blob"),
    "quota": ("timed_out", "odj_blob"),
    "no_connector": ("timed_out", "odj_blob"),
    "connector_proxy": ("timed_out", "odj_blob"),
    "legacy_connector": ("timed_out", "odj_blob"),
    "blob_rejected": ("failed", "offline_join"),
    "dc_unreachable": ("failed", "dc_connectivity"),
    "vpn_not_connected": ("failed", "dc_connectivity"),
    "clock_skew": ("succeeded", None),
    "clock_skew_unsynced": ("incomplete", "hybrid_registration"),
    "sync_pending": ("incomplete", "hybrid_registration"),
    "entra_join": ("not_hybrid", None),
}
FINDINGS = {  # fault → the rule (rules/) that must be the attempt's top finding
    "none": None,
    "access_denied": "connector-access-denied-msa",  # -legacy on a legacy connector
    "ou_not_configured": "connector-access-denied-msa",
    "quota": "connector-computer-quota",
    "no_connector": "no-connector-answered",
    "connector_proxy": "connector-proxy-failure",
    "legacy_connector": "connector-legacy-not-serving",
    "blob_rejected": "offline-join-failed",
    "dc_unreachable": "dc-unreachable-no-skip",
    "vpn_not_connected": "vpn-not-connected",
    "clock_skew": "clock-skew-kerberos",
    "clock_skew_unsynced": "clock-skew-kerberos",
    "sync_pending": "hybrid-registration-sync-pending",
    "entra_join": "not-hybrid-join",
}
UNSERVED = ("no_connector", "connector_proxy", "legacy_connector")  # no connector event for it
LAYOUTS = ("cab", "zip", "intune", "live", "not_collected")  # not_collected: no device logs
CONNECTOR_KINDS = ("updated", "legacy")
MSA_SID_BASE = "S-1-5-21-3623811015-3361044348-30300820"
_DURATION = re.compile(r"^([+-]?)(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$")
_UNITS = {"ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def seconds(value: Any, where: str) -> float:
    """`90`, `"90s"`, `"+5m"`, `"-3h"` → seconds."""
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(str(value).strip())
    if not match:
        raise InputError(
            f"{value!r} is not a duration",
            where=where,
            hint="write a number of seconds or e.g. 90s, 5m, -3h, 1d",
        )
    sign, number, unit = match.groups()
    return (-1 if sign == "-" else 1) * float(number) * _UNITS[unit]


@dataclass
class Connector:
    name: str
    kind: str = "updated"
    version: str = "6.2501.2000.5"
    domain: str = "contoso.local"
    clock_offset: float = 0.0
    msa_sid: str = ""
    served_before: int = 0  # successful requests for devices outside the bundle
    layout: str = "export"  # "not_collected": the server's logs are not in the bundle
    legacy_history: int = 0  # an updated server that ran the legacy connector: its old log
    # still holds this many legacy failures from a month before (both logs on one host)


@dataclass
class Attempt:
    at: float  # seconds after the scenario start (true time)
    computer_name: str
    connector: str | None
    fault: str = "none"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Device:
    oobe_name: str
    serial: str
    layout: str
    clock_offset: float
    join: str
    skip_dc_check: bool
    domain: str
    ou: str
    name_prefix: str
    attempts: list[Attempt]
    ztdid: str = ""
    entdmid: str = ""
    time_zone: str = "UTC"  # Windows time zone name; event logs store UTC whatever it is
    earlier_success: dict[str, Any] = field(default_factory=dict)  # {before, computer_name}:
    # a connector success for this device's EntDMID from a deployment before the bundle's


@dataclass
class Scenario:
    name: str
    summary: str
    root_cause: str
    seed: int
    start_ns: int
    tenant_id: str
    tenant_domain: str
    connectors: list[Connector]
    devices: list[Device]
    noise: int  # background events per device; -1 (`noise: real`): the real rate over its span
    damage: list[dict[str, Any]]
    source: str = ""

    def connector(self, name: str | None) -> Connector | None:
        return next((c for c in self.connectors if c.name == name), None)


# --- loading -------------------------------------------------------------------------------

CONNECTOR_LAYOUTS = ("export", "not_collected")


def _connector_layout(layout: Any, where: str) -> str:
    if layout not in CONNECTOR_LAYOUTS:
        raise InputError(
            f"connector layout {layout!r}",
            where=where,
            hint=f"one of {', '.join(CONNECTOR_LAYOUTS)}",
        )
    return str(layout)


def load(path: Path) -> Scenario:
    """Read and check a scenario file; errors name the file and the key."""
    where = str(path)
    try:
        raw = yamlpos.load(path.read_text("utf-8"))[0]
    except OSError as exc:
        raise InputError(
            f"cannot read scenario: {exc}", where=where, hint="see docs/scenarios.md for the format"
        ) from exc
    except yamlpos.YamlError as exc:  # a duplicate key too: strict, with its line
        raise InputError(
            exc.message, where=f"{where}:{exc.line}", hint="see docs/scenarios.md for the format"
        ) from exc
    if not isinstance(raw, dict):
        raise InputError("a scenario is a YAML mapping", where=where)
    return parse(raw, where)


SCENARIO_KEYS = (
    "name",
    "summary",
    "root_cause",
    "seed",
    "start",
    "noise",
    "domain",
    "tenant_id",
    "tenant_domain",
    "connectors",
    "devices",
    "damage",
)
CONNECTOR_KEYS = (
    "name",
    "kind",
    "version",
    "domain",
    "clock_offset",
    "served_before",
    "legacy_history",
    "layout",
)
DEVICE_KEYS = (
    "oobe_name",
    "serial",
    "layout",
    "clock_offset",
    "time_zone",
    "profile",
    "attempts",
    "entdmid",
    "earlier_success",
)
PROFILE_KEYS = ("join", "skip_dc_check", "domain", "ou", "name_prefix")
ATTEMPT_KEYS = (
    "at",
    "computer_name",
    "connector",
    "fault",
    "odj_timeout",
    "net_status",
    "retries",
    "expect",
)
DAMAGE_KEYS = (
    "host",
    "channel",
    "dirty",
    "torn_last_record",
    "bad_crc_chunk",
    "truncate_at",
    "truncate_at_record",
    "slack_records",
)


def _strict(item: Any, allowed: tuple[str, ...], where: str) -> dict[str, Any]:
    """A mapping with only the keys a scenario knows; an unknown key names its neighbour."""
    if not isinstance(item, dict):
        raise InputError(f"expected a mapping, got {type(item).__name__}", where=where)
    for key in item:
        if key not in allowed:
            raise InputError(
                f"unknown key {key!r}",
                where=where,
                hint=did_you_mean(key, allowed) or f"one of {', '.join(allowed)}",
            )
    return item


def _check_keys(raw: dict[str, Any], where: str) -> None:
    """Every key of the scenario is known (docs/scenarios.md): a typo is not ignored."""
    _strict(raw, SCENARIO_KEYS, where)
    for number, item in enumerate(raw.get("connectors") or []):
        _strict(item, CONNECTOR_KEYS, f"{where}: connectors[{number}]")
    for number, item in enumerate(raw.get("devices") or []):
        place = f"{where}: devices[{number}]"
        _strict(item, DEVICE_KEYS, place)
        _strict(item.get("profile") or {}, PROFILE_KEYS, f"{place}.profile")
        for index, entry in enumerate(item.get("attempts") or []):
            _strict(entry, ATTEMPT_KEYS, f"{place}.attempts[{index}]")
    for number, item in enumerate(raw.get("damage") or []):
        _strict(item, DAMAGE_KEYS, f"{where}: damage[{number}]")


def parse(raw: dict[str, Any], where: str = "<scenario>") -> Scenario:
    _check_keys(raw, where)
    rng = random.Random(raw.get("seed", 1))
    start = dt.datetime.fromisoformat(
        str(raw.get("start", "2025-09-15T08:00:00+00:00")).replace("Z", "+00:00")
    )
    connectors = []
    for number, item in enumerate(raw.get("connectors") or []):
        kind = item.get("kind", "updated")
        if kind not in CONNECTOR_KINDS:
            raise InputError(
                f"connector kind {kind!r}",
                where=f"{where}: connectors[{number}]",
                hint=f"one of {', '.join(CONNECTOR_KINDS)}",
            )
        connectors.append(
            Connector(
                name=item["name"],
                kind=kind,
                version=str(
                    item.get("version", "6.2501.2000.5" if kind == "updated" else "6.2203.1742.4")
                ),
                domain=item.get("domain", raw.get("domain", "contoso.local")),
                clock_offset=seconds(item.get("clock_offset", 0), f"{where}: connectors[{number}]"),
                msa_sid=f"{MSA_SID_BASE}-{4101 + number}",
                served_before=int(item.get("served_before", 0)),
                legacy_history=int(item.get("legacy_history", 0)),
                layout=_connector_layout(
                    item.get("layout", "export"), f"{where}: connectors[{number}]"
                ),
            )
        )
    devices = []
    for number, item in enumerate(raw.get("devices") or []):
        place = f"{where}: devices[{number}]"
        profile = item.get("profile") or {}
        layout = item.get("layout", "intune")
        if layout not in LAYOUTS:
            raise InputError(f"layout {layout!r}", where=place, hint=f"one of {LAYOUTS}")
        attempts = []
        for index, entry in enumerate(item.get("attempts") or [{}]):
            fault = entry.get("fault", "none")
            if fault not in FAULTS:
                raise InputError(
                    f"unknown fault {fault!r}",
                    where=f"{place}.attempts[{index}]",
                    hint=f"one of {', '.join(FAULTS)}",
                )
            if fault == "dc_unreachable" and profile.get("skip_dc_check"):
                raise InputError(
                    "fault dc_unreachable with skip_dc_check: true would be a "
                    "success (the device skips the check)",
                    where=f"{place}.attempts[{index}]",
                    hint="use fault vpn_not_connected for a device that skips the "
                    "check and then finds no DC, or drop skip_dc_check",
                )
            prefix = profile.get("name_prefix", "AP-")
            name = entry.get("computer_name") or prefix + "".join(
                rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(15 - len(prefix))
            )
            attempts.append(
                Attempt(
                    at=seconds(entry.get("at", "10m"), f"{place}.attempts[{index}]"),
                    computer_name=name,
                    connector=entry.get("connector"),
                    fault=fault,
                    options={
                        k: v
                        for k, v in entry.items()
                        if k not in ("at", "computer_name", "connector", "fault")
                    },
                )
            )
        devices.append(
            Device(
                oobe_name=item.get("oobe_name")
                or "DESKTOP-"
                + "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") for _ in range(7)),
                serial=str(item.get("serial") or "5CG" + str(rng.randrange(10**6, 10**7))),
                layout=layout,
                clock_offset=seconds(item.get("clock_offset", 0), place),
                time_zone=str(item.get("time_zone", "UTC")),
                join=profile.get("join", "hybrid"),
                skip_dc_check=bool(profile.get("skip_dc_check", False)),
                domain=profile.get("domain", raw.get("domain", "contoso.local")),
                ou=profile.get("ou", "OU=Autopilot,OU=Workstations,DC=contoso,DC=local"),
                name_prefix=profile.get("name_prefix", "AP-"),
                attempts=attempts,
                ztdid=str(uuid.UUID(int=rng.getrandbits(128))),
                entdmid=_given(item.get("entdmid"), str(uuid.UUID(int=rng.getrandbits(128)))),
                earlier_success=dict(item.get("earlier_success") or {}),
            )
        )
    return Scenario(
        name=str(raw.get("name", "scenario")),
        summary=str(raw.get("summary", "")),
        root_cause=str(raw.get("root_cause", "")),
        seed=int(raw.get("seed", 1)),
        start_ns=int(start.timestamp()) * SECOND,
        tenant_id=str(raw.get("tenant_id", uuid.UUID(int=rng.getrandbits(128)))),
        tenant_domain=str(raw.get("tenant_domain", "contoso.onmicrosoft.com")),
        connectors=connectors,
        devices=devices,
        noise=-1 if raw.get("noise") == "real" else int(raw.get("noise", 25)),
        damage=list(raw.get("damage") or []),
        source=where,
    )


def _given(value: Any, drawn: str) -> str:
    """A value the scenario fixes, else the drawn one (drawn anyway: the stream stays put)."""
    return str(value) if value else drawn


# --- the story ---------------------------------------------------------------------------------


@dataclass
class HostLog:
    """What one host wrote: events by channel in write order, and supporting files."""

    name: str  # the host as the bundle names it (device: OOBE name; connector: server name)
    role: str  # device | connector
    layout: str
    events: dict[str, list[SynthEvent]] = field(default_factory=dict)
    supporting: dict[str, bytes] = field(default_factory=dict)  # file name → content

    def add(self, event: SynthEvent) -> None:
        self.events.setdefault(event.channel, []).append(event)


class _Clock:
    """A host's clock: true time + offset, until a time sync (if any) corrects it."""

    def __init__(self, offset: float, fixed_at_ns: int | None = None):
        self.offset_ns = int(offset * SECOND)
        self.fixed_at_ns = fixed_at_ns

    def __call__(self, true_ns: int) -> int:
        if self.fixed_at_ns is not None and true_ns >= self.fixed_at_ns:
            return true_ns
        return true_ns + self.offset_ns


class _Writer:
    """Emits catalog events on one host at true times, through the host's clock."""

    def __init__(self, log: HostLog, clock: _Clock, rng: random.Random):
        self.log, self.clock, self.rng = log, clock, rng
        self.pid = rng.randrange(600, 9000)

    def emit(
        self,
        key: str,
        true_ns: int,
        computer: str,
        values: dict[str, Any] | None = None,
        **system: Any,
    ) -> None:
        shape = catalog.shape(key)
        system.setdefault("process_id", self.pid)
        system.setdefault("thread_id", self.pid + 4 * self.rng.randrange(1, 400))
        if not shape.classic:
            system.setdefault("user_sid", "S-1-5-18")
        jitter = self.rng.randrange(0, 100_000) * 100  # up to 10 ms, at 100 ns like Windows
        self.log.add(
            shape.make(
                self.clock(true_ns) + jitter,
                computer,
                values,
                written_ns=true_ns + jitter,
                **system,
            )
        )


def build(scenario: Scenario) -> list[HostLog]:
    """Every host's log, ready for the writer and the bundle layouts. Its random stream is not
    parse()'s (same seed, other stream), so no id drawn here repeats a device's EntDMID."""
    rng = random.Random(f"build:{scenario.seed}")
    connectors = {c.name: _connector_log(c) for c in scenario.connectors}
    writers = {
        c.name: _Writer(connectors[c.name], _Clock(c.clock_offset), rng)
        for c in scenario.connectors
    }
    for connector in scenario.connectors:
        _connector_background(scenario, connector, writers[connector.name], rng)
    logs = list(connectors.values())
    for device in scenario.devices:
        logs.append(_device(scenario, device, writers, rng))
        if device.earlier_success:
            _earlier_success(scenario, device, writers, rng)
    for log in logs:
        for events in log.events.values():
            # write order is true time order: a clock set backwards makes TimeCreated go back
            events.sort(key=lambda e: e.time_ns if e.written_ns is None else e.written_ns)
    return logs


def _earlier_success(
    scenario: Scenario, device: Device, writers: dict[str, _Writer], rng: random.Random
) -> None:
    """The connector served this device (its EntDMID) in an earlier deployment."""
    spec = device.earlier_success
    first = device.attempts[0]
    connector = scenario.connector(first.connector) or scenario.connectors[0]
    when = scenario.start_ns + int(
        (first.at + 180 - seconds(spec.get("before", "150m"), scenario.source)) * SECOND
    )
    _connector_success(
        writers[connector.name],
        connector,
        when,
        str(spec.get("computer_name", "AP-EARLIER")),
        device.entdmid,
        rng,
    )


def _connector_log(connector: Connector) -> HostLog:
    return HostLog(connector.name, "connector", connector.layout)


def _connector_background(
    scenario: Scenario, connector: Connector, writer: _Writer, rng: random.Random
) -> None:
    start = scenario.start_ns - 2 * 3600 * SECOND
    host = connector.name
    service = (
        "Intune ODJConnector Service"
        if connector.kind == "legacy"
        else "Intune ODJConnector for Active Service"
    )  # names as S8 / S2 write them
    writer.emit("scm_state_change", start, host, {"param1": service, "param2": "running"})
    for index in range(connector.served_before):  # earlier joins for devices not in the bundle
        when = start + (index + 1) * 300 * SECOND
        name = "AP-" + "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(12))
        _connector_success(
            writer, connector, when, name, str(uuid.UUID(int=rng.getrandbits(128))), rng
        )
    for _ in range(max(3, scenario.noise // 5)):
        when = start + rng.randrange(0, 6 * 3600) * SECOND
        writer.emit(
            "scm_state_change",
            when,
            host,
            {
                "param1": rng.choice(
                    [
                        "Windows Update",
                        "Background Intelligent Transfer Service",
                        "WinHTTP Web Proxy Auto-Discovery Service",
                    ]
                ),
                "param2": rng.choice(["running", "stopped"]),
            },
        )
    if any(
        a.fault == "connector_proxy" and a.connector == connector.name
        for d in scenario.devices
        for a in d.attempts
    ):
        for index in range(12):  # the connector cannot fetch its configuration (S8)
            _connector_proxy_error(writer, connector, start + index * 900 * SECOND)
    old_failures = connector.legacy_history
    if connector.kind == "legacy" and any(
        a.fault == "legacy_connector" for d in scenario.devices for a in d.attempts
    ):
        old_failures = max(old_failures, 3)
    if old_failures:
        # The legacy log still holds the failures from before the MSA change (S1: the old
        # log may be present); nothing is logged there for today's requests.
        for index in range(old_failures):
            when = start - (30 + index) * 86400 * SECOND
            _legacy_failure(
                writer,
                when,
                "AP-OLD" + str(index),
                "0x00000800",
                "5",
                "The request could not be completed.",
                connector.domain,
                rng,
            )


def _body(event_type: str, values: dict[str, Any]) -> str:
    """The updated connector's message: `<EventType>: …` then `Key: Value` lines (S30)."""
    lines = [f"{event_type}: offline domain join request"]
    lines += [f"{key}: {value}" for key, value in values.items()]
    return "\r\n".join(lines)


def _connector_success(
    writer: _Writer, connector: Connector, when: int, name: str, device_id: str, rng: random.Random
) -> None:
    if connector.kind == "legacy":
        return  # the legacy connector's success events are not documented: write none
    writer.emit(
        "connector_request",
        when,
        connector.name,
        {
            "Message": _body(
                "OfflineDomainJoinRequestProcessed",
                {
                    "ElapsedMilliseconds": rng.randrange(600, 4000),
                    "DeviceId": device_id,
                    "DeviceName": name,
                    "DiagnosticCode": 0,
                    "DiagnosticText": "Success",
                },
            )
        },
        user_sid=connector.msa_sid,
    )


def _connector_failure(
    writer: _Writer,
    connector: Connector,
    when: int,
    name: str,
    device_id: str,
    code: int,
    text: str,
    rng: random.Random,
) -> None:
    if connector.kind == "legacy":
        # S7's documented sample pairs ErrorCode "5" with DiagnosticCode 0x00000800
        diagnostic = "0x00000800" if code == 5 else f"0x{code:08X}"
        _legacy_failure(
            writer, when, name, diagnostic, str(code), text, connector.domain, rng, device_id
        )
        return
    writer.emit(
        "connector_request",
        when,
        connector.name,
        {
            "Message": _body(
                "OfflineDomainJoinRequestFailed",
                {
                    "ElapsedMilliseconds": rng.randrange(600, 4000),
                    "DeviceId": device_id,
                    "DeviceName": name,
                    "DiagnosticCode": code,
                    "DiagnosticText": text,
                },
            )
        },
        user_sid=connector.msa_sid,
    )


def _legacy_failure(
    writer: _Writer,
    when: int,
    name: str,
    diagnostic_code: str,
    error_code: str,
    text: str,
    domain: str,
    rng: random.Random,
    device_id: str | None = None,
) -> None:
    """Legacy connector 30132: the JSON metric body of S7."""
    body = {
        "Metric": {
            "Dimensions": {
                "RequestId": str(uuid.UUID(int=rng.getrandbits(128))),
                "DeviceId": device_id or str(uuid.UUID(int=rng.getrandbits(128))),
                "DomainName": domain,
                "ErrorCode": error_code,
                "RetryCount": "1",
                "ErrorDescription": "Failed to get the ODJ Blob. " + text,
                "InstanceId": str(uuid.UUID(int=rng.getrandbits(128))),
                "DiagnosticCode": diagnostic_code,
                "DiagnosticText": f"{text} NetProvisionComputerAccount failed for "
                f"machineName={name}.",
            },
            "Name": "RequestOfflineDomainJoinBlob_Failure",
            "Value": 0,
        }
    }
    writer.emit(
        "legacy_connector_failure",
        when,
        writer.log.name,
        {"_data": (json.dumps(body, separators=(",", ":")),)},
    )


def _connector_proxy_error(writer: _Writer, connector: Connector, when: int) -> None:
    text = (
        "DiagnosticException: 0x0FFFFFFF. Failed to get a value for Key: OdjServiceBaseUrl. "
        "The given key was not present in the dictionary."
    )  # S8
    if connector.kind == "legacy":
        writer.emit(
            "legacy_connector_failure",
            when,
            connector.name,
            {
                "_data": (
                    json.dumps(
                        {
                            "Metric": {
                                "Dimensions": {
                                    "DiagnosticCode": "0x0FFFFFFF",
                                    "DiagnosticText": text,
                                },
                                "Name": "RequestOfflineDomainJoinBlob_Failure",
                                "Value": 0,
                            }
                        },
                        separators=(",", ":"),
                    ),
                )
            },
        )
        return
    writer.emit(
        "connector_request_30140",
        when,
        connector.name,
        {
            "Message": _body(
                "ServiceConfigurationFailed", {"DiagnosticCode": 268435455, "DiagnosticText": text}
            )
        },
        user_sid=connector.msa_sid,
    )


# --- devices ---------------------------------------------------------------------------------

ACCESS_DENIED_TEXT = (
    "The account does not have sufficient privileges to create the computer "
    "object in the organizational unit."
)  # paraphrase of S7
QUOTA_TEXT = (
    "The account has exceeded the allowed number of computer accounts "
    "(ERROR_DS_MACHINE_ACCOUNT_QUOTA_EXCEEDED)."
)  # 8557 (S24)


def _device(
    scenario: Scenario, device: Device, writers: dict[str, _Writer], rng: random.Random
) -> HostLog:
    log = HostLog(device.oobe_name, "device", device.layout)
    fixed_at = None  # clock_skew_unsynced: the clock is never corrected
    if any(a.fault == "clock_skew" for a in device.attempts):
        first = device.attempts[0]
        fixed_at = scenario.start_ns + int((first.at + 900) * SECOND)  # after the ODJ reboot
    writer = _Writer(log, _Clock(device.clock_offset, fixed_at), rng)
    first_at = scenario.start_ns + int(device.attempts[0].at * SECOND)
    last_ns = first_at
    for attempt in device.attempts:
        last_ns = max(last_ns, _attempt(scenario, device, attempt, writer, writers, rng))
    _device_noise(scenario, device, writer, first_at - 600 * SECOND, last_ns, rng)
    log.supporting = _device_files(scenario, device, last_ns)
    return log


def _attempt(
    scenario: Scenario,
    device: Device,
    attempt: Attempt,
    writer: _Writer,
    writers: dict[str, _Writer],
    rng: random.Random,
) -> int:
    """Write one attempt's device and connector events; returns the last true time used."""
    t = scenario.start_ns + int(attempt.at * SECOND)
    oobe, fqdn = device.oobe_name, f"{attempt.computer_name}.{device.domain}"
    emit = writer.emit
    _profile(scenario, device, writer, t, oobe)
    t += 120 * SECOND
    emit("mdm_enrolled", t, oobe, {"Message1": "MDM enrollment completed"})
    if attempt.fault == "entra_join" or device.join == "entra":
        emit(
            "esp_progress",
            t + 600 * SECOND,
            oobe,
            {"Name": "CommercialOOBE_ESPProgress_Page_Exiting", "Value": "Success"},
        )
        return t + 600 * SECOND
    t += 60 * SECOND
    emit("odj_state", t, oobe, {"HexInt1": 1})  # waiting for the ODJ blob
    _profile_check(writer, t + 3_000_000, oobe)  # real: a profile check 3 ms after the request
    emit("odj_wait_start", t + 34_000_000, oobe, {"Boolean1": False})
    connector = scenario.connector(attempt.connector)
    device_id = device.entdmid
    fault = attempt.fault
    timeout = int(seconds(attempt.options.get("odj_timeout", "60m"), scenario.source) * SECOND)
    served = connector is not None and fault not in UNSERVED
    answer = t + rng.randrange(20, 90) * SECOND
    if served and connector is not None:
        cw = writers[connector.name]
        if fault in ("access_denied", "ou_not_configured"):
            text = ACCESS_DENIED_TEXT + (
                f" OU: {device.ou}" if fault == "ou_not_configured" else ""
            )
            _connector_failure(
                cw, connector, answer, attempt.computer_name, device_id, 5, text, rng
            )
        elif fault == "quota":
            _connector_failure(
                cw, connector, answer, attempt.computer_name, device_id, 8557, QUOTA_TEXT, rng
            )
        else:
            _connector_success(cw, connector, answer, attempt.computer_name, device_id, rng)
    if not served or fault in ("access_denied", "ou_not_configured", "quota"):
        emit("odj_state_110", t + timeout, oobe, {"HexInt1": 3})  # timed out
        return t + timeout
    t = answer + rng.randrange(30, 120) * SECOND  # the blob arrives with the next MDM sync
    emit("odj_state", t, oobe, {"HexInt1": 2})
    emit("odj_blob_applied", t + SECOND, oobe)
    if fault == "blob_rejected":
        emit(
            "offline_join_failed",
            t + 2 * SECOND,
            oobe,
            {
                "DomainName": device.domain,
                "ComputerName": attempt.computer_name,
                "NetStatusCode": int(attempt.options.get("net_status", 2710)),
            },
        )
        emit("odj_state_110", t + timeout, oobe, {"HexInt1": 3})
        return t + timeout
    emit(
        "offline_join_succeeded",
        t + 2 * SECOND,
        oobe,
        {"DomainName": device.domain, "ComputerName": attempt.computer_name},
    )
    if fault == "dc_unreachable" and not device.skip_dc_check:
        emit(
            "time_no_dc_source",
            t + 20 * SECOND,
            oobe,
            {"ErrorMessage": "No valid response has been received from domain controller"},
        )
        emit(
            "odj_dc_connectivity_failed",
            t + 60 * SECOND,
            oobe,
            {
                "Message1": f"Could not establish connectivity to a domain controller of "
                f"{device.domain}"
            },
        )
        emit("odj_state_110", t + timeout, oobe, {"HexInt1": 3})
        return t + timeout
    # Reboot: from here on the device writes under its new name.
    t += 90 * SECOND
    now = writer.clock(t)  # the boot-time RTC read, in the device's own clock
    emit("system_time_changed", t, fqdn, {"NewTime": now, "OldTime": now - SECOND, "Reason": 2})
    t += 40 * SECOND
    if fault == "vpn_not_connected":  # skip-connectivity-check, but no DC after the reboot
        netbios = device.domain.split(".")[0].upper()
        emit("netlogon_no_dc", t + 20 * SECOND, fqdn, {"_data": (netbios, "%%1311")})
        emit(
            "gp_no_dc",
            t + 45 * SECOND,
            fqdn,
            {
                "SupportInfo1": 1,
                "SupportInfo2": 5012,
                "ErrorCode": 1355,
                "ErrorDescription": "The specified domain "
                "either does not exist or could not be "
                "contacted.",
            },
        )
        emit(
            "time_no_dc_source",
            t + 60 * SECOND,
            fqdn,
            {"ErrorMessage": "No valid response has been received from domain controller"},
        )
        return t + 60 * SECOND
    if fault == "clock_skew_unsynced":  # no time source answers: the skew stays, sign-ins fail
        emit(
            "time_no_dc_source",
            t + 20 * SECOND,
            fqdn,
            {"ErrorMessage": "No valid response has been received from domain controller"},
        )
        emit(
            "esp_progress",
            t + 300 * SECOND,
            fqdn,
            {"Name": "CommercialOOBE_ESPProgress_Page_Exiting", "Value": "Success"},
        )
        for index in range(int(attempt.options.get("retries", 3))):
            emit(
                "hybrid_auth_failed_305",
                t + (420 + index * 3600) * SECOND,
                fqdn,
                {"ErrorCode": 0x80090324, "Format": "SEC_E_TIME_SKEW"},
            )
        return t + (420 + 3 * 3600) * SECOND
    emit("time_source_synced", t, fqdn, {"TimeSource": f"DC01.{device.domain} (ntp.d|0.0.0.0:123)"})
    if fault == "clock_skew":
        emit(
            "hybrid_auth_failed_305",
            t - 300 * SECOND,
            fqdn,
            {"ErrorCode": 0x80090324, "Format": "SEC_E_TIME_SKEW"},
        )
        fixed = writer.clock.fixed_at_ns or t
        wrong = fixed + writer.clock.offset_ns  # what the clock read when it was set
        emit("time_jump_261", fixed, fqdn, {"OldTime": wrong, "NewTime": fixed})
        emit("system_time_changed", fixed, fqdn, {"NewTime": fixed, "OldTime": wrong, "Reason": 2})
        t = max(t, fixed)
    emit(
        "esp_progress",
        t + 300 * SECOND,
        fqdn,
        {"Name": "CommercialOOBE_ESPProgress_Page_Exiting", "Value": "Success"},
    )
    t += 420 * SECOND
    if fault == "sync_pending":
        for index in range(int(attempt.options.get("retries", 3))):
            _registration_failed(
                writer,
                t + index * 3600 * SECOND,
                fqdn,
                -2145647630,
                "error_fail",
                "The device object could not be found in the directory (not synchronized yet).",
            )
            emit("udr_noise_360", t + index * 3600 * SECOND + 60 * SECOND, fqdn, _whfb_check("No"))
        return t + 2 * 3600 * SECOND
    # As the real deployment: the first sync-join attempt finds no device object yet (204/304
    # 0x801C03F3), a later one registers; 360 then says DeviceIsJoined Yes.
    _registration_failed(
        writer,
        t,
        fqdn,
        -2145647629,
        "error_missing_device",
        "The device object by the given id is not found.",
    )
    emit("hybrid_join_succeeded_306", t + 1800 * SECOND, fqdn)
    emit("udr_noise_360", t + 1860 * SECOND, fqdn, _whfb_check("Yes"))
    return t + 1860 * SECOND


MISSING_SETTINGS = (
    "CloudAssignedLanguage",
    "CloudAssignedRegion",
    "CloudAssignedTenantUpn",
    "DisableEnrollmentStatusPageForceSyncing",
)  # real-logs/shapes.md (100)


def _profile(scenario: Scenario, device: Device, writer: _Writer, t: int, oobe: str) -> None:
    """The profile phase as the real deployment writes it: a check (153 + 103) every half
    minute or so, 100 for each optional setting the profile lacks, 101 for its DWORD
    settings, 103 for its values."""
    rng, emit = writer.rng, writer.emit
    for index, name in enumerate(MISSING_SETTINGS):
        emit("autopilot_policy_not_found", t + index * 20 * SECOND, oobe, {"Message1": name})
    for index in range(4):
        _profile_check(writer, t + (index * 25 + rng.randrange(0, 10)) * SECOND, oobe)
    settings = [("CloudAssignedAutopilotUpdateDisabled", 1), ("CloudAssignedForcedEnrollment", 1)]
    if device.join == "hybrid":
        settings.insert(0, ("CloudAssignedDomainJoinMethod", 1))
        if device.skip_dc_check:
            settings.append(("HybridJoinSkipDCConnectivityCheck", 1))
    for index, (name, value) in enumerate(settings):
        emit(
            "autopilot_setting", t + (30 + index) * SECOND, oobe, {"Message1": name, "Int1": value}
        )
    for index, (name, text) in enumerate(
        (
            ("ZtdRegistrationId", device.ztdid),
            (
                "DeploymentProfileName",
                "Hybrid Autopilot" if device.join == "hybrid" else "Entra join",
            ),
            ("CloudAssignedTenantDomain", scenario.tenant_domain),
        )
    ):
        emit(
            "autopilot_message",
            t + (40 + index) * SECOND,
            oobe,
            {"Message1": name, "Message2": text},
        )


def _profile_check(writer: _Writer, t: int, computer: str) -> None:
    writer.emit("autopilot_profile_state", t, computer, {"InitialState": 0, "UpdateState": 3})
    writer.emit(
        "autopilot_message",
        t + 1_000_000,
        computer,
        {
            "Message1": "AutopilotServiceCorrelationId",
            "Message2": str(uuid.UUID(int=writer.rng.getrandbits(128))),
        },
    )


def _registration_failed(
    writer: _Writer, t: int, computer: str, exit_code: int, subcode: str, message: str
) -> None:
    """UDR 204 (the DRS answer) and 304 (the join phase failed), as real logs write them."""
    writer.emit(
        "hybrid_join_request_failed_204",
        t,
        computer,
        {
            "ExitCode": exit_code,
            "ActivityId": str(uuid.UUID(int=writer.rng.getrandbits(128))),
            "HttpStatus": 400,
            "ServerResponse": json.dumps(
                {"code": "invalid_request", "subcode": subcode, "message": message}
            ),
        },
    )
    writer.emit(
        "hybrid_join_failed_304",
        t + 500_000_000,
        computer,
        {
            "ExitCode": exit_code,
            "ServerErrorMessage": message,
            "TenantType": "Managed",
            "JoinType": "sync",
            "DebugOutput": "joinMode: Join\ndrsInstance: azure\n"
            "registrationType: sync\ntenantType: Managed\nerrorPhase: join",
        },
    )


def _whfb_check(joined: str) -> dict[str, str]:
    """UDR 360's fields (values as real logs write them: Yes / No / Not Tested)."""
    return {
        "Message": "Windows Hello for Business provisioning will not be launched.",
        "DeviceIsJoined": joined,
        "AADPrt": joined,
        "NgcPolicyEnabled": "No",
        "NgcPostLogonProvisioningEnabled": "Yes",
        "NgcHardwarePolicyMet": "Yes",
        "UserIsRemote": "Yes",
        "LogonCertRequired": "No",
        "MachinePolicySource": "none",
        "UseCloudTrust": "No",
        "CloudTgt": "Not Tested",
    }


# Real counts per event over one ~3 h deployment (real-logs/shapes.md): the noise mix. SCM
# 7036 is not in that export (it holds no System log); it stays, rare, for layouts that do.
REAL_NOISE = (
    ("diagnostics_1508", 396),
    ("esp_progress", 374),
    ("management_service_1005", 342),
    ("shell_noise_62171", 338),
    ("shell_noise_62170", 337),
    ("dmedp_noise_200", 257),
    ("dmedp_noise_202", 257),
    ("aad_noise_1098", 212),
    ("dmedp_noise_814", 155),
    ("aad_noise_1097", 139),
    ("dmedp_noise_813", 123),
    ("udr_noise_220", 80),
    ("dmedp_noise_2750", 61),
    ("udr_noise_360", 58),
    ("autopilot_noise_170", 25),
    ("provisioning_noise_20", 44),
    ("scm_state_change", 20),
)
REAL_NOISE_PER_HOUR = sum(n for _, n in REAL_NOISE) / 3.0


def _device_noise(
    scenario: Scenario, device: Device, writer: _Writer, start: int, end: int, rng: random.Random
) -> None:
    """Background events with the shapes, levels, values and mix of a real deployment
    (real-logs/shapes.md): level-2 ManagementService 1005 and AAD 1098, level-3 AAD 1097,
    Diagnostics 1508 and UDR 360 are all written by healthy devices."""
    span = max(end - start, 60 * SECOND)
    oobe = device.oobe_name
    guid = str(uuid.UUID(int=rng.getrandbits(128)))
    makers: dict[str, Any] = {
        "diagnostics_1508": lambda: {
            "Message1": rng.choice(["Done", "Visible", "NavigationStarted"])
        },
        "esp_progress": lambda: {
            "Name": rng.choice(["Done", "Visible", "NavigationStarted"]),
            "Value": rng.choice(["true", "success", "3"]),
        },
        "management_service_1005": lambda: {
            "HRESULT": 0x8007000D,
            "File": rng.choice(
                [
                    "onecoreuap\\admin\\moderndeployment\\autopilot\\commonutils\\jsonhelpers.cpp",
                    "onecoreuap\\admin\\moderndeployment\\autopilot\\commonutils\\jsonreader.cpp",
                ]
            ),
            "Line": rng.choice([127, 172]),
            "Message": "NULL",
        },
        "shell_noise_62171": lambda: {
            "LogonType": rng.choice([131072, 132096]),
            "TaskName": rng.choice(["PreShellTasks", "ShellInitTasks"]),
        },
        "shell_noise_62170": lambda: {
            "LogonType": rng.choice([131072, 132096]),
            "TaskName": rng.choice(["PreShellTasks", "ShellInitTasks"]),
        },
        "dmedp_noise_200": dict,
        "dmedp_noise_202": dict,
        "autopilot_noise_170": dict,
        "aad_noise_1098": lambda: rng.choice(
            [
                {
                    "Error": 3400073222,
                    "ErrorMessage": "It failed to get token by WS-Trust flow.",
                    "AdditionalInformation": "Server response:\r\nHTTP: 401 [Unauthorized]",
                },
                {
                    "Error": 3399614476,
                    "ErrorMessage": "The request requires user interaction.",
                    "AdditionalInformation": "Code: interaction_required",
                },
            ]
        ),
        "aad_noise_1097": lambda: {
            "Error": 3400073302,
            "ErrorMessage": "Renew token by the primary refresh token failed.",
            "AdditionalInformation": "Logged at RefreshTokenRequest.cpp",
        },
        "dmedp_noise_814": lambda: {
            "Message1": rng.choice(["AllowTelemetry", "L_DefaultCustomTab"]),
            "Message2": rng.choice(["System", "ADMX_StartMenu"]),
            "Message3": guid,
            "Message4": "Device",
            "Message5": "<enabled/>",
            "HexInt1": 6,
            "HexInt2": 0,
        },
        "dmedp_noise_813": lambda: {
            "Message1": rng.choice(["RequireDeviceEncryption", "AllowTelemetry"]),
            "Message2": rng.choice(["BitLocker", "Defender", "System"]),
            "Message3": guid,
            "Message4": "Device",
            "HexInt1": rng.randrange(0, 4),
            "HexInt2": 6,
            "HexInt3": 0,
        },
        "udr_noise_220": lambda: {"Format": "NameFullyQualifiedDN", "ErrorCode": 1355},
        "dmedp_noise_2750": lambda: {
            "Message1": "WSC_SECURITY_PROVIDER_FIREWALL",
            "HexInt1": 2,
            "HRESULT": rng.choice([0, 1]),
        },
        "udr_noise_360": lambda: _whfb_check("No"),
        "provisioning_noise_20": lambda: {
            "Message1": "Power.EnergyEstimationEngine.CPU.ppkg",
            "Message2": guid,
        },
        "scm_state_change": lambda: {
            "param1": rng.choice(["Windows Update", "dmwappushsvc"]),
            "param2": rng.choice(["running", "stopped"]),
        },
    }
    keys = [key for key, _ in REAL_NOISE]
    weights = [count for _, count in REAL_NOISE]
    count = (
        scenario.noise if scenario.noise >= 0 else int(REAL_NOISE_PER_HOUR * span / (3600 * SECOND))
    )
    for key in rng.choices(keys, weights, k=count):
        writer.emit(key, start + rng.randrange(0, span // SECOND) * SECOND, oobe, makers[key]())


def _device_files(scenario: Scenario, device: Device, last_ns: int) -> dict[str, bytes]:
    """AutopilotDDSZTDFile.json and the registry dump the cab carries (domain.md a.2, a.3, e)."""
    downloaded = dt.datetime.fromtimestamp(
        (scenario.start_ns + int(device.attempts[0].at * SECOND)) / SECOND, dt.UTC
    )
    ztd = {
        "PolicyDownloadDate": downloaded.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "CloudAssignedDomainJoinMethod": 1 if device.join == "hybrid" else 0,
        "HybridJoinSkipDCConnectivityCheck": 1 if device.skip_dc_check else 0,
        "CloudAssignedTenantId": scenario.tenant_id,
        "CloudAssignedTenantDomain": scenario.tenant_domain,
        "ZtdRegistrationId": device.ztdid,
        "DeploymentProfileName": "Hybrid Autopilot" if device.join == "hybrid" else "Entra join",
    }
    applied = device.join == "hybrid" and any(
        a.fault
        in (
            "none",
            "dc_unreachable",
            "clock_skew",
            "clock_skew_unsynced",
            "sync_pending",
            "vpn_not_connected",
        )
        for a in device.attempts
    )
    lines = [
        "Windows Registry Editor Version 5.00",
        "",
        r"[HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Provisioning\Diagnostics\Autopilot]",
        f'"CloudAssignedTenantId"="{scenario.tenant_id}"',
        f'"CloudAssignedTenantDomain"="{scenario.tenant_domain}"',
        f'"DeploymentProfileName"="{ztd["DeploymentProfileName"]}"',
        "",
        r"[HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Provisioning\Diagnostics\Autopilot"
        r"\EstablishedCorrelations]",
        f'"ZTDRegistrationID"="{device.ztdid}"',
        f'"EntDMID"="{device.entdmid}"',
        "",
    ]
    lines += [
        r"[HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Control\TimeZoneInformation]",
        f'"TimeZoneKeyName"="{device.time_zone}"',
        "",
    ]
    if applied:
        lines += [
            r"[HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Provisioning\OMADM\SyncML]",
            '"ODJApplied"=dword:00000001',
            "",
        ]
    registry = "\r\n".join(lines).encode("utf-16")  # regedit exports UTF-16 with a BOM
    return {
        "AutopilotDDSZTDFile.json": json.dumps(ztd, indent=2).encode(),
        "MdmDiagReport_RegistryDump.reg": registry,
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
    return {
        "scenario": scenario.name,
        "summary": scenario.summary,
        "root_cause": scenario.root_cause,
        "attempts": attempts,
    }


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
