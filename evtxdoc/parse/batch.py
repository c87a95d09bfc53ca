"""The reader's output: one file's events as typed columns (`ColumnBatch`), filled a block of
rows at a time; the timeline joins the batches into one DataFrame."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from evtxdoc.parse.normalize import Row

ROW_CATEGORICAL = ("host", "channel", "provider", "activity_id", "user_sid")
NUMERIC = {  # column -> numpy dtype; order == normalize.Row order
    "ts": "int64",
    "event_id": "int32",
    "qualifiers": "int32",
    "level": "int8",
    "task": "int32",
    "opcode": "int16",
    "record_id": "int64",
}


BLOCK_ROWS = 4096  # rows buffered as tuples before they are turned into columns


class ColumnBatch:
    """The columns of one file's events, filled row by row; picklable for worker processes.

    Rows are buffered as tuples and turned into columns a block at a time: `zip(*rows)` and
    `np.fromiter` do the per-value work in C (`array.extend` parses each value through
    `PyArg_Parse`, several times slower), and a categorical column whose block holds one value
    (host, channel and provider, nearly always) is filled without looking each value up.
    """

    def __init__(self, source_file: str = "") -> None:
        self.source_file = source_file
        self._numeric: dict[str, list[np.ndarray]] = {name: [] for name in NUMERIC}
        self._codes: dict[str, list[np.ndarray]] = {name: [] for name in ROW_CATEGORICAL}
        self.categories: dict[str, dict[str, int]] = {name: {} for name in ROW_CATEGORICAL}
        self.message: list[str | None] = []
        self.payload: list[bytes] = []
        self._payloads: dict[bytes, bytes] = {}  # one object per distinct payload (interned)
        self._pending: list[Row] = []
        # While a file is read: each row's exact_time and header id (Row's last two values),
        # for the reader's de-duplication and time refinement; dropped by `close`.
        self._reading: dict[str, list[np.ndarray]] = {"exact_time": [], "header_id": []}

    def __len__(self) -> int:
        return len(self.payload) + len(self._pending)

    def __getstate__(self) -> dict[str, Any]:
        self.close()
        for name in NUMERIC:
            self.numeric(name)
        for name in ROW_CATEGORICAL:
            self.codes(name)
        return self.__dict__.copy()

    def close(self) -> None:
        """No more rows: flush, and drop the index that interns payloads (rows still appended
        after this work, but their payloads are no longer shared)."""
        self.flush()
        self._payloads = {}
        self._reading = {"exact_time": [], "header_id": []}

    def reading(self, name: str) -> np.ndarray:
        """`exact_time` (bool) or `header_id` (int64) of every row, until `close`."""
        self.flush()
        return _joined(self._reading[name], "bool" if name == "exact_time" else "int64")

    def numeric(self, name: str) -> np.ndarray:
        """A numeric column (see NUMERIC) as one array; writes to it are kept."""
        self.flush()
        return _joined(self._numeric[name], NUMERIC[name])

    def codes(self, name: str) -> np.ndarray:
        """A categorical column's codes into `categories[name]` (-1: missing)."""
        self.flush()
        return _joined(self._codes[name], "int32")

    def append_row(self, row: Row) -> None:
        """Append one normalize row: 7 numeric values, 5 categorical, message, payload,
        exact_time, header id."""
        self.append_rows([row])

    def append_rows(self, rows: list[Row]) -> None:
        """Append a block of rows at once (ingest's way: no call per row)."""
        self._pending.extend(rows)
        if len(self._pending) >= BLOCK_ROWS:
            self.flush()

    def flush(self) -> None:
        """Turn the buffered rows into columns (done before anyone reads the columns)."""
        rows = self._pending
        if not rows:
            return
        self._pending = []
        count = len(rows)
        columns = list(zip(*rows, strict=False))
        for (name, dtype), values in zip(NUMERIC.items(), columns[:7], strict=True):
            self._numeric[name].append(_int_column(values, dtype))
        for offset, name in enumerate(ROW_CATEGORICAL, start=7):
            values = columns[offset]
            index = self.categories[name]
            first = values[0]
            if values.count(first) == count:
                code = -1 if first is None else index.setdefault(first, len(index))
                self._codes[name].append(np.full(count, code, dtype=np.int32))
                continue
            for value in set(values).difference(index):
                if value is not None:
                    index[value] = len(index)
            lookup: Any = {**index, None: -1} if None in values else index  # None: missing
            self._codes[name].append(
                np.fromiter(map(lookup.__getitem__, values), dtype=np.int32, count=count)
            )
        self._reading["exact_time"].append(np.fromiter(columns[14], dtype=bool, count=count))
        self._reading["header_id"].append(_int_column(columns[15], "int64"))
        self.message.extend(columns[12])
        # Logs repeat EventData a lot (1,875 distinct payloads in 28,645 Security records): keep
        # one bytes object per distinct payload, so memory holds each once.
        payloads = columns[13]
        self.payload.extend(map(self._payloads.setdefault, payloads, payloads))

    def take(self, positions: np.ndarray) -> ColumnBatch:
        """These rows (positions in row order) as a new batch with the same categories, so
        that batches merged from parts keep the order of categories the whole ones give."""
        part = ColumnBatch(self.source_file)
        part.categories = {name: dict(index) for name, index in self.categories.items()}
        for name in NUMERIC:
            part._numeric[name] = [self.numeric(name)[positions]]
        for name in ROW_CATEGORICAL:
            part._codes[name] = [self.codes(name)[positions]]
        for name, parts in self._reading.items():
            values = self.reading(name) if parts else None
            if values is not None and len(values) == len(self):  # not after `close`
                part._reading[name] = [values[positions]]
        chosen = positions.tolist()
        part.message = [self.message[i] for i in chosen]
        part.payload = [self.payload[i] for i in chosen]
        return part

    def skeleton(self) -> Skeleton:
        """Every row reduced to what says an event exists (see Skeleton)."""
        return Skeleton(
            self.source_file,
            {name: self.numeric(name) for name in SKELETON_NUMERIC},
            {name: self.codes(name) for name in SKELETON_CATEGORICAL},
            {name: dict(self.categories[name]) for name in SKELETON_CATEGORICAL},
        )


