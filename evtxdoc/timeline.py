"""Events → one pandas DataFrame with declared columns and dtypes, sorted, with views.

Rows are appended to a `ColumnBatch` as they are read: category codes and typed arrays, plus
each event's EventData/UserData as one compact JSON `bytes` value (`payload`). No dict per event
stays alive; fields are decoded and normalized on demand (`fields_of`, `field_values`), after
the cheap columns have narrowed the rows down. Batches from several worker processes are merged
with their categories unified.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import chain
from typing import Any

import numpy as np
import pandas as pd

from evtxdoc import catalog
from evtxdoc.errors import InputError
from evtxdoc.event_summary import stacked, summarize
from evtxdoc.models import ChannelCoverage, Event
from evtxdoc.parse.batch import (
    NUMERIC,
    ROW_CATEGORICAL,
    ColumnBatch,
    Skeleton,
)
from evtxdoc.parse.payload import decode_fields
from evtxdoc.parse.times import NO_TIME, format_time_ns

CATEGORICAL = (*ROW_CATEGORICAL, "source_file")
OBJECT = ("message", "payload")
COLUMNS = (
    "ts",
    "host",
    "channel",
    "provider",
    "event_id",
    "qualifiers",
    "level",
    "task",
    "opcode",
    "record_id",
    "activity_id",
    "user_sid",
    "source_file",
    "message",
    "payload",
)
DTYPES = {
    "ts": "datetime64[ns, UTC]",
    **{name: "category" for name in CATEGORICAL},
    **{name: dtype for name, dtype in NUMERIC.items() if name != "ts"},
    "message": "object",
    "payload": "object",  # bytes: EventData/UserData … as JSON, as read; see fields_of()
}
DEDUP_KEY = ["host", "channel", "record_id", "ts", "event_id"]


def time_sorted(ts: np.ndarray) -> bool:
    """Whether these ns times never decrease (a timeline from `finish` always holds)."""
    return len(ts) < 2 or bool(np.all(ts[1:] >= ts[:-1]))


def build_frame(batches: Sequence[ColumnBatch]) -> pd.DataFrame:
    """Merge batches (in order) into one timeline DataFrame, unsorted."""
    for batch in batches:
        batch.flush()
    data: dict[str, Any] = {}
    for name, dtype in NUMERIC.items():
        parts = [b.numeric(name) for b in batches if len(b)]
        data[name] = np.concatenate(parts) if parts else np.empty(0, dtype=dtype)
    data["ts"] = pd.to_datetime(data["ts"], unit="ns", utc=True)
    for name in CATEGORICAL:
        data[name] = _merge_categorical(batches, name)
    rows = sum(len(batch) for batch in batches)
    for name in OBJECT:  # fromiter: no sequence probing of each value, no intermediate list
        column = np.fromiter(
            chain.from_iterable(getattr(b, name) for b in batches), dtype=object, count=rows
        )
        data[name] = pd.Series(column, dtype=object, copy=False)  # pandas 3 would infer `str`
    return pd.DataFrame(data, columns=list(COLUMNS))


def _merge_categorical(batches: Sequence[ColumnBatch | Skeleton], name: str) -> Any:
    merged: dict[str, int] = {}
    code_parts = []
    if name == "source_file":  # one source per batch
        for batch in batches:
            code = merged.setdefault(batch.source_file, len(merged))
            code_parts.append(np.full(len(batch), code, dtype=np.int32))
        batches = []
    for batch in batches:
        local = batch.categories[name]
        # remap[local code] = merged code; the extra last slot maps -1 (missing) to -1
        remap = np.empty(len(local) + 1, dtype=np.int32)
        for value, code in local.items():
            remap[code] = merged.setdefault(value, len(merged))
        remap[-1] = -1
        code_parts.append(remap[batch.codes(name)])
    codes = np.concatenate(code_parts) if code_parts else np.empty(0, dtype=np.int32)
    return pd.Categorical.from_codes(codes, categories=pd.Index(list(merged), dtype=str))


def finish(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Drop events seen in an earlier file, then sort; returns (timeline, duplicates per file)."""
    duplicated = repeated(frame)
    dropped = frame.loc[duplicated, "source_file"].value_counts()
    return sorted_frame(frame.loc[~duplicated]), dropped


_MIX = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9], dtype=np.uint64)


def repeated(frame: pd.DataFrame) -> np.ndarray:
    """`frame.duplicated(DEDUP_KEY, keep="first")`, with a fraction of its memory: the key's
    columns mixed into one 64-bit hash per row, and the exact test run only on the rows whose
    hash is not unique (every copy of a row hashes alike, so the first stays the first)."""
    if len(frame) < 2:
        return np.zeros(len(frame), dtype=bool)
    with np.errstate(over="ignore"):
        key = frame["host"].cat.codes.to_numpy().astype(np.uint64) << np.uint64(32)
        key ^= frame["channel"].cat.codes.to_numpy().astype(np.uint64)
        key *= _MIX[0]
        key ^= frame["record_id"].to_numpy().astype(np.uint64) * _MIX[1]
        key ^= frame["ts"].array.asi8.astype(np.uint64) * _MIX[2]
        key ^= frame["event_id"].to_numpy().astype(np.uint64)
    candidates = np.flatnonzero(pd.Series(key).duplicated(keep=False).to_numpy())
    out = np.zeros(len(frame), dtype=bool)
    if len(candidates):
        subset = frame.iloc[candidates]
        out[candidates] = subset.duplicated(subset=DEDUP_KEY, keep="first").to_numpy()
    return out


