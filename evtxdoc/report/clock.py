"""Times for people: one display zone (`--tz`, UTC by default), always written with it."""

from __future__ import annotations

import datetime as dt
import os
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from evtxdoc.errors import UsageError
from evtxdoc.models import Attempt
from evtxdoc.vocab import SECOND

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class DisplayZone:
    """Formats UTC nanoseconds in one zone; the zone's abbreviation follows every time."""

    name: str = "UTC"

    @property
    def zone(self) -> dt.tzinfo:
        return dt.UTC if self.name == "UTC" else ZoneInfo(self.name)

    def local(self, ns: int) -> dt.datetime:
        return (_EPOCH + dt.timedelta(microseconds=int(ns) // 1000)).astimezone(self.zone)

    def time(self, ns: int | None, precise: bool = True) -> str:
        """`2025-09-26 10:04:38.505 CEST` (milliseconds unless `precise` is off)."""
        if ns is None:
            return "—"
        seconds, rest = divmod(int(ns), SECOND)
        text, zone = _second_text(self, seconds)
        return f"{text}.{rest // 1_000_000:03d} {zone}" if precise else f"{text} {zone}"

    def clock(self, ns: int) -> str:
        """`10:04:38` without date or zone, for axis ticks under a stated zone."""
        return f"{self.local(ns):%H:%M:%S}"

    def abbreviation(self, stamp: dt.datetime) -> str:
        if self.name == "UTC":
            return "UTC"
        abbreviation = stamp.tzname() or ""
        offset = stamp.strftime("%z")
        offset = f"UTC{offset[:3]}:{offset[3:]}"
        # zones without a letter abbreviation print "+03"; say the offset instead
        return offset if not abbreviation or abbreviation[0] in "+-" else abbreviation

    def describe(self) -> str:
        """`Europe/Paris (UTC+01:00 / CET)` for the report header."""
        if self.name == "UTC":
            return "UTC"
        now = dt.datetime.now(self.zone)
        return f"{self.name} (now {self.abbreviation(now)})"


UTC = DisplayZone()


@lru_cache(maxsize=65536)
def _second_text(zone: DisplayZone, seconds: int) -> tuple[str, str]:
    """(`2025-09-26 10:04:38`, `CEST`) of one whole second: reports repeat seconds a lot."""
    stamp = zone.local(seconds * SECOND)
    return f"{stamp:%Y-%m-%d %H:%M:%S}", zone.abbreviation(stamp)


def local_zone_name() -> str | None:
    """This machine's IANA zone: $TZ, else the /etc/localtime link (Linux, macOS), else None."""
    given = os.environ.get("TZ", "").lstrip(":")
    if given and "/" in given:
        return given
    try:
        target = str(Path("/etc/localtime").resolve())
    except OSError:
        return None
    _, found, key = target.partition("zoneinfo/")
    return key if found and key else None


def display_zone(name: str | None) -> DisplayZone:
    """Check a `--tz` value (IANA name such as Europe/Paris, UTC, or `local`: this machine's
    zone, as Event Viewer and CMTrace show times)."""
    if name and name.lower() == "local":
        local = local_zone_name()
        if local is None:
            raise UsageError(
                "cannot tell this machine's time zone",
                hint="name it: --tz Europe/Paris (an IANA name), or set $TZ",
            )
        name = local
    if not name or name.upper() in ("UTC", "Z", "ETC/UTC"):
        return UTC
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        close = sorted(z for z in available_timezones() if name.lower() in z.lower())[:5]
        hint = (
            f"did you mean {', '.join(close)}?"
            if close
            else "use an IANA name such as Europe/Paris or America/New_York, or UTC"
        )
        raise UsageError(f"unknown time zone {name!r}", hint=hint) from None
    return DisplayZone(name)


def duration(ns: int, signed: bool = False) -> str:
    """`1h02m03s`, `4m05s`, `12s`, `0.4s` (sign when `signed`)."""
    sign = "-" if ns < 0 else ("+" if signed else "")
    value = abs(ns) / SECOND
    if value < 10:
        return f"{sign}{value:.1f}s".replace(".0s", "s")
    seconds = round(value)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{sign}{minutes}m{secs:02d}s"
    return f"{sign}{secs}s"


class DeviceShifts:
    """The shift each event is shown with, so that one event has one time in every section:
    a device event moves like its host's nearest attempt step (the offset changes only at a
    clock set, and steps are placed on both sides of one); other hosts' events do not move."""

    def __init__(self, attempts: Iterable[Attempt]) -> None:
        found: dict[str, dict[int, int]] = {}
        for attempt in attempts:
            for step in attempt.steps:
                found.setdefault(step.ref.host.lower(), {})[step.ts] = step.ts - step.ts_corrected
        self._hosts = {
            host: (sorted(steps), [steps[t] for t in sorted(steps)])
            for host, steps in found.items()
            if any(steps.values())
        }

    def __bool__(self) -> bool:
        return bool(self._hosts)

    def shift(self, host: str, ts: int) -> int:
        """ns to subtract from a raw time of `host` (0 for hosts whose times were not moved)."""
        entry = self._hosts.get(host.lower())
        if entry is None:
            return 0
        times, shifts = entry
        index = bisect_left(times, ts)
        if index == len(times) or (index and ts - times[index - 1] <= times[index] - ts):
            index -= 1
        return shifts[index]
