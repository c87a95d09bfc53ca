"""The time zone each machine says it is in (System 6013), for people reading its times.

EventLog 6013 ("system uptime"), written at boot and daily, carries the machine's Windows time
zone as its last data value, e.g. `480 Pacific Standard Time` (seen in real System logs,
`../shared/real-evtx/system.evtx` record 177). The number is the bias in minutes as Windows
defines it for TIME_ZONE_INFORMATION (UTC = local time + bias); that 6013 carries exactly
that bias is inferred from the values seen, so the report says "bias" and shows the Windows
zone name as written. evtxdoc's own times stay UTC (or `--tz`): this is context only.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from evtxdoc.parse.times import format_time_ns
from evtxdoc.timeline import to_events

UPTIME_EVENT = 6013
_ZONE = re.compile(r"^(-?[0-9]{1,4}) ([A-Za-z][A-Za-z0-9 ().,+'-]{2,80})$")


def time_zones(frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Host (lower case) → its last stated zone: name, bias, UTC offset words, when seen."""
    if frame.empty:
        return {}
    mask = uptime_mask(frame)
    if not mask.any():
        return {}
    out: dict[str, dict[str, Any]] = {}
    for event in to_events(frame.iloc[np.flatnonzero(mask)]):  # time order: the last one wins
        zone = parse_zone(event.fields.values())
        if zone is not None:
            out[event.host.lower()] = {**zone, "seen": format_time_ns(event.ts)}
    return out


def uptime_mask(frame: pd.DataFrame) -> np.ndarray:
    """The System 6013 rows (uptime, with the time zone)."""
    channel = frame["channel"].cat
    system = [i for i, name in enumerate(channel.categories) if name.lower() == "system"]
    in_system = channel.codes.isin(system).to_numpy()
    mask: np.ndarray = in_system & (frame["event_id"].to_numpy() == UPTIME_EVENT)
    return mask


def parse_zone(values: Any) -> dict[str, Any] | None:
    """`480 Pacific Standard Time` among an event's values → name, bias and UTC offset."""
    for value in reversed([str(v) for v in values if v]):
        match = _ZONE.match(value.strip())
        if match and abs(int(match.group(1))) <= 14 * 60:
            bias = int(match.group(1))
            return {"name": match.group(2), "bias_minutes": bias, "utc_offset": offset(-bias)}
    return None


def offset(minutes: int) -> str:
    """-480 → `UTC−08:00`."""
    sign = "+" if minutes >= 0 else "−"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{rest:02d}"
