"""The summary of every event (evtxdoc/event_summary.py) answers what the rows answered, and the
rows spilled to disk are the rows of the timeline."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from evtxdoc import pipeline, timeline
from evtxdoc.event_summary import (
    ROW_COLUMNS,
    FrameRows,
    SpilledRows,
    hosts_met,
    joined,
    last_by_host,
    summarize,
)
from evtxdoc.models import AnalyzeOptions
from tests.conftest import ROOT

BUNDLES = ["multi-device-two-connectors", "device-clock-wrong", "exchange-large-org"]


@pytest.fixture(scope="module", params=BUNDLES)
def whole(request: pytest.FixtureRequest) -> pd.DataFrame:
    bundle = ROOT / "sample_logs" / request.param / "bundle"
    return pipeline.analyze([bundle], AnalyzeOptions(all_events=True)).timeline


def test_the_summary_counts_every_event_once_with_its_first_and_last_time(
    whole: pd.DataFrame,
) -> None:
    summary = summarize(whole)
    assert int(summary["events"].sum()) == len(whole)
    by_group = whole.groupby(["source_file", "host", "channel", "provider"], observed=True)
    assert len(summary) == by_group.ngroups
    assert summary["ts"].min() == whole["ts"].min()
    assert summary["last"].max() == whole["ts"].max()
    assert summarize(summary) is summary  # a summary is returned as it is


def test_coverage_last_events_and_host_order_are_those_of_the_rows(whole: pd.DataFrame) -> None:
    summary = summarize(whole)
    assert timeline.coverage(summary) == timeline.coverage(whole)
    rows_last = whole.groupby(whole["host"].astype(str), observed=True)["ts"].max()
    assert last_by_host(summary) == {h: t.value for h, t in rows_last.items()}
    assert hosts_met(summary) == [str(h) for h in whole["host"].unique()]


def test_joining_two_summaries_is_the_summary_of_both(whole: pd.DataFrame) -> None:
    half = len(whole) // 2
    first, second = whole.iloc[:half], whole.iloc[half:]
    both = joined(summarize(first), summarize(second))
    assert int(both["events"].sum()) == len(whole)
    assert timeline.coverage(both) == timeline.coverage(whole)


def test_rows_spilled_to_disk_are_the_timeline_s_rows_of_those_hosts(
    whole: pd.DataFrame, tmp_path: Path
) -> None:
    spilled = SpilledRows(whole, tmp_path / "rows")
    in_memory = FrameRows(whole)
    hosts = {str(h).lower() for h in whole["host"].unique()}
    some = {sorted(hosts)[0], "no-such-host"}
    for wanted in (hosts, some, set()):
        got, expected = spilled.rows(wanted), in_memory.rows(wanted)
        assert list(got.columns) == list(ROW_COLUMNS)
        assert len(got) == len(expected)
        for name in ROW_COLUMNS:
            assert got[name].astype(str).tolist() == expected[name].astype(str).tolist()
    assert set(spilled.rows(some)["host"].astype(str).str.lower()) <= some
