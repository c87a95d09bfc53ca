"""One place that turns an Analysis into any output format (the CLI and the web use it).

html: the self-contained report; json: the versioned document (docs/report.schema.json);
terminal: rich tables; csv and jsonl (Timesketch-ready): every normalized event with its join
attempt. `--redact` and `--tz` apply to all of them (JSON keeps UTC ISO times).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import IO, Any

from rich.console import Console

from evtxdoc.errors import InternalError
from evtxdoc.models import Analysis
from evtxdoc.report import events
from evtxdoc.report.clock import UTC, DisplayZone
from evtxdoc.report.inventory import inventory
from evtxdoc.report.kinds import MAX_EVENTS, SUFFIXES, Format, check_output, infer
from evtxdoc.report.redact import Redactor, for_analysis
from evtxdoc.report.stream import write_json

__all__ = ["SUFFIXES", "Format", "OutputOptions", "check_output", "document", "infer", "write"]


@dataclass(frozen=True)
class OutputOptions:
    zone: DisplayZone = UTC
    redact: bool = False
    max_events: int = MAX_EVENTS
    width: int = 100  # terminal columns when writing to a file
    back_link: str | None = None  # HTML: a link back to where the report came from


def document(analysis: Analysis, redactor: Redactor | None = None) -> dict[str, Any]:
    """The versioned JSON document, redacted when a redactor is given."""
    data = inventory(analysis)
    return redactor.data(data) if redactor else data


def write(
    analysis: Analysis,
    fmt: Format,
    out: IO[bytes],
    options: OutputOptions = OutputOptions(),
    console: Console | None = None,
) -> None:
    """Write `analysis` as `fmt` to the binary stream `out` (or to `console` for terminal)."""
    if fmt in (Format.csv, Format.jsonl) and analysis.partial:
        raise InternalError(
            f"a {fmt} export lists every event, and this analysis kept only the rows it reads",
            hint="analyze with AnalyzeOptions(all_events=True) (the CLI does for csv and jsonl)",
        )
    redactor = for_analysis(analysis) if options.redact else None
    if fmt is Format.json:  # streamed: the document is never whole in memory (issue 20)
        write_json(inventory(analysis, lazy=True), out, redactor.data if redactor else None)
    elif fmt is Format.html:
        from evtxdoc.report import html  # jinja2 and the page's parts: only for a page

        page = html.render(
            analysis,
            html.ReportOptions(
                zone=options.zone,
                redactor=redactor,
                max_events=options.max_events,
                back_link=options.back_link,
            ),
        )
        out.write(page.encode("utf-8"))
    elif fmt is Format.terminal:
        from evtxdoc.report import terminal

        if console is None:
            text = io.StringIO()
            terminal.render(
                document(analysis, redactor),
                Console(file=text, width=options.width, color_system=None),
                options.zone,
            )
            out.write(text.getvalue().encode("utf-8"))
        else:
            terminal.render(document(analysis, redactor), console, options.zone)
    else:
        frame = analysis.timeline
        claimed = events.attempt_ids(frame, analysis.correlation)
        redact = redactor.data if redactor else None
        if fmt is Format.jsonl:
            events.write_timesketch(frame, out, claimed, redact)
        else:
            text_out = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
            try:
                events.write_csv(frame, text_out, claimed, redact)
            finally:
                text_out.detach()
