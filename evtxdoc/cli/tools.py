"""`evtxdoc synth`, `catalog show`, `serve` and `version`; the `rules` group joins here, in
the order `--help` lists the commands."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from evtxdoc import __version__
from evtxdoc.cli.app import (
    Scheduler,
    Workers,
    _fail,
    app,
    progress_bar,
    stderr,
)
from evtxdoc.cli.rules import rules_app
from evtxdoc.errors import EvtxdocError, InputError
from evtxdoc.report.printable import markup


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
            "--layout",
            help="Bundle layout for every device (default: as the scenario says); with "
            "--scale, each device's own bundle in this layout (default: the fleet's logs "
            "merged into one file per channel).",
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
    devices: Annotated[
        int | None,
        typer.Option(
            "--devices",
            min=1,
            help="With --scale: this many devices, each with its share of the events as "
            "background noise (1,000 events a device is about the real mix: 530 of 6,909 "
            "events of a real deployment are steps); default: 55 events a device.",
        ),
    ] = None,
) -> None:
    """Write a scenario's realistic log bundle (deterministic for a given seed)."""
    from evtxdoc import synth as synthesis
    from evtxdoc.synth.scale import write_scaled

    try:
        if scale:
            with progress_bar("writing a fleet bundle") as progress:
                written = write_scaled(
                    output,
                    scale,
                    seed or 1,
                    devices=devices,
                    progress=progress,
                    layout=layout.value if layout else None,
                )
        else:
            written = synthesis.synthesize(
                scenario, output, seed=seed, layout_name=layout.value if layout else None
            )
    except EvtxdocError as error:
        _fail(error)
    stderr.print(f"{len(written)} file(s) written under {markup(output)}", highlight=False)


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
    scheduler: Scheduler = None,
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
        scheduler=scheduler,
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
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level="info",
        proxy_headers=True,
        timeout_keep_alive=5,  # an idle connection is closed after 5 s
        timeout_graceful_shutdown=10,  # SIGTERM: requests get 10 s, then the jobs are stopped
        limit_concurrency=200,  # beyond that, 503 at once instead of a queue without end
    )


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)
