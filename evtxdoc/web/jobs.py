"""Analyses run in their own process, one job at a time per process, never in the server's.

A spawned process (not forked from the threaded server) calls `pipeline.analyze` on the job's
upload folder, writes progress to the store as it goes, and writes four reports: HTML and JSON,
plain and redacted. A crash of that process fails its job, not the service; a restart of the
service queues the jobs it had not finished again (their uploads are on disk).
"""

from __future__ import annotations

import logging
import multiprocessing
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from threading import Lock
from typing import Any

from evtxdoc import pipeline
from evtxdoc.errors import EvtxdocError
from evtxdoc.models import Analysis, AnalyzeOptions
from evtxdoc.report.formats import Format, OutputOptions, document, write
from evtxdoc.report.redact import for_analysis
from evtxdoc.web.store import JobStore, Status

log = logging.getLogger("evtxdoc.web")
PROGRESS_EVERY_S = 0.25  # progress writes to SQLite at most this often


def run_job(data_dir: str, job_id: str, read_workers: int | None) -> None:
    """Analyze one uploaded job and write its reports (runs in an analysis process)."""
    store = JobStore(Path(data_dir))
    store.start(job_id)
    upload = store.upload_folder(job_id)
    last = 0.0

    def progress(stage: str, done: int, total: int, detail: str) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= PROGRESS_EVERY_S or done >= total:
            last = now
            store.progress(job_id, stage, done, total, detail)  # upload-relative names

    try:
        inputs = sorted(upload.iterdir())  # named relative to the upload: its names, not paths
        options = AnalyzeOptions(workers=read_workers, display_root=str(upload))
        analysis = pipeline.analyze(inputs, options, progress)
        _write_reports(
            analysis,
            store.folder(job_id),
            lambda done, name: store.progress(job_id, "report", done, 4, name),
        )
        store.finish(job_id, summary(analysis))
    except EvtxdocError as error:
        where = f"{error.where}: " if error.where else ""
        hint = f" ({error.hint})" if error.hint else ""
        store.fail(job_id, f"{where}{error.message}{hint}")
    except Exception as error:  # anything else is a bug: keep the trace for the maintainers
        store.fail(
            job_id,
            f"internal error: {type(error).__name__}: {error}\n" + traceback.format_exc(limit=8),
        )


def _write_reports(analysis: Analysis, folder: Path, progress: Callable[[int, str], None]) -> None:
    for done, (name, fmt, redact) in enumerate(
        (
            ("report.html", Format.html, False),
            ("report.json", Format.json, False),
            ("report-redacted.html", Format.html, True),
            ("report-redacted.json", Format.json, True),
        )
    ):
        progress(done, name)
        partial = folder / f".{name}.part"
        with partial.open("wb") as out:
            write(analysis, fmt, out, OutputOptions(redact=redact))
        partial.replace(folder / name)
    progress(4, "")


def summary(analysis: Analysis) -> dict[str, Any]:
    """What the job list and page show without opening a report (redacted: names replaced)."""
    data = document(analysis, for_analysis(analysis))
    return {
        "summary": data["summary"],
        "findings_by_severity": data["rules"].get("findings_by_severity", {}),
        "verdicts": [
            {
                "name": v["name"],
                "status": v["status"],
                "verdict": v["verdict"],
                "root_cause": (v.get("root_cause") or {}).get("title"),
            }
            for v in data["verdicts"][:50]
        ],
        "problems": len(data["problems"]),
    }


class JobRunner:
    """Hands jobs to a pool of spawned analysis processes; resubmits after a crash."""

    def __init__(self, store: JobStore, concurrent: int = 1, read_workers: int | None = None):
        self.store = store
        self.concurrent = concurrent
        self.read_workers = read_workers
        self._lock = Lock()
        self._pool: ProcessPoolExecutor | None = None
        self.running: dict[str, Future[None]] = {}

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # a fresh process per job: an analysis's memory goes back to the system with it
            self._pool = ProcessPoolExecutor(
                max_workers=self.concurrent,
                mp_context=multiprocessing.get_context("spawn"),
                max_tasks_per_child=1,
            )
        return self._pool

    def submit(self, job_id: str) -> None:
        with self._lock:
            future = self._executor().submit(
                run_job, str(self.store.data_dir), job_id, self.read_workers
            )
            self.running[job_id] = future
        future.add_done_callback(lambda done: self._finished(job_id, done))

    def _finished(self, job_id: str, future: Future[None]) -> None:
        with self._lock:
            self.running.pop(job_id, None)
        if future.cancelled():  # the service is stopping: the next start resumes the job
            return
        error = future.exception()
        if error is None:
            return
        if isinstance(error, BrokenProcessPool):
            with self._lock:  # a broken pool takes no more work: start a new one
                if self._pool is not None:
                    self._pool.shutdown(wait=False, cancel_futures=False)
                self._pool = None
            if self.store.get(job_id).status == Status.queued:  # waiting, not the one that died
                self.submit(job_id)
                return
            message = (
                "the analysis process died (out of memory, or killed); the upload is "
                "kept: delete this analysis and upload fewer files at once, or ask the "
                "operator to give the service more memory"
            )
        else:
            message = f"internal error: {type(error).__name__}: {error}"
        log.error("job %s failed: %s", job_id, message)
        self.store.fail(job_id, message)

    def resume(self) -> list[str]:
        """Queue again every job a previous run of the service left unfinished."""
        ids = []
        for job in self.store.unfinished():
            self.store.requeue(job.id)
            self.submit(job.id)
            ids.append(job.id)
        return ids

    def shutdown(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
