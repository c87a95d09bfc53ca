"""Normalized events as CSV, JSON Lines or Timesketch JSONL, each with its join attempt.

`attempt_ids` ties events to attempts: the events an attempt's steps and connector requests
were read from, and the device's other events between its first and last step (device clock,
±`ATTEMPT_PAD_NS`).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from typing import IO, Any

import numpy as np
import orjson
import pandas as pd

from evtxdoc.correlate.evidence import category_codes
from evtxdoc.models import Correlation
from evtxdoc.parse.times import NO_TIME, format_time_ns
from evtxdoc.timeline import time_sorted, to_events

EXPORT_COLUMNS = (
    "ts",
    "host",
    "channel",
    "provider",
    "event_id",
    "level",
    "record_id",
    "activity_id",
    "user_sid",
    "source_file",
    "attempt",
    "message",
    "fields",
)
ATTEMPT_PAD_NS = 5 * 60 * 1_000_000_000
# Timesketch's JSONL import needs message, datetime (ISO 8601) and timestamp_desc; timestamp in
# microseconds is optional (timesketch docs/guides/user/import-from-json-csv.md).
TIMESKETCH_DESC = "Event Logged"

Redact = Callable[[Any], Any]


def attempt_ids(frame: pd.DataFrame, correlation: Correlation | None) -> np.ndarray:
    """The attempt id of each row of `frame` (None where no attempt claims it)."""
    out = np.full(len(frame), None, dtype=object)
    if correlation is None or not correlation.attempts or frame.empty:
        return out
    host_codes, host_names = category_codes(frame["host"])
    code_of = {name.lower(): i for i, name in enumerate(host_names)}
    ts = frame["ts"].array.asi8
    if time_sorted(ts):  # a timeline is; a subset of its rows need not be
        order = np.argsort(host_codes, kind="stable")
    else:
        order = np.lexsort((ts, host_codes))
    keys_host, keys_ts = host_codes[order], ts[order]
    for attempt in correlation.attempts:
        if not attempt.steps:
            continue
        lo = min(s.ts for s in attempt.steps) - ATTEMPT_PAD_NS
        hi = max(s.ts for s in attempt.steps) + ATTEMPT_PAD_NS
        for host in attempt.device.hosts:
            code = code_of.get(host.lower())
            if code is None:
                continue
            first = np.searchsorted(keys_host, code, "left")
            last = np.searchsorted(keys_host, code, "right")
            start = first + np.searchsorted(keys_ts[first:last], lo, "left")
            end = first + np.searchsorted(keys_ts[first:last], hi, "right")
            rows = order[start:end]
            free = rows[out[rows] == None]  # noqa: E711 (element-wise on an object array)
            out[free] = attempt.id
    exact = {
        (r.source_file, r.record_id): a.id
        for a in correlation.attempts
        for r in [*(s.ref for s in a.steps), *(q.ref for q in a.requests)]
    }
    if exact:
        records = frame["record_id"].to_numpy()
        source_codes, source_names = category_codes(frame["source_file"])
        for position in np.flatnonzero(np.isin(records, [r for _, r in exact])).tolist():
            code = source_codes[position]
            key = (source_names[code] if code >= 0 else "", int(records[position]))
            if key in exact:
                out[position] = exact[key]
    return out


def rows(frame: pd.DataFrame, attempts: np.ndarray | None = None) -> Iterator[dict[str, Any]]:
    claimed = attempts if attempts is not None else np.full(len(frame), None, dtype=object)
    for event, attempt in zip(to_events(frame), claimed, strict=True):
        yield {
            "ts": format_time_ns(event.ts) if event.ts != NO_TIME else None,
            "host": event.host,
            "channel": event.channel,
            "provider": event.provider,
            "event_id": event.event_id,
            "level": event.level,
            "record_id": event.record_id,
            "activity_id": event.activity_id,
            "user_sid": event.user_sid,
            "source_file": event.source_file,
            "attempt": attempt,
            "message": event.message,
            "fields": event.fields,
        }


def _dumps(item: Any) -> bytes:
    return orjson.dumps(item, option=orjson.OPT_NON_STR_KEYS, default=str)


def write_jsonl(
    frame: pd.DataFrame,
    out: IO[bytes],
    attempts: np.ndarray | None = None,
    redact: Redact | None = None,
) -> int:
    count = 0
    for item in rows(frame, attempts):
        out.write(_dumps(redact(item) if redact else item) + b"\n")
        count += 1
    return count


def write_timesketch(
    frame: pd.DataFrame,
    out: IO[bytes],
    attempts: np.ndarray | None = None,
    redact: Redact | None = None,
) -> int:
    """One JSON object per line with Timesketch's message, datetime and timestamp_desc."""
    count = 0
    for item in rows(frame, attempts):
        if item["ts"] is None:
            continue
        stamp = pd.Timestamp(item["ts"])
        line = {
            "message": item["message"]
            or f"{item['channel']} {item['event_id']} ({item['provider']})",
            "datetime": stamp.isoformat(timespec="microseconds"),
            "timestamp": stamp.value // 1000,
            "timestamp_desc": TIMESKETCH_DESC,
            **{k: v for k, v in item.items() if k not in ("ts", "message", "fields")},
            **{f"data_{k}": v for k, v in item["fields"].items()},
        }
        out.write(_dumps(redact(line) if redact else line) + b"\n")
        count += 1
    return count


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula (`=HYPERLINK(…)`, `@SUM(…)`, `-2+3`)
    gets a leading `'`, as OWASP's CSV-injection guidance recommends; other values pass."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def write_csv(
    frame: pd.DataFrame,
    out: IO[str],
    attempts: np.ndarray | None = None,
    redact: Redact | None = None,
) -> int:
    writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS)
    writer.writeheader()
    count = 0
    for item in rows(frame, attempts):
        item = redact(item) if redact else item
        item["fields"] = _dumps(item["fields"]).decode()
        writer.writerow({key: spreadsheet_safe(value) for key, value in item.items()})
        count += 1
    return count
