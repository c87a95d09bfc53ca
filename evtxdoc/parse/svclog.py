"""Read E2E trace files (WCF `.svclog`, System.Diagnostics `XmlWriterTraceListener`) into rows.

The format, as `XmlWriterTraceListener` writes it (dotnet/runtime, `XmlWriterTraceListener.cs`;
learn.microsoft.com/dotnet/api/system.diagnostics.xmlwritertracelistener): a sequence of
`<E2ETraceEvent xmlns="http://schemas.microsoft.com/2004/06/E2ETraceEvent">` elements with no
root element and no XML declaration. Each holds `System` (namespace
`…/2004/06/windows/eventlog/system`): `EventID` (unsigned), `Type` (3), `SubType Name=` the
TraceEventType name, `Level` (the TraceEventType value clamped to 255: Critical 1, Error 2,
Warning 4, Information 8, Verbose 16; Start/Stop/Suspend/Resume/Transfer 255), `TimeCreated
SystemTime=` (DateTime "o" format: UTC, 7 fractional digits), `Source Name=`, `Correlation
ActivityID=` (and `RelatedActivityID=` on transfers), `Execution ProcessName= ProcessID=
ThreadID=`, `Channel` (empty), `Computer`; then `ApplicationData`: the escaped message text, or
`<TraceData><DataItem>…` whose XML (a WCF `TraceRecord`) is written unescaped.

Reading is streamed: the file is decoded chunk by chunk (UTF-8, or UTF-16 by its BOM or its
zero bytes) and cut at `<E2ETraceEvent`; each event is parsed alone, so damage costs the events
it touches, not the file, and memory holds one event at a time (an event larger than
`MAX_EVENT_CHARS` is skipped to its end with a problem). Each event being a document of its own
that starts with its element, no DTD can be declared: entity definitions (billion laughs) and
external entities are impossible by construction, and a reference to an undefined entity makes
that event unreadable. The level mapping to Windows levels and the reading of the message
(exceptions, sync kinds) are evtxdoc's (inferred, see `trace_text.py`).
"""

from __future__ import annotations

import codecs
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from evtxdoc.bundle.identify import TRACE_START as START
from evtxdoc.bundle.identify import trace_encoding
from evtxdoc.models import DamageSpan, DiscoveredFile, FileReport, Problem, Severity
from evtxdoc.parse.batch import ColumnBatch
from evtxdoc.parse.payload import encode_payload, guid
from evtxdoc.parse.times import parse_time_ns
from evtxdoc.parse.trace_text import read_text

CHANNEL = "WCF trace"  # the timeline channel of every trace event (E2E `Channel` is empty)
BACKEND = "svclog"
END = "</E2ETraceEvent>"
READ_BYTES = 1024 * 1024
MAX_EVENT_CHARS = 4 * 1024 * 1024  # one event's XML; beyond this it is skipped to its end
MAX_TEXT_CHARS = 32 * 1024  # ApplicationData kept as a field
MAX_MESSAGE_CHARS = 2000  # the message column (the event table, message matchers)
MAX_DATA_FIELDS = 40  # leaf elements of ApplicationData XML kept as fields
MAX_PROBLEMS = 20
# TraceEventType → Windows event level (1 critical, 2 error, 3 warning, 4 information,
# 5 verbose); activity markers (Start, Stop, Transfer …: Level 255) read as information.
LEVELS = {1: 1, 2: 2, 4: 3, 8: 4, 16: 5}
TYPE_LEVELS = {"critical": 1, "error": 2, "warning": 3, "information": 4, "verbose": 5}
Heartbeat = Callable[[], None]


@dataclass
class TraceEvent:
    """One E2E trace event as read: its System values and its fields."""

    ts: int
    event_id: int
    level: int
    host: str
    provider: str
    activity_id: str | None
    message: str
    fields: dict[str, Any]


