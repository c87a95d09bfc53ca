"""A scenario file (YAML) → the typed Scenario: hosts, attempts and faults, checked strictly
(unknown keys with a did-you-mean, all at once, duplicate keys refused, each at its line).
`expect.py` says what analysis of its bundle must find. The format is in docs/scenarios.md."""

from __future__ import annotations

import datetime as dt
import random
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evtxdoc import yamlpos
from evtxdoc.errors import InputError
from evtxdoc.rules.schema import did_you_mean
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
EXCHANGE_FAULTS = {  # Exchange connector fault → (sync status, the rule that must explain it)
    "none": ("healthy", None),
    "logon_denied": ("stopped", "service-cannot-log-on"),
    "cas_unreachable": ("failing", "exchange-connector-cas-no-failover"),
    "bad_request": ("no_syncs", "exchange-connector-bad-request"),
    "missing_cmdlets": ("failing", "exchange-connector-cmdlets-denied"),
    "large_org": ("healthy", "exchange-connector-parallel-commands"),
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
class ExchangeConnector:
    """An on-premises Intune Exchange connector server and what its syncs meet."""

    name: str
    cas: str = "cas01.contoso.local"
    failover: bool = True
    parallel: bool = False
    verbose: bool = False
    users: int = 40
    devices: int = 120
    fault: str = "none"
    fault_at: float = 26 * 3600.0  # seconds after the scenario start
    days: float = 2.0


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
    exchange: list[ExchangeConnector] = field(default_factory=list)

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
        raw, lines = yamlpos.load(path.read_text("utf-8"))
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
    return parse(raw, where, lines)


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
    "exchange",
)
EXCHANGE_KEYS = tuple(ExchangeConnector.__dataclass_fields__)
CONNECTOR_KEYS = ("name", "kind", "version", "domain", "clock_offset", "served_before",
                  "legacy_history", "layout")  # fmt: skip
DEVICE_KEYS = ("oobe_name", "serial", "layout", "clock_offset", "time_zone", "profile",
               "attempts", "entdmid", "earlier_success")  # fmt: skip
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


def _unknown(
    item: Any,
    allowed: tuple[str, ...],
    path: yamlpos.Path,
    found: list[tuple[yamlpos.Path, str, str]],
) -> dict[str, Any]:
    """Note every key of `item` a scenario does not know, with its neighbour; a non-mapping
    is noted too and read as empty."""
    if not isinstance(item, dict):
        found.append((path, f"expected a mapping, got {type(item).__name__}", ""))
        return {}
    for key in item:
        if key not in allowed:
            hint = did_you_mean(key, allowed) or f"one of {', '.join(allowed)}"
            found.append(((*path, key), f"unknown key {key!r}", hint))
    return item


def _check_keys(raw: dict[str, Any], where: str, lines: yamlpos.Lines | None = None) -> None:
    """Every key of the scenario is known (docs/scenarios.md): a typo is not ignored, and
    every one is reported at once, each at its line when the file is known."""
    found: list[tuple[yamlpos.Path, str, str]] = []
    _unknown(raw, SCENARIO_KEYS, (), found)
    for number, item in enumerate(raw.get("connectors") or []):
        _unknown(item, CONNECTOR_KEYS, ("connectors", number), found)
    for number, item in enumerate(raw.get("devices") or []):
        device = _unknown(item, DEVICE_KEYS, ("devices", number), found)
        _unknown(device.get("profile") or {}, PROFILE_KEYS, ("devices", number, "profile"), found)
        for index, entry in enumerate(device.get("attempts") or []):
            _unknown(entry, ATTEMPT_KEYS, ("devices", number, "attempts", index), found)
    for number, item in enumerate(raw.get("damage") or []):
        _unknown(item, DAMAGE_KEYS, ("damage", number), found)
    for number, item in enumerate(raw.get("exchange") or []):
        _unknown(item, EXCHANGE_KEYS, ("exchange", number), found)
    if not found:
        return
    places = [
        f"{where}:{lines.at(path)}"
        if lines is not None
        else ": ".join(filter(None, (where, _dotted(path[:-1]))))
        for path, _, _ in found
    ]
    if len(found) == 1:
        _, message, hint = found[0]
        raise InputError(message, where=places[0], hint=hint or None)
    listed = "\n".join(
        f"  {place}: {_dotted(path)}: {message}" + (f" — {hint}" if hint else "")
        for place, (path, message, hint) in zip(places, found, strict=True)
    )
    raise InputError(f"{len(found)} problems with the scenario's keys:\n{listed}", where=where)


def _dotted(path: yamlpos.Path) -> str:
    """("devices", 0, "attempts", 1) → devices[0].attempts[1]"""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def parse(
    raw: dict[str, Any], where: str = "<scenario>", lines: yamlpos.Lines | None = None
) -> Scenario:
    _check_keys(raw, where, lines)
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
                entdmid=given(item.get("entdmid"), str(uuid.UUID(int=rng.getrandbits(128)))),
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
        exchange=[
            _exchange(item, f"{where}: exchange[{number}]")
            for number, item in enumerate(raw.get("exchange") or [])
        ],
    )


def _exchange(item: dict[str, Any], where: str) -> ExchangeConnector:
    fault = str(item.get("fault", "none"))
    if fault not in EXCHANGE_FAULTS:
        raise InputError(
            f"unknown Exchange connector fault {fault!r}",
            where=where,
            hint=f"one of {', '.join(EXCHANGE_FAULTS)}",
        )
    failover = bool(item.get("failover", True))
    if fault == "cas_unreachable" and failover:
        raise InputError(
            "fault cas_unreachable with failover: true: the connector would fail over to "
            "another CAS",
            where=where,
            hint="set failover: false (IsCasFailoverEnabled false), the case S25 describes",
        )
    return ExchangeConnector(
        name=str(item["name"]),
        cas=str(item.get("cas", "cas01.contoso.local")),
        failover=failover,
        parallel=bool(item.get("parallel", False)),
        verbose=bool(item.get("verbose", False)),
        users=int(item.get("users", 40)),
        devices=int(item.get("devices", 6200 if fault == "large_org" else 120)),
        fault=fault,
        fault_at=seconds(item.get("fault_at", "26h"), where),
        days=float(item.get("days", 2)),
    )


def given(value: Any, drawn: str) -> str:
    """A value the scenario fixes, else the drawn one (drawn anyway: the stream stays put)."""
    return str(value) if value else drawn
