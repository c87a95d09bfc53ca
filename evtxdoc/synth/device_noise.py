"""Background events with the shapes and mix of a real deployment, and the supporting files
the device's diagnostics carry (AutopilotDDSZTDFile.json, the registry dump)."""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid
from typing import Any

from evtxdoc.synth.hostlog import HostWriter
from evtxdoc.synth.spec import Device, Scenario
from evtxdoc.vocab import SECOND

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


def device_noise(
    scenario: Scenario, device: Device, writer: HostWriter, start: int, end: int, rng: random.Random
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
        "udr_noise_360": lambda: whfb_check("No"),
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


def device_files(scenario: Scenario, device: Device, last_ns: int) -> dict[str, bytes]:
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


def whfb_check(joined: str) -> dict[str, str]:
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
