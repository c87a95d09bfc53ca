"""Normalized events as CSV or JSON Lines, for people who want to look themselves."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import IO, Any

import orjson
import pandas as pd

from evtxdoc.normalize import NO_TIME, format_time_ns
from evtxdoc.timeline import to_events

EXPORT_COLUMNS = ("ts", "host", "channel", "provider", "event_id", "level", "record_id",
                  "activity_id", "user_sid", "source_file", "message", "fields")


def rows(frame: pd.DataFrame) -> Iterator[dict[str, Any]]:
    for event in to_events(frame):
        yield {
            "ts": format_time_ns(event.ts) if event.ts != NO_TIME else None,
            "host": event.host, "channel": event.channel, "provider": event.provider,
            "event_id": event.event_id, "level": event.level, "record_id": event.record_id,
            "activity_id": event.activity_id, "user_sid": event.user_sid,
            "source_file": event.source_file, "message": event.message, "fields": event.fields,
        }


def write_jsonl(frame: pd.DataFrame, out: IO[bytes]) -> int:
    count = 0
    for item in rows(frame):
        out.write(orjson.dumps(item, option=orjson.OPT_NON_STR_KEYS) + b"\n")
        count += 1
    return count


def write_csv(frame: pd.DataFrame, out: IO[str]) -> int:
    writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS)
    writer.writeheader()
    count = 0
    for item in rows(frame):
        item["fields"] = orjson.dumps(item["fields"], option=orjson.OPT_NON_STR_KEYS).decode()
        writer.writerow(item)
        count += 1
    return count
