"""The `evtxdoc` command line: parse arguments, call pipeline.analyze, render.

Exit codes: 0 ran (nothing at or above --fail-on); 1 findings at or above --fail-on;
2 usage error or unreadable input (or --strict and data problems, or a broken rule); 130
interrupted.
"""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import pandas as pd
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from evtxdoc import __version__, pipeline, timeline
from evtxdoc.cli_rules import rules_app
from evtxdoc.errors import EvtxdocError, InputError, InternalError
from evtxdoc.models import Analysis, AnalyzeOptions
from evtxdoc.report import events as events_export
from evtxdoc.report import findings
from evtxdoc.report.clock import display_zone
from evtxdoc.report.formats import Format, OutputOptions, infer, write

EXIT_OK, EXIT_FINDINGS, EXIT_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

app = typer.Typer(
    help="Explain Autopilot hybrid-join failures from Windows event logs (.evtx, cab, zip).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
stderr = Console(stderr=True)

Inputs = Annotated[
    list[Path],
    typer.Argument(
        help="Log bundles: .evtx files, folders, .zip or .cab archives (nested ones too).",
        show_default=False,
    ),
]
Strict = Annotated[
    bool, typer.Option("--strict", help="Validate checksums and fail (exit 2) on any data problem.")
]
Workers = Annotated[
    int | None,
    typer.Option(
        "--workers", min=1, help="Processes for reading several files (default: one per core)."
    ),
]


class FailOn(StrEnum):
    info = "info"
    warning = "warning"
    error = "error"
    critical = "critical"
    never = "never"


class EventsFormat(StrEnum):
    csv = "csv"
    jsonl = "jsonl"


def _run(
    inputs: list[Path],
    strict: bool,
    workers: int | None,
    rules: list[Path] | None = None,
    evaluate: bool = True,
) -> Analysis:
    options = AnalyzeOptions(
        strict=strict,
        workers=workers,
        evaluate=evaluate,
        rule_folders=tuple(str(r) for r in rules or ()),
    )
    if not sys.stderr.isatty():
        return pipeline.analyze(inputs, options)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=stderr, transient=True) as bar:
        task = bar.add_task("reading logs", total=None)

        def progress(stage: str, done: int, total: int, detail: str) -> None:
            bar.update(task, completed=done, total=total, description=f"{stage}: {detail[-50:]}")

        return pipeline.analyze(inputs, options, progress)


def _fail(error: EvtxdocError) -> NoReturn:
    stderr.print(
        f"[bold red]error:[/] {error.where + ': ' if error.where else ''}{error.message}",
        highlight=False,
        markup=True,
        soft_wrap=True,
    )
    if error.hint:
        stderr.print(f"  hint: {error.hint}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_INTERNAL if isinstance(error, InternalError) else EXIT_INPUT)


def _analysis(
    inputs: list[Path],
    strict: bool,
    workers: int | None,
    rules: list[Path] | None = None,
    evaluate: bool = True,
) -> Analysis:
    try:
        analysis = _run(inputs, strict, workers, rules, evaluate)
    except EvtxdocError as error:
        _fail(error)
    except KeyboardInterrupt:
        stderr.print("interrupted")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    return analysis


@app.command()
def analyze(
    inputs: Inputs,
    output: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            help="Write to this file (its suffix picks the format: .html, .json, "
            ".csv, .jsonl, .txt).",
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
            help="Show times in this zone (IANA name, e.g. Europe/Paris) in html and "
            "terminal output; JSON, CSV and JSONL keep UTC.",
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
    strict: Strict = False,
    workers: Workers = None,
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
) -> None:
    """Read the bundles, line up join attempts and explain them with the rules: a verdict per
    device, findings with their fixes, swimlanes, coverage, files and problems."""
    try:
        zone = display_zone(tz)
    except EvtxdocError as error:
        _fail(error)
    analysis = _analysis(inputs, strict, workers, rules)
    chosen = output_format or infer(output, sys.stdout.isatty())
    options = OutputOptions(zone=zone, redact=redact, max_events=max_events)
    if output:
        with output.open("wb") as handle:
            write(analysis, chosen, handle, options)
        stderr.print(f"{chosen} written to {output}", highlight=False)
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
            "[bold red]error:[/] no readable .evtx event log in the inputs", soft_wrap=True
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
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Output file.")] = None,
    strict: Strict = False,
    workers: Workers = None,
) -> None:
    """Dump normalized events (UTC times, decoded fields), filtered."""
    start, end = _time(since, "--since"), _time(until, "--until")
    analysis = _analysis(inputs, strict, workers, evaluate=False)
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


def _stdout_bytes():
    return open(sys.stdout.fileno(), "wb", closefd=False)


def _stdout_text():
    return open(sys.stdout.fileno(), "w", encoding="utf-8", newline="", closefd=False)


class SynthLayout(StrEnum):
    cab = "cab"
    zip = "zip"
    intune = "intune"
    live = "live"


