"""The job store: one SQLite table of analyses, their files on disk beside it.

    <data>/evtxdoc.sqlite3          jobs: status, progress, files, summary, error
    <data>/jobs/<id>/upload/…       the uploaded files, as uploaded (names made safe)
    <data>/jobs/<id>/report.html …  the reports (plain and redacted, HTML and JSON)

Every process (the web server and each analysis process) opens its own connection; SQLite in
WAL mode lets the analysis write progress while the server reads it.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    status TEXT NOT NULL,
    stage TEXT NOT NULL DEFAULT '',
    done INTEGER NOT NULL DEFAULT 0,
    total INTEGER NOT NULL DEFAULT 0,
    detail TEXT NOT NULL DEFAULT '',
    files TEXT NOT NULL DEFAULT '[]',
    bytes INTEGER NOT NULL DEFAULT 0,
    started REAL,
    finished REAL,
    error TEXT,
    summary TEXT,
    owner TEXT,
    lease REAL,
    attempts INTEGER NOT NULL DEFAULT 0
)
"""
# Columns added after the first release: an older store gains them on open.
ADDED_COLUMNS = {
    "owner": "TEXT",
    "lease": "REAL",
    "attempts": "INTEGER NOT NULL DEFAULT 0",
    "case_name": "TEXT NOT NULL DEFAULT ''",
}
LEASE_S = 10.0  # a running job whose owner has not beaten its lease for this long is orphaned
REPORTS = {  # name in URLs -> file in the job folder, media type
    "report.html": ("report.html", "text/html; charset=utf-8"),
    "report.json": ("report.json", "application/json"),
    "report-redacted.html": ("report-redacted.html", "text/html; charset=utf-8"),
    "report-redacted.json": ("report-redacted.json", "application/json"),
}


NO_LOGS = (
    "no readable .evtx event log or .svclog trace in the upload: upload the folder, .cab or .zip "
    "the logs came in (MdmDiagnosticsTool, Intune's Collect diagnostics, Event Viewer's Save All "
    "Events As, or the Exchange connector's Logs folder)"
)


class Status(StrEnum):
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"


@dataclass(frozen=True)
class Job:
    """One analysis as the store knows it."""

    id: str
    created: float
    status: Status
    stage: str = ""
    done: int = 0
    total: int = 0
    detail: str = ""
    files: list[dict[str, Any]] = field(default_factory=list)  # [{name, size}]
    bytes: int = 0
    started: float | None = None
    finished: float | None = None
    error: str | None = None
    summary: dict[str, Any] | None = None
    owner: str | None = None  # the analysis process running it ("host:pid:token")
    attempts: int = 0
    case_name: str = ""  # the case or ticket the engineer named the upload after

    @property
    def finished_ok(self) -> bool:
        return self.status is Status.done

    @property
    def state(self) -> str:
        """The status in words: "no logs found" is not a failure of the service."""
        if self.status is Status.failed and (self.error or "").startswith(NO_LOGS):
            return "no logs found"
        return str(self.status)

    def public(self) -> dict[str, Any]:
        """The job as the status API shows it."""
        return {
            "id": self.id,
            "case": self.case_name,
            "status": str(self.status),
            "state": self.state,
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
            "progress": {
                "stage": self.stage,
                "done": self.done,
                "total": self.total,
                "detail": self.detail,
            },
            "files": self.files,
            "bytes": self.bytes,
            "error": self.error,
            "summary": self.summary,
            "reports": [name for name in REPORTS] if self.finished_ok else [],
        }


def new_job_id() -> str:
    return uuid.uuid4().hex