@dataclass
class _Scan:
    """What reading one file found besides its events."""

    problems: list[Problem] = field(default_factory=list)
    damage: list[DamageSpan] = field(default_factory=list)
    events: int = 0
    last_ns: int | None = None
    pending_damage: str | None = None  # a damage kind waiting for the next good event's time
    encoding: str = "utf-8"

    def damaged(self, display: str, kind: str, message: str, where: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(
                Problem(
                    display,
                    kind,
                    message,
                    Severity.WARNING,
                    where=where,
                    hint="the events before and after the damage were read; collect the "
                    "trace again (copy it while the connector service is stopped) to have it all",
                )
            )
        elif len(self.problems) == MAX_PROBLEMS:
            self.problems.append(
                Problem(display, kind, "more damaged trace events (not listed)", Severity.WARNING)
            )
        if self.pending_damage is None:
            self.pending_damage = kind

    def good(self, ts: int) -> None:
        self.events += 1
        if self.pending_damage is not None:
            self.damage.append(DamageSpan(self.pending_damage, self.last_ns, ts))
            self.pending_damage = None
        self.last_ns = ts


def trace_events(
    path: str | Path, display: str, scan: _Scan | None = None, heartbeat: Heartbeat | None = None
) -> Iterator[TraceEvent]:
    """The events of one trace file, in file order; damage is noted in `scan`."""
    scan = scan if scan is not None else _Scan()
    for number, (text, where) in enumerate(_fragments(Path(path), display, scan, heartbeat), 1):
        event = _parse(text)
        if event is None:
            scan.damaged(
                display,
                "bad_trace_event",
                "a trace event is not well-formed XML (damaged, or it refers to an entity "
                "that is not defined); it was skipped",
                f"event {number}, {where}",
            )
            continue
        scan.good(event.ts)
        yield event


def _fragments(
    path: Path, display: str, scan: _Scan, heartbeat: Heartbeat | None
) -> Iterator[tuple[str, str]]:
    """The text of each `<E2ETraceEvent …>…</E2ETraceEvent>`, with where it began (characters)."""
    with path.open("rb") as handle:
        head = handle.read(READ_BYTES)
        scan.encoding, bom = trace_encoding(head)
        decoder = codecs.getincrementaldecoder(scan.encoding)(errors="replace")
        buffer = decoder.decode(head[bom:])
        base = 0  # characters before `buffer` in the decoded file
        skipping = False  # inside an oversized event, looking for its end
        finished = not head
        while True:
            start = 0
            while True:
                if skipping:
                    end = buffer.find(END, start)
                    following = buffer.find(START, start, end if end >= 0 else None)
                    if following >= 0:  # the oversized event never ended: the next one began
                        start, skipping = following, False
                        continue
                    if end < 0:  # keep a tail: the end tag may straddle the next block
                        start = max(start, len(buffer) - len(END) - len(START))
                        break
                    start, skipping = end + len(END), False
                    continue
                begin = buffer.find(START, start)
                if begin < 0:
                    keep = start if finished else max(start, len(buffer) - len(START))
                    _junk(buffer[start:keep] if not finished else buffer[start:], scan, display,
                          base + start)  # fmt: skip
                    start = len(buffer) if finished else keep
                    break
                _junk(buffer[start:begin], scan, display, base + start)
                end = buffer.find(END, begin)
                following = buffer.find(START, begin + len(START), end if end >= 0 else None)
                if following >= 0:  # an event whose end was never written (a torn write)
                    scan.damaged(
                        display,
                        "torn_trace_event",
                        "a trace event ends before its closing tag (the next event starts "
                        "inside it); it was skipped",
                        f"character {base + begin:,}",
                    )
                    start = following
                    continue
                if end < 0 or end - begin > MAX_EVENT_CHARS:
                    if end >= 0 or len(buffer) - begin > MAX_EVENT_CHARS:
                        scan.damaged(
                            display,
                            "oversized_trace_event",
                            f"a trace event is larger than {MAX_EVENT_CHARS:,} characters; "
                            "it was skipped",
                            f"character {base + begin:,}",
                        )
                        skipping = end < 0
                        start = end + len(END) if end >= 0 else begin + len(START)
                        continue
                    else:
                        start = begin
                    break
                yield buffer[begin : end + len(END)], f"character {base + begin:,}"
                start = end + len(END)
            base += start
            buffer = buffer[start:]
            if finished:
                break
            block = handle.read(READ_BYTES)
            if heartbeat:
                heartbeat()
            if not block:
                buffer += decoder.decode(b"", final=True)
                finished = True
                continue
            buffer += decoder.decode(block)
        if not skipping and START in buffer:
            scan.damaged(
                display,
                "truncated_trace",
                "the trace ends in the middle of an event (the file was cut off or copied "
                "while being written); the events before it were read",
                f"character {base + buffer.find(START):,}",
            )


def _junk(text: str, scan: _Scan, display: str, at: int) -> None:
    """Text between events: whitespace is normal; a DTD is refused; anything else is damage."""
    stripped = text.strip().lstrip("\ufeff")
    if not stripped or (stripped.startswith("<?xml") and stripped.endswith("?>")):
        return
    if "<!DOCTYPE" in stripped or "<!ENTITY" in stripped:
        scan.damaged(
            display,
            "trace_dtd_refused",
            "the trace holds a DTD (<!DOCTYPE>/<!ENTITY>), which trace listeners never write; "
            "it was ignored and no entity it declares is expanded",
            f"character {at:,}",
        )
        return
    if stripped.startswith("</") or len(stripped) < 4:  # the tail of a torn event's end
        return
    scan.damaged(
        display,
        "trace_garbage",
        f"{len(stripped):,} characters between trace events are not a trace event; skipped",
        f"character {at:,}",
    )


@lru_cache(maxsize=4096)
def _local(tag: str) -> str:
    """`{namespace}Name` → Name (a trace repeats a few dozen tags)."""
    return tag[tag.rfind("}") + 1 :]


def _parse(text: str) -> TraceEvent | None:
    """One event's XML → TraceEvent; None when it is not well-formed or has no usable time."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        return None
    system = data = None
    for child in root:
        name = _local(child.tag)
        if name == "System":
            system = child
        elif name == "ApplicationData":
            data = child
    if system is None:
        return None
    values: dict[str, Any] = {}
    fields: dict[str, Any] = {}
    for item in system:  # (no comments or processing instructions: ET drops them)
        name, attrib = _local(item.tag), item.attrib
        if name == "TimeCreated":
            values["time"] = attrib.get("SystemTime")
        elif name == "Source":
            values["source"] = attrib.get("Name", "")
        elif name == "Correlation":
            values["activity"] = attrib.get("ActivityID")
            if attrib.get("RelatedActivityID"):
                fields["RelatedActivityID"] = guid(attrib["RelatedActivityID"])
        elif name == "Execution":
            for key in ("ProcessName", "ProcessID", "ThreadID"):
                if key in attrib:
                    fields[key] = attrib[key]
        elif name == "SubType":
            fields["TraceType"] = attrib.get("Name", "")
        elif name in ("EventID", "Level", "Computer"):
            values[name] = (item.text or "").strip()
    ts = parse_time_ns(values.get("time"))
    if ts is None:
        return None
    raw_level = _int(values.get("Level"))
    fields["TraceLevel"] = raw_level
    level = TYPE_LEVELS.get(str(fields.get("TraceType", "")).lower()) or LEVELS.get(raw_level, 4)
    text = _application_data(data, fields) if data is not None else ""
    fields.update(read_text(text))
    message = _one_line(text) if text else ""
    activity = values.get("activity")
    activity_id = None if not activity or activity.strip("{}0-") == "" else guid(activity)
    return TraceEvent(
        ts=ts,
        event_id=_int(values.get("EventID")),
        level=level,
        host=values.get("Computer") or "",
        provider=values.get("source", ""),
        activity_id=activity_id,
        message=message,
        fields=fields,
    )


def _application_data(data: ET.Element, fields: dict[str, Any]) -> str:
    """ApplicationData's text as written (bounded) into `fields`, its XML leaves as fields too;
    returns the whole text."""
    text = (data.text or "").strip() if not len(data) else " ".join(data.itertext()).strip()
    if len(text) > MAX_TEXT_CHARS:
        cut = len(text) - MAX_TEXT_CHARS
        fields["ApplicationData"] = text[:MAX_TEXT_CHARS] + f" … ({cut:,} more characters)"
        fields["ApplicationDataLength"] = len(text)
    else:
        fields["ApplicationData"] = text
    kept = 0
    for element in data.iter() if len(data) else ():
        if element is data or len(element) or kept >= MAX_DATA_FIELDS:
            continue
        name, value = _local(element.tag), (element.text or "").strip()
        if name and value and name not in fields and name not in ("DataItem", "TraceData"):
            fields[name] = value[:MAX_TEXT_CHARS]
            kept += 1
    return text


def _one_line(text: str) -> str:
    """The message: whitespace (a stack trace's CR/LF) collapsed, bounded."""
    head = " ".join(text[: MAX_MESSAGE_CHARS * 2].split())  # collapsing never lengthens it
    cut = len(head) > MAX_MESSAGE_CHARS or len(text) > MAX_MESSAGE_CHARS * 2
    return head[:MAX_MESSAGE_CHARS] + " …" if cut else head


def _int(text: str | None) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return 0


def read_trace(
    file: DiscoveredFile, heartbeat: Heartbeat | None = None
) -> tuple[FileReport, ColumnBatch]:
    """Read one trace file into a column batch and its report; damage becomes problems."""
    scan = _Scan()
    batch = ColumnBatch(file.display)
    for event in trace_events(file.path, file.display, scan, heartbeat):
        batch.append_row(  # buffered and turned into columns a block at a time
            (
                event.ts,
                event.event_id,
                0,
                event.level,
                0,
                0,
                scan.events,
                event.host,
                CHANNEL,
                event.provider,
                event.activity_id,
                None,
                event.message or None,
                encode_payload({"EventData": event.fields}),
                True,
                scan.events,
            )
        )
    batch.close()
    problems = list(scan.problems)
    if not scan.events and not problems:
        problems.append(
            Problem(
                file.display,
                "empty_trace",
                "the trace file holds no trace event",
                Severity.INFO,
            )
        )
    report = FileReport(
        file.display,
        file.sha256,
        file.size,
        scan.events,
        (BACKEND,),
        f"E2E trace ({scan.encoding})",
        False,
        tuple(problems),
        damage=tuple(scan.damage)
        + ((DamageSpan(scan.pending_damage, scan.last_ns, None),) if scan.pending_damage else ()),
    )
    return report, batch
