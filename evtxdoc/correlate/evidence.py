"""The few events correlation needs, picked out of the timeline and read into plain records.

Selection is vectorized (channel codes and event ids), so a fleet timeline of millions of
events costs one pass of numpy masks; only the selected rows (about ten per attempt) have their
fields decoded. What each event means comes from reference/real-logs/ (what a real hybrid
deployment wrote; it wins over the documentation) and reference/domain.md: (a.2) DMEDP 72,
100, 107, 109/110 with the state in `HexInt1`, 111; (a.3) Autopilot: 153/103/100/101 are
profile *checks* that repeat all through a healthy deployment (100 is "policy [Message1] not
found", one per optional setting the profile lacks; 101 carries a DWORD setting in
Message1/Int1; 153 numeric InitialState/UpdateState), only 171/172/807/809/815/908 are
failures; (a.4) UDR 304/305/307 (ExitCode) failures, 306 success, 360 "Device is AAD joined
(AADJ or DJ++): Yes" confirms the registration; (a.6) Shell-Core 62407; (a.8) System
4098/4099, NETLOGON 5719, GroupPolicy 1129, Time-Service 14; (a.9) Time-Service 261 and
Kernel-General 1 (clock set); (a.1) the connectors' request events.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from evtxdoc.catalog import parse_code
from evtxdoc.models import ConnectorNotice, ConnectorRequest, EventRef
from evtxdoc.parse.payload import decode_fields
from evtxdoc.parse.times import parse_time_ns

DMEDP = "microsoft-windows-devicemanagement-enterprise-diagnostics-provider/admin"
AUTOPILOT = "microsoft-windows-moderndeployment-diagnostics-provider/autopilot"
UDR = "microsoft-windows-user device registration/admin"
SHELL = "microsoft-windows-shell-core/operational"
TIME_OPERATIONAL = "microsoft-windows-time-service/operational"
SYSTEM = "system"
CONNECTOR_UPDATED = (
    "microsoft-intune-odjconnectorservice/operational",
    "microsoft-intune-odjconnectorservice/admin",
)
CONNECTOR_LEGACY = ("odj connector service",)
DEVICE_CHANNELS = (
    DMEDP,
    AUTOPILOT,
    UDR,
    SHELL,
    "microsoft-windows-moderndeployment-diagnostics-provider/managementservice",
    "microsoft-windows-aad/operational",
    "microsoft-windows-provisioning-diagnostics-provider/admin",
)

JOIN_PROVIDER = "microsoft-windows-coresystem-netprovision-joinprovideronline"
KERNEL_GENERAL = "microsoft-windows-kernel-general"
TIME_SERVICE = "microsoft-windows-time-service"

# (channel, event id) → provider it must come from (None: any); System ids are shared.
DEVICE_EVENTS: dict[tuple[str, int], str | None] = {
    **{(DMEDP, i): None for i in (72, 100, 107, 109, 110, 111)},
    **{(AUTOPILOT, i): None for i in (100, 101, 103, 153, 171, 172, 807, 809, 815, 908)},
    **{(UDR, i): None for i in (304, 305, 306, 307, 360)},
    (SHELL, 62407): None,
    (SYSTEM, 4098): JOIN_PROVIDER,
    (SYSTEM, 4099): JOIN_PROVIDER,
    (SYSTEM, 5719): "netlogon",
    (SYSTEM, 1129): "microsoft-windows-grouppolicy",
    (SYSTEM, 14): TIME_SERVICE,
    (SYSTEM, 1): KERNEL_GENERAL,
    (TIME_OPERATIONAL, 261): None,
}
ODJ_STATES = {  # DMEDP 109/110 Properties[0] (domain.md a.2, S29)
    0: ("odj_request", "not_configured", "state 0: offline domain join not configured"),
    1: ("odj_request", "waiting", "state 1: waiting for the offline domain join blob"),
    2: ("odj_blob", "ok", "state 2: offline domain join blob processed"),
    3: ("odj_blob", "timed_out", "state 3: timed out waiting for the blob or connectivity"),
}
DMEDP_STEPS = {  # domain.md a.2
    72: ("enrollment", "ok", "MDM enrollment completed"),
    111: ("odj_request", "waiting", "started waiting for the blob"),
    107: ("blob_applied", "ok", "offline domain join blob applied"),
    100: ("dc_connectivity", "failed", "could not establish connectivity (DMEDP 100)"),
}
AUTOPILOT_FAILURES = {  # domain.md a.3 (S6); the only Autopilot events that mean a failure
    171: "TPM problem (identity / attestation)",
    172: "TPM problem (identity / attestation)",
    807: "ZtdDeviceIsNotRegistered: the hardware hash is not imported in this tenant",
    809: "ZtdDeviceHasNoAssignedProfile: no Autopilot profile assigned",
    815: "ZtdDeviceHasNoAssignedProfile: no Autopilot profile assigned",
    908: "serial number / product key mismatch with the registered hash",
}
ESP_OUTCOMES = (  # CommercialOOBE_ESPProgress_* names (domain.md a.6)
    ("WhiteGlove_Failed", "failed"),
    ("_Failure", "failed"),
    ("_Timeout", "timed_out"),
    ("_Abort", "failed"),
    ("_Success", "ok"),
    ("Page_Exiting", "ok"),
)
CLOCK_JUMP_NS = 60 * 1_000_000_000  # smaller clock sets are ordinary drift corrections


@dataclass(slots=True)
class Record:
    """One selected event with its decoded fields."""

    ts: int
    host: str
    channel: str  # lower case
    provider: str  # lower case
    event_id: int
    record_id: int
    source_file: str
    user_sid: str | None
    fields: dict[str, Any]

    @property
    def ref(self) -> EventRef:
        return EventRef(self.host, self.channel, self.event_id, self.record_id, self.source_file)


@dataclass(slots=True)
class DeviceEvent:
    """A device step candidate: what the event says about the attempt."""

    record: Record
    step: str
    status: str
    detail: str


@dataclass(frozen=True, slots=True)
class ClockJump:
    """The clock was set from `old` to `new` (Kernel-General 1 / Time-Service 261)."""

    record: Record
    old: int
    new: int

    @property
    def offset(self) -> int:
        """How far the clock was off before it was set (clock − true)."""
        return self.old - self.new


def category_codes(column: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Integer codes (−1: missing) and category names of a (categorical) column."""
    categorical = (
        column if isinstance(column.dtype, pd.CategoricalDtype) else column.astype("category")
    )
    return (
        categorical.cat.codes.to_numpy().astype(np.int64),
        [str(c) for c in categorical.cat.categories],
    )


