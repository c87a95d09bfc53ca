"""The timeline reduced to what selectors need (integer codes, decoded fields on demand)
and the per-attempt time windows counted with one sorted search (engine step 1 and 2)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from evtxdoc.correlate.evidence import (
    CONNECTOR_LEGACY,
    CONNECTOR_UPDATED,
    category_codes,
)
from evtxdoc.models import (
    EventRef,
)
from evtxdoc.parse.payload import code_pattern, decode_fields
from evtxdoc.parse.times import format_time_ns
from evtxdoc.rules.model import (
    Selector,
)
from evtxdoc.timeline import time_sorted

# --- the timeline, reduced to what selectors need ---------------------------------------------


class Timeline:
    """Integer views of the frame and the selector cache."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.size = len(frame)
        self.ts = frame["ts"].array.asi8 if self.size else np.empty(0, np.int64)
        self.event_id = frame["event_id"].to_numpy()
        self.host_code, self.host_names = category_codes(frame["host"])
        self.channel_code, channel_names = category_codes(frame["channel"])
        self.provider_code, provider_names = category_codes(frame["provider"])
        self.channel_original = channel_names
        self.channel_names = [c.lower() for c in channel_names]
        self.provider_names = [p.lower() for p in provider_names]
        self.host_lower = [h.lower() for h in self.host_names]
        self._base: dict[tuple[Any, ...], np.ndarray] = {}
        self._decoded: np.ndarray | None = None  # position → fields, filled on demand
        self._message = frame["message"].to_numpy()
        self._rows: dict[tuple[Any, ...], np.ndarray] = {}

    @cached_property
    def _time_order(self) -> tuple[np.ndarray, np.ndarray]:
        """(each row's rank in time order, the times sorted); the timeline comes sorted by
        time, so the rank is the row itself unless somebody built the frame unsorted."""
        if time_sorted(self.ts):
            return np.arange(self.size, dtype=np.int64), self.ts
        order = np.argsort(self.ts, kind="stable")
        rank = np.empty(self.size, dtype=np.int64)
        rank[order] = np.arange(self.size, dtype=np.int64)
        return rank, self.ts[order]

    @property
    def rank(self) -> np.ndarray:
        return self._time_order[0]

    def rank_bounds(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Times → ranks: a row is in [lo, hi] (inclusive times) iff lo' <= rank < hi'."""
        ordered = self._time_order[1]
        return np.searchsorted(ordered, lo, "left"), np.searchsorted(ordered, hi, "right")

    def _codes(self, names: list[str], wanted: Iterable[str]) -> list[int]:
        wanted = {w.lower() for w in wanted}
        return [i for i, name in enumerate(names) if name in wanted]

    def base(self, selector: Selector) -> np.ndarray:
        """Positions passing channel, provider and event id (cheap integer masks)."""
        key = (selector.channels, selector.providers, selector.event_ids)
        if key not in self._base:
            mask = np.ones(self.size, dtype=bool)
            if selector.channels is not None:
                mask &= np.isin(
                    self.channel_code, self._codes(self.channel_names, selector.channels)
                )
            if selector.providers is not None:
                mask &= np.isin(
                    self.provider_code, self._codes(self.provider_names, selector.providers)
                )
            if selector.event_ids is not None:
                mask &= np.isin(self.event_id, selector.event_ids)
            self._base[key] = np.flatnonzero(mask)
        return self._base[key]

    def fields(self, positions: np.ndarray) -> list[dict[str, Any]]:
        """Decoded fields of these rows (read-only: rows with the same payload share one dict);
        each distinct payload is decoded at most once per evaluation."""
        if self._decoded is None:
            self._decoded = np.full(self.size, None, dtype=object)
            self._bodies = [
                c in CONNECTOR_UPDATED or c in CONNECTOR_LEGACY for c in self.channel_names
            ]
            self._by_payload: dict[tuple[int, int], dict[str, Any]] = {}
        cached = self._decoded[positions]
        missing = positions[cached == None]  # noqa: E711 (elementwise on an object array)
        if len(missing):
            numbers, payloads = self._payload_index
            names, bodies, by_payload = self.channel_original, self._bodies, self._by_payload
            found = []
            for number, channel in zip(
                numbers[missing].tolist(), self.channel_code[missing].tolist(), strict=True
            ):
                body = channel >= 0 and bodies[channel]
                key = (number, channel if body else -1)  # bodies depend on the channel
                fields = by_payload.get(key)
                if fields is None:
                    fields = by_payload[key] = decode_fields(
                        payloads[number], names[channel] if channel >= 0 else "", bodies=body
                    )
                found.append(fields)
            self._decoded[missing] = found
            cached = self._decoded[positions]
        return list(cached)

    def rows(self, selector: Selector, within: Windows | None = None) -> np.ndarray:
        """Positions (time order) of every event `selector` matches anywhere, or only inside
        `within` (cheap columns first: the fields of rows outside are never decoded)."""
        key = selector.key if within is None else (selector.key, id(within))
        if key in self._rows:
            return self._rows[key]
        positions = self.base(selector)
        if within is not None and selector.needs_fields and len(positions):
            positions = positions[inside(self, positions, within)]
        positions = self._could_hold_codes(selector, positions)
        keep = np.ones(len(positions), dtype=bool)
        if len(positions) and selector.level is not None:
            keep &= selector.level.column(
                pd.Series(self.frame["level"].to_numpy()[positions], dtype=object)
            )
        if len(positions) and selector.message is not None:
            keep &= selector.message.column(
                pd.Series(self.frame["message"].to_numpy()[positions], dtype=object)
            )
        if len(positions) and (selector.fields or selector.any_field):
            decoded = self.fields(positions)
            for name, matcher in selector.fields:
                keep &= matcher.column([f.get(name) for f in decoded])
            if selector.any_field is not None:  # every (row, value) pair, one test per value
                rows = [i for i, f in enumerate(decoded) if keep[i] for _ in f]
                values = [v for i, f in enumerate(decoded) if keep[i] for v in f.values()]
                hit = selector.any_field.column(values)
                matched = np.zeros(len(decoded), dtype=bool)
                matched[np.asarray(rows, dtype=np.int64)[hit]] = True
                keep &= matched
        self._rows[key] = positions[keep]
        return self._rows[key]

    @cached_property
    def _payload_index(self) -> tuple[np.ndarray, np.ndarray]:
        """(each row's payload number, the distinct payloads): logs repeat payloads a lot
        (1M fleet events hold 30k distinct ones; the real-evtx folder 8.9k of 44k)."""
        codes, uniques = pd.factorize(self.frame["payload"].to_numpy())
        return codes, np.asarray(uniques, dtype=object)

    def _could_hold_codes(self, selector: Selector, positions: np.ndarray) -> np.ndarray:
        """Drop rows whose stored payload cannot hold a code the selector requires: a bytes
        search in C instead of decoding (see payload.code_pattern), once per distinct
        payload."""
        matchers = [m for _, m in selector.fields] + [selector.any_field]
        for codes in {m.codes for m in matchers if m is not None and m.codes is not None}:
            if not len(positions):
                break
            numbers, payloads = self._payload_index
            row_numbers = numbers[positions]
            distinct = np.unique(row_numbers)
            search = code_pattern(codes).search
            held = np.fromiter(
                (search(p) is not None for p in payloads[distinct]), dtype=bool, count=len(distinct)
            )
            positions = positions[np.isin(row_numbers, distinct[held])]
        return positions

    def _text(self, position: int) -> tuple[str, str]:
        host = self.host_code[position]
        channel = self.channel_code[position]
        return (
            self.host_names[host] if host >= 0 else "",
            self.channel_original[channel] if channel >= 0 else "",
        )

    def event(self, position: int) -> dict[str, Any]:
        """One row as a template value: its fields plus host, time, channel, event id."""
        host, channel = self._text(position)
        values = dict(self.fields(np.array([position]))[0])
        values.update(
            host=host,
            time=format_time_ns(int(self.ts[position])),
            channel=channel,
            event_id=int(self.event_id[position]),
            message=self._message[position],
        )
        return values

    def ref(self, position: int) -> EventRef:
        if not hasattr(self, "_sources"):
            self._source_code, self._sources = category_codes(self.frame["source_file"])
            self._record_id = self.frame["record_id"].to_numpy()
        host, channel = self._text(position)
        source = self._source_code[position]
        return EventRef(
            host,
            channel,
            int(self.event_id[position]),
            int(self._record_id[position]),
            self._sources[source] if source >= 0 else "",
        )


# --- attempt windows ----------------------------------------------------------------------------


@dataclass
class Windows:
    """Per (attempt, host) time windows; `offset` turns a window's host clock into reference."""

    attempt: np.ndarray
    host: np.ndarray  # host codes of the timeline
    lo: np.ndarray
    hi: np.ndarray
    offset: np.ndarray

    @classmethod
    def build(cls, rows: list[tuple[int, int, int, int, int]]) -> Windows:
        data = np.array(rows, dtype=np.int64).reshape(-1, 5)
        return cls(*(data[:, i].copy() for i in range(5)))

    def __add__(self, other: Windows) -> Windows:
        return Windows(
            *(
                np.concatenate([getattr(self, k), getattr(other, k)])
                for k in ("attempt", "host", "lo", "hi", "offset")
            )
        )


@dataclass
class Hits:
    """Where one selector's rows fall in the windows of all attempts."""

    order: np.ndarray  # timeline positions sorted by (host, time)
    start: np.ndarray  # per window: first index into `order`
    end: np.ndarray
    windows: Windows
    count: np.ndarray  # per attempt
    by_attempt: dict[int, np.ndarray] = field(default_factory=dict)  # attempt → window indexes

    def positions(self, attempt: int) -> np.ndarray:
        """The attempt's hits in time order (read-only: may be a view of `order`)."""
        windows = self.by_attempt.get(attempt)
        if windows is None or not len(windows):
            return np.empty(0, dtype=np.int64)
        if len(windows) == 1:  # one host's slice: already in time order, no repeats
            return self.order[self.start[windows[0]] : self.end[windows[0]]]
        found = np.concatenate([self.order[self.start[w] : self.end[w]] for w in windows])
        return np.unique(found)

    def corrected(self, attempt: int, ts: np.ndarray) -> np.ndarray:
        """Reference-clock times of the attempt's hits, sorted."""
        windows = self.by_attempt.get(attempt)
        if windows is None or not len(windows):
            return np.empty(0, dtype=np.int64)
        parts = [
            ts[self.order[self.start[w] : self.end[w]]] - self.windows.offset[w] for w in windows
        ]
        return np.sort(np.concatenate(parts))


def inside(line: Timeline, positions: np.ndarray, windows: Windows) -> np.ndarray:
    """Which of `positions` fall in some window of their own host (a boolean mask).

    Host and time rank become one integer key, so every window is an interval on one axis;
    intervals sorted by start with a running maximum of their ends answer "is this key
    covered" with one sorted search.
    """
    if not len(windows.host):
        return np.zeros(len(positions), dtype=bool)
    scale = line.size + 1
    keys = line.host_code[positions].astype(np.int64) * scale + line.rank[positions]
    lo, hi = line.rank_bounds(windows.lo, windows.hi)
    starts, ends = windows.host * scale + lo, windows.host * scale + hi - 1  # inclusive
    order = np.argsort(starts, kind="stable")
    starts, reach = starts[order], np.maximum.accumulate(ends[order])
    last = np.searchsorted(starts, keys, "right") - 1
    covered: np.ndarray = (last >= 0) & (reach[np.maximum(last, 0)] >= keys)
    return covered


def count_in_windows(
    line: Timeline, positions: np.ndarray, windows: Windows, attempts: int
) -> Hits:
    """One sorted search for every window at once: key = host × (rank of time)."""
    hosts = line.host_code[positions].astype(np.int64)
    ranks = line.rank[positions]
    order_local = np.lexsort((ranks, hosts))
    order = positions[order_local]
    scale = line.size + 1
    keys = hosts[order_local] * scale + ranks[order_local]
    lo, hi = line.rank_bounds(windows.lo, windows.hi)
    start = np.searchsorted(keys, windows.host * scale + lo, "left")
    end = np.searchsorted(keys, windows.host * scale + hi, "left")
    start = np.minimum(start, end)
    count = np.bincount(windows.attempt, weights=end - start, minlength=attempts).astype(np.int64)
    hits = Hits(order, start, end, windows, count)
    nonzero = np.flatnonzero(end > start)
    if len(nonzero):
        owners = windows.attempt[nonzero]
        sort = np.argsort(owners, kind="stable")
        owners, nonzero = owners[sort], nonzero[sort]
        cuts = np.flatnonzero(np.diff(owners)) + 1
        for group in np.split(nonzero, cuts):
            hits.by_attempt[int(windows.attempt[group[0]])] = group
    return hits
