"""Partitioned analysis: what the reading of one file hands back (issue 22).

A fleet's logs are mostly noise: in the real hybrid deployment of real-logs/shapes.md, 530 of
6,909 events are steps correlation reads. So where a file is read (a worker process, a Dask
worker) its events are cut down to the rows something after ingest reads:

- the step and connector events of correlation (`evidence.select`) and the Exchange
  connector's trace (`exchange.trace_rows`);
- every row any rule's selector matches, with its full row test (channel, provider, event id,
  level, message, fields): a rule that counts or misses events sees the same rows;
- System 6013 (the device's time zone);
- with `seeds`, the first event (by time) of each distinct EventData that names an account, a
  domain or a machine, so that redaction learns the same names in the same order;
- the report's sample: per kind (catalog events, errors and warnings, the rest) the earliest
  rows of the file, its share by size of `sample` (the event table's size), at least one.

Beside them goes the file's `Skeleton`, every event as (time, host, channel, provider, event
id, record id): coverage, de-duplication, the hosts and channels of each file and clock
segments come from it exactly. So the analysis is the one of the whole timeline (the JSON is
identical: tests/test_partition.py), while the rows kept in memory are those few.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from evtxdoc import timeline
from evtxdoc.correlate import evidence, exchange
from evtxdoc.parse.payload import decode_fields
from evtxdoc.parse.reader import FileResult
from evtxdoc.report import parquet, redact, zones
from evtxdoc.report.event_view import row_scores
from evtxdoc.rules import default_folders, load_rules
from evtxdoc.rules.model import Match, Selector
from evtxdoc.rules.windows import Timeline

SAMPLE_ROWS = 5000  # per kind of row and file: the HTML event table's default size


@dataclass(frozen=True)
class Keep:
    """Which rows of a file to keep (picklable: a Dask task carries it; rules load once per
    process). Called on a read file's result, it returns it cut down, with its skeleton."""

    rule_folders: tuple[str, ...] = ()
    evaluate: bool = True  # rules run: keep what their selectors match
    seeds: bool = True  # redaction will run: keep what it learns names from
    sample: int = SAMPLE_ROWS
    total_bytes: int = 0  # of every log read: each file keeps its share of the sample

    def __call__(self, result: FileResult, frame: pd.DataFrame | None = None) -> FileResult:
        """`result` cut down (`frame`: its batch as a frame, when the caller has it)."""
        if result.skeleton is not None:
            return result
        batch = result.batch
        skeleton = batch.skeleton()
        if not len(batch):
            return replace(result, skeleton=skeleton, kept=np.empty(0, dtype=np.int64))
        frame = timeline.build_frame([batch]) if frame is None else frame
        kept = np.flatnonzero(self.mask(frame, result.report.size))
        return replace(result, batch=batch.take(kept), skeleton=skeleton, kept=kept)

    def mask(self, frame: pd.DataFrame, size: int = 0) -> np.ndarray:
        """The rows of one file's frame (its rows in read order, `size` bytes) that are kept."""
        keep = np.zeros(len(frame), dtype=bool)
        keep[evidence.select(frame).index.to_numpy()] = True
        keep[exchange.trace_rows(frame).index.to_numpy()] = True
        keep |= zones.uptime_mask(frame)
        if self.evaluate:
            line = Timeline(frame)
            for selector in selectors(self.rule_folders):
                keep[line.rows(selector)] = True
        if self.seeds:
            keep |= _seeding(frame)
        scores = row_scores(frame)
        for score in np.unique(scores).tolist():
            keep |= _earliest(frame, scores == score, self.share(size))
        return keep

    def share(self, size: int) -> int:
        """Rows of each kind a file of `size` bytes keeps for the event table."""
        if self.sample <= 0:
            return 0
        if not self.total_bytes:
            return self.sample
        return max(1, -(-self.sample * size // self.total_bytes))


@lru_cache(maxsize=4)
def selectors(folders: tuple[str, ...]) -> tuple[Selector, ...]:
    """Every selector of the rules `folders` give, once each (by what decides its rows)."""
    ruleset = load_rules(default_folders([Path(f) for f in folders]))
    found: dict[object, Selector] = {}
    for rule in ruleset.rules:
        for selector in _selectors_of(rule.match):
            found.setdefault(selector.key, selector)
    return tuple(found.values())


def _selectors_of(match: Match) -> Iterator[Selector]:
    yield from match.events
    yield from match.absent
    for inner in match.any:
        yield from _selectors_of(inner)


def _earliest(frame: pd.DataFrame, rows: np.ndarray, count: int) -> np.ndarray:
    """`rows` narrowed to the earliest `count` by time (and every row tied with the last)."""
    if count <= 0:
        return np.zeros(len(rows), dtype=bool)
    if rows.sum() <= count:
        return rows
    ts = frame["ts"].array.asi8
    last = np.partition(ts[rows], count - 1)[count - 1]
    narrowed: np.ndarray = rows & (ts <= last)
    return narrowed


def _seeding(frame: pd.DataFrame) -> np.ndarray:
    """For each distinct (EventData, channel) that names someone, its earliest rows."""
    codes, uniques = pd.factorize(frame["payload"].to_numpy(), use_na_sentinel=False)
    channel_codes, channels = evidence.category_codes(frame["channel"])
    pairs = codes.astype(np.int64) * (len(channels) + 1) + (channel_codes + 1)
    keys, first_of, inverse = np.unique(pairs, return_index=True, return_inverse=True)
    naming = np.zeros(len(keys), dtype=bool)
    for number, position in enumerate(first_of.tolist()):
        payload = uniques[codes[position]]
        if isinstance(payload, bytes) and not redact.could_name_someone(payload):
            continue
        channel = channel_codes[position]
        fields = decode_fields(payload, channels[channel] if channel >= 0 else "")
        naming[number] = redact.names_someone(fields)
    if not naming.any():
        return np.zeros(len(frame), dtype=bool)
    ts = frame["ts"].array.asi8
    earliest = np.full(len(keys), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(earliest, inverse, ts)
    first: np.ndarray = naming[inverse] & (ts == earliest[inverse])
    return first


@dataclass(frozen=True)
class AfterRead:
    """What the reading does with a file's result before it hands it back: write its every
    event as Parquet (`events_to`, report/parquet.py), then cut it down (`keep`)."""

    keep: Keep | None = None
    events_to: str | None = None

    def __call__(self, result: FileResult) -> FileResult:
        frame = None
        if self.events_to and result.skeleton is None and len(result.batch):
            frame = timeline.build_frame([result.batch])  # once, for both
            parquet.write_part(frame, result.report.display, self.events_to)
        return self.keep(result, frame) if self.keep else result
