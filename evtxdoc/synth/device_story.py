"""A device's side of a story: each join attempt's events in order (Autopilot profile, ODJ
request, blob, reboot, join, hybrid registration) with its fault injected."""

from __future__ import annotations

import json
import random
import uuid

from evtxdoc.synth.connector_story import connector_failure, connector_success
from evtxdoc.synth.device_noise import device_files, device_noise, whfb_check
from evtxdoc.synth.hostlog import HostClock, HostLog, HostWriter
from evtxdoc.synth.spec import UNSERVED, Attempt, Device, Scenario, seconds
from evtxdoc.vocab import SECOND

ACCESS_DENIED_TEXT = (
    "The account does not have sufficient privileges to create the computer "
    "object in the organizational unit."
)  # paraphrase of S7
QUOTA_TEXT = (
    "The account has exceeded the allowed number of computer accounts "
    "(ERROR_DS_MACHINE_ACCOUNT_QUOTA_EXCEEDED)."
)  # 8557 (S24)


def device_log(
    scenario: Scenario, device: Device, writers: dict[str, HostWriter], rng: random.Random
) -> HostLog:
    log = HostLog(device.oobe_name, "device", device.layout)
    fixed_at = None  # clock_skew_unsynced: the clock is never corrected
    if any(a.fault == "clock_skew" for a in device.attempts):
        first = device.attempts[0]
        fixed_at = scenario.start_ns + int((first.at + 900) * SECOND)  # after the ODJ reboot
    writer = HostWriter(log, HostClock(device.clock_offset, fixed_at), rng)
    first_at = scenario.start_ns + int(device.attempts[0].at * SECOND)
    last_ns = first_at
    for attempt in device.attempts:
        last_ns = max(last_ns, attempt_events(scenario, device, attempt, writer, writers, rng))
    device_noise(scenario, device, writer, first_at - 600 * SECOND, last_ns, rng)
    log.supporting = device_files(scenario, device, last_ns)
    return log


def attempt_events(
    scenario: Scenario,
    device: Device,
    attempt: Attempt,
    writer: HostWriter,
    writers: dict[str, HostWriter],
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
            connector_failure(cw, connector, answer, attempt.computer_name, device_id, 5, text, rng)
        elif fault == "quota":
            connector_failure(
                cw, connector, answer, attempt.computer_name, device_id, 8557, QUOTA_TEXT, rng
            )
        else:
            connector_success(cw, connector, answer, attempt.computer_name, device_id, rng)
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
            emit("udr_noise_360", t + index * 3600 * SECOND + 60 * SECOND, fqdn, whfb_check("No"))
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
    emit("udr_noise_360", t + 1860 * SECOND, fqdn, whfb_check("Yes"))
    return t + 1860 * SECOND


MISSING_SETTINGS = (
    "CloudAssignedLanguage",
    "CloudAssignedRegion",
    "CloudAssignedTenantUpn",
    "DisableEnrollmentStatusPageForceSyncing",
)  # real-logs/shapes.md (100)


def _profile(scenario: Scenario, device: Device, writer: HostWriter, t: int, oobe: str) -> None:
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


def _profile_check(writer: HostWriter, t: int, computer: str) -> None:
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
    writer: HostWriter, t: int, computer: str, exit_code: int, subcode: str, message: str
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