class JobStore:
    """Jobs in SQLite under `data_dir`; each method opens a short transaction."""

    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)  # customer data: owner only
        (self.data_dir / "jobs").mkdir(exist_ok=True, mode=0o700)
        self.path = self.data_dir / "evtxdoc.sqlite3"
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(SCHEMA)
            have = {row["name"] for row in db.execute("PRAGMA table_info(jobs)")}
            for name, kind in ADDED_COLUMNS.items():
                if name not in have:
                    db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {kind}")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        db.row_factory = sqlite3.Row
        try:
            with db:
                yield db
        finally:
            db.close()

    def folder(self, job_id: str) -> Path:
        if not job_id.isalnum():  # ids are uuid hex; anything else never names a folder
            raise KeyError(job_id)
        return self.data_dir / "jobs" / job_id

    def upload_folder(self, job_id: str) -> Path:
        return self.folder(job_id) / "upload"

    def create(self, job_id: str, files: list[dict[str, Any]], case_name: str = "") -> Job:
        total = sum(int(f["size"]) for f in files)
        with self._connect() as db:
            db.execute(
                "INSERT INTO jobs (id, created, status, files, bytes, case_name) "
                "VALUES (?,?,?,?,?,?)",
                (job_id, time.time(), Status.queued, json.dumps(files), total, case_name),
            )
        return self.get(job_id)

    def get(self, job_id: str) -> Job:
        with self._connect() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise KeyError(job_id)
        return _job(row)

    def recent(self, limit: int = 200, query: str = "") -> list[Job]:
        """The newest jobs; with `query`, those whose case name, file names, device names or
        root causes hold it (ignoring case)."""
        with self._connect() as db:
            if not query.strip():
                rows = db.execute(
                    "SELECT * FROM jobs ORDER BY created DESC LIMIT ?", (limit,)
                ).fetchall()
            else:
                like = "%" + re.sub(r"([%_\\])", r"\\\1", query.strip()) + "%"
                rows = db.execute(
                    "SELECT * FROM jobs WHERE case_name LIKE ?1 ESCAPE '\\' "
                    "OR files LIKE ?1 ESCAPE '\\' OR summary LIKE ?1 ESCAPE '\\' "
                    "ORDER BY created DESC LIMIT ?2",
                    (like, limit),
                ).fetchall()
        return [_job(row) for row in rows]

    def unfinished(self) -> list[Job]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT * FROM jobs WHERE status IN (?, ?) ORDER BY created",
                (Status.queued, Status.running),
            ).fetchall()
        return [_job(row) for row in rows]

    def claim(self, job_id: str, owner: str) -> bool:
        """Make `owner` the one process running the job, atomically: only a queued job, or a
        running one whose owner's lease has lapsed, can be claimed (exactly once)."""
        now = time.time()
        with self._connect() as db:
            claimed = db.execute(
                "UPDATE jobs SET status=?, started=?, stage='', done=0, total=0, detail='', "
                "error=NULL, owner=?, lease=?, attempts=attempts+1 WHERE id=? AND "
                "(status=? OR (status=? AND (lease IS NULL OR lease < ?)))",
                (
                    Status.running,
                    now,
                    owner,
                    now,
                    job_id,
                    Status.queued,
                    Status.running,
                    now - LEASE_S,
                ),
            ).rowcount
        return claimed == 1

    def beat(self, job_id: str, owner: str) -> None:
        """The owner is alive: renew its lease."""
        with self._connect() as db:
            db.execute(
                "UPDATE jobs SET lease=? WHERE id=? AND owner=? AND status=?",
                (time.time(), job_id, owner, Status.running),
            )

    def orphaned(self, alive: set[str]) -> list[Job]:
        """Running jobs whose owner is not in `alive` and whose lease has lapsed."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT * FROM jobs WHERE status=? AND (lease IS NULL OR lease < ?)",
                (Status.running, time.time() - LEASE_S),
            ).fetchall()
        return [_job(row) for row in rows if row["owner"] not in alive]

    def progress(self, job_id: str, stage: str, done: int, total: int, detail: str) -> None:
        with self._connect() as db:
            db.execute(
                "UPDATE jobs SET stage=?, done=?, total=?, detail=? WHERE id=?",
                (stage, done, total, detail[-200:], job_id),
            )

    def finish(self, job_id: str, summary: dict[str, Any], owner: str | None = None) -> bool:
        """Mark the job done (by its owner, when given); False if it was not theirs to end."""
        return self._end(
            job_id,
            owner,
            "status=?, finished=?, summary=?",
            (Status.done, time.time(), json.dumps(summary)),
        )

    def fail(self, job_id: str, error: str, owner: str | None = None) -> bool:
        return self._end(
            job_id,
            owner,
            "status=?, finished=?, error=?",
            (Status.failed, time.time(), error[:4000]),
        )

    def _end(self, job_id: str, owner: str | None, sets: str, values: tuple[Any, ...]) -> bool:
        where, args = "id=? AND status IN (?, ?)", [job_id, Status.queued, Status.running]
        if owner is not None:
            where += " AND owner=?"
            args.append(owner)
        with self._connect() as db:
            ended = db.execute(f"UPDATE jobs SET {sets} WHERE {where}", (*values, *args))
        return ended.rowcount == 1

    def requeue(self, job_id: str) -> None:
        with self._connect() as db:
            db.execute(
                "UPDATE jobs SET status=?, owner=NULL, lease=NULL WHERE id=? AND status IN (?, ?)",
                (Status.queued, job_id, Status.queued, Status.running),
            )

    def expired(self, before: float) -> list[str]:
        """Finished (done or failed) jobs created before `before` (Unix seconds)."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT id FROM jobs WHERE created < ? AND status IN (?, ?)",
                (before, Status.done, Status.failed),
            ).fetchall()
        return [row["id"] for row in rows]

    def delete(self, job_id: str) -> None:
        folder = self.folder(job_id)
        with self._connect() as db:
            db.execute("DELETE FROM jobs WHERE id=?", (job_id,))
        shutil.rmtree(folder, ignore_errors=True)


def _job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        created=row["created"],
        status=Status(row["status"]),
        stage=row["stage"],
        done=row["done"],
        total=row["total"],
        detail=row["detail"],
        files=json.loads(row["files"]),
        bytes=row["bytes"],
        started=row["started"],
        finished=row["finished"],
        error=row["error"],
        summary=json.loads(row["summary"]) if row["summary"] else None,
        owner=row["owner"],
        attempts=row["attempts"],
        case_name=row["case_name"],
    )
