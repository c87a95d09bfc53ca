"""`analyze()`: the whole flow, one entry point for the CLI, the web service and the tests.

inputs → bundle.discover → ingest.read_files (scan + parse + normalize) → timeline
→ correlate (join attempts) → evaluate (rules → findings); renderers read the Analysis.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pandas as pd

from evtxdoc import __version__, supporting, timeline
from evtxdoc.bundle import discover
from evtxdoc.correlate import correlate
from evtxdoc.correlate.machines import container
from evtxdoc.errors import InputError, InternalError, StrictModeError
from evtxdoc.event_store import EventStore
from evtxdoc.event_summary import EventRows, FrameRows, summarize
from evtxdoc.models import (
    Analysis,
    AnalyzeOptions,
    ChannelCoverage,
    Correlation,
    DiscoveredFile,
    Evaluation,
    FileReport,
    Problem,
    Severity,
    SupportingFile,
)
from evtxdoc.parse.files import read_files
from evtxdoc.parse.reader import FileResult, Progress
from evtxdoc.partition import AfterRead, Keep, selectors
from evtxdoc.report import parquet
from evtxdoc.rules import RuleSet, default_folders, engine, load_rules
from evtxdoc.rules.model import Rule


def analyze(
    inputs: Sequence[Path | str],
    options: AnalyzeOptions | None = None,
    progress: Progress | None = None,
) -> Analysis:
    """Run the pipeline over `inputs` (files, folders, archives).

    Raises InputError for a missing input path, StrictModeError when `options.strict` is set
    and the data had problems (warnings or worse). Damaged data otherwise becomes problems.
    """
    options = options or AnalyzeOptions()
    ruleset = load_ruleset(options.rule_folders) if options.evaluate else None
    started = time.time()
    clock = time.perf_counter()
    # a partitioned run's events go to disk as they arrive (event_store.py); the folder lives
    # until correlation has read back what it asks for
    rows_dir = Path(tempfile.mkdtemp(prefix="evtxdoc-rows-"))
    try:
        with tempfile.TemporaryDirectory(prefix="evtxdoc-") as workdir:
            bundle = discover(inputs, Path(workdir), options)
            if progress:
                progress("discover", len(bundle.files), len(bundle.files), "")
            keep = keep_for(options, sum(f.size for f in bundle.log_files))
            finish = AfterRead(keep, options.events_to) if options.events_to else keep
            if options.events_to:
                parquet.prepare(options.events_to)  # before reading, not in every reader
            store = EventStore(rows_dir, len(bundle.log_files), keep) if keep else None
            if progress:  # at once: the first file to finish may be a large one
                progress("read", 0, len(bundle.log_files), "")
            results = read(bundle.log_files, options, progress, finish, store)
        if progress:  # each later stage is announced as it starts: a long one is not silent
            events = store.events if store else sum(len(r.batch) for r in results)
            progress("timeline", 0, 1, f"{events:,} events")
        read_reports = [r.report for r in results]
        every: EventRows
        if store is None:
            frame, duplicates = assemble(results)  # empties `results`
            summary, every = summarize(frame), FrameRows(frame)
        else:
            results.clear()
            frame, summary, duplicates = store.finish()
            every = store
        reports = tuple(
            replace(r, duplicate_events=int(duplicates.get(r.display, 0))) for r in read_reports
        )
        problems = tuple(bundle.problems) + tuple(p for r in reports for p in r.problems)
        coverage = with_damage(timeline.coverage(summary), reports)
        partial = keep is not None
        frame, summary, coverage, correlation, evaluation = explain(
            frame,
            bundle.supporting,
            coverage,
            ruleset.rules if ruleset else None,
            ruleset.folders if ruleset else (),
            progress,
            summary,
            every,
        )
        del every
    finally:
        shutil.rmtree(rows_dir, ignore_errors=True)
    analysis = Analysis(
        inputs=tuple(_shown(Path(i), options.display_root) for i in inputs),
        files=tuple(bundle.files),
        file_reports=reports,
        supporting=tuple(bundle.supporting),
        problems=problems,
        timeline=frame,
        coverage=coverage,
        started=started,
        seconds=time.perf_counter() - clock,
        version=__version__,
        correlation=correlation,
        evaluation=evaluation,
        summary=summary,
        partial=partial,
    )
    if options.events_to:
        if progress:
            progress("write", 0, 1, f"Parquet: {options.events_to}")
        parquet.finish(analysis, options.events_to)
    if options.strict:
        _enforce_strict(problems)
    return analysis


def read(
    files: Sequence[DiscoveredFile],
    options: AnalyzeOptions,
    progress: Progress | None,
    keep: Keep | AfterRead | None = None,
    store: EventStore | None = None,
) -> list[FileResult]:
    """The heavy stage: every log read here, or on the Dask cluster `options.scheduler` names
    (parse/distributed.py: the same results, in the same order), each cut down by `keep`
    where it was read, and taken by `store` as it arrives."""
    arrive = store.receive if store else None
    if options.scheduler:
        from evtxdoc.parse.distributed import client_for, read_on_cluster

        with client_for(options.scheduler) as client:
            return read_on_cluster(
                files, client, strict=options.strict, use_fallback=options.use_fallback,
                progress=progress, keep=keep, arrive=arrive,
            )  # fmt: skip
    return read_files(
        files,
        strict=options.strict,
        use_fallback=options.use_fallback,
        workers=options.workers,
        progress=progress,
        keep=keep,
        arrive=arrive,
    )


def keep_for(options: AnalyzeOptions, log_bytes: int) -> Keep | None:
    """What the reading keeps of each file (evtxdoc/partition.py), None for every row; the
    rules' selectors are loaded here first, so forked readers inherit them."""
    whole = options.all_events
    if whole or (whole is None and log_bytes <= options.partition_bytes):
        return None
    keep = Keep(
        tuple(options.rule_folders),
        options.evaluate,
        options.redaction,
        options.sample_events,
        max(1, log_bytes),
    )
    if options.evaluate:
        selectors(keep.rule_folders)
    return keep


