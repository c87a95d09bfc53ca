"""What a trace event's message says, as fields: the Intune Exchange connector's sync commands
and the exceptions it traces.

Documented (Microsoft/IntuneDocs `intune/troubleshoot-exchange-connector.md`, section "Exchange
Connector logs", 2017–2018; source S45): a full sync starts with "Handling command: Getting the
mobile device list without a time filter (full sync) for <number> users" and ends with "Getting
the mobile device list without a time filter (full sync) for 4 users completed successfully.
Details: Inventory command result - Devices synced: 0 Command ID: …' Exchange health: 'Server
health 'Name: 'PowerShellExchangeServer: <Name=mymailservername>' Status: Connected','" (some
versions spell it "Commmand ID"); quick (delta) syncs are found by searching "quick sync";
exceptions appear under "Get next command".

Inferred (evtxdoc): that a quick sync's messages have the same shape with "(quick sync)", that a
sync command's failure says "failed" in the same sentence, and the exception pattern (a .NET
type name ending in `Exception`, then its message), the PowerShell "The term 'X' is not
recognized" text of a cmdlet the account may not run, and "(400) Bad Request"-style HTTP
statuses.
"""

from __future__ import annotations

import re
from typing import Any

_SYNC_KIND = re.compile(r"\((full|quick) sync\)", re.IGNORECASE)
_HANDLING = re.compile(r"Handling command:\s*(.+?)(?:\s+for\s+(\d+)\s+users?)?\s*$", re.IGNORECASE)
_USERS = re.compile(r"\bfor\s+(\d+)\s+users?\b", re.IGNORECASE)
_DEVICES = re.compile(r"Devices synced:\s*(\d+)", re.IGNORECASE)
_COMMAND_ID = re.compile(r"Comm+and ID:\s*([^\s']+)", re.IGNORECASE)
_SERVER = re.compile(r"PowerShellExchangeServer:\s*<Name=([^>]+)>", re.IGNORECASE)
_STATUS = re.compile(r"Status:\s*([A-Za-z]+)")
_FAILED = re.compile(r"\b(failed|did not complete|could not be completed)\b", re.IGNORECASE)
_EXCEPTION = re.compile(r"\b((?:[A-Za-z_]\w*\.)*[A-Z]\w*Exception)\b\s*(?:[:\-]\s*)?([^\r\n]*)")
_STACK = re.compile(r"\s+at\s+[\w.<>`]+\(")
_HTTP = re.compile(r"\((\d{3})\)\s+([A-Za-z][A-Za-z ]{2,40}?)[.\"']")
_CMDLET = re.compile(r"The term '([\w-]+)' is not recognized", re.IGNORECASE)
MAX_VALUE = 500


def read_text(text: str) -> dict[str, Any]:
    """The fields `text` states (nothing for text that states none of them)."""
    if not text:
        return {}
    fields: dict[str, Any] = {}
    lower = text.lower()
    kind = _SYNC_KIND.search(text) if " sync)" in lower else None
    if kind:
        fields["SyncKind"] = kind.group(1).lower()
        handling = _HANDLING.search(text) if "handling command" in lower else None
        if handling:
            fields["SyncPhase"] = "start"
            fields["Command"] = handling.group(1)[:MAX_VALUE]
        elif "completed successfully" in lower:
            fields["SyncPhase"] = "completed"
        elif _FAILED.search(text):
            fields["SyncPhase"] = "failed"
        users = _USERS.search(text)
        if users:
            fields["Users"] = int(users.group(1))
    for name, marker, pattern in (  # a substring first: most messages hold none of these
        ("DevicesSynced", "devices synced", _DEVICES),
        ("CommandId", "and id", _COMMAND_ID),
        ("ExchangeServer", "powershellexchangeserver", _SERVER),
        ("MissingCmdlet", "is not recognized", _CMDLET),
    ):
        found = pattern.search(text) if marker in lower else None
        if found:
            value = found.group(1)
            fields[name] = int(value) if name == "DevicesSynced" else value[:MAX_VALUE]
    if "ExchangeServer" in fields:
        status = _STATUS.search(text, lower.find("powershellexchangeserver"))
        if status:
            fields["ExchangeStatus"] = status.group(1)
    exception = _EXCEPTION.search(text) if "exception" in lower else None
    if exception:
        fields["ExceptionType"] = exception.group(1)
        message = _STACK.split(exception.group(2), 1)[0].strip()
        if message:
            fields["ExceptionMessage"] = message[:MAX_VALUE]
    http = _HTTP.search(text) if ") " in text else None
    if http:
        fields["HttpStatus"] = int(http.group(1))
        fields["HttpReason"] = http.group(2).strip()
    if "get next command" in lower:
        fields["Operation"] = "Get next command"
    return fields