def _channel_mask(frame: pd.DataFrame, channels: set[str]) -> np.ndarray:
    codes, names = category_codes(frame["channel"])
    return np.isin(codes, [i for i, c in enumerate(names) if c.lower() in channels])


def select(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows correlation reads: device step events and every connector event."""
    if frame.empty:
        return frame
    ids = frame["event_id"].to_numpy()
    mask = _channel_mask(frame, set(CONNECTOR_UPDATED + CONNECTOR_LEGACY))
    by_channel: dict[str, list[int]] = {}
    for channel, event_id in DEVICE_EVENTS:
        by_channel.setdefault(channel, []).append(event_id)
    for channel, wanted in by_channel.items():
        mask |= _channel_mask(frame, {channel}) & np.isin(ids, wanted)
    return frame.loc[mask]


NO_FIELDS = {
    (DMEDP, 72),
    (DMEDP, 107),
    (DMEDP, 111),
    (DMEDP, 100),
    (UDR, 306),
    *((AUTOPILOT, i) for i in (171, 172, 807, 809, 815, 908)),
}
# Profile settings (Autopilot 101 Message1 → Int1) that are device facts (real-logs/shapes.md)
PROFILE_SETTINGS = ("CloudAssignedDomainJoinMethod", "HybridJoinSkipDCConnectivityCheck")


def _strings(column: pd.Series, missing: str | None = "") -> list[Any]:
    """A column's values as the category names themselves (one object per distinct value)."""
    codes, names = category_codes(column)
    return [names[c] if c >= 0 else missing for c in codes.tolist()]


def records(rows: pd.DataFrame) -> list[Record]:
    """Selected rows → records with fields (provider filter of DEVICE_EVENTS applied).

    Fields are decoded only for the events whose fields are read (NO_FIELDS lists the rest),
    once per distinct payload and channel: the records of equal payloads share one (read-only)
    dict — a fleet's devices write the same texts over and over (16x fewer decodes at 1,000
    devices, and as much less memory).
    """
    out = []
    ts_values = rows["ts"].array.asi8.tolist() if len(rows) else []
    sids = _strings(rows["user_sid"], missing=None)  # one str per distinct SID, not per row
    columns = zip(
        ts_values,
        _strings(rows["host"]),
        _strings(rows["channel"]),
        _strings(rows["provider"]),
        rows["event_id"].tolist(),
        rows["record_id"].tolist(),
        _strings(rows["source_file"]),
        sids,
        rows["payload"].tolist(),
        strict=True,
    )
    lowered: dict[str, str] = {}
    decoded: dict[tuple[bytes, str], dict[str, Any]] = {}
    for ts, host, channel, provider, event_id, record_id, source, sid, payload in columns:
        lower = lowered.get(channel) or lowered.setdefault(channel, channel.lower())
        prov = lowered.get(provider) or lowered.setdefault(provider, provider.lower())
        key = (lower, event_id)
        wanted = DEVICE_EVENTS.get(key, "")
        if wanted and wanted != prov:
            continue
        if key in NO_FIELDS:
            fields: dict[str, Any] = {}
        elif type(payload) is bytes:
            known = decoded.get((payload, channel))
            if known is None:
                known = decoded[payload, channel] = _fields(payload, channel, lower)
            fields = known
        else:
            fields = _fields(payload, channel, lower)
        out.append(Record(ts, host, lower, prov, event_id, record_id, source, sid, fields))
    return out


def _fields(payload: Any, channel: str, lower: str) -> dict[str, Any]:
    bodies = lower in CONNECTOR_UPDATED or lower in CONNECTOR_LEGACY
    return decode_fields(payload, channel, bodies=bodies)


def _int(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    text = str(value).strip()
    try:
        return int(text, 16) if text.lower().startswith("0x") else int(text)
    except ValueError:
        return None


def _code(value: Any) -> str:
    """A code as logs and the catalog write it: small ones in decimal, HRESULTs in hex."""
    number = parse_code(value) if value is not None else None
    if number is None:
        return str(value)
    return f"0x{number:08X}" if number > 0xFFFF else str(number)


def device_event(record: Record) -> DeviceEvent | None:
    """What one selected device-side event says, or None when it says nothing here."""
    channel, event_id, fields = record.channel, record.event_id, record.fields
    if channel == DMEDP:
        if event_id in (109, 110):
            state = _int(fields.get("HexInt1", fields.get("Data0")))
            if state in ODJ_STATES:
                step, status, detail = ODJ_STATES[state]
                return DeviceEvent(record, step, status, detail)
            return None
        meaning = DMEDP_STEPS.get(event_id)
        return DeviceEvent(record, *meaning) if meaning else None
    if channel == AUTOPILOT:
        if event_id in AUTOPILOT_FAILURES:
            return DeviceEvent(record, "profile", "failed", AUTOPILOT_FAILURES[event_id])
        return DeviceEvent(record, "profile", *_profile_check(event_id, fields))
    if channel == UDR:
        if event_id == 306:
            return DeviceEvent(record, "hybrid_registration", "ok", "hybrid join registered")
        if event_id == 360:  # WHfB prerequisites; "No" is written long before a registration
            if str(fields.get("DeviceIsJoined", "")).strip().lower() != "yes":
                return None
            return DeviceEvent(
                record,
                "hybrid_registration",
                "ok",
                "UDR 360: Device is AAD joined (AADJ or DJ++): Yes",
            )
        code = fields.get("ExitCode", fields.get("ErrorCode"))
        text = " ".join(str(v) for v in (code and _code(code), fields.get("Format")) if v)
        return DeviceEvent(
            record,
            "hybrid_registration",
            "failed",
            f"UDR {event_id}" + (f": {text}" if text else ""),
        )
    if channel == SHELL:
        names = " ".join(str(v) for v in fields.values())
        if "ESPProgress" not in names and "WhiteGlove" not in names:
            return None
        status = next((s for marker, s in ESP_OUTCOMES if marker in names), "info")
        name = next((str(v) for v in fields.values() if "CommercialOOBE" in str(v)), names)
        return DeviceEvent(record, "esp", status, name[:120])
    if channel == SYSTEM:
        if event_id == 4098:
            return DeviceEvent(
                record,
                "offline_join",
                "ok",
                f"joined {fields.get('DomainName')} as {fields.get('ComputerName')}",
            )
        if event_id == 4099:
            return DeviceEvent(
                record,
                "offline_join",
                "failed",
                f"NetStatusCode {_code(fields.get('NetStatusCode'))}",
            )
        if event_id in (5719, 1129, 14):
            what = {
                5719: "no domain controller for a secure session (NETLOGON 5719)",
                1129: "Group Policy found no domain controller (1129)",
                14: "no domain controller as time source (Time-Service 14)",
            }[event_id]
            return DeviceEvent(record, "dc_connectivity", "failed", what)
    return None


def _profile_check(event_id: int, fields: dict[str, Any]) -> tuple[str, str]:
    """(status, detail) of a repeated profile check: context, never a failure."""
    name = str(fields.get("Message1") or "")[:80]
    if event_id == 100:
        return "info", f"Autopilot policy {name or '?'} not found (a setting the profile lacks)"
    if event_id == 101:
        return "info", f"profile setting {name or '?'} = {fields.get('Int1')}"
    if event_id == 103:
        value = str(fields.get("Message2") or "")[:80]
        return "info", f"profile value {name or '?'}: {value}"
    if event_id == 153:
        return "ok", (
            f"Autopilot profile check (InitialState {fields.get('InitialState')}, "
            f"UpdateState {fields.get('UpdateState')})"
        )
    return "info", f"Autopilot {event_id}"


def profile_setting(record: Record) -> tuple[str, Any] | None:
    """(name, value) of a profile DWORD setting that is a device fact (Autopilot 101)."""
    if record.channel != AUTOPILOT or record.event_id != 101:
        return None
    name = str(record.fields.get("Message1") or "")
    if name not in PROFILE_SETTINGS:
        return None
    return name, _int(record.fields.get("Int1"))


def clock_jump(record: Record) -> ClockJump | None:
    """A clock set by at least CLOCK_JUMP_NS, from OldTime/NewTime."""
    if not (
        (record.channel == SYSTEM and record.event_id == 1 and record.provider == KERNEL_GENERAL)
        or (record.channel == TIME_OPERATIONAL and record.event_id == 261)
    ):
        return None
    old = _time(record.fields.get("OldTime"))
    new = _time(record.fields.get("NewTime"))
    if old is None or new is None or abs(old - new) < CLOCK_JUMP_NS:
        return None
    return ClockJump(record, old, new)


def _time(value: Any) -> int | None:
    if isinstance(value, int):
        return value
    return parse_time_ns(str(value)) if value else None


def connector_event(record: Record) -> ConnectorRequest | ConnectorNotice | None:
    """A connector event → the request it logs, or a notice about the connector itself."""
    if record.channel in CONNECTOR_UPDATED:
        kind = "updated"
    elif record.channel in CONNECTOR_LEGACY:
        kind = "legacy"
    else:
        return None
    fields = record.fields
    name = fields.get("DeviceName") or fields.get("MachineName")
    device_id = fields.get("DeviceId")
    diagnostic = fields.get("DiagnosticCode")
    text = fields.get("DiagnosticText") or fields.get("ErrorDescription")
    if not name and not device_id:
        if diagnostic is None and text is None:
            return None
        return ConnectorNotice(
            record.host,
            kind,
            record.ts,
            record.ref,
            None if diagnostic is None else str(diagnostic),
            None if text is None else str(text)[:2000],
        )
    metric = str(fields.get("MetricName") or "")
    code = parse_code(diagnostic) if diagnostic is not None else None
    error = fields.get("ErrorCode")
    failed = (
        metric.endswith("_Failure")
        or bool(code)
        or bool(parse_code(error) if error is not None else None)
    )
    host_domain = record.host.partition(".")[2] or None
    elapsed = _int(fields.get("ElapsedMilliseconds"))
    return ConnectorRequest(
        connector=record.host,
        kind=kind,
        ts=record.ts,
        ref=record.ref,
        device_name=str(name).strip() if name else None,
        device_id=str(device_id).strip().strip("{}").lower() if device_id else None,
        domain=str(fields.get("DomainName") or host_domain or "") or None,
        succeeded=not failed,
        error_code=None if error is None else str(error),
        diagnostic_code=None if diagnostic is None else str(diagnostic),
        diagnostic_text=None if text is None else str(text)[:2000],
        elapsed_ms=elapsed,
        user_sid=record.user_sid,
    )


LEGACY_BELOW = (6, 2501, 2000, 5)  # the MSA-based connector starts at this version (S1, S2)
OU_PATTERN = re.compile(
    r"((?:OU|CN)=[^,;\"'\r\n]+(?:,\s*(?:OU|CN|DC)=[^,;\"'\r\n]+)*)", re.IGNORECASE
)  # a DN in a connector's DiagnosticText


def connector_kinds(channels: set[str]) -> frozenset[str]:
    """Which connectors (updated, legacy) a machine's channels (lower case) show it runs."""
    kinds = set()
    if not channels.isdisjoint(CONNECTOR_UPDATED):
        kinds.add("updated")
    if not channels.isdisjoint(CONNECTOR_LEGACY):
        kinds.add("legacy")
    return frozenset(kinds)


def ou_in(texts: Iterable[str]) -> str | None:
    """The first OU distinguished name in the connector's texts."""
    return next((m.group(1) for t in texts if (m := OU_PATTERN.search(t))), None)
