"""Replay a time-ordered event table into .evtx files, exactly as the table says.

The table is the form of `reference/real-logs/hybrid-deployment-sequence.md`: one row per
event, `| t+ (s) | channel | id | level | fields (JSON, possibly cut) |`, an optional `(×N)`
after a row for N identical events, and a closing "Left out as periodic noise … with their
counts: CHANNEL ID ×N, …" line whose events are spread evenly over the span. Channels are
written short (the `Microsoft-Windows-` prefix dropped, DMEDP for
DeviceManagement-Enterprise-Diagnostics-Provider, ModernDeployment for
ModernDeployment-Diagnostics-Provider).

This rebuilds what a real deployment wrote without shipping the deployment: the table is read
from where it lives, and the bytes are ours (the writer of `evtxdoc.synth.writer`). Value types
follow the rendered values: integers as Int32/Int64 (UInt64 beyond), booleans as Boolean,
`"0x…"` text as HexInt32/HexInt64, everything else as a string. Provider GUIDs come from the
synth catalog (events.yaml).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evtxdoc.synth import catalog
from evtxdoc.synth.binxml import TYPE_NAMES
from evtxdoc.synth.events import Field, SynthEvent
from evtxdoc.synth.writer import EvtxWriter
from evtxdoc.vocab import SECOND

DMEDP = "DeviceManagement-Enterprise-Diagnostics-Provider"
_ROW = re.compile(
    r"^\| (?P<t>[0-9.]+) \| (?P<channel>[^|]+?) \| (?P<id>\d+) \| (?P<level>\d) \| "
    r"(?P<fields>.*?) \|(?: \(×(?P<times>\d+)\))?\s*$"
)
_NOISE = re.compile(r"(?P<channel>[A-Za-z][^,×]*?/[A-Za-z]+) (?P<id>\d+) ×(?P<times>\d+)")
_HEX = re.compile(r"^0x[0-9a-fA-F]+$")
_KEY = re.compile(r'\s*,?\s*"((?:[^"\\]|\\.)*)"\s*:\s*')  # `"key": ` of a cut JSON object


@dataclass(frozen=True)
class Row:
    """One event of the table: seconds from the first event, full channel, id, level, fields."""

    seconds: float
    channel: str
    event_id: int
    level: int
    fields: tuple[tuple[str, Any], ...]


def full_channel(short: str) -> str:
    """`DMEDP/Admin` → the full channel name (`Microsoft-Windows-…-Provider/Admin`)."""
    short = short.strip().replace("DMEDP", DMEDP)
    if short.startswith("ModernDeployment/"):
        short = short.replace("ModernDeployment/", "ModernDeployment-Diagnostics-Provider/", 1)
    return short if short.startswith("Microsoft-") else f"Microsoft-Windows-{short}"


def provider_of(channel: str, event_id: int) -> str:
    """The provider that writes `channel` (the DMEDP Operational channel: the Pushrouter)."""
    if channel.endswith(f"{DMEDP}/Operational"):
        return "Microsoft-Windows-DeviceManagement-Pushrouter"
    return channel.split("/", 1)[0]


def parse_fields(text: str) -> tuple[tuple[str, Any], ...]:
    """The row's JSON object, tolerant of the cut at 200 characters: every whole `"key": value`
    pair is kept, and a string value cut short is kept as far as it goes."""
    text = text.strip()
    try:
        data = json.loads(text)
        return tuple(data.items()) if isinstance(data, dict) else ()
    except ValueError:
        pass
    decoder = json.JSONDecoder()
    pairs: list[tuple[str, Any]] = []
    position = text.find("{") + 1
    while position > 0:
        match = _KEY.match(text, position)
        if not match:
            break
        key, position = json.loads(f'"{match.group(1)}"'), match.end()
        try:
            value, position = decoder.raw_decode(text, position)
        except ValueError:
            rest = text[position:].lstrip('"')
            value = (
                rest.encode("utf-8").decode("unicode_escape", "replace") if "\\" in rest else rest
            )
            pairs.append((key, value))
            break
        pairs.append((key, value))
    return tuple(pairs)


def read_table(path: Path) -> list[Row]:
    """Every event of the table, folded rows unfolded and the noise spread evenly."""
    rows: list[Row] = []
    noise: list[tuple[str, int, int]] = []
    for line in path.read_text("utf-8").splitlines():
        match = _ROW.match(line)
        if match:
            row = Row(
                float(match["t"]),
                full_channel(match["channel"]),
                int(match["id"]),
                int(match["level"]),
                parse_fields(match["fields"]),
            )
            rows.extend([row] * int(match["times"] or 1))
        elif line.startswith("Left out as periodic noise"):
            noise += [
                (full_channel(m["channel"]), int(m["id"]), int(m["times"]))
                for m in _NOISE.finditer(line.partition(":")[2])
            ]
    span = max((r.seconds for r in rows), default=0.0)
    for channel, event_id, times in noise:
        step = span / (times + 1)
        rows += [Row(round(step * (i + 1), 3), channel, event_id, 4, ()) for i in range(times)]
    rows.sort(key=lambda r: r.seconds)
    return rows


def _field(name: str, value: Any) -> Field:
    if isinstance(value, bool):
        return Field(name, TYPE_NAMES["bool"], value)
    if isinstance(value, int):
        if -(2**31) <= value < 2**31:
            return Field(name, TYPE_NAMES["int32"], value)
        if -(2**63) <= value < 2**63:
            return Field(name, TYPE_NAMES["int64"], value)
        return Field(name, TYPE_NAMES["uint64"], value)
    text = "" if value is None else value if isinstance(value, str) else json.dumps(value)
    if _HEX.match(text):
        number = int(text, 16)
        return Field(name, TYPE_NAMES["hexint32" if number < 2**32 else "hexint64"], number)
    return Field(name, TYPE_NAMES["string"], text)


def events(rows: Iterable[Row], start_ns: int, computer: str) -> dict[str, list[SynthEvent]]:
    """Rows → SynthEvents per channel, at `start_ns` + their seconds."""
    guids = {s.provider: s.provider_guid for s in catalog.load().values() if s.provider_guid}
    out: dict[str, list[SynthEvent]] = defaultdict(list)
    for row in rows:
        provider = provider_of(row.channel, row.event_id)
        out[row.channel].append(
            SynthEvent(
                time_ns=start_ns + round(row.seconds * SECOND),
                provider=provider,
                provider_guid=guids.get(provider),
                event_id=row.event_id,
                channel=row.channel,
                computer=computer,
                level=row.level,
                data=tuple(_field(k, v) for k, v in row.fields),
            )
        )
    return out


def write(table: Path, out: Path, start_ns: int, computer: str) -> list[Path]:
    """One .evtx per channel of `table` into `out` (named as MdmDiagnosticsTool names them)."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for channel, found in sorted(events(read_table(table), start_ns, computer).items()):
        writer = EvtxWriter()
        writer.extend(found)
        path = out / (channel.replace("/", "-").lower() + ".evtx")
        writer.write(path)
        written.append(path)
    return written
