"""Analyses run in their own process, one job per process, never in the server's.

A spawned process (not forked from the threaded server) claims its job in the store, beats its
lease while it works, calls `pipeline.analyze` on the job's upload folder, writes progress as it
goes, and writes four reports: HTML and JSON, plain and redacted. Exactly once across crashes:
- a job is run only by the process that claimed it (an atomic UPDATE on a queued job, or on a
  running one whose lease lapsed), and only its owner can end it;
- an analysis process dies with the server (PR_SET_PDEATHSIG), so a killed server leaves no
  orphan; its jobs' leases lapse and the next start runs each of them again, once;
- each job has its own process, so one that dies (killed, out of memory) costs its own job
  only: it is retried once, then failed with a message saying what to do;
- a job's temporary files live in its own folder, removed when its process ends, whatever the
  end; partial reports are named by their owner and renamed into place.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import socket
import tempfile
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from evtxdoc import pipeline
from evtxdoc.errors import EvtxdocError
from evtxdoc.models import Analysis, AnalyzeOptions
from evtxdoc.parse.watchdog import die_with_parent
from evtxdoc.report.formats import Format, OutputOptions, document, write
from evtxdoc.web.store import LEASE_S, NO_LOGS, JobStore, Status

log = logging.getLogger("evtxdoc.web")
PROGRESS_EVERY_S = 0.25  # progress writes to SQLite at most this often
MAX_ATTEMPTS = 2  # a job whose process died is run once more, then failed
JOB_BUDGET_S = 3 * 3600.0  # an analysis still running after this is stopped and failed
STOP_GRACE_S = 5.0  # on shutdown, running analyses get this long after SIGTERM
_TICK_S = 0.2


def new_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def job_process(
    data_dir: str,
    job_id: str,
    read_workers: int | None,
    owner: str,
    passwords: tuple[str, ...] = (),
    scheduler: str | None = None,
) -> None:
    """The analysis process: dies with the server, keeps its temporary files in the job's
    folder (removed with the job), and runs the job (zip passwords come through the spawn
    pipe, never through a file or the command line)."""
    die_with_parent()
    scratch = JobStore(Path(data_dir)).folder(job_id) / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    tempfile.tempdir = str(scratch)
    run_job(data_dir, job_id, read_workers, owner, scratch, passwords, scheduler)


def run_job(
    data_dir: str,
    job_id: str,
    read_workers: int | None,
    owner: str | None = None,
    scratch: Path | None = None,
    passwords: tuple[str, ...] = (),
    scheduler: str | None = None,
) -> None:
    """Analyze one uploaded job and write its reports, if this `owner` can claim it."""
    store = JobStore(Path(data_dir))
    owner = owner or new_owner()
    if not store.claim(job_id, owner):
        return  # another process runs it, or it has ended: exactly once
    scratch = scratch or store.folder(job_id) / "tmp"
    _remove_partials(store.folder(job_id))  # a killed run's: the claim makes them stale
    stop = threading.Event()
    beating = threading.Thread(target=_beat, args=(store, job_id, owner, stop), daemon=True)
    beating.start()
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
        options = AnalyzeOptions(
            workers=read_workers,
            scheduler=scheduler,  # the team's Dask cluster reads the logs (--scheduler)
            display_root=str(upload),
            zip_passwords=passwords,
        )
        analysis = pipeline.analyze(inputs, options, progress)
        _write_reports(
            analysis,
            store.folder(job_id),
            lambda done, name: store.progress(job_id, "report", done, 4, name),
            owner,
        )
        shutil.rmtree(scratch, ignore_errors=True)  # gone before the job is seen to end
        if not analysis.readable:  # as the CLI exits 2: not a green "done" with 0 events
            locked = [p for p in analysis.problems if p.kind in ("encrypted", "wrong_password")]
            said = f"; {locked[0].message} ({locked[0].hint})" if locked else ""
            store.fail(job_id, NO_LOGS + said, owner)
            return
        store.finish(job_id, summary(analysis), owner)
    except EvtxdocError as error:
        where = f"{error.where}: " if error.where else ""
        hint = f" ({error.hint})" if error.hint else ""
        shutil.rmtree(scratch, ignore_errors=True)
        store.fail(job_id, f"{where}{error.message}{hint}", owner)
    except Exception as error:  # anything else is a bug: keep the trace for the maintainers
        shutil.rmtree(scratch, ignore_errors=True)
        store.fail(
            job_id,
            f"internal error: {type(error).__name__}: {error}\n" + traceback.format_exc(limit=8),
            owner,
        )
    finally:
        stop.set()


def partial_name(name: str, owner: str) -> str:
    """The name a report has while `owner` writes it."""
    return f".{name}.{owner.replace(':', '-')}.part"


def _remove_partials(folder: Path) -> None:
    for partial in folder.glob(".*.part"):
        partial.unlink(missing_ok=True)


def _beat(store: JobStore, job_id: str, owner: str, stop: threading.Event) -> None:
    while not stop.wait(LEASE_S / 4):
        try:
            store.beat(job_id, owner)
        except Exception:  # a busy database now and then: the next beat renews it
            log.debug("lease renewal of %s failed", job_id, exc_info=True)


def _write_reports(
    analysis: Analysis, folder: Path, progress: Callable[[int, str], None], owner: str
) -> None:
    for done, (name, fmt, redact) in enumerate(
        (
            ("report.html", Format.html, False),
            ("report.json", Format.json, False),
            ("report-redacted.html", Format.html, True),
            ("report-redacted.json", Format.json, True),
        )
    ):
        progress(done, name)
        partial = folder / partial_name(name, owner)  # one writer per file
        with partial.open("wb") as out:
            back = None if redact else f"/analyses/{folder.name}"  # shared copies: no link
            write(analysis, fmt, out, OutputOptions(redact=redact, back_link=back))
        partial.replace(folder / name)
    progress(4, "")


def summary(analysis: Analysis) -> dict[str, Any]:
    """What the job list and page show without opening a report, with the names as logged:
    whoever sees the page is signed in (the redacted reports are the copies to share)."""
    data = document(analysis)
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
    """Runs queued jobs, each in its own spawned process, at most `concurrent` at once, from
    one scheduler thread (the parent every analysis process dies with)."""

    def __init__(
        self,
        store: JobStore,
        concurrent: int = 1,
        read_workers: int | None = None,
        scheduler: str | None = None,
    ):
        self.store = store
        self.concurrent = concurrent
        self.read_workers = read_workers
        self.scheduler = scheduler
        self._queue: deque[str] = deque()
        self._lock = threading.Lock()
        self.running: dict[str, tuple[BaseProcess, str]] = {}  # job → (process, owner)
        self._started: dict[str, float] = {}  # job → when its process started (monotonic)
        self._unclaimed: dict[str, int] = {}  # job → processes that died before claiming it
        self._passwords: dict[str, tuple[str, ...]] = {}  # job → zip passwords, until it starts
        self.budget_s = JOB_BUDGET_S
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._context = multiprocessing.get_context("spawn")

    def submit(self, job_id: str, passwords: tuple[str, ...] = ()) -> None:
        """Queue a job; its zip passwords stay in this process's memory until its analysis
        process starts, and go with it only (a restart forgets them: upload again)."""
        with self._lock:
            if passwords:
                self._passwords[job_id] = passwords
            if job_id not in self._queue and job_id not in self.running:
                self._queue.append(job_id)
        self._ensure_thread()

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(
                    target=self._schedule, name="evtxdoc-jobs", daemon=True
                )
                self._thread.start()

    def _schedule(self) -> None:
        last_sweep = 0.0
        while not self._stop.is_set():
            self._reap()
            if time.monotonic() - last_sweep > LEASE_S / 2:
                last_sweep = time.monotonic()
                self._adopt_orphans()
            self._start_waiting()
            self._stop.wait(_TICK_S)

    def _start_waiting(self) -> None:
        while True:
            with self._lock:
                if len(self.running) >= self.concurrent or not self._queue:
                    return
                job_id = self._queue.popleft()
                passwords = self._passwords.pop(job_id, ())  # used once
            owner = new_owner()
            process = self._context.Process(
                target=job_process,
                args=(
                    str(self.store.data_dir),
                    job_id,
                    self.read_workers,
                    owner,
                    passwords,
                    self.scheduler,
                ),
                name=f"evtxdoc-job-{job_id[:8]}",
            )
            process.start()
            with self._lock:
                self.running[job_id] = (process, owner)
                self._started[job_id] = time.monotonic()

    def _reap(self) -> None:
        self._stop_overruns()
        with self._lock:
            ended = [(j, p, o) for j, (p, o) in self.running.items() if p.exitcode is not None]
            for job_id, _, _ in ended:
                del self.running[job_id]
                self._started.pop(job_id, None)
        for job_id, process, owner in ended:
            process.join()
            folder = self.store.folder(job_id)
            shutil.rmtree(folder / "tmp", ignore_errors=True)
            for partial in folder.glob(partial_name("*", owner)):  # its own only
                partial.unlink(missing_ok=True)
            self._after_death(job_id, owner, process.exitcode)

    def _stop_overruns(self) -> None:
        """An analysis past its time budget is stopped, and its job failed (not retried)."""
        now = time.monotonic()
        with self._lock:
            over = [
                (job_id, process, owner)
                for job_id, (process, owner) in self.running.items()
                if now - self._started.get(job_id, now) > self.budget_s and process.is_alive()
            ]
        for job_id, process, _ in over:
            self.store.fail(
                job_id,
                f"the analysis ran longer than {self.budget_s / 3600:.1f} h and was stopped; "
                "upload fewer files at once, or analyze them with `evtxdoc analyze`",
            )  # whether or not its process has claimed it yet: it is this runner's job
            process.kill()

    def _after_death(self, job_id: str, owner: str, code: int | None) -> None:
        """A process ended: if its job is still running under it, the process died."""
        try:
            job = self.store.get(job_id)
        except KeyError:  # deleted meanwhile
            return
        if job.status is not Status.running or job.owner != owner:
            if job.status is Status.queued and job.owner is None:  # died before its claim
                self._unclaimed[job_id] = self._unclaimed.get(job_id, 0) + 1
                if self._unclaimed[job_id] < MAX_ATTEMPTS:
                    self.submit(job_id)
                    return
                message = (
                    f"the analysis process could not start (exit {code}); the upload is kept: "
                    "ask the operator to check the service's log and its installation"
                )
                log.error("job %s failed: %s", job_id, message)
                self.store.fail(job_id, message)
            return
        if job.attempts < MAX_ATTEMPTS:
            log.warning("job %s: analysis process died (exit %s); running it again", job_id, code)
            self.store.requeue(job_id)
            self.submit(job_id)
            return
        message = (
            "the analysis process died (out of memory, or killed) twice; the upload is "
            "kept: delete this analysis and upload fewer files at once, or ask the "
            "operator to give the service more memory"
        )
        log.error("job %s failed: %s", job_id, message)
        self.store.fail(job_id, message, owner)

    def _adopt_orphans(self) -> None:
        """Jobs a dead process (an earlier server's, or one that vanished) left running."""
        with self._lock:
            alive = {owner for _, owner in self.running.values()}
        for job in self.store.orphaned(alive):
            self.store.requeue(job.id)
            self.submit(job.id)

    def resume(self) -> list[str]:
        """Queue every job a previous run of the service left unfinished: queued ones now,
        running ones as soon as their owner's lease has lapsed (it died with that server)."""
        ids = []
        for job in self.store.unfinished():
            if job.status is Status.queued:
                self.submit(job.id)
            ids.append(job.id)
        self._ensure_thread()
        return ids

    def shutdown(self) -> None:
        """Stop scheduling; stop running analyses (their jobs resume at the next start)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            running = list(self.running.items())
            self.running.clear()
        for _, (process, _) in running:
            process.terminate()
        deadline = time.monotonic() + STOP_GRACE_S
        for job_id, (process, _) in running:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
            shutil.rmtree(self.store.folder(job_id) / "tmp", ignore_errors=True)
