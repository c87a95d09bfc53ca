"""One raw record (pyevtx-rs JSON shape) → one timeline row, and its fields on demand.

Two halves, so that ingest stays fast (see docs/internals.md, "Normalization"):
- `row()` runs for every record: System values (times to UTC ns, EventRecordID from the XML,
  host, channel, provider, event id with qualifiers, level, activity id, user SID) and the raw
  EventData/UserData payload kept as compact JSON bytes;
- `decode_fields()` runs when somebody reads an event's fields: named `Data` by name, unnamed
  ones as `Data0..n`, UserData flattened to dotted paths, values made the same whichever
  backend read them (GUIDs `{UPPER}`), and the Intune Connector for AD bodies turned into
  fields — the legacy connector's JSON metric body and the updated connector's `Key: Value`
  lines (reference/domain.md a.1).
`normalize()` does both and returns the `Event` contract of design.md §3.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from operator import itemgetter
from typing import Any

import orjson

from evtxdoc.models import Event
from evtxdoc.parse import RawRecord

NO_TIME = -(2**63)  # pandas NaT as int64
MIN_TIME = -(2**63) + 1  # 1677-09-21, the earliest datetime64[ns]
MAX_TIME = 2**63 - 1  # 2262-04-11
PARTIAL_MESSAGE = (
    "partial record: the log was copied while this event was being written; only its header "
    "(record number and write time) survived"
)
_EPOCH = dt.datetime(1970, 1, 1)
_GUID = re.compile(
    r"\{?[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}?"
)
_KEY_VALUE = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_]*)\s*:\s?(.*?)\s*$")
_MACHINE_NAME = re.compile(r"machineName=([^\s,;'\"\])]+)")
EMPTY_PAYLOAD = b"{}"
# Where System ends in pyevtx-rs's compact JSON text, and the payload begins. A `},"` cannot
# occur inside a JSON string (its quote would be escaped), so a hit is structural; a hit that is
# not System's end is refused by `_split_text`.
_EVENT_DATA, _EVENT_DATA_OPEN = '},"EventData":', '{"EventData":'
_USER_DATA, _USER_DATA_OPEN = '},"UserData":', '{"UserData":'


def encode_payload(parts: dict[str, Any]) -> bytes:
    """Store a record's non-System parts as compact JSON bytes: the same bytes pyevtx-rs wrote,
    which `row` cuts out of its text without parsing them."""
    try:
        return orjson.dumps(parts)
    except TypeError:  # an integer beyond 64 bits, an odd key or value of a crafted record
        return orjson.dumps(_jsonable(parts), default=str, option=orjson.OPT_NON_STR_KEYS)


def _jsonable(value: Any) -> Any:
    """`value` with integers orjson cannot write (beyond 64 bits) turned into text."""
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, int) and not -(2**63) <= value < 2**64:
        return str(value)
    return value


def decode_payload(payload: bytes) -> dict[str, Any]:
    try:
        parts = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return {}
    return parts if isinstance(parts, dict) else {}


@lru_cache(maxsize=256)
def code_pattern(codes: frozenset[int]) -> re.Pattern[bytes]:
    """A pattern every stored payload holding one of these 32-bit codes matches, in any form
    `catalog.parse_code` reads, as text or as an integer (so a miss needs no decoding).

    Text forms all contain the hex digits without leading zeros (`0x00000774`, `80070774`,
    `0xFFFFFFFF80070774`) or the decimal digits (`1908`, `-2147022988` holds 2147022988); the
    payload is JSON, so an integer is its decimal digits too, and text is kept as UTF-8 with
    only quotes, backslashes and control characters escaped. Connector bodies decoded from
    text hold the same text; a `\\u` escape anywhere lets the payload through.
    """
    needles: set[bytes] = {rb"\\u"}
    for code in codes:
        needles.update(re.escape(text.encode()) for text in (f"{code:x}", str(code)))
        if code >= 1 << 31:
            needles.add(re.escape(str((1 << 32) - code).encode()))
    ordered = sorted(needles, key=lambda needle: -len(needle))  # longest first
    return re.compile(b"|".join(ordered), re.IGNORECASE)


# Updated connector (Microsoft-Intune-ODJConnectorService/Operational 30130/30140) body keys,
# as parsed by PS365 Get-IntuneODJConnectorServiceEventLog (domain.md S30).
CONNECTOR_KEYS = frozenset(
    {"ElapsedMilliseconds", "DeviceId", "DeviceName", "DiagnosticCode", "DiagnosticText"}
)
CONNECTOR_CHANNEL_PREFIXES = ("Microsoft-Intune-ODJConnectorService", "ODJ Connector Service")


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
]


# --- times -------------------------------------------------------------------------------

_SECONDS: dict[str, int] = {}  # `_second_ns` results; cleared when full
_SECONDS_KEPT = 65536
_SECOND_NS = 1_000_000_000


def _second_ns(text: str) -> int:
    """`YYYY-MM-DDTHH:MM:SS` (or with a space) → ns since the epoch; cached per second (a
    plain dict: cheaper than `lru_cache` on this path). ValueError if it is not a time."""
    ns = _SECONDS.get(text)
    if ns is None:
        hour, minute, second = int(text[11:13]), int(text[14:16]), int(text[17:19])
        if not (0 <= hour < 24 and 0 <= minute < 60 and 0 <= second < 60):
            raise ValueError(f"not a time of day: {text!r}")
        ns = _day_ns(text[:10]) + ((hour * 60 + minute) * 60 + second) * _SECOND_NS
        if len(_SECONDS) >= _SECONDS_KEPT:
            _SECONDS.clear()
        _SECONDS[text] = ns
    return ns


@lru_cache(maxsize=4096)
def _day_ns(text: str) -> int:
    """`YYYY-MM-DD` → ns since the epoch at its midnight (UTC)."""
    day = dt.date(int(text[0:4]), int(text[5:7]), int(text[8:10]))
    return (day - _EPOCH.date()).days * 86400 * _SECOND_NS


def parse_time_ns(text: str | None) -> int | None:
    """ISO-like timestamps of any backend → UTC ns; None if unreadable or out of range.

    Accepts `2016-07-08T18:12:51.681640Z`, `…51.6816408Z UTC`, `2016-07-08 18:12:51.681641+00:00`
    and `…51.681640800Z`; fractions of up to 9 digits keep their precision.
    """
    if not text or len(text) < 19:
        return None
    try:
        ns = _second_ns(text[:19])
        rest = text[19:]
        if rest.startswith("."):
            digits = len(rest) - len(rest[1:].lstrip("0123456789")) - 1
            ns += int(rest[1 : 1 + digits][:9].ljust(9, "0"))
            rest = rest[1 + digits :]
        if rest[:1] in ("+", "-") and len(rest) >= 6:
            offset = (int(rest[1:3]) * 3600 + int(rest[4:6]) * 60) * 1_000_000_000
            ns -= offset if rest[0] == "+" else -offset
    except (ValueError, OverflowError):
        return None
    return ns if MIN_TIME <= ns <= MAX_TIME else None


def format_time_ns(ns: int) -> str:
    """UTC ns → `YYYY-MM-DDTHH:MM:SS.fffffffZ` (100 ns, as Windows writes it)."""
    seconds, rest = divmod(int(ns), 1_000_000_000)
    return f"{_second_text(seconds)}.{rest // 100:07d}Z"


@lru_cache(maxsize=65536)
def _second_text(seconds: int) -> str:
    return f"{_EPOCH + dt.timedelta(seconds=seconds):%Y-%m-%dT%H:%M:%S}"


def _fraction_digits(text: str) -> int:
    dot = text.find(".", 19)
    if dot < 0:
        return 0
    return len(text) - dot - 1 - len(text[dot + 1 :].lstrip("0123456789"))


def event_time(time_text: str | None, header_time: str | None) -> tuple[int, bool]:
    """TimeCreated → (UTC ns, exact?).

    pyevtx-rs renders TimeCreated to the microsecond; the record header's written time has
    100 ns. Windows writes the same FILETIME to both (44,929 of 44,929 real records that agree
    to the microsecond agree to 100 ns), so the header supplies the last digit when the two
    agree; otherwise the time is marked inexact and ingest reads the FILETIME itself. Without a
    usable TimeCreated, the header time stands in.
    """
    if (
        time_text
        and len(time_text) == 27
        and time_text[19] == "."
        and time_text[26] == "Z"
        and header_time
    ):
        # the common case, rs's own formats: '…:51.681640Z' and '…:51.6816408Z UTC'; rs drops
        # the header's trailing zero digits ('…:31.245Z UTC' for '…:31.245000Z'). Slices, not
        # `startswith`/`find`, whose argument parsing costs more than the comparison.
        try:
            if header_time[:26] == time_text[:26]:
                if header_time[27:28] == "Z":
                    return _second_ns(header_time[:19]) + int(header_time[20:27]) * 100, True
                if header_time[26:27] == "Z":
                    return _second_ns(header_time[:19]) + int(header_time[20:26]) * 1000, True
            zone = header_time.find("Z", 19)
            if (
                19 <= zone < 26
                and header_time.startswith(time_text[:zone])
                and time_text[zone:26].strip(".0") == ""
            ):
                return _second_ns(time_text[:19]) + int(time_text[20:26]) * 1000, True
        except ValueError:
            pass
    ns = parse_time_ns(time_text)
    if ns is None:
        header_ns = parse_time_ns(header_time)
        return (header_ns, True) if header_ns is not None else (NO_TIME, True)
    if _fraction_digits(time_text or "") >= 7:
        return ns, True
    header_ns = parse_time_ns(header_time)  # rs drops the header's trailing zero digits
    if header_ns is not None and abs(header_ns - ns) < 1000:  # renderers round or truncate
        return header_ns, True
    return ns, False


# --- the hot path ---------------------------------------------------------------------------


def _attrs(node: Any) -> dict[str, Any]:
    if isinstance(node, dict):
        attributes = node.get("#attributes")
        if isinstance(attributes, dict):
            return attributes
    return {}


def _text(node: Any) -> Any:
    return node.get("#text") if isinstance(node, dict) else node


def _int(value: Any, default: int = 0) -> int:
    if type(value) is int:
        return value
    try:
        return int(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        return default


def guid(value: Any) -> str | None:
    """A GUID in the Windows form `{UPPER-CASE}`; None for empty values."""
    if not value:
        return None
    text = str(value)
    return "{" + text.strip("{}").upper() + "}" if _GUID.fullmatch(text) else text


def row(raw: RawRecord) -> Row | None:
    """The timeline row of one raw record (called once per record: keep it lean); None when
    the record holds no `Event` object.

    pyevtx-rs's JSON text is cut where System ends: only System is parsed, and the rest is
    kept as the payload bytes just as rs wrote them. A record the cut does not fit (no
    EventData or UserData, a RenderingInfo to read, an odd layout) and a backend's dict take
    the whole-event path: System and the root attributes are popped, the rest is encoded.
    The usual System shape is read with one C-level lookup; anything else (an EventID with
    Qualifiers, a provider known by EventSourceName, missing or odd values in a damaged or
    crafted record) takes `_system_values`.
    """
    event: Any  # rs's JSON text or a backend's dict (narrowed by `type(...) is`, for speed)
    header_id, header_time, event = raw
    payload = system = None
    if type(event) is str:
        payload, system = _split_text(event)
        if system is None:
            try:
                event = _loads(event).get("Event")
            except (orjson.JSONDecodeError, AttributeError):
                return None
    if system is None:
        if type(event) is not dict:
            return None
        pop = event.pop
        system = pop("System", None)
        pop("#attributes", None)
    try:
        (
            event_id,
            level,
            task,
            opcode,
            record_id,
            computer,
            channel,
            provider,
            created,
            correlation,
            security,
        ) = _SYSTEM(system)
        provider = provider["#attributes"]["Name"]
        time_text = created["#attributes"]["SystemTime"]
        qualifiers = 0
        if not (
            type(event_id) is type(level) is type(task) is type(opcode) is type(record_id) is int
            and type(computer) is type(channel) is type(provider) is type(time_text) is str
        ):
            raise TypeError
    except (KeyError, TypeError):
        (
            event_id,
            qualifiers,
            level,
            task,
            opcode,
            record_id,
            computer,
            channel,
            provider,
            time_text,
            correlation,
            security,
        ) = _system_values(system)
    # event_time's common case inline: rs's µs TimeCreated agrees with the 100 ns header time
    if (
        header_time
        and time_text
        and time_text[26:] == "Z"
        and header_time[27:28] == "Z"
        and header_time[:26] == time_text[:26]
    ):
        second = _SECONDS.get(header_time[:19])
        try:
            if second is None:
                second = _second_ns(header_time[:19])
            ts, exact = second + int(header_time[20:27]) * 100, True
        except ValueError:
            ts, exact = event_time(time_text, header_time)
    else:
        ts, exact = event_time(time_text, header_time)
    activity = _attrs(correlation).get("ActivityID") if correlation else None
    user_sid = _attrs(security).get("UserID") if security else None
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
        record_id, message, exact = header_id, PARTIAL_MESSAGE, True
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
        user_sid if user_sid and isinstance(user_sid, str) else None,
        message,
        payload,
        exact,
    )


_loads = orjson.loads


def _split_text(text: str) -> tuple[bytes | None, Any]:
    """rs's text → (payload bytes, System) by parsing System alone; (None, None) when the text
    is not laid out as `{"Event":{["#attributes":…,]"System":{…},"EventData"|"UserData":…}}`
    with nothing to read after the payload (RenderingInfo: it holds the message).

    (`partition`, `in` and slices, not `find(sub, start)`: those parse their arguments the slow
    way, which costs more here than the search.)"""
    head, cut, tail = text.rpartition(_EVENT_DATA)  # EventData is near the end: search back
    opening = _EVENT_DATA_OPEN
    if not cut:
        head, cut, tail = text.rpartition(_USER_DATA)
        opening = _USER_DATA_OPEN
        if not cut:
            return None, None
    if tail[-2:] != "}}" or '"RenderingInfo":' in tail:
        return None, None
    try:
        event = _loads(head + "}}}")["Event"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None, None
    # The cut is System's end only if what it closed holds System and nothing after it.
    if type(event) is not dict or len(event) - ("#attributes" in event) != 1:
        return None, None
    system = event.get("System")
    if type(system) is not dict:
        return None, None
    return (opening + tail[:-1]).encode(), system


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
        get("Correlation"),
        get("Security"),
    )


def _text_value(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


# --- fields, on demand -----------------------------------------------------------------------


def normalize_value(value: Any) -> Any:
    """Make one field value look the same whichever backend rendered it."""
    if isinstance(value, str):
        return guid(value) if len(value) == 36 or len(value) == 38 else value
    if isinstance(value, list):
        return [normalize_value(item) for item in value]
    return value


def _flatten(node: Any, prefix: str, fields: dict[str, Any]) -> None:
    """UserData (or nested EventData) subtree → dotted-path fields; xmlns attributes dropped."""
    if not isinstance(node, dict):
        if prefix:
            fields[prefix] = normalize_value(node)
        return
    for key, value in node.items():
        if key == "#attributes" and isinstance(value, dict):
            for name, attr in value.items():
                if not name.startswith("xmlns"):
                    fields[f"{prefix}.{name}" if prefix else name] = normalize_value(attr)
        elif key == "#text":
            fields[prefix] = normalize_value(value)
        else:
            _flatten(value, f"{prefix}.{key}" if prefix else key, fields)


def _event_data_fields(data: dict[str, Any], fields: dict[str, Any]) -> None:
    for key, value in data.items():
        if key == "#attributes":
            if isinstance(value, dict) and "Name" in value:
                fields["EventData.Name"] = value["Name"]
        elif key == "Data" and (not isinstance(value, dict) or "#text" in value):
            texts = _text(value)
            if isinstance(texts, list):
                for index, item in enumerate(texts):
                    fields[f"Data{index}"] = normalize_value(item)
            elif texts is not None:
                fields["Data0"] = normalize_value(texts)
        elif isinstance(value, dict):
            if "#text" in value:
                fields[key] = normalize_value(value["#text"])
            else:
                _flatten(value, key, fields)
        else:
            fields[key] = normalize_value(value)


def _legacy_connector_body(text: str, fields: dict[str, Any]) -> None:
    """Legacy connector 30132: `{"Metric": {"Dimensions": {...}, "Name": ..., "Value": ...}}`."""
    try:
        body = orjson.loads(text)
    except orjson.JSONDecodeError:
        return
    metric = body.get("Metric") if isinstance(body, dict) else None
    if not isinstance(metric, dict):
        return
    dimensions = metric.get("Dimensions")
    if isinstance(dimensions, dict):
        for key, value in dimensions.items():
            fields.setdefault(key, value if not isinstance(value, dict | list) else str(value))
    fields.setdefault("MetricName", metric.get("Name"))
    fields.setdefault("MetricValue", metric.get("Value"))


def _key_value_body(text: str, fields: dict[str, Any]) -> None:
    """Updated connector: first line `<EventType>: …`, then `Key: Value` lines (PS365)."""
    parsed: dict[str, str] = {}
    for number, line in enumerate(text.splitlines()):
        match = _KEY_VALUE.match(line)
        if not match:
            continue
        key, value = match.groups()
        if number == 0 and key not in CONNECTOR_KEYS:
            parsed["EventType"] = key
        else:
            parsed.setdefault(key, value)
    if CONNECTOR_KEYS.intersection(parsed):
        for key, value in parsed.items():
            fields.setdefault(key, value)


def _connector_bodies(channel: str, fields: dict[str, Any]) -> None:
    is_connector = channel.startswith(CONNECTOR_CHANNEL_PREFIXES)
    for value in list(fields.values()):
        if not isinstance(value, str):
            continue
        if value.startswith("{") and '"Metric"' in value:
            _legacy_connector_body(value, fields)
        elif is_connector and "\n" in value and ":" in value:
            _key_value_body(value, fields)
    diagnostic = fields.get("DiagnosticText")
    if isinstance(diagnostic, str) and (match := _MACHINE_NAME.search(diagnostic)):
        fields.setdefault("MachineName", match.group(1).rstrip("."))


def decode_fields(
    payload: bytes | dict[str, Any], channel: str = "", bodies: bool = True
) -> dict[str, Any]:
    """An event's fields from its stored payload (see the module docstring); `bodies=False`
    skips looking for connector message bodies (for channels known to hold none)."""
    parts = decode_payload(payload) if isinstance(payload, bytes) else payload
    fields: dict[str, Any] = {}
    data = parts.get("EventData")
    if isinstance(data, dict):
        _event_data_fields(data, fields)
    elif data is not None:
        fields["Data0"] = normalize_value(data)
    user_data = parts.get("UserData")
    if isinstance(user_data, dict) and user_data:
        fields["UserData"] = next(iter(user_data))
        _flatten(user_data, "", fields)
    if fields and bodies:
        _connector_bodies(channel, fields)
    return fields


def normalize(raw: RawRecord, source_file: str) -> Event:
    """Turn one raw record into an Event (design.md §3), fields decoded; ValueError when the
    record holds no `Event` object."""
    header_id, header_time, event = raw
    if isinstance(event, str):
        event = _loads(event).get("Event")
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
    del values["exact_time"]
    return Event(
        ts_raw=time_text or "",
        source_file=source_file,
        fields=decode_fields(payload, values["channel"]),
        **values,
    )
