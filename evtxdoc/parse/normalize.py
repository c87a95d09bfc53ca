"""One raw record (pyevtx-rs JSON shape) → one timeline row (the ingest hot path).

`row()` runs for every record: System values (times to UTC ns, EventRecordID from the XML,
host, channel, provider, event id with qualifiers, level, activity id, user SID) and the raw
EventData/UserData payload kept as compact JSON bytes (see docs/internals.md,
"Normalization"); `payload.decode_fields()` reads the fields later, on demand, and `times`
holds the time arithmetic. `normalize()` does both and returns the `Event` contract of
design.md §3.
"""

from __future__ import annotations

import json
import re
from operator import itemgetter
from typing import Any

import orjson

from evtxdoc.models import Event
from evtxdoc.parse import RawRecord
from evtxdoc.parse.payload import EMPTY_PAYLOAD, decode_fields, encode_payload, guid
from evtxdoc.parse.times import SECOND_CACHE, event_time, parse_time_ns, second_ns

PARTIAL_MESSAGE = (
    "partial record: the log was copied while this event was being written; only its header "
    "(record number and write time) survived"
)
DAMAGED_MESSAGE = (
    "damaged record: its content could not be decoded; only its header (record number and "
    "write time) survived"
)
# Where System ends in pyevtx-rs's compact JSON text, and the payload begins. A `},"` cannot
# occur inside a JSON string (its quote would be escaped), so a hit is structural; a hit that is
# not System's end is refused by `_split_text`.
_EVENT_DATA, _EVENT_DATA_OPEN = '},"EventData":', '{"EventData":'
_USER_DATA, _USER_DATA_OPEN = '},"UserData":', '{"UserData":'

# Records written by one provider for one host differ in System only in its middle members,
# TimeCreated … Execution: their System text without that middle (the *template*) maps to the
# values read from it once (`_TEMPLATES`), and the middle alone is matched by `_MIDDLE`, which
# takes exactly rs's layout of those members and nothing else (no other member, no value JSON
# would refuse). See docs/internals.md, "Normalization".
_TIME_CREATED, _CHANNEL = '"TimeCreated":', ',"Channel":'
_NUMBER = "(?:0|[1-9][0-9]{0,18})"
_TEXT = r"[\x20\x21\x23-\x5b\x5d-\x7e]*"  # printable ASCII but quote and backslash
_MIDDLE = re.compile(
    rf'\{{"#attributes":\{{"SystemTime":"({_TEXT})"\}}\}},"EventRecordID":({_NUMBER}),'
    rf'"Correlation":(?:null|\{{"#attributes":\{{"ActivityID":"({_TEXT})"\}}\}}),'
    rf'"Execution":\{{"#attributes":\{{"ProcessID":{_NUMBER},"ThreadID":{_NUMBER}\}}\}}'
)
_NOT_AFTER_MIDDLE = (_TIME_CREATED, '"EventRecordID":', '"Correlation":')
# what `_split_text` hands `_remember` to learn a template: (template, middle's match, the rest)
Template = tuple[str, "re.Match[str]", str]
# template → (event_id, level, task, opcode, computer, channel, provider, user_sid)
_TEMPLATES: dict[str, tuple[Any, ...]] = {}
_TEMPLATES_KEPT = 16384  # ≈ 8 MB of templates at most; cleared when full


# One timeline row as ingest appends it (timeline.ColumnBatch.append_row). A plain tuple,
# because building it is the hottest line of ingest; ROW_FIELDS names its positions.
ROW_FIELDS = (
    "ts",
    "event_id",
    "qualifiers",
    "level",
    "task",
    "opcode",
    "record_id",  # numeric
    "host",
    "channel",
    "provider",
    "activity_id",
    "user_sid",  # categorical
    "message",
    "payload",  # payload: the record's non-System parts (encode_payload)
    "exact_time",  # False: only microseconds were known (ingest refines it)
    "header_id",  # the record header's number (reading only: de-duplication, exact times)
)
Row = tuple[
    int,
    int,
    int,
    int,
    int,
    int,
    int,
    str,
    str,
    str,
    str | None,
    str | None,
    str | None,
    bytes,
    bool,
    int,
]


# --- the hot path ---------------------------------------------------------------------------


def _attrs(node: Any) -> dict[str, Any]:
    if isinstance(node, dict):
        attributes = node.get("#attributes")
        if isinstance(attributes, dict):
            return attributes
    return {}