@app.command()
def synth(
    scenario: Annotated[
        Path, typer.Argument(help="Scenario file (docs/scenarios.md).", show_default=False)
    ],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Folder for bundle/ and expected.yaml.")
    ],
    layout: Annotated[
        SynthLayout | None,
        typer.Option(
            "--layout", help="Bundle layout for every device (default: as the scenario says)."
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Override the scenario's seed.")
    ] = None,
    scale: Annotated[
        int | None,
        typer.Option(
            "--scale",
            min=1,
            help="Instead of the scenario, write a large bundle of about this "
            "many events (performance work).",
        ),
    ] = None,
) -> None:
    """Write a scenario's realistic log bundle (deterministic for a given seed)."""
    from evtxdoc import synth as synthesis
    from evtxdoc.synth.scale import write_scaled

    try:
        if scale:
            written = write_scaled(output, scale, seed or 1)
        else:
            written = synthesis.synthesize(
                scenario, output, seed=seed, layout_name=layout.value if layout else None
            )
    except EvtxdocError as error:
        _fail(error)
    stderr.print(f"{len(written)} file(s) written under {output}", highlight=False)


app.add_typer(rules_app, name="rules")
catalog_app = typer.Typer(
    help="Look up error codes in the catalog (rules/catalog/).", no_args_is_help=True
)
app.add_typer(catalog_app, name="catalog")


@catalog_app.command("show")
def catalog_show(
    code: Annotated[
        str,
        typer.Argument(
            help="A code in any form: 0x80070774, 80070774, "
            "-2147022988, 1908, 2710, SEC_E_TIME_SKEW …"
        ),
    ],
) -> None:
    """Explain one error code: name, meaning, where it shows up, fix, sources (exit 1 when
    the catalog does not know it)."""
    from evtxdoc import catalog

    try:
        entries = catalog.load().lookup(code)
    except EvtxdocError as error:
        _fail(error)
    value = catalog.parse_code(code)
    if value is not None:
        shown = catalog.forms(value)
        typer.echo("  ".join(f"{k} {v}" for k, v in shown.items()))
    if not entries:
        typer.echo(
            f"{code}: not in the catalog"
            + (f"; {catalog.describe_unknown(value)}" if value is not None else "")
        )
        raise typer.Exit(1)
    for entry in entries:
        title = " / ".join(n for n in (entry.code, entry.name) if n)
        if entry.win32 is not None:
            title += f" (Win32 {entry.win32})"
        if entry.scope:
            title += f" [{entry.scope} DiagnosticCode]"
        typer.echo(f"\n{title}  [{entry.confidence}]")
        typer.echo(f"  meaning: {entry.meaning}")
        typer.echo(f"  seen in: {entry.context}")
        typer.echo(f"  fix:     {entry.fix}")
        for source in entry.sources:
            typer.echo(f"  source:  {source.id} {source.url or source.title}")


@app.command()
def serve(
    host: Annotated[
        str,
        typer.Option(
            help="Address to listen on; 127.0.0.1 keeps it on this machine (put a TLS reverse "
            "proxy in front to share it)."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="Folder for the job database, uploads and reports (default: ~/.evtxdoc).",
            show_default=False,
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            help="Access token (default: $EVTXDOC_TOKEN, else the one kept in the data folder, "
            "else a new one).",
            show_default=False,
        ),
    ] = None,
    max_upload_mb: Annotated[
        int, typer.Option("--max-upload-mb", min=1, help="Largest upload, all files together.")
    ] = 2048,
    max_files: Annotated[int, typer.Option(min=1, help="Most files in one upload.")] = 500,
    jobs: Annotated[int, typer.Option(min=1, help="Analyses run at the same time.")] = 1,
    workers: Workers = None,
    secure_cookie: Annotated[
        bool,
        typer.Option(
            "--secure-cookie", help="Mark the sign-in cookie Secure (when served over HTTPS)."
        ),
    ] = False,
    keep_days: Annotated[
        float | None,
        typer.Option(
            "--keep-days",
            min=0.01,
            help="Delete finished analyses (uploads and reports) this "
            "many days old, at start and every hour (default: keep them).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the web page where support engineers upload logs and get the report."""
    import uvicorn

    from evtxdoc.web import WebSettings, create_app, load_token
    from evtxdoc.web.app import data_folder_default

    folder = (data or data_folder_default()).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as error:
        _fail(
            InputError(
                f"cannot create the data folder: {error.strerror}",
                where=str(folder),
                hint="pass --data with a folder you can write to",
            )
        )
    access, generated = load_token(folder, token)
    settings = WebSettings(
        folder,
        access,
        max_upload_bytes=max_upload_mb * 2**20,
        max_files=max_files,
        concurrent_jobs=jobs,
        read_workers=workers,
        secure_cookie=secure_cookie,
        keep_days=keep_days,
    )
    shown = "localhost" if host in ("127.0.0.1", "::1") else host
    stderr.print(
        f"evtxdoc {__version__} serving on http://{shown}:{port}/  (data: {folder})",
        highlight=False,
    )
    stderr.print(
        f"sign in: http://{shown}:{port}/login?token={access}"
        + ("  (new token, kept in the data folder)" if generated else ""),
        highlight=False,
        soft_wrap=True,
    )
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info", proxy_headers=True)


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


def main() -> None:
    """Console-script entry point."""
    app()