SKELETON_NUMERIC = ("ts", "event_id", "record_id")
SKELETON_CATEGORICAL = ("host", "channel", "provider")


@dataclass
class Skeleton:
    """One file's events reduced to which event, where and when (about 28 bytes an event):
    enough for coverage, de-duplication, which hosts and channels a file holds, and clock
    segments, when the rows themselves stay only for the events something reads
    (evtxdoc/partition.py). Reads like a ColumnBatch of those columns."""

    source_file: str
    columns: dict[str, np.ndarray]
    code_columns: dict[str, np.ndarray]
    categories: dict[str, dict[str, int]]

    def __len__(self) -> int:
        return len(self.columns["ts"])

    def flush(self) -> None:
        """Nothing is buffered (the ColumnBatch interface)."""

    def numeric(self, name: str) -> np.ndarray:
        return self.columns[name]

    def codes(self, name: str) -> np.ndarray:
        return self.code_columns[name]


def _joined(parts: list[np.ndarray], dtype: str) -> np.ndarray:
    """The parts as one array, kept as the only part (so later writes land in it)."""
    if len(parts) != 1:
        joined = np.concatenate(parts) if parts else np.empty(0, dtype=dtype)
        parts[:] = [joined]
    return parts[0]


def _int_column(values: tuple[int, ...], dtype: str) -> np.ndarray:
    """Python ints → an array of `dtype`; garbage out of range (a damaged record) is clamped,
    never a failure of the file."""
    try:
        wide = np.fromiter(values, dtype=np.int64, count=len(values))
    except OverflowError:
        wide = np.fromiter(map(_clamp64, values), dtype=np.int64, count=len(values))
    if dtype == "int64":
        return wide
    bounds = np.iinfo(dtype)
    if wide.min() < bounds.min or wide.max() > bounds.max:
        np.clip(wide, bounds.min, bounds.max, out=wide)
    return wide.astype(dtype)


def _clamp64(value: int) -> int:
    return max(-(2**63), min(2**63 - 1, value))
