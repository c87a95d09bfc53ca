"""The connector server's side of a story: its service start, earlier joins for devices not in
the bundle, and its answer to each device's request (success, failure, the legacy connector,
a proxy error), as reference/domain.md (d) and the real logs write them."""

from __future__ import annotations

import json
import random
import uuid
from typing import Any

from evtxdoc.synth.hostlog import HostLog, HostWriter
from evtxdoc.synth.spec import Connector, Scenario
from evtxdoc.vocab import SECOND


def connector_log(connector: Connector) -> HostLog:
    return HostLog(connector.name, "connector", connector.layout)


def connector_background(
    scenario: Scenario, connector: Connector, writer: HostWriter, rng: random.Random
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
        connector_success(
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
            connector_proxy_error(writer, connector, start + index * 900 * SECOND)
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
            legacy_failure(
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


def connector_success(
    writer: HostWriter,
    connector: Connector,
    when: int,
    name: str,
    device_id: str,
    rng: random.Random,
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


def connector_failure(
    writer: HostWriter,
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
        legacy_failure(
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


def legacy_failure(
    writer: HostWriter,
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


def connector_proxy_error(writer: HostWriter, connector: Connector, when: int) -> None:
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
