"""Where a partitioned run keeps every event: on disk, with a summary in memory (issue 22).

Each read file's result arrives with its skeleton (every event as time, event id, record id,
host, channel, provider: parse/batch.Skeleton). `EventStore.receive` takes it as it arrives:
drops the file's repeated events, keeps the file's summary (per host, channel and provider:
first and last time, count, lowest record id — a few rows where the events are millions),
appends the skeleton's columns to files on disk and lets the skeleton go. So the coordinating
process holds the rows something reads and the summaries, never every event.

`finish` then does what needs more than one file: the events seen again in a later file of the
same host and channel (a log collected twice) are found among those files only, and their rows
read back from disk; and `rows` reads back the rows of some hosts for the one question a
summary cannot answer (which events lie between a machine's clock sets, correlate/clock.py).
The result is the one the whole timeline gives (tests/test_partition.py).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from evtxdoc import timeline
from evtxdoc.errors import InputError, InternalError
from evtxdoc.event_summary import ROW_COLUMNS, SUMMARY_COLUMNS, in_order
from evtxdoc.parse.batch import ColumnBatch, Skeleton
from evtxdoc.parse.reader import FileResult
from evtxdoc.parse.watchdog import Finish

COLUMNS = {  # spilled column → dtype
    "ts": np.int64,
    "event_id": np.int32,
    "record_id": np.int64,
    "host": np.int32,
    "channel": np.int32,
    "provider": np.int32,
}
CODED = ("host", "channel", "provider")


@dataclass
class _Part:
    """What stays in memory of one file: its kept rows, summary and place on disk."""

    source: str
    batch: ColumnBatch
    kept: np.ndarray  # positions of `batch`'s rows among the file's (unrepeated) events
    categories: dict[str, list[str]]  # host, channel, provider: code → name
    groups: dict[str, np.ndarray]  # the summary: codes of each group, and its figures
    start: int  # where the file's events begin in the spilled columns (rows)
    length: int
    repeated: int  # events already seen in this file


class EventStore:
    """Every event of the files received, spilled to `folder`; see the module docstring."""

    def __init__(self, folder: Path, files: int, keep: Finish):
        self.folder = folder
        self.keep = keep  # for a result that arrives whole (read where it was not applied)
        folder.mkdir(parents=True, exist_ok=True)
        self.parts: list[_Part | None] = [None] * files
        self.spilled = 0
        self.events = 0

    def receive(self, index: int, result: FileResult) -> FileResult:
        """Take file `index`'s result as it arrives; returns it without its skeleton."""
        if result.skeleton is None:  # read whole elsewhere (none, normally)
            result = self.keep(result)
        skeleton, kept, batch = result.skeleton, result.kept, result.batch
        if skeleton is None or kept is None:
            raise InternalError(f"{result.report.display}: the cut gave no skeleton")
        again = _repeated_in_file(skeleton)
        columns = {name: _column(skeleton, name) for name in COLUMNS}
        if again.any():
            batch, kept = _without(batch, kept, again)
            columns = {name: values[~again] for name, values in columns.items()}
        categories = {name: _names(skeleton.categories[name]) for name in CODED}
        start = self._spill(columns)
        self.parts[index] = _Part(
            skeleton.source_file,
            batch,
            kept,
            categories,
            _groups(columns),
            start,
            len(columns["ts"]),
            int(again.sum()),
        )
        self.events += len(skeleton)
        return replace(result, batch=ColumnBatch(skeleton.source_file), skeleton=None, kept=None)

    def _spill(self, columns: dict[str, np.ndarray]) -> int:
        start = self.spilled
        try:
            for name, values in columns.items():
                with (self.folder / f"{name}.bin").open("ab") as out:
                    out.write(np.ascontiguousarray(values, dtype=COLUMNS[name]).tobytes())
        except OSError as exc:  # a full disk: the run cannot hold its events
            raise InputError(
                f"cannot write the events' columns to {self.folder} ({exc.strerror or exc})",
                hint="free space there (about 36 bytes an event), or point TMPDIR at a disk "
                "with room; --events all keeps every event in memory instead",
            ) from exc
        self.spilled += len(columns["ts"])
        return start

    def _read(self, part: _Part, name: str) -> np.ndarray:
        dtype = np.dtype(COLUMNS[name])
        return np.fromfile(
            self.folder / f"{name}.bin",
            dtype=dtype,
            count=part.length,
            offset=part.start * dtype.itemsize,
        )

    def finish(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
        """(timeline of the kept rows, sorted; summary of every event; events repeated per
        file), each event once."""
        parts = [p for p in self.parts if p is not None]
        dropped = {p.source: p.repeated for p in parts if p.repeated}
        for part, again in self._across_files(parts):
            part.batch, part.kept = _without(part.batch, part.kept, again)
            columns = {name: self._read(part, name)[~again] for name in COLUMNS}
            part.start, part.length = self._spill(columns), int((~again).sum())
            part.groups = _groups(columns)
            dropped[part.source] = dropped.get(part.source, 0) + int(again.sum())
        frame = timeline.build_frame([p.batch for p in parts])
        for part in parts:
            part.batch = ColumnBatch(part.source)
        summary = self._summary(parts)
        counts = pd.Series(dropped, dtype=np.int64)
        return timeline.sorted_frame(frame), summary, counts[counts > 0]

    def _across_files(self, parts: list[_Part]) -> list[tuple[_Part, np.ndarray]]:
        """For each file that shares a host and channel with another, which of its events an
        earlier file holds (every copy alike: host, channel, record id, time, event id)."""
        pairs = [_pairs(part) for part in parts]
        holders: dict[tuple[str, str], int] = {}
        for held in pairs:
            for pair in held:
                holders[pair] = holders.get(pair, 0) + 1
        shared = [
            p for p, held in zip(parts, pairs, strict=True) if any(holders[h] > 1 for h in held)
        ]
        if len(shared) < 2:
            return []
        rows = self._skeleton_frame(shared)
        again = timeline.repeated(rows)
        bounds = np.cumsum([0, *(p.length for p in shared)])
        out = []
        for number, part in enumerate(shared):
            mine = again[bounds[number] : bounds[number + 1]]
            if mine.any():
                out.append((part, mine))
        return out

    def _skeleton_frame(self, parts: list[_Part], hosts: set[str] | None = None) -> pd.DataFrame:
        """These files' events read back (only those of `hosts`, lower case, when given), with
        host, channel, provider and source file as categoricals."""
        pieces: dict[str, list[np.ndarray]] = {name: [] for name in (*COLUMNS, "source_file")}
        names: dict[str, dict[str, int]] = {name: {} for name in (*CODED, "source_file")}
        for part in parts:
            columns = {name: self._read(part, name) for name in COLUMNS}
            if hosts is not None:
                wanted = [i for i, h in enumerate(part.categories["host"]) if h.lower() in hosts]
                chosen = np.isin(columns["host"], wanted)
                columns = {name: values[chosen] for name, values in columns.items()}
            for name in COLUMNS:
                values = columns[name]
                if name in CODED:
                    values = _remap(values, part.categories[name], names[name])
                pieces[name].append(values)
            code = names["source_file"].setdefault(part.source, len(names["source_file"]))
            pieces["source_file"].append(np.full(len(columns["ts"]), code, dtype=np.int32))
        return _frame_of(pieces, names, times=("ts",))

    def rows(self, hosts: set[str]) -> pd.DataFrame:
        """The events of these hosts (lower case), read back from disk (ROW_COLUMNS)."""
        parts = [
            p
            for p in self.parts
            if p is not None and any(h.lower() in hosts for h in p.categories["host"])
        ]
        return self._skeleton_frame(parts, hosts).loc[:, list(ROW_COLUMNS)]

    def _summary(self, parts: list[_Part]) -> pd.DataFrame:
        """Every file's summary as one frame (event_summary.SUMMARY_COLUMNS), categories in
        file order, rows as the sorted timeline first shows each group."""
        names: dict[str, dict[str, int]] = {name: {} for name in (*CODED, "source_file")}
        pieces: dict[str, list[np.ndarray]] = {name: [] for name in SUMMARY_COLUMNS}
        for part in parts:
            for name in CODED:  # every name read, as the skeleton's categories hold them
                for value in part.categories[name]:
                    names[name].setdefault(value, len(names[name]))
            code = names["source_file"].setdefault(part.source, len(names["source_file"]))
            groups = part.groups
            for name in CODED:
                pieces[name].append(_remap(groups[name], part.categories[name], names[name]))
            pieces["source_file"].append(np.full(len(groups["ts"]), code, dtype=np.int32))
            for name in ("ts", "last", "events", "first_record"):
                pieces[name].append(groups[name])
        return in_order(_frame_of(pieces, names, times=("ts", "last")))


def _without(
    batch: ColumnBatch, kept: np.ndarray, again: np.ndarray
) -> tuple[ColumnBatch, np.ndarray]:
    """A file's kept rows without the events `again` marks (over all its events), and their
    positions among the events that stay."""
    survives = ~again
    stay = survives[kept]
    return batch.take(np.flatnonzero(stay)), (np.cumsum(survives) - 1)[kept[stay]]


def _frame_of(
    pieces: dict[str, list[np.ndarray]], names: dict[str, dict[str, int]], times: tuple[str, ...]
) -> pd.DataFrame:
    """Columns from their parts (in `pieces`' order): codes into `names` as categoricals,
    `times` (ns) as UTC datetimes, the rest as they are."""
    data: dict[str, object] = {}
    for name, arrays in pieces.items():
        values = np.concatenate(arrays) if arrays else np.empty(0, dtype=np.int64)
        if name in names:
            data[name] = pd.Categorical.from_codes(
                values.astype(np.int32), categories=pd.Index(list(names[name]), dtype=str)
            )
        elif name in times:
            data[name] = pd.to_datetime(values.astype(np.int64), unit="ns", utc=True)
        else:
            data[name] = values
    return pd.DataFrame(data, columns=list(pieces))


def _column(skeleton: Skeleton, name: str) -> np.ndarray:
    return skeleton.codes(name) if name in CODED else skeleton.numeric(name)


def _names(index: dict[str, int]) -> list[str]:
    names = [""] * len(index)
    for value, code in index.items():
        names[code] = value
    return names


def _remap(codes: np.ndarray, local: list[str], merged: dict[str, int]) -> np.ndarray:
    """A file's codes into the merged names (added in the file's order); −1 stays −1."""
    table = np.empty(len(local) + 1, dtype=np.int32)
    for code, value in enumerate(local):
        table[code] = merged.setdefault(value, len(merged))
    table[-1] = -1
    remapped: np.ndarray = table[codes]
    return remapped


def _pairs(part: _Part) -> set[tuple[str, str]]:
    hosts, channels = part.categories["host"], part.categories["channel"]
    codes = part.groups
    return {
        (hosts[h] if h >= 0 else "", channels[c] if c >= 0 else "")
        for h, c in zip(codes["host"].tolist(), codes["channel"].tolist(), strict=True)
    }


def _repeated_in_file(skeleton: Skeleton) -> np.ndarray:
    """Which of one file's events an earlier one of the file repeats (host, channel, record
    id, time and event id alike); no sort when the record ids rise, as they do in a log."""
    record_ids = skeleton.numeric("record_id")
    if len(record_ids) < 2 or bool((record_ids[1:] > record_ids[:-1]).all()):
        return np.zeros(len(record_ids), dtype=bool)
    keys = [skeleton.numeric(n) for n in ("event_id", "ts", "record_id")]
    keys += [skeleton.codes(n) for n in ("channel", "host")]
    order = np.lexsort(keys)  # stable: of equal rows, the first read comes first
    same = np.ones(len(order) - 1, dtype=bool)
    for values in keys:
        ordered = values[order]
        same &= ordered[1:] == ordered[:-1]
    again = np.zeros(len(record_ids), dtype=bool)
    again[order[1:][same]] = True
    return again


def _groups(columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One file's events summarized per (host, channel, provider): codes, first and last
    time, count, lowest record id."""
    ts = columns["ts"]
    if not len(ts):
        empty = np.empty(0, dtype=np.int64)
        return {**{n: empty.astype(np.int32) for n in CODED}, "ts": empty, "last": empty,
                "events": empty, "first_record": empty}  # fmt: skip
    sizes = [int(columns[n].max()) + 2 for n in CODED]  # +1 for −1 (missing)
    key = (columns["host"].astype(np.int64) + 1) * sizes[1] + (columns["channel"] + 1)
    key = key * sizes[2] + (columns["provider"] + 1)
    order = np.argsort(key, kind="stable")
    ordered = key[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    firsts = order[starts]
    return {
        **{n: columns[n][firsts].astype(np.int32) for n in CODED},
        "ts": np.minimum.reduceat(ts[order], starts),
        "last": np.maximum.reduceat(ts[order], starts),
        "events": np.diff(np.r_[starts, len(order)]).astype(np.int64),
        "first_record": np.minimum.reduceat(columns["record_id"][order], starts),
    }
