"""The summary of every event (evtxdoc/event_summary.py) answers what the rows answered, and the
rows spilled to disk are the rows of the timeline."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from evtxdoc import pipeline, timeline
from evtxdoc.bundle import discover
from evtxdoc.errors import InputError
from evtxdoc.event_store import EventStore, _repeated_in_file
from evtxdoc.event_summary import (
    ROW_COLUMNS,
    FrameRows,
    hosts_met,
    joined,
    last_by_host,
    summarize,
)
from evtxdoc.models import AnalyzeOptions
from evtxdoc.parse.batch import ColumnBatch
from evtxdoc.parse.files import read_files
from evtxdoc.parse.payload import EMPTY_PAYLOAD
from evtxdoc.partition import Keep
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


@pytest.mark.parametrize("name", ["device-clock-wrong", "multi-device-two-connectors"])
def test_the_store_s_summary_and_rows_are_those_of_the_whole_timeline(
    name: str, tmp_path: Path
) -> None:
    """Each file's events taken as they arrive, spilled, and read back for some hosts: the
    rows and the summary the whole timeline gives."""
    files = discover([ROOT / "sample_logs" / name / "bundle"], tmp_path, AnalyzeOptions())
    whole, _ = pipeline.assemble(read_files(files.log_files, workers=1))
    keep = Keep(sample=0)
    store = EventStore(tmp_path / "rows", len(files.log_files), keep)
    arrived = read_files(files.log_files, workers=1, keep=keep, arrive=store.receive)
    assert all(r.skeleton is None and not len(r.batch) for r in arrived)  # all on disk
    frame, summary, repeated = store.finish()
    assert len(frame) < len(whole) and not len(repeated)
    assert timeline.coverage(summary) == timeline.coverage(whole)
    assert hosts_met(summary) == hosts_met(summarize(whole))
    hosts = {str(h).lower() for h in whole["host"].unique()}
    for wanted in (hosts, {sorted(hosts)[0], "no-such-host"}, set()):
        got, expected = store.rows(wanted), FrameRows(whole).rows(wanted)
        assert list(got.columns) == list(ROW_COLUMNS)
        key = ["source_file", "channel", "record_id"]
        got = got.astype(str).sort_values(key).reset_index(drop=True)
        expected = expected.astype(str).sort_values(key).reset_index(drop=True)
        pd.testing.assert_frame_equal(got, expected)


def test_a_file_s_repeated_events_are_those_the_timeline_drops() -> None:
    """Rows out of record order, some repeated (a host, channel, record id, time or event id
    apart is another event): the store's test in one file is the timeline's."""
    batch = ColumnBatch("f.evtx")
    rows = [(5, 1, "H", "C"), (3, 1, "H", "C"), (5, 1, "H", "C"), (5, 2, "H", "C"),
            (5, 1, "H2", "C"), (3, 1, "H", "C"), (5, 1, "H", "C2"), (4, 1, "H", "C")]  # fmt: skip
    for record_id, event_id, host, channel in rows:
        batch.append_row((100 * record_id, event_id, 0, 4, 0, 0, record_id, host, channel,
                          "P", None, None, None, EMPTY_PAYLOAD, True, record_id))  # fmt: skip
    batch.close()
    expected = timeline.repeated(timeline.build_frame([batch]))
    assert expected.tolist() == [False, False, True, False, False, True, False, False]
    assert _repeated_in_file(batch.skeleton()).tolist() == expected.tolist()


def test_a_full_disk_for_the_spilled_events_is_a_clear_error(tmp_path: Path) -> None:
    files = discover(
        [ROOT / "sample_logs" / "healthy-hybrid" / "bundle"], tmp_path, AnalyzeOptions()
    )
    keep = Keep(sample=0)
    store = EventStore(tmp_path / "rows", len(files.log_files), keep)
    (tmp_path / "rows" / "ts.bin").mkdir()  # where the first column would go: not writable
    (result,) = read_files(files.log_files[:1], workers=1)
    with pytest.raises(InputError, match="cannot write the events' columns") as caught:
        store.receive(0, result)
    assert "TMPDIR" in (caught.value.hint or "")
