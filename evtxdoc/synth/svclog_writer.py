"""Write E2E trace events byte for byte as `XmlWriterTraceListener` does (the Intune Exchange
connector's `CircularTraceListener` derives from it; TracingConfiguration.xml, S45).

Per dotnet/runtime `XmlWriterTraceListener.cs`: a fixed header, `EventID` (unsigned),
`<Type>3</Type>`, `SubType Name=` the TraceEventType, `Level` = its value clamped to 255,
`TimeCreated SystemTime=` in the "o" format (UTC, 7 fractional digits), `Source`,
`Correlation ActivityID=` in "B" form (lower case, braces), `Execution`, `<Channel/>`,
`Computer`, then `ApplicationData` with the message escaped (`& < > " '` and CR/LF as
character references) and no separator between events.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

TRACE_TYPES = {  # TraceEventType values (System.Diagnostics)
    "Critical": 1,
    "Error": 2,
    "Warning": 4,
    "Information": 8,
    "Verbose": 16,
    "Start": 256,
    "Stop": 512,
}
_ESCAPES = {
    "&": "&amp;",
    "<": "&lt;",
    ">": "&gt;",
    '"': "&quot;",
    "'": "&apos;",
    "\r": "&#xD;",
    "\n": "&#xA;",
}
HEADER = (
    '<E2ETraceEvent xmlns="http://schemas.microsoft.com/2004/06/E2ETraceEvent">'
    '<System xmlns="http://schemas.microsoft.com/2004/06/windows/eventlog/system">'
)


def escape(text: str) -> str:
    """WriteEscaped: the five XML characters and CR/LF as references."""
    return "".join(_ESCAPES.get(c, c) for c in text)


def system_time(ns: int) -> str:
    """DateTime.ToString("o") of a UTC time: `2024-01-10T08:00:00.1234567Z`."""
    seconds, rest = divmod(ns, 1_000_000_000)
    stamp = dt.datetime.fromtimestamp(seconds, dt.UTC)
    return f"{stamp:%Y-%m-%dT%H:%M:%S}.{rest // 100:07d}Z"


@dataclass(frozen=True)
class TraceLine:
    """One trace event to write."""

    time_ns: int
    kind: str  # a TRACE_TYPES name
    text: str
    activity: str = "00000000-0000-0000-0000-000000000000"
    event_id: int = 0


def render(line: TraceLine, source: str, computer: str, process: str, pid: int, tid: int) -> str:
    """One `<E2ETraceEvent>` as the listener writes it."""
    level = min(255, TRACE_TYPES[line.kind])
    return (
        f"{HEADER}<EventID>{line.event_id}</EventID><Type>3</Type>"
        f'<SubType Name="{line.kind}">0</SubType><Level>{level}</Level>'
        f'<TimeCreated SystemTime="{system_time(line.time_ns)}" />'
        f'<Source Name="{escape(source)}" />'
        f'<Correlation ActivityID="{{{line.activity.lower()}}}" />'
        f'<Execution ProcessName="{process}" ProcessID="{pid}" ThreadID="{tid}" />'
        f"<Channel/><Computer>{computer}</Computer></System>"
        f"<ApplicationData>{escape(line.text)}</ApplicationData></E2ETraceEvent>"
    )


def rolling_files(events: list[str], quota_bytes: int, count: int) -> dict[str, bytes]:
    """Events spread over Connector0.svclog … as the circular listener rolls them (`count`
    files of `quota_bytes`; the oldest is overwritten when all are full)."""
    files: list[list[str]] = [[]]
    size = 0
    for event in events:
        encoded = len(event.encode("utf-8"))
        if size + encoded > quota_bytes and files[-1]:
            files.append([])
            size = 0
        files[-1].append(event)
        size += encoded
    kept = files[-count:]
    first = len(files) - len(kept)
    return {
        f"Connector{(first + i) % count}.svclog": "".join(chunk).encode("utf-8")
        for i, chunk in enumerate(kept)
    }
