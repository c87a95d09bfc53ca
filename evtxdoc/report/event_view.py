"""The events a report shows: which timeline rows (evidence and steps first, then the events
the catalog knows, then errors and warnings), and each as bounded plain data."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from evtxdoc import catalog
from evtxdoc.correlate.evidence import category_codes
from evtxdoc.errors import InputError
from evtxdoc.models import EventRef
from evtxdoc.report.clock import DeviceShifts, DisplayZone
from evtxdoc.timeline import to_events

MAX_TEXT = 1200  # characters of one message or field value
MAX_FIELDS = 60  # fields per event
LEVELS = {0: "information", 1: "critical", 2: "error", 3: "warning", 4: "information", 5: "verbose"}


def bound(value: Any, limit: int = MAX_TEXT) -> str:
    """Text no longer than `limit` characters, saying how much was cut."""
    text = "" if value is None else str(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} more characters)"


def clip(value: Any, limit: int) -> str:
    """Text cut to `limit` characters with an ellipsis (labels in drawings)."""
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def positions_of(frame: pd.DataFrame, refs: Iterable[EventRef]) -> dict[EventRef, int]:
    """Timeline row of each ref (by source file and EventRecordID)."""
    refs = set(refs)
    if not refs or frame.empty:
        return {}
    wanted: dict[tuple[str, int], list[EventRef]] = {}
    for ref in refs:  # refs to one event may differ in other parts (a host's spelling)
        wanted.setdefault((ref.source_file, ref.record_id), []).append(ref)
    records = frame["record_id"].to_numpy()
    source_codes, source_names = category_codes(frame["source_file"])
    out: dict[EventRef, int] = {}
    for position in np.flatnonzero(np.isin(records, [r.record_id for r in refs])).tolist():
        code = source_codes[position]
        for ref in wanted.get(
            (source_names[code] if code >= 0 else "", int(records[position])), ()
        ):
            out.setdefault(ref, position)
    return out


def _known_mask(frame: pd.DataFrame) -> np.ndarray:
    """Rows whose (channel, event id) the catalog knows: the domain's own events."""
    try:
        known = catalog.load()
    except InputError:
        return np.zeros(len(frame), dtype=bool)
    ids_by_channel: dict[str, set[int]] = {}
    for entry in known.events:
        ids_by_channel.setdefault(entry.channel.lower(), set()).add(entry.id)
    codes, names = category_codes(frame["channel"])
    event_ids = frame["event_id"].to_numpy()
    mask = np.zeros(len(frame), dtype=bool)
    for code, name in enumerate(names):
        ids = ids_by_channel.get(name.lower())
        if ids:
            mask |= (codes == code) & np.isin(event_ids, list(ids))
    return mask


def row_scores(frame: pd.DataFrame) -> np.ndarray:
    """Each row's kind for the event table: 2 an event the catalog knows, 1 an error or a
    warning, 0 the rest."""
    score = np.zeros(len(frame), dtype=np.int8)
    levels = frame["level"].to_numpy()
    score[(levels >= 1) & (levels <= 3)] = 1
    score[_known_mask(frame)] = 2
    return score


def choose_rows(frame: pd.DataFrame, must: Iterable[int], limit: int) -> np.ndarray:
    """Up to `limit` row positions in time order: `must` rows, known events, errors, the rest."""
    if len(frame) <= limit:
        return np.arange(len(frame))
    score = row_scores(frame)
    score[np.fromiter(must, dtype=np.int64)] = 3
    chosen = np.argsort(-score, kind="stable")[:limit]
    return np.sort(chosen)


def _event_view(
    event: Any, position: int, zone: DisplayZone, attempt: str | None, shifts: DeviceShifts
) -> dict[str, Any]:
    fields = list(event.fields.items())
    shown = [{"name": bound(k, 120), "value": bound(v, 400)} for k, v in fields[:MAX_FIELDS]]
    shift = shifts.shift(event.host, event.ts) if shifts else 0
    return {
        "row": position,
        "time": zone.time(event.ts - shift),
        "ts": event.ts,
        "raw_time": zone.time(event.ts) if shift else "",
        "host": event.host,
        "channel": event.channel,
        "provider": event.provider,
        "event_id": event.event_id,
        "level": LEVELS.get(event.level, str(event.level)),
        "record_id": event.record_id,
        "source": event.source_file,
        "message": bound(event.message or ""),
        "fields": shown,
        "more_fields": max(0, len(fields) - MAX_FIELDS),
        "attempt": attempt,
        "user_sid": event.user_sid or "",
        "activity_id": event.activity_id or "",
    }


def event_views(
    frame: pd.DataFrame,
    positions: np.ndarray,
    zone: DisplayZone,
    claimed: dict[int, str | None],
    shifts: DeviceShifts,
) -> list[dict[str, Any]]:
    if not len(positions):
        return []
    subset = frame.iloc[positions]
    return [
        _event_view(event, int(p), zone, claimed[p], shifts)
        for event, p in zip(to_events(subset), positions.tolist(), strict=True)
    ]
