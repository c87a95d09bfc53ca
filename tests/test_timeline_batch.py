"""ColumnBatch: rows → typed columns, a block at a time, without losing or bending values."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest

from evtxdoc import timeline
from evtxdoc.parse.batch import BLOCK_ROWS, ColumnBatch
from evtxdoc.parse.payload import EMPTY_PAYLOAD
from evtxdoc.timeline import append, build_frame


def _row(ts=0, event_id=1, level=4, record_id=1, host="H", channel="C", activity=None):
    return (
        ts,
        event_id,
        0,
        level,
        0,
        0,
        record_id,
        host,
        channel,
        "P",
        activity,
        None,
        None,
        EMPTY_PAYLOAD,
        True,
        record_id,
    )


def test_values_out_of_range_are_clamped_not_fatal():
    batch = ColumnBatch("f")
    batch.append_rows(
        [
            _row(ts=2**70, event_id=2**40, level=300, record_id=-(2**80)),
            _row(event_id=-(2**40), level=-300),
        ]
    )
    batch.flush()
    assert batch.numeric("ts").tolist() == [2**63 - 1, 0]
    assert batch.numeric("event_id").tolist() == [2**31 - 1, -(2**31)]
    assert batch.numeric("level").tolist() == [127, -128]
    assert batch.numeric("record_id").tolist() == [-(2**63), 1]


def test_blocks_of_one_value_and_of_many_give_the_same_columns():
    """A block whose host is one value takes a shortcut; mixed blocks and missing values do
    not. Both must give each row its own value back."""
    rng = random.Random(5)
    rows = []
    for index in range(3 * BLOCK_ROWS + 17):
        block = index // BLOCK_ROWS
        host = "H1" if block != 1 else rng.choice(["H1", "H2", "H3"])
        activity = None if block == 0 else rng.choice([None, "{A}", "{B}"])
        rows.append(_row(ts=index, record_id=index, host=host, activity=activity))
    batch = ColumnBatch("f")
    for start in range(0, len(rows), 1000):
        batch.append_rows(rows[start : start + 1000])
    frame = build_frame([batch])
    assert frame["host"].astype(str).tolist() == [r[7] for r in rows]
    assert [None if pd.isna(v) else v for v in frame["activity_id"]] == [r[10] for r in rows]
    assert frame["record_id"].tolist() == list(range(len(rows)))


def test_a_written_time_is_kept_in_the_column():
    batch = ColumnBatch("f")
    batch.append_rows([_row(ts=5), _row(ts=6)])
    batch.flush()
    batch.numeric("ts")[1] = 60
    assert build_frame([batch])["ts"].array.asi8.tolist() == [5, 60]


def test_columns_read_before_a_flush_hold_every_row():
    batch = ColumnBatch("f")
    batch.append_rows([_row(ts=1), _row(ts=2)])  # fewer than a block: still buffered
    assert batch.numeric("ts").tolist() == [1, 2]
    assert batch.codes("host").tolist() == [0, 0]
    assert len(batch.payload) == 2


def test_equal_payloads_are_kept_as_one_object():
    batch = ColumnBatch("f")
    text = '{"EventData":{"A":"1"}}'
    first, second = text.encode(), text.encode()  # equal, but two objects (as rows bring them)
    assert first is not second
    batch.append_rows(
        [
            (*_row()[:13], first, True, 1),
            (*_row()[:13], second, True, 1),
            (*_row()[:13], b'{"EventData":{"A":"2"}}', True, 1),
        ]
    )
    batch.close()
    assert batch.payload[0] is batch.payload[1]
    assert batch.payload[1:] == [second, b'{"EventData":{"A":"2"}}']


def test_append_inserts_rows_in_time_order_and_unites_categories():
    base = ColumnBatch("logs.evtx")
    base.append_rows([_row(ts=t, record_id=i, host="DEV") for i, t in enumerate((10, 20, 20, 40))])
    extra = ColumnBatch("AutopilotDDSZTDFile.json")
    extra.append_rows(
        [
            _row(ts=45, host="DEV", channel="Supporting/x"),
            _row(ts=5, host="OTHER", channel="Supporting/y"),
            _row(ts=20, host="DEV", channel="Supporting/z"),
        ]
    )
    joined = append(build_frame([base]), build_frame([extra]))
    assert joined["ts"].array.asi8.tolist() == [5, 10, 20, 20, 20, 40, 45]
    assert joined["channel"].astype(str).tolist() == [
        "Supporting/y",
        "C",
        "C",
        "C",
        "Supporting/z",
        "C",
        "Supporting/x",
    ]  # equal: after
    assert set(joined["host"].cat.categories) == {"DEV", "OTHER"}
    assert joined["source_file"].astype(str).tolist().count("AutopilotDDSZTDFile.json") == 3


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_repeated_rows_are_pandas_duplicated_rows(seed: int) -> None:
    """timeline.repeated (one hash per row, the exact test on hash collisions only) marks the
    rows `duplicated(DEDUP_KEY, keep="first")` marks, whatever the other columns hold."""
    rng = np.random.default_rng(seed)
    count = 4000
    frame = pd.DataFrame(
        {
            "host": pd.Categorical(rng.choice(["A", "B", "c", None], count)),
            "channel": pd.Categorical(rng.choice(["System", "Setup"], count)),
            "record_id": rng.integers(0, 300, count),
            "ts": pd.to_datetime(rng.integers(0, 50, count), unit="s", utc=True),
            "event_id": rng.choice([1, 2, 4098], count).astype(np.int32),
            "source_file": pd.Categorical(rng.choice(["a.evtx", "b.evtx"], count)),
        }
    )
    expected = frame.duplicated(subset=timeline.DEDUP_KEY, keep="first").to_numpy()
    assert 0 < expected.sum() < count
    assert (timeline.repeated(frame) == expected).all()
