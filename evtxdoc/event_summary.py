"""Every event of an analysis, summarized: one row per (file, host, channel, provider).

What the stages after ingest ask of *every* event — which hosts and channels each file holds,
how many events, the first and the last (coverage, machines and their roles, a host's last
event, the providers of a host) — a summary answers, and a fleet's summary is a few rows per
device file where its events are millions (issue 22). The one question it cannot answer, which
events lie between a machine's clock sets (correlate/clock.py), asks for rows: `EventRows.rows`
gives those of some hosts, from the timeline when it holds every event, or from the events'
skeleton spilled to disk by a partitioned run (`SpilledRows`), read back only for those hosts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

GROUP = ["source_file", "host", "channel", "provider"]
SUMMARY_COLUMNS = (*GROUP, "ts", "last", "events", "first_record")
ROW_COLUMNS = ("source_file", "host", "channel", "record_id", "ts")  # what `rows` gives


def summarize(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame of events (the timeline, or a skeleton: SKELETON_COLUMNS) → its summary: per
    (file, host, channel, provider) the first (`ts`) and last time, the count and the lowest
    record id, ordered as those groups first appear in the sorted timeline. A summary is
    returned as it is."""
    if "events" in frame.columns:
        return frame
    grouped = frame.groupby(GROUP, observed=True, sort=False, dropna=False)
    stats = grouped.agg(
        ts=("ts", "min"),
        last=("ts", "max"),
        events=("ts", "size"),
        first_record=("record_id", "min"),
    )
    summary = stats.reset_index()
    for name in GROUP:  # categories as the frame's: every name read, met or not
        if isinstance(frame[name].dtype, pd.CategoricalDtype):
            summary[name] = pd.Categorical(summary[name], categories=frame[name].cat.categories)
    summary["events"] = summary["events"].astype(np.int64)
    # the order in which a sorted timeline first shows each group (hosts are then met in
    # the same order: a name told apart only by case keeps the spelling met last)
    ordered = summary.sort_values(["ts", "host", "channel", "first_record"], kind="stable")
    return ordered.reset_index(drop=True)[list(SUMMARY_COLUMNS)]


def joined(first: pd.DataFrame, extra: pd.DataFrame) -> pd.DataFrame:
    """Two summaries as one, categories united, in first-seen order."""
    if not len(extra):
        return first
    if not len(first):
        return extra
    parts = {}
    for name in SUMMARY_COLUMNS:
        left, right = first[name], extra[name]
        if isinstance(left.dtype, pd.CategoricalDtype):
            united = pd.api.types.union_categoricals([left.array, right.array])
            parts[name] = pd.Series(united, name=name)
        else:
            parts[name] = pd.concat([left, right], ignore_index=True)
    both = pd.DataFrame(parts, columns=list(SUMMARY_COLUMNS))
    ordered = both.sort_values(["ts", "host", "channel", "first_record"], kind="stable")
    return ordered.reset_index(drop=True)


def last_by_host(summary: pd.DataFrame) -> dict[str, int]:
    """Each host's last event time (ns)."""
    if not len(summary):
        return {}
    last = summary.groupby(summary["host"].astype(str), observed=True)["last"].max()
    return {str(host): int(stamp.value) for host, stamp in last.items()}


def hosts_met(summary: pd.DataFrame) -> list[str]:
    """The hosts in the order the sorted timeline first shows them."""
    return [str(h) for h in summary["host"].unique()] if len(summary) else []


class EventRows(Protocol):
    """The rows of some hosts' events (ROW_COLUMNS), for the few questions a summary cannot
    answer."""

    def rows(self, hosts: set[str]) -> pd.DataFrame: ...


class FrameRows:
    """Rows from a frame that holds every event (the timeline of a whole run)."""

    def __init__(self, frame: pd.DataFrame):
        self.frame = frame

    def rows(self, hosts: set[str]) -> pd.DataFrame:
        return _of_hosts(self.frame, hosts)


class SpilledRows:
    """Rows from every event's skeleton written to `folder` as .npy columns (memory-mapped
    when read), so that a partitioned run holds none of them in memory."""

    def __init__(self, skeleton: pd.DataFrame, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.categories: dict[str, pd.Index] = {}
        for name in ROW_COLUMNS:
            column = skeleton[name]
            if isinstance(column.dtype, pd.CategoricalDtype):
                self.categories[name] = column.cat.categories
                values = column.cat.codes.to_numpy()
            else:
                values = column.array.asi8 if name == "ts" else column.to_numpy()
            np.save(folder / f"{name}.npy", values, allow_pickle=False)

    def rows(self, hosts: set[str]) -> pd.DataFrame:
        codes = np.load(self.folder / "host.npy", mmap_mode="r")
        host_names = self.categories["host"]
        wanted = [i for i, h in enumerate(host_names) if str(h).lower() in hosts]
        chosen = np.flatnonzero(np.isin(codes, wanted))
        data: dict[str, object] = {}
        for name in ROW_COLUMNS:
            values = np.load(self.folder / f"{name}.npy", mmap_mode="r")[chosen]
            if name in self.categories:
                data[name] = pd.Categorical.from_codes(values, categories=self.categories[name])
            elif name == "ts":
                data[name] = pd.to_datetime(values, unit="ns", utc=True)
            else:
                data[name] = values
        return pd.DataFrame(data, columns=list(ROW_COLUMNS))


def _of_hosts(frame: pd.DataFrame, hosts: set[str]) -> pd.DataFrame:
    if not len(frame):
        return frame.loc[:, list(ROW_COLUMNS)]
    lowered = frame["host"].astype(str).str.lower()
    return frame.loc[lowered.isin(hosts).to_numpy(), list(ROW_COLUMNS)]
