"""Every event as Parquet (`analyze --events-to DIR`), one file per log, for fleets whose events
cannot all stay in memory (issue 22).

Each log's events are written where the log is read (a reading process or a Dask worker), before
the partitioned analysis cuts them down (evtxdoc/partition.py), as `DIR/events/<name>.parquet`
with the columns of the CSV export (`events.EXPORT_COLUMNS`; `fields` is JSON text). When the
analysis is done, `finish` fills each file's `attempt` column one file at a time (the ids the CSV
gives), writes the events of the supporting files (registry dump, Autopilot JSON, …) as
`DIR/events/supporting-files.parquet` and `DIR/attempts.parquet`, one row per join attempt.
The coordinating process holds one file's events at a time, never all of them. An event that
two collected files both hold is in both files' Parquet (the report counts it once).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pandas as pd

from evtxdoc import catalog, supporting
from evtxdoc.errors import InputError
from evtxdoc.parse.payload import decode_fields
from evtxdoc.parse.times import NO_TIME
from evtxdoc.report.events import EXPORT_COLUMNS, attempt_ids

if TYPE_CHECKING:
    from evtxdoc.models import Analysis

EVENTS = "events"
ATTEMPTS = "attempts.parquet"
SUPPORTING = "supporting-files.parquet"  # the events the supporting files gave (supporting.py)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def require_pyarrow() -> Any:
    """pyarrow.parquet, or an InputError that says how to install it."""
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise InputError(
            "--events-to writes Parquet, which needs pyarrow",
            hint="pip install 'evtxdoc[parquet]'",
        ) from exc
    return pq


def prepare(folder: str | Path) -> None:
    """Check pyarrow and make `folder` ready: a previous export's files in it are replaced
    (its events/*.parquet and attempts.parquet; nothing else is touched)."""
    require_pyarrow()
    events = Path(folder) / EVENTS
    try:
        events.mkdir(parents=True, exist_ok=True)
        for stale in [*events.glob("*.parquet"), *events.glob("*.tmp")]:
            stale.unlink()
        (Path(folder) / ATTEMPTS).unlink(missing_ok=True)
    except OSError as exc:
        raise InputError(
            f"cannot write the Parquet export to {folder}: {exc.strerror or exc}",
            hint="give --events-to a folder you can write to",
        ) from exc


def part_path(folder: str | Path, display: str) -> Path:
    """Where the events of the log shown as `display` go: its name, made safe, and a hash of
    the whole shown path (two System.evtx of two machines do not collide)."""
    stem = _UNSAFE.sub("_", Path(display.replace("\\", "/")).stem)[:60] or "log"
    digest = hashlib.sha256(display.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return Path(folder) / EVENTS / f"{stem}-{digest}.parquet"


def write_part(frame: pd.DataFrame, display: str, folder: str) -> None:
    """Write the events of the log shown as `display` (every row, in its order, no attempt
    yet)."""
    path = part_path(folder, display)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write(table_of(frame), path)


def _write(table: Any, path: Path) -> None:
    """`table` to `path` whole or not at all (a temporary file, then renamed)."""
    temporary = path.with_suffix(".tmp")
    require_pyarrow().write_table(table, temporary, compression="zstd")
    temporary.replace(path)


def table_of(frame: pd.DataFrame, attempts: np.ndarray | None = None) -> Any:
    """The export's columns of `frame` as an Arrow table; per distinct payload, its fields are
    decoded (and its message worded from the catalog) once."""
    import pyarrow as pa

    ts = frame["ts"].array.asi8
    columns: dict[str, Any] = {
        "ts": pa.array(ts, type=pa.timestamp("ns", tz="UTC"), mask=ts == NO_TIME),
    }
    for name in ("host", "channel", "provider", "activity_id", "user_sid", "source_file"):
        columns[name] = pa.array(frame[name])  # categorical: a dictionary column
    for name in ("event_id", "level", "record_id"):
        columns[name] = pa.array(frame[name].to_numpy())
    columns["attempt"] = _attempt_column(
        attempts if attempts is not None else np.full(len(frame), None, dtype=object)
    )
    columns["message"], columns["fields"] = _texts(frame)
    return pa.table({name: columns[name] for name in EXPORT_COLUMNS})


def _attempt_column(claimed: np.ndarray) -> Any:
    """Each row's attempt id (None: no attempt claims it), dictionary-encoded."""
    import pyarrow as pa

    return pa.array(claimed, type=pa.string()).dictionary_encode()


def _texts(frame: pd.DataFrame) -> tuple[Any, Any]:
    """Each row's message (as written, else the catalog's wording) and fields (JSON text), as
    Arrow dictionary arrays: decoded, worded and stored once per distinct payload and event."""
    import pyarrow as pa

    try:
        known: catalog.Catalog | None = catalog.load()
    except InputError:
        known = None
    payload_codes, payloads = pd.factorize(frame["payload"].to_numpy(), use_na_sentinel=False)
    keys = pd.MultiIndex.from_arrays(
        [payload_codes, frame["channel"].astype(str), frame["event_id"], frame["provider"]]
    )
    codes, distinct = pd.factorize(keys)
    message_of: list[str | None] = []
    fields_of: list[str] = []
    for payload_code, channel, event_id, provider in distinct:
        fields = decode_fields(payloads[payload_code], channel)
        fields_of.append(orjson.dumps(fields, option=orjson.OPT_NON_STR_KEYS, default=str).decode())
        wording = known.message(channel, int(event_id), provider, fields) if known else None
        message_of.append(wording)
    indices = pa.array(codes.astype(np.int32))
    fields_column = pa.DictionaryArray.from_arrays(indices, pa.array(fields_of, pa.string()))
    written = frame["message"].astype(object).to_numpy()
    as_written = np.fromiter((isinstance(t, str) for t in written), bool, len(written))
    if not as_written.any():  # the usual case: rs renders no message
        unworded = np.array([m is None for m in message_of], dtype=bool)
        worded = pa.DictionaryArray.from_arrays(
            pa.array(codes.astype(np.int32), mask=unworded[codes]),
            pa.array([m or "" for m in message_of], pa.string()),
        )
        return worded, fields_column
    messages = [
        text if isinstance(text, str) else message_of[code]
        for text, code in zip(written.tolist(), codes.tolist(), strict=True)
    ]
    return pa.array(messages, type=pa.string()), fields_column


def finish(analysis: Analysis, folder: str | Path) -> int:
    """Fill every written file's attempt column and write attempts.parquet; the events written."""
    pq = require_pyarrow()

    written = 0
    for report in analysis.file_reports:
        path = part_path(folder, report.display)
        if not path.is_file():
            continue
        table = pq.read_table(path)
        keys = table.select(["ts", "host", "record_id", "source_file"]).to_pandas()
        claimed = attempt_ids(keys, analysis.correlation)
        index = table.schema.get_field_index("attempt")
        _write(table.set_column(index, "attempt", _attempt_column(claimed)), path)
        written += table.num_rows
    frame = analysis.timeline
    files = frame[frame["provider"].astype(str).eq(supporting.PROVIDER).to_numpy()]
    if len(files):  # what the supporting files (registry dump, Autopilot JSON, …) stated
        path = Path(folder) / EVENTS / SUPPORTING
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table_of(files, attempt_ids(files, analysis.correlation)), path)
        written += len(files)
    pq.write_table(_attempts(analysis), Path(folder) / ATTEMPTS)
    return written


def _attempts(analysis: Analysis) -> Any:
    """One row per join attempt: who, when (corrected), how it ended, and its root cause."""
    import pyarrow as pa

    attempts = analysis.correlation.attempts if analysis.correlation else ()
    evaluation = analysis.evaluation
    causes = [evaluation.root_cause(a.id) if evaluation else None for a in attempts]
    return pa.table(
        {
            "attempt": pa.array([a.id for a in attempts], type=pa.string()),
            "device": pa.array([a.device.machine for a in attempts], type=pa.string()),
            "computer_name": pa.array([a.device.computer_name for a in attempts], pa.string()),
            "hosts": pa.array([list(a.device.hosts) for a in attempts], type=pa.list_(pa.string())),
            "outcome": pa.array([str(a.outcome) for a in attempts], type=pa.string()),
            "failed_step": pa.array([a.failed_step for a in attempts], type=pa.string()),
            "connector": pa.array([a.connector for a in attempts], type=pa.string()),
            "root_cause": pa.array([c.rule if c else None for c in causes], type=pa.string()),
            "started": pa.array([a.started for a in attempts], type=pa.timestamp("ns", tz="UTC")),
            "ended": pa.array([a.ended for a in attempts], type=pa.timestamp("ns", tz="UTC")),
        }
    )
