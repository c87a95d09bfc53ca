"""Device facts from the supporting files a device bundle carries (domain.md a.3, a.2, (e)).

- `AutopilotDDSZTDFile.json`: CloudAssignedDomainJoinMethod (1 = hybrid),
  HybridJoinSkipDCConnectivityCheck, tenant, ZTD registration id, PolicyDownloadDate,
  DeploymentProfileName, and the `ErrorCode` / `ErrorReason` Windows writes there when the
  profile could not be applied (908: the hardware no longer matches the registered device).
- `MdmDiagReport_RegistryDump.reg` (UTF-16 regedit export): EstablishedCorrelations
  ZTDRegistrationID / EntDMID, CloudAssignedTenantId, ODJApplied, TimeZoneKeyName.
- `dsregcmd /status` output: `Key : Value` lines (DeviceName, DomainName, DeviceId, TenantId,
  AzureAdJoined, DomainJoined).

The facts also become events of the timeline (evtxdoc/supporting.py), for rules and the report.

Each reader takes bytes and returns plain values; unreadable content gives an empty result
(the file is still listed in the inventory; correlation just has fewer keys).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from evtxdoc.bundle.identify import decode_text

_REG_VALUE = re.compile(r'^"(?P<name>[^"]+)"=(?P<value>.*)$')
_DSREG_LINE = re.compile(r"^\s*(?P<key>[A-Za-z][A-Za-z0-9 ]*?)\s*:\s*(?P<value>.*?)\s*$")
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


@dataclass
class DeviceFacts:
    """What the supporting files of one device say (None: not stated)."""

    ztdid: str | None = None
    entdmid: str | None = None
    serial: str | None = None
    tenant_id: str | None = None
    tenant_domain: str | None = None
    join_method: str | None = None  # hybrid | entra
    skip_dc_check: bool | None = None
    odj_applied: bool | None = None
    time_zone: str | None = None
    device_name: str | None = None  # dsregcmd DeviceName (the current name)
    domain: str | None = None  # dsregcmd DomainName
    entra_device_id: str | None = None  # dsregcmd DeviceId
    policy_downloaded: str | None = None
    profile_name: str | None = None
    error_code: int | str | None = None  # ZTD JSON ErrorCode
    error_reason: str | None = None  # ZTD JSON ErrorReason
    azure_ad_joined: str | None = None  # dsregcmd AzureAdJoined (YES / NO)
    domain_joined: str | None = None  # dsregcmd DomainJoined
    sources: list[str] = field(default_factory=list)

    def merge(self, other: DeviceFacts) -> None:
        """Fill what is still unknown from `other`."""
        for name in self.__dataclass_fields__:
            if name == "sources":
                self.sources.extend(s for s in other.sources if s not in self.sources)
            elif getattr(self, name) is None:
                setattr(self, name, getattr(other, name))


def guid_in(value: Any) -> str | None:
    """The first GUID in `value`, lower case without braces (None: there is none)."""
    match = _GUID.search(str(value or ""))
    return match.group(0).lower() if match else None


def join_method_of(value: Any) -> str | None:
    """CloudAssignedDomainJoinMethod (profile file or Autopilot 101) → hybrid (1) | entra."""
    return None if value is None else ("hybrid" if str(value) == "1" else "entra")


def read_ztd_json(content: bytes) -> DeviceFacts:
    """AutopilotDDSZTDFile.json → facts."""
    try:
        data = json.loads(decode_text(content))
    except ValueError:
        return DeviceFacts()
    if not isinstance(data, dict):
        return DeviceFacts()
    lower = {str(k).lower(): v for k, v in data.items()}
    method = lower.get("cloudassigneddomainjoinmethod")
    skip = lower.get("hybridjoinskipdcconnectivitycheck")
    return DeviceFacts(
        ztdid=guid_in(lower.get("ztdregistrationid")),
        tenant_id=guid_in(lower.get("cloudassignedtenantid")),
        tenant_domain=lower.get("cloudassignedtenantdomain") or None,
        join_method=join_method_of(method),
        skip_dc_check=None if skip is None else str(skip) == "1",
        serial=lower.get("serialnumber") or None,
        policy_downloaded=_text(lower.get("policydownloaddate")),
        profile_name=_text(lower.get("deploymentprofilename")),
        error_code=_scalar(lower.get("errorcode")),
        error_reason=_text(lower.get("errorreason")),
    )


def _text(value: Any) -> str | None:
    return (
        str(value)[:1000]
        if value not in (None, "") and not isinstance(value, dict | list)
        else None
    )


def _scalar(value: Any) -> int | str | None:
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        return None
    return value if isinstance(value, int) else _text(value)


def read_registry_dump(content: bytes) -> DeviceFacts:
    """A regedit export → the values of domain.md a.2/a.3 it holds."""
    facts = DeviceFacts()
    key = ""
    for line in decode_text(content).splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            key = line[1:-1].lower()
            continue
        match = _REG_VALUE.match(line)
        if not match:
            continue
        name, raw = match.group("name").lower(), match.group("value")
        value = raw[1:-1] if raw.startswith('"') and raw.endswith('"') else raw
        if name == "ztdregistrationid":
            facts.ztdid = facts.ztdid or guid_in(value)
        elif name == "entdmid":
            facts.entdmid = facts.entdmid or guid_in(value)
        elif name == "cloudassignedtenantid":
            facts.tenant_id = facts.tenant_id or guid_in(value)
        elif name == "cloudassignedtenantdomain":
            facts.tenant_domain = facts.tenant_domain or value
        elif name == "odjapplied" and key.endswith(r"omadm\syncml"):
            facts.odj_applied = True
        elif name == "timezonekeyname":
            facts.time_zone = value
        elif name == "serialnumber" and not facts.serial:
            facts.serial = value
    return facts


def read_dsregcmd(content: bytes) -> DeviceFacts:
    """`dsregcmd /status` output → names and ids."""
    values: dict[str, str] = {}
    for line in decode_text(content).splitlines():
        match = _DSREG_LINE.match(line)
        if match and match.group("value"):
            values.setdefault(match.group("key").lower(), match.group("value"))
    return DeviceFacts(
        device_name=values.get("devicename") or None,
        domain=values.get("domainname") or None,
        entra_device_id=guid_in(values.get("deviceid")),
        tenant_id=guid_in(values.get("tenantid")),
        azure_ad_joined=values.get("azureadjoined") or None,
        domain_joined=values.get("domainjoined") or None,
    )


READERS = {
    "autopilot_ztd_json": read_ztd_json,
    "registry_dump": read_registry_dump,
    "dsregcmd_status": read_dsregcmd,
}


def read(subkind: str, content: bytes, display: str) -> DeviceFacts:
    """Facts from one supporting file (unknown kinds give nothing)."""
    reader = READERS.get(subkind)
    facts = reader(content) if reader else DeviceFacts()
    facts.sources.append(display)
    return facts
