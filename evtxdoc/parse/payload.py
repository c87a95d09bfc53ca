"""A record's payload: its non-System parts, stored as compact JSON bytes, and the fields
read from it on demand.

`decode_fields()` runs when somebody reads an event's fields: named `Data` by name, unnamed
ones as `Data0..n`, UserData flattened to dotted paths, values made the same whichever backend
read them (GUIDs `{UPPER}`), and the Intune Connector for AD bodies turned into fields — the
legacy connector's JSON metric body and the updated connector's `Key: Value` lines
(reference/domain.md a.1). `code_pattern` lets the engine skip payloads without decoding them.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import orjson

EMPTY_PAYLOAD = b"{}"
_GUID = re.compile(
    r"\{?[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}?"
)
_KEY_VALUE = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_]*)\s*:\s?(.*?)\s*$")
_MACHINE_NAME = re.compile(r"machineName=([^\s,;'\"\])]+)")


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


def node_text(node: Any) -> Any:
    return node.get("#text") if isinstance(node, dict) else node


def guid(value: Any) -> str | None:
    """A GUID in the Windows form `{UPPER-CASE}`; None for empty values."""
    if not value:
        return None
    text = str(value)
    return "{" + text.strip("{}").upper() + "}" if _GUID.fullmatch(text) else text


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
            texts = node_text(value)
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