def sorted_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows by time, then host, channel and record id (stable): the timeline's order."""
    frame = frame.sort_values(["ts", "host", "channel", "record_id"], kind="stable")
    return frame.reset_index(drop=True)


def append(frame: pd.DataFrame, extra: pd.DataFrame) -> pd.DataFrame:
    """`frame` with the (few) rows of `extra`, categories united, still sorted by time."""
    if not len(extra):
        return frame
    if not len(frame):
        return extra.reset_index(drop=True)
    joined = stacked(frame, extra)
    extra_ts = extra["ts"].array.asi8
    extra_order = np.argsort(extra_ts, kind="stable")
    at = np.searchsorted(frame["ts"].array.asi8, extra_ts[extra_order], side="right")
    order = np.insert(np.arange(len(frame)), at, len(frame) + extra_order)
    return joined.take(order).reset_index(drop=True)


def fields_of(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Decode the fields of every row (do this on a filtered view, not the whole timeline)."""
    return [
        decode_fields(payload, str(channel))
        for payload, channel in zip(frame["payload"], frame["channel"], strict=True)
    ]


def field_values(frame: pd.DataFrame, name: str) -> pd.Series:
    """One field as a column (missing → None), aligned with `frame`'s index."""
    return pd.Series(
        [fields.get(name) for fields in fields_of(frame)], index=frame.index, dtype=object
    )


def to_events(frame: pd.DataFrame) -> Iterator[Event]:
    """Rows back to Event objects (for small slices: evidence, exports, tests)."""
    try:
        known: catalog.Catalog | None = catalog.load()
    except InputError:  # no rules folder next to an installed copy: raw messages only
        known = None
    names = [c for c in COLUMNS if c not in ("ts", "payload")]
    columns = [frame[name].tolist() for name in names]
    ts_values = frame["ts"].array.asi8 if len(frame) else []
    for ts, payload, row in zip(
        ts_values, frame["payload"], zip(*columns, strict=True), strict=True
    ):
        values: dict[str, Any] = {
            k: (None if _is_missing(v) else v) for k, v in zip(names, row, strict=True)
        }
        for key in ("host", "channel", "provider", "source_file"):
            values[key] = values[key] or ""
        ts_ns = int(ts)
        fields = decode_fields(payload, values["channel"])
        if values["message"] is None and known is not None:  # Event Viewer-like wording
            values["message"] = known.message(
                values["channel"], values["event_id"], values["provider"], fields
            )
        yield Event(
            ts=ts_ns,
            ts_raw=format_time_ns(ts_ns) if ts_ns != NO_TIME else "",
            fields=fields,
            **values,
        )


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def by_host(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per-host views (hosts as written in System/Computer)."""
    return {str(host): group for host, group in frame.groupby("host", observed=True, sort=True)}


def select(
    frame: pd.DataFrame,
    *,
    channels: Iterable[str] | None = None,
    event_ids: Iterable[int] | None = None,
    hosts: Iterable[str] | None = None,
    since: pd.Timestamp | None = None,
    until: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Rows matching every given filter (channel and host compared case-insensitively)."""
    mask = np.ones(len(frame), dtype=bool)
    if channels:
        wanted = {c.lower() for c in channels}
        mask &= frame["channel"].astype(str).str.lower().isin(wanted).to_numpy()
    if hosts:
        wanted = {h.lower() for h in hosts}
        mask &= frame["host"].astype(str).str.lower().isin(wanted).to_numpy()
    if event_ids:
        mask &= frame["event_id"].isin(list(event_ids)).to_numpy()
    if since is not None:
        mask &= (frame["ts"] >= since).to_numpy()
    if until is not None:
        mask &= (frame["ts"] <= until).to_numpy()
    return frame.loc[mask]


def coverage(frame: pd.DataFrame) -> list[ChannelCoverage]:
    """What each host's logs cover, per channel: record count, first and last time, files
    (`frame`: events, or their summary, evtxdoc/event_summary.py)."""
    summary = summarize(frame)
    if summary.empty:
        return []
    grouped = summary.groupby(["host", "channel"], observed=True, sort=True)
    stats = pd.DataFrame(
        {"size": grouped["events"].sum(), "min": grouped["ts"].min(), "max": grouped["last"].max()}
    )
    # the files of each (host, channel): from the distinct triples, not a Python call per group
    # (307,025 groups took 50 s that way; issue 20)
    triples = summary[["host", "channel", "source_file"]].drop_duplicates()
    files: dict[tuple[str, str], set[str]] = {}
    for host, channel, source in zip(
        triples["host"].astype(str), triples["channel"].astype(str),
        triples["source_file"].astype(str), strict=True,
    ):  # fmt: skip
        files.setdefault((host, channel), set()).add(source)
    keys: list[tuple[Any, Any]] = list(stats.index)
    covered = [
        ChannelCoverage(
            str(host),
            str(channel),
            int(size),
            int(first),
            int(last),
            tuple(sorted(files.get((str(host), str(channel)), ()))),
        )
        for (host, channel), size, first, last in zip(
            keys,
            stats["size"].to_numpy(),
            stats["min"].array.asi8,
            stats["max"].array.asi8,
            strict=True,
        )
    ]
    # by name, not by category code: the codes follow the order hosts were first read in,
    # which rs's threaded parser does not fix (one input gave two orders in two runs)
    return sorted(covered, key=lambda c: (c.host, c.channel))