def _int(value: Any, default: int = 0) -> int:
    if type(value) is int:
        return value
    try:
        return int(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        return default


def row(raw: RawRecord) -> Row | None:
    """The timeline row of one raw record (called once per record: keep it lean); None when
    the record holds no `Event` object.

    pyevtx-rs's JSON text is cut where System ends: only System is parsed, and the rest is
    kept as the payload bytes just as rs wrote them. A record the cut does not fit (no
    EventData or UserData, a RenderingInfo to read, an odd layout) and a backend's dict take
    the whole-event path: System and the root attributes are popped, the rest is encoded.
    A System whose template was seen before is not parsed at all (`_split_text`); the usual
    System shape is read with one C-level lookup (`_usual_system`); anything else (an EventID
    with Qualifiers, a provider known by EventSourceName, missing or odd values in a damaged
    or crafted record) takes `_system_values`.
    """
    event: Any  # rs's JSON text or a backend's dict (narrowed by `type(...) is`, for speed)
    header_id, header_time, event = raw
    undecoded = False
    template = None
    if type(event) is str:
        payload, system, template = _split_text(event)
        if system is None:
            event = event_root(event)
            if event is None:  # rs gave `{"Event":null}` or text past repair: keep the header
                event, undecoded = {}, True
    else:
        payload = system = None
    if system is None:
        if type(event) is not dict:
            return None
        pop = event.pop
        system = pop("System", None)
        pop("#attributes", None)
    if type(system) is tuple:  # a known template: its values, and the middle's
        event_id, level, task, opcode, computer, channel, provider, user_sid = system
        time_text, record_id, activity = template.groups()  # type: ignore[union-attr]
        record_id, qualifiers = int(record_id), 0
    else:
        try:
            values = _usual_system(system)
        except (KeyError, TypeError, AttributeError):
            values = _system_values(system)
        else:
            if template is not None:
                _remember(template, values)
        (event_id, qualifiers, level, task, opcode, record_id, computer, channel, provider,
         time_text, activity, user_sid) = values  # fmt: skip
    # event_time's common case inline: rs's µs TimeCreated agrees with the 100 ns header time
    if (
        header_time
        and time_text
        and time_text[26:] == "Z"
        and header_time[27:28] == "Z"
        and header_time[:26] == time_text[:26]
    ):
        second = SECOND_CACHE.get(header_time[:19])
        try:
            if second is None:
                second = second_ns(header_time[:19])
            ts, exact = second + int(header_time[20:27]) * 100, True
        except ValueError:
            ts, exact = event_time(time_text, header_time)
    else:
        ts, exact = event_time(time_text, header_time)
    message = None
    if payload is None:
        if "RenderingInfo" in event:
            rendering = event["RenderingInfo"]
            message = rendering.get("Message") if isinstance(rendering, dict) else None
            if not isinstance(message, str):
                message = None
        payload = encode_payload(event) if event else EMPTY_PAYLOAD
    if record_id == 0 and parse_time_ns(time_text) is None:
        # A torn record: its substitution values were never flushed (all zero). Only the
        # record header survived; keep the event so the gap is visible, and say so.
        record_id, exact = header_id, True
        message = DAMAGED_MESSAGE if undecoded else PARTIAL_MESSAGE
    return (
        ts,
        event_id,
        qualifiers,
        level,
        task,
        opcode,
        record_id,
        computer,
        channel,
        provider,
        guid(activity) if activity else None,
        user_sid or None,
        message,
        payload,
        exact,
        header_id,
    )


_loads = orjson.loads


def event_root(text: str) -> dict[str, Any] | None:
    """The `Event` object of rs's JSON text, as forgiving as damaged files need: rs writes
    raw control characters inside corrupted names (orjson refuses them; a non-strict parse
    reads them), and a corrupted string table renames the root element (`{"ent": {…}}`)
    while System is intact. None when the text holds no event at all."""
    try:
        document = _loads(text)
    except orjson.JSONDecodeError:
        try:
            document = json.loads(text, strict=False)
        except (ValueError, RecursionError):
            return None
    if not isinstance(document, dict):
        return None
    event = document.get("Event")
    if isinstance(event, dict):
        return event
    if len(document) == 1:  # the root renamed: accept it when it holds System
        (only,) = document.values()
        if isinstance(only, dict) and isinstance(only.get("System"), dict):
            return only
    return None


def _split_text(text: str) -> tuple[bytes | None, Any, Any]:
    """rs's text → (payload bytes, System, template) by parsing System alone; (None, None, None)
    when the text is not laid out as `{"Event":{["#attributes":…,]"System":{…},"EventData"|
    "UserData":…}}` with nothing to read after the payload (RenderingInfo: it holds the message).

    System is a dict, or the tuple of a known template's values, with the `_MIDDLE` match as
    the third item; after a parsed System, the third item is what `_remember` needs to learn
    its template (None when the text cannot teach one).

    (`partition`, `in` and slices, not `find(sub, start)`: those parse their arguments the slow
    way, which costs more here than the search.)"""
    head, cut, tail = text.rpartition(_EVENT_DATA)  # EventData is near the end: search back
    opening = _EVENT_DATA_OPEN
    if not cut:
        head, cut, tail = text.rpartition(_USER_DATA)
        opening = _USER_DATA_OPEN
        if not cut:
            return None, None, None
    if tail[-2:] != "}}" or '"RenderingInfo":' in tail:
        return None, None, None
    payload = (opening + tail[:-1]).encode()
    start, _, rest = head.partition(_TIME_CREATED)
    middle, channeled, end = rest.partition(_CHANNEL)
    template: Template | None = None
    if channeled:
        key = start + end
        known = _TEMPLATES.get(key)
        match = _MIDDLE.fullmatch(middle)
        if match is not None:
            if known is not None:
                return payload, known, match
            template = (key, match, end)
    try:
        event = _loads(head + "}}}")["Event"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None, None, None
    # The cut is System's end only if what it closed holds System and nothing after it.
    if type(event) is not dict or len(event) - ("#attributes" in event) != 1:
        return None, None, None
    system = event.get("System")
    if type(system) is not dict:
        return None, None, None
    return payload, system, template


def _remember(template: Template, values: tuple[Any, ...]) -> None:
    """Learn a template from a record whose System was parsed (`values`, as `_usual_system`
    gave them): only when its middle, as `_MIDDLE` read it, gave what the parse gave, and no
    member after the middle could override the middle's (JSON keeps the last of repeated
    names), so that any text of this template reads as its parse would."""
    key, match, end = template
    time_text, record_id, activity = match.groups()
    if (time_text, int(record_id), activity) != (values[9], values[5], values[10]):
        return
    if any(name in end for name in _NOT_AFTER_MIDDLE):
        return
    if len(_TEMPLATES) >= _TEMPLATES_KEPT:
        _TEMPLATES.clear()
    event_id, _, level, task, opcode, _, computer, channel, provider, _, _, user_sid = values
    _TEMPLATES[key] = (event_id, level, task, opcode, computer, channel, provider, user_sid)


def _usual_system(system: Any) -> tuple[Any, ...]:
    """System values of the usual shape, read with one C-level lookup, in `_system_values`'
    order; KeyError, TypeError or AttributeError for any other shape."""
    (event_id, level, task, opcode, record_id, computer, channel, provider, created,
     correlation, security) = _SYSTEM(system)  # fmt: skip
    provider = provider["#attributes"]["Name"]
    time_text = created["#attributes"]["SystemTime"]
    activity = correlation["#attributes"].get("ActivityID") if correlation else None
    user_sid = security["#attributes"]["UserID"] if security else None
    if not (
        type(event_id) is type(level) is type(task) is type(opcode) is type(record_id) is int
        and type(computer) is type(channel) is type(provider) is type(time_text) is str
        and (user_sid is None or type(user_sid) is str)
    ):
        raise TypeError
    return (event_id, 0, level, task, opcode, record_id, computer, channel, provider,
            time_text, activity, user_sid)  # fmt: skip


_SYSTEM = itemgetter(
    "EventID",
    "Level",
    "Task",
    "Opcode",
    "EventRecordID",
    "Computer",
    "Channel",
    "Provider",
    "TimeCreated",
    "Correlation",
    "Security",
)


def _system_values(system: Any) -> tuple[Any, ...]:
    """System values of any shape, typed as `row` needs them (the slow, careful path)."""
    get = system.get if isinstance(system, dict) else {}.get
    provider = _attrs(get("Provider"))
    event_id = get("EventID")
    if isinstance(event_id, dict):
        qualifiers = _int(_attrs(event_id).get("Qualifiers"))
        event_id = _int(event_id.get("#text"))
    else:
        qualifiers, event_id = 0, _int(event_id)
    time_text = _attrs(get("TimeCreated")).get("SystemTime")
    return (
        event_id,
        qualifiers,
        _int(get("Level")),
        _int(get("Task")),
        _int(get("Opcode")),
        _int(get("EventRecordID")),
        _text_value(get("Computer")),
        _text_value(get("Channel")),
        _text_value(provider.get("Name") or provider.get("EventSourceName")),
        time_text if isinstance(time_text, str) else None,
        _attrs(get("Correlation")).get("ActivityID"),
        _text_or_none(_attrs(get("Security")).get("UserID")),
    )


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _text_value(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def normalize(raw: RawRecord, source_file: str) -> Event:
    """Turn one raw record into an Event (design.md §3), fields decoded; ValueError when the
    record holds no `Event` object."""
    header_id, header_time, rendered = raw
    event = event_root(rendered) if isinstance(rendered, str) else rendered
    if not isinstance(event, dict):
        raise ValueError(f"record {header_id}: no <Event> in the rendered record")
    system = event.get("System")
    time_text = _attrs(system.get("TimeCreated") if isinstance(system, dict) else None).get(
        "SystemTime"
    )
    found = row((header_id, header_time, event))
    if found is None:
        raise ValueError(f"record {header_id}: no <Event> in the rendered record")
    values: dict[str, Any] = dict(zip(ROW_FIELDS, found, strict=True))
    payload = values.pop("payload")
    del values["exact_time"], values["header_id"]
    return Event(
        ts_raw=time_text or "",
        source_file=source_file,
        fields=decode_fields(payload, values["channel"]),
        **values,
    )
