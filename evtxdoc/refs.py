"""Where an event lives (file + EventRecordID): the pointer every result keeps to its evidence."""

from __future__ import annotations

from typing import NamedTuple


class EventRef(NamedTuple):
    """Where an event lives, so the report can show it (file + EventRecordID)."""

    host: str
    channel: str
    event_id: int
    record_id: int
    source_file: str
