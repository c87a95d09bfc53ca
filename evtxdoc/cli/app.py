"""The `evtxdoc` Typer app, its shared options and exit codes, and running an analysis
with progress for the commands."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from evtxdoc.errors import EvtxdocError, InternalError
from evtxdoc.models import Analysis, AnalyzeOptions
from evtxdoc.report.printable import markup

EXIT_OK, EXIT_FINDINGS, EXIT_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

app = typer.Typer(
    help="Explain Autopilot hybrid-join failures from Windows event logs (.evtx, cab, zip).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
stderr = Console(stderr=True)


def _help_as_people_read_it() -> None:
    """Two habits of typer 0.29's help, put back as click and sigma-cli write it: every flag
    showed a type (`--redact <bool>`, as if it took a value: a user typed `--redact true`), and
    a required argument read `{inputs}...`. Now: no type on a flag, `PATH...` and
    `[FOLDER]...` in the usage line."""
    from typer.core import TyperArgument, TyperOption

    shown = TyperOption.display_type_rich

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag and self.metavar is None else shown(self, ctx)

    def usage_name(self: TyperArgument) -> str:
        name = self.display_name_raw if self.metavar else self.display_name_raw.upper()
        name = name if self.required else f"[{name}]"
        return name + ("..." if self.nargs != 1 else "")

    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]
    TyperArgument._usage_display_name = usage_name  # type: ignore[method-assign]


_help_as_people_read_it()


def _print_version(wanted: bool) -> None:
    if wanted:
        from evtxdoc import __version__

        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Explain Autopilot hybrid-join failures from Windows event logs (.evtx, cab, zip)."""


Inputs = Annotated[
    list[Path],
    typer.Argument(
        metavar="PATH",
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


Scheduler = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        envvar="EVTXDOC_SCHEDULER",
        help="Read the logs on a Dask cluster: local:N (N worker processes here) or "
        "tcp://HOST:8786 (a running dask scheduler; the inputs on a path every worker sees). "
        "The report is the same as without it.",
        show_default=False,
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


class EventsKept(StrEnum):
    """Which events' rows an analysis keeps in memory (evtxdoc/partition.py)."""

    auto = "auto"
    all = "all"
    evidence = "evidence"


def _run(inputs: list[Path], options: AnalyzeOptions) -> Analysis:
    with progress_bar("reading logs") as progress:
        from evtxdoc import pipeline  # loaded by the commands that analyze (startup: issue 20)

        return pipeline.analyze(inputs, options, progress)


@contextmanager
def progress_bar(what: str) -> Iterator[Callable[..., None] | None]:
    """A transient progress bar on stderr when it is a terminal (None otherwise), fed with
    `(stage, done, total[, detail])` as the pipeline and synth report their steps."""
    if not sys.stderr.isatty():
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=stderr, transient=True) as bar:
        task = bar.add_task(what, total=None)

        def progress(stage: str, done: int, total: int, detail: str = "") -> None:
            shown = f"{stage}: {markup(detail[-50:])}" if detail else f"{what}: {stage}"
            bar.update(task, completed=done, total=total, description=shown)

        yield progress


def _fail(error: EvtxdocError) -> NoReturn:
    stderr.print(
        f"[bold red]error:[/] {markup(error.where) + ': ' if error.where else ''}"
        f"{markup(error.message)}",
        highlight=False,
        markup=True,
        soft_wrap=True,
    )
    if error.hint:
        stderr.print(f"  hint: {markup(error.hint)}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_INTERNAL if isinstance(error, InternalError) else EXIT_INPUT)


def _analysis(inputs: list[Path], options: AnalyzeOptions) -> Analysis:
    """`pipeline.analyze` with a progress bar; errors and Ctrl-C become exit codes."""
    try:
        analysis = _run(inputs, options)
    except EvtxdocError as error:
        _fail(error)
    except KeyboardInterrupt:
        stderr.print("interrupted")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    return analysis
