"""Event times: the ISO-like text every backend writes → UTC nanoseconds, and back.

`event_time` joins pyevtx-rs's microsecond TimeCreated with the record header's 100 ns write
time (see its docstring); `parse_time_ns`/`format_time_ns` are the one reading and writing of a
time the rest of evtxdoc uses (one event has one time everywhere).
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

NO_TIME = -(2**63)  # pandas NaT as int64
MIN_TIME = -(2**63) + 1  # 1677-09-21, the earliest datetime64[ns]
MAX_TIME = 2**63 - 1  # 2262-04-11
_EPOCH = dt.datetime(1970, 1, 1)

SECOND_CACHE: dict[str, int] = {}  # `second_ns` results; cleared when full
_SECONDS_KEPT = 65536
_SECOND_NS = 1_000_000_000


def second_ns(text: str) -> int:
    """`YYYY-MM-DDTHH:MM:SS` (or with a space) → ns since the epoch; cached per second (a
    plain dict: cheaper than `lru_cache` on this path). ValueError if it is not a time."""
    ns = SECOND_CACHE.get(text)
    if ns is None:
        hour, minute, second = int(text[11:13]), int(text[14:16]), int(text[17:19])
        if not (0 <= hour < 24 and 0 <= minute < 60 and 0 <= second < 60):
            raise ValueError(f"not a time of day: {text!r}")
        ns = _day_ns(text[:10]) + ((hour * 60 + minute) * 60 + second) * _SECOND_NS
        if len(SECOND_CACHE) >= _SECONDS_KEPT:
            SECOND_CACHE.clear()
        SECOND_CACHE[text] = ns
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
        ns = second_ns(text[:19])
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
                    return second_ns(header_time[:19]) + int(header_time[20:27]) * 100, True
                if header_time[26:27] == "Z":
                    return second_ns(header_time[:19]) + int(header_time[20:26]) * 1000, True
            zone = header_time.find("Z", 19)
            if (
                19 <= zone < 26
                and header_time.startswith(time_text[:zone])
                and time_text[zone:26].strip(".0") == ""
            ):
                return second_ns(time_text[:19]) + int(time_text[20:26]) * 1000, True
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
