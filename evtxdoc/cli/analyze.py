"""`evtxdoc analyze` and `evtxdoc events`."""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, BinaryIO, TextIO

import typer
from rich.console import Console

from evtxdoc.cli.app import (
    EXIT_FINDINGS,
    EXIT_INPUT,
    EventsFormat,
    EventsKept,
    FailOn,
    Inputs,
    Scheduler,
    Strict,
    Workers,
    _analysis,
    _fail,
    app,
    stderr,
)
from evtxdoc.errors import EvtxdocError, UsageError
from evtxdoc.models import AnalyzeOptions
from evtxdoc.report.kinds import Format, check_output, infer
from evtxdoc.report.printable import markup

if TYPE_CHECKING:
    import pandas as pd


@app.command()
def analyze(
    inputs: Inputs,
    output: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            help="Write to this file (its suffix picks the format: .html, .json, "
            ".csv, .jsonl, .txt); `-` is standard output.",
        ),
    ] = None,
    output_format: Annotated[
        Format | None,
        typer.Option(
            "--format",
            "-f",
            help="html (the report), json (versioned, docs/report.schema.json), "
            "terminal, csv or jsonl (every event with its attempt; jsonl is Timesketch-ready). "
            "Default: from the -o suffix, else terminal on a terminal, else json.",
        ),
    ] = None,
    tz: Annotated[
        str,
        typer.Option(
            "--tz",
            help="Show times in this zone (IANA name, e.g. Europe/Paris, or `local`) in "
            "html and terminal output; JSON, CSV and JSONL keep UTC.",
        ),
    ] = "UTC",
    redact: Annotated[
        bool,
        typer.Option(
            "--redact",
            help="Replace user names, computer and domain names, tenant and device "
            "ids, SIDs and IP addresses with stable pseudonyms, so the output can be shared.",
        ),
    ] = False,
    max_events: Annotated[
        int,
        typer.Option(
            "--max-events", min=0, help="Rows in the HTML report's event table (evidence first)."
        ),
    ] = 5000,
    events: Annotated[
        EventsKept,
        typer.Option(
            "--events",
            help="Which events' rows stay in memory: all, or evidence (what correlation, the "
            "rules and the report read, plus a sample for the event table; every event is "
            "still counted, covered and de-duplicated: the findings are the same), or auto "
            "(evidence above 256 MiB of logs). csv and jsonl keep all.",
        ),
    ] = EventsKept.auto,
    events_to: Annotated[
        Path | None,
        typer.Option(
            "--events-to",
            help="Also write every event to this folder as Parquet, one file per log "
            "(events/*.parquet, the CSV's columns, written where each log is read) and "
            "attempts.parquet: a fleet's whole event list without holding it in memory.",
        ),
    ] = None,
    strict: Strict = False,
    workers: Workers = None,
    scheduler: Scheduler = None,
    rules: Annotated[
        list[Path] | None,
        typer.Option(
            "--rules",
            help="A folder of your own rules, added to the built-in knowledge base (repeatable).",
        ),
    ] = None,
    fail_on: Annotated[
        FailOn,
        typer.Option(
            "--fail-on",
            help="Exit 1 when a finding is at or above this severity (exit 0 "
            "otherwise; 2 for unreadable input or a usage error).",
        ),
    ] = FailOn.never,
    zip_passwords: Annotated[
        list[str] | None,
        typer.Option(
            "--zip-password",
            envvar="EVTXDOC_ZIP_PASSWORD",
            help="Password of encrypted zip entries (ZipCrypto; repeatable, each tried in "
            "turn). Kept out of every report; the environment variable keeps it out of the "
            "shell history.",
            show_envvar=True,
        ),
    ] = None,
) -> None:
    """Read the bundles, line up join attempts and explain them with the rules: a verdict per
    device, findings with their fixes, swimlanes, coverage, files and problems."""
    from evtxdoc.report import findings
    from evtxdoc.report.clock import display_zone
    from evtxdoc.report.formats import OutputOptions, write

    try:
        zone = display_zone(tz)
    except EvtxdocError as error:
        _fail(error)
    if output is not None and str(output) == "-":
        output = None  # `-o -`: standard output, as Hayabusa and Chainsaw take it
    try:
        chosen = output_format or infer(output, sys.stdout.isatty())
        check_output(output)
    except EvtxdocError as error:
        _fail(error)
    if events_to is not None and redact:
        _fail(
            UsageError(
                "--redact does not apply to --events-to: the Parquet files hold the events "
                "as the logs wrote them",
                hint="share the redacted report, and keep the Parquet folder with the logs",
            )
        )
    all_events = {EventsKept.all: True, EventsKept.evidence: False}.get(events)
    if chosen in (Format.csv, Format.jsonl):  # every event is the output
        all_events = True
    analysis = _analysis(
        inputs,
        AnalyzeOptions(
            strict=strict,
            workers=workers,
            scheduler=scheduler,
            rule_folders=tuple(str(r) for r in rules or ()),
            zip_passwords=tuple(zip_passwords or ()),
            all_events=all_events,
            redaction=redact,
            events_to=str(events_to) if events_to else None,
        ),
    )
    options = OutputOptions(zone=zone, redact=redact, max_events=max_events)
    if output:
        with output.open("wb") as handle:
            write(analysis, chosen, handle, options)
        stderr.print(f"{chosen} written to {markup(output)}", highlight=False)
    elif chosen is Format.terminal:  # a pipe gets 100 columns unless COLUMNS says otherwise
        wide = sys.stdout.isatty() or "COLUMNS" in os.environ
        write(
            analysis,
            chosen,
            sys.stdout.buffer,
            options,
            console=Console() if wide else Console(width=100),
        )
    else:
        write(analysis, chosen, sys.stdout.buffer, options)
        sys.stdout.buffer.flush()
    if not analysis.readable:
        stderr.print(
            "[bold red]error:[/] no readable .evtx event log or .svclog trace in the inputs",
            soft_wrap=True,
        )
        stderr.print(
            "  hint: pass the folder, .cab or .zip the logs came in; see the "
            "Files table for what was skipped and why",
            soft_wrap=True,
        )
        raise typer.Exit(EXIT_INPUT)
    if fail_on is not FailOn.never and findings.at_or_above(analysis.evaluation, fail_on):
        raise typer.Exit(EXIT_FINDINGS)