def assemble(results: list[FileResult]) -> tuple[pd.DataFrame, pd.Series]:
    """The read files, every row of each → (timeline, duplicate events per file), sorted, each
    event once. `results` is emptied once its columns are merged, so that their memory is free
    before the sort."""
    frame = timeline.build_frame([r.batch for r in results])
    results.clear()
    return timeline.finish(frame)


def explain(
    frame: pd.DataFrame,
    files: Sequence[SupportingFile],
    coverage: Sequence[ChannelCoverage],
    rules: Sequence[Rule] | None,
    folders: Sequence[str] = (),
    progress: Progress | None = None,
    summary: pd.DataFrame | None = None,
    every: EventRows | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, tuple[ChannelCoverage, ...], Correlation, Evaluation | None]:
    """timeline → correlate → supporting events → evaluate: the one place these stages are
    chained (analyze and the rule fixtures call it). No rules: no evaluation. Returns the
    timeline and the summary of every event (evtxdoc/event_summary.py; by default the
    timeline's, as are the rows `every` gives)."""
    if progress:
        progress("correlate", 0, 1, "join attempts and connector requests")
    summary = summarize(frame) if summary is None else summary
    correlation = correlate(frame, files, coverage, summary, every)
    frame, summary, with_files = supporting.add_events(frame, coverage, files, correlation, summary)
    if progress:
        progress("correlate", len(correlation.attempts), len(correlation.attempts), "")
    evaluation = None
    if rules is not None:
        if progress:
            progress("evaluate", 0, len(rules), f"{len(rules)} rules")
        evaluation = engine.evaluate(rules, frame, correlation, with_files, folders)
        if progress:
            progress("evaluate", len(rules), len(rules), "")
    return frame, summary, tuple(with_files), correlation, evaluation


def _shown(path: Path, root: str | None) -> str:
    """An input as the user knows it: relative to `display_root` when under it."""
    if root and path.is_relative_to(root):
        return path.relative_to(root).as_posix()
    return str(path)


def with_damage(
    coverage: Sequence[ChannelCoverage], reports: Sequence[FileReport]
) -> tuple[ChannelCoverage, ...]:
    """Each channel's coverage with the damaged spans of the files it was read from."""
    damage = {r.display: r.damage for r in reports if r.damage}
    if not damage:
        return tuple(coverage)
    out = [
        replace(c, damaged=tuple(s for source in c.sources for s in damage.get(source, ())))
        if any(source in damage for source in c.sources)
        else c
        for c in coverage
    ]
    hosts_in: dict[str, set[str]] = {}  # folder or archive → the hosts its logs name
    for item in coverage:
        for source in item.sources:
            hosts_in.setdefault(container(source), set()).add(item.host)
    for report in reports:  # a connector log damaged before its first record still counts,
        channel = connector_channel_of(report.display)  # on the server whose logs lie beside it
        if report.damage and not report.records and channel:
            beside = hosts_in.get(container(report.display), set())
            host = next(iter(beside)) if len(beside) == 1 else ""  # "": cannot be attributed
            out.append(ChannelCoverage(host, channel, 0, 0, 0, (report.display,), report.damage))
    return tuple(out)


_CONNECTOR_FILE = re.compile(r"odj ?connector ?service", re.IGNORECASE)


def connector_channel_of(display: str) -> str | None:
    """The connector channel a file's name says it holds (export and live names), else None."""
    name = display.replace("\\", "/").rsplit("/", 1)[-1]
    if not _CONNECTOR_FILE.search(name):
        return None
    if name.lower().startswith("odj connector service"):
        return "ODJ Connector Service"
    if "admin" in name.lower():
        return "Microsoft-Intune-ODJConnectorService/Admin"
    return "Microsoft-Intune-ODJConnectorService/Operational"


def load_ruleset(extra: Sequence[str] = ()) -> RuleSet:
    """The built-in knowledge base plus `extra` folders; a broken rule stops the run."""
    folders = default_folders([Path(f) for f in extra])
    ruleset = load_rules(folders)
    shipped = [p for p in ruleset.problems if Path(p.source).is_relative_to(folders[0])]
    if shipped:  # evtxdoc's own knowledge base is broken: not the user's doing
        listed = "\n".join(f"  {p}" for p in shipped[:20])
        raise InternalError(
            f"{len(shipped)} problem(s) in evtxdoc's built-in rules:\n{listed}",
            hint="this is a bug in the installed evtxdoc: reinstall it, or report it with "
            "this message to the evtxdoc maintainers",
        )
    if ruleset.problems:
        listed = "\n".join(f"  {p}" for p in ruleset.problems[:20])
        raise InputError(
            f"{len(ruleset.problems)} problem(s) in the rules:\n{listed}",
            hint="fix them (evtxdoc rules lint lists them all) or drop --rules",
        )
    return ruleset


def _enforce_strict(problems: Sequence[Problem]) -> None:
    serious = [p for p in problems if p.severity is not Severity.INFO]
    if serious:
        listed = "\n".join(f"  - {p.source}: {p.message}" for p in serious[:20])
        more = f"\n  … and {len(serious) - 20} more" if len(serious) > 20 else ""
        raise StrictModeError(
            f"{len(serious)} data problem(s) in strict mode:\n{listed}{more}",
            hint="drop --strict to analyze what can be read, with the problems reported",
        )
