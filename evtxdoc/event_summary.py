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

from typing import Protocol

import numpy as np
import pandas as pd

GROUP = ["source_file", "host", "channel", "provider"]
SUMMARY_COLUMNS = (*GROUP, "ts", "last", "events", "first_record")
ROW_COLUMNS = ("source_file", "host", "channel", "record_id", "ts")  # what `rows` gives


def summarize(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame of events (the timeline, or rows of its columns) → its summary: per
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
    return in_order(summary[list(SUMMARY_COLUMNS)])


def in_order(summary: pd.DataFrame) -> pd.DataFrame:
    """A summary's rows in the order a sorted timeline first shows each group (so hosts are
    met in the same order: a name told apart only by case keeps the spelling met last)."""
    ordered = summary.sort_values(["ts", "host", "channel", "first_record"], kind="stable")
    return ordered.reset_index(drop=True)


def joined(first: pd.DataFrame, extra: pd.DataFrame) -> pd.DataFrame:
    """Two summaries as one, categories united, in first-seen order."""
    if not len(extra):
        return first
    if not len(first):
        return extra
    return in_order(stacked(first, extra))


def stacked(first: pd.DataFrame, extra: pd.DataFrame) -> pd.DataFrame:
    """`extra`'s rows after `first`'s (the same columns), categorical columns' categories
    united (first's, then extra's new ones)."""
    parts = {}
    for name in first.columns:
        left, right = first[name], extra[name]
        if isinstance(left.dtype, pd.CategoricalDtype):
            united = pd.api.types.union_categoricals([left.array, right.array])
            parts[name] = pd.Series(united, name=name)
        else:
            parts[name] = pd.concat([left, right], ignore_index=True)
    return pd.DataFrame(parts, columns=list(first.columns))


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


def _of_hosts(frame: pd.DataFrame, hosts: set[str]) -> pd.DataFrame:
    if not len(frame):
        return frame.loc[:, list(ROW_COLUMNS)]
    lowered = frame["host"].astype(str).str.lower()
    return frame.loc[lowered.isin(hosts).to_numpy(), list(ROW_COLUMNS)]
