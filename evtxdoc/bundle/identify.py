"""Identify a file by its first bytes (and, for supporting files, its content), never by name."""

from __future__ import annotations

import codecs
from dataclasses import dataclass

from evtxdoc.models import FileKind

EVTX_MAGIC = b"ElfFile\x00"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
CAB_MAGIC = b"MSCF"
HEAD_BYTES = 8192

# Names from domain.md (e): what MdmDiagnosticsTool and Intune "Collect diagnostics" put beside
# the logs. Matched on content where the content is distinctive, on name otherwise.
ZTD_JSON_NAME = "autopilotddsztdfile.json"
ZTD_JSON_KEYS = (b"CloudAssignedDomainJoinMethod", b"CloudAssignedTenantId", b"ZtdRegistrationId")
REGISTRY_HEADER = "Windows Registry Editor Version 5.00"
DSREGCMD_MARKERS = ("AzureAdJoined :", "DomainJoined :", "Device State")
# The Exchange connector's settings files (S26, S45): told by the keys they hold.
EXCHANGE_CONFIG_KEYS = (
    "<ExchangeWebServiceURL",
    "<IsCasFailoverEnabled",
    "<EnableParallelCommandSupport",
)
TRACING_CONFIG_KEYS = ("TraceSourceLine", "OnPremisesExchangeConnectorService")

# Extensions whose skip reason we can state precisely.
KNOWN_SKIPS = {
    ".etl": "ETW trace (.etl); evtxdoc reads .evtx event logs, not ETW traces",
    ".html": "HTML report; evtxdoc reads the .evtx logs beside it",
    ".htm": "HTML report; evtxdoc reads the .evtx logs beside it",
    ".log": "text log; not an event log",
    ".txt": "text file; not an event log",
    ".csv": "CSV file (e.g. a hardware hash); not an event log",
    ".xml": "XML file; not an event log",
    ".svclog": "named .svclog but holds no E2ETraceEvent: not a WCF trace",
    ".json": "JSON file; not an event log",
    ".cab": "named .cab but not a cabinet file",
    ".zip": "named .zip but not a zip archive",
}


@dataclass(frozen=True, slots=True)
class Identity:
    """What a file is, and why we think so."""

    kind: FileKind
    subkind: str | None = None  # archive: "zip"/"cab"; supporting: see SUPPORTING_KINDS
    reason: str | None = None  # for SKIPPED


SUPPORTING_KINDS = {
    "autopilot_ztd_json": "Autopilot profile as downloaded (AutopilotDDSZTDFile.json)",
    "registry_dump": "registry export (e.g. MdmDiagReport_RegistryDump.reg)",
    "dsregcmd_status": "dsregcmd /status output",
    "exchange_connector_config": "Intune Exchange connector settings "
    "(OnPremisesExchangeConnectorServiceConfiguration.xml)",
    "exchange_tracing_config": "Intune Exchange connector trace settings "
    "(TracingConfiguration.xml)",
}


TRACE_START = "<E2ETraceEvent"  # XmlWriterTraceListener's element (parse/svclog.py)


def trace_encoding(head: bytes) -> tuple[str, int]:
    """A text file's encoding and BOM length: the BOM, else UTF-16 told by its zero bytes."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8", 3
    if head.startswith(codecs.BOM_UTF16_LE):
        return "utf-16-le", 2
    if head.startswith(codecs.BOM_UTF16_BE):
        return "utf-16-be", 2
    if head[:2] == b"<\x00":
        return "utf-16-le", 0
    if head[:2] == b"\x00<":
        return "utf-16-be", 0
    return "utf-8", 0


def looks_like_trace(head: bytes) -> bool:
    """Does the file start like an E2E trace, in whichever encoding it was written?"""
    encoding, bom = trace_encoding(head)
    text = head[bom : bom + 4096].decode(encoding, errors="replace")
    return TRACE_START in text[:2048]


def decode_text(head: bytes) -> str:
    """Best-effort decoding of the start of a text file (UTF-16 with BOM, UTF-8, else latin-1)."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return head.decode("utf-16", errors="replace")
    if head.startswith(b"\xef\xbb\xbf"):
        return head[3:].decode("utf-8", errors="replace")
    try:
        return head.decode("utf-8")
    except UnicodeDecodeError:
        return head.decode("latin-1")


def identify(name: str, head: bytes, size: int) -> Identity:
    """Say what a file is from its name (only for tie-breaks) and its first bytes."""
    lower = name.lower().replace("\\", "/").rsplit("/", 1)[-1]
    ext = "." + lower.rsplit(".", 1)[-1] if "." in lower else ""
    if size == 0:
        return Identity(FileKind.SKIPPED, reason="empty file (0 bytes)")
    if head.startswith(EVTX_MAGIC):
        return Identity(FileKind.EVTX)
    if head.startswith(ZIP_MAGICS):
        return Identity(FileKind.ARCHIVE, "zip")
    if head.startswith(CAB_MAGIC):
        return Identity(FileKind.ARCHIVE, "cab")
    if looks_like_trace(head):
        return Identity(FileKind.TRACE)
    supporting = _supporting_kind(lower, ext, head)
    if supporting:
        return Identity(FileKind.SUPPORTING, supporting)
    if ext == ".evtx":
        return Identity(
            FileKind.SKIPPED,
            reason="named .evtx but has no ElfFile signature: not an EVTX file "
            "(an incomplete copy, or a log saved in another format such as .csv or .xml)",
        )
    return Identity(FileKind.SKIPPED, reason=KNOWN_SKIPS.get(ext, "not an event log or archive"))


def _supporting_kind(lower_name: str, ext: str, head: bytes) -> str | None:
    if lower_name == ZTD_JSON_NAME or (ext == ".json" and any(k in head for k in ZTD_JSON_KEYS)):
        return "autopilot_ztd_json"
    text = decode_text(head[:HEAD_BYTES])
    if text.lstrip("\ufeff").startswith("<"):
        if any(key in text for key in EXCHANGE_CONFIG_KEYS):
            return "exchange_connector_config"
        if all(key in text for key in TRACING_CONFIG_KEYS):
            return "exchange_tracing_config"
    if text.lstrip("\ufeff").startswith(REGISTRY_HEADER):
        return "registry_dump"
    if sum(marker in text for marker in DSREGCMD_MARKERS) >= 2:
        return "dsregcmd_status"
    return None