def _time(value: str | None, name: str) -> pd.Timestamp | None:
    import pandas as pd

    if value is None:
        return None
    try:
        stamp = pd.Timestamp(value)
    except ValueError:
        raise typer.BadParameter(
            f"not a date/time: {value!r} (use ISO 8601, e.g. 2025-02-18T10:00:00Z)", param_hint=name
        ) from None
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


@app.command()
def events(
    inputs: Inputs,
    channel: Annotated[
        list[str] | None,
        typer.Option("--channel", help="Only this channel (repeatable), e.g. System."),
    ] = None,
    event_id: Annotated[
        list[int] | None, typer.Option("--id", help="Only this event ID (repeatable).")
    ] = None,
    host: Annotated[
        list[str] | None,
        typer.Option("--host", help="Only this host (System/Computer, repeatable)."),
    ] = None,
    since: Annotated[str | None, typer.Option(help="From this UTC time (ISO 8601).")] = None,
    until: Annotated[str | None, typer.Option(help="Up to this UTC time (ISO 8601).")] = None,
    output_format: Annotated[
        EventsFormat, typer.Option("--format", "-f", help="csv or jsonl.")
    ] = EventsFormat.jsonl,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Output file (`-`: standard output).")
    ] = None,
    strict: Strict = False,
    workers: Workers = None,
) -> None:
    """Dump normalized events (UTC times, decoded fields), filtered."""
    from evtxdoc import timeline
    from evtxdoc.report import events as events_export

    start, end = _time(since, "--since"), _time(until, "--until")
    if output is not None and str(output) == "-":
        output = None
    try:
        check_output(output)
    except EvtxdocError as error:
        _fail(error)
    options = AnalyzeOptions(
        strict=strict, workers=workers, evaluate=False, all_events=True, redaction=False
    )
    analysis = _analysis(inputs, options)
    frame = timeline.select(
        analysis.timeline, channels=channel, event_ids=event_id, hosts=host, since=start, until=end
    )
    if output_format is EventsFormat.jsonl:
        with output.open("wb") if output else _stdout_bytes() as handle:
            count = events_export.write_jsonl(frame, handle)
    else:
        with output.open("w", encoding="utf-8", newline="") if output else _stdout_text() as handle:
            count = events_export.write_csv(frame, handle)
    stderr.print(f"{count} event(s) written", highlight=False)


@contextmanager
def _stdout_bytes() -> Iterator[BinaryIO]:
    """Standard output as bytes, left open (it is not ours to close)."""
    stream = sys.stdout.buffer
    yield stream
    stream.flush()


@contextmanager
def _stdout_text() -> Iterator[TextIO]:
    """Standard output as UTF-8 text with the CSV module's own line ends, left open."""
    text = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="")
    try:
        yield text
    finally:
        text.flush()
        text.detach()
