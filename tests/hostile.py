"""A bundle whose event text is an attack: a failing device, a connector, a hostile host name.

Shared by the report tests and the browser test.
"""

from __future__ import annotations

from pathlib import Path

from evtxdoc.synth.catalog import shape
from evtxdoc.synth.writer import EvtxWriter

T0 = 1_758_873_600_000_000_000  # 2025-09-26T08:00:00Z
SECOND = 1_000_000_000
SCRIPT = "<script>alert('xss')</script>"
IMG = '"><img src=x onerror=alert(1)>'
JS_URL = "javascript:alert(document.cookie)"
LONG = "A" * 20_000
HOSTILE_HOST = 'EVIL"><svg onload=alert(4)>'
DEVICE = "DESKTOP-H0ST1LE"


def _write(folder: Path, name: str, events: list) -> None:
    writer = EvtxWriter()
    writer.extend(events)
    (folder / name).write_bytes(writer.to_bytes())


def write_hostile_bundle(folder: Path) -> Path:
    """Write the .evtx files into `folder` and return it."""
    _write(
        folder,
        "dmedp.evtx",
        [
            shape("odj_wait_start").make(T0, DEVICE, {"Boolean1": True}),
            shape("odj_state").make(T0 + 1 * SECOND, DEVICE, {"HexInt1": 1}),
        ],
    )
    _write(
        folder,
        "system.evtx",
        [
            shape("offline_join_failed").make(
                T0 + 300 * SECOND,
                DEVICE,
                {
                    "DomainName": f"contoso.local{IMG}",
                    "ComputerName": f"{SCRIPT}{LONG}",
                    "NetStatusCode": 2710,
                },
            ),
            shape("scm_state_change").make(
                T0 + 301 * SECOND, HOSTILE_HOST, {"param1": JS_URL, "param2": SCRIPT}
            ),
        ],
    )
    body = (
        f"OfflineDomainJoinRequestFailed: {SCRIPT}\r\nDeviceName: {DEVICE}\r\n"
        f"DiagnosticCode: 5\r\nDiagnosticText: {JS_URL} {IMG} jane.doe@fabrikam.com "
        f"from 10.20.30.40 as CONTOSO\\evil.user {LONG}"
    )
    _write(
        folder,
        "connector.evtx",
        [
            shape("connector_request").make(
                T0 + 100 * SECOND, "CONN01.contoso.local", {"Message": body}
            ),
        ],
    )
    return folder
