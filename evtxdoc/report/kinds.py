"""The output formats and how an output path picks one: light, so that the command line can
name them without loading the renderers."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from evtxdoc.errors import UsageError

MAX_EVENTS = 5000  # rows in the HTML event table (evidence first, then known events, then the rest)


class Format(StrEnum):
    terminal = "terminal"
    html = "html"
    json = "json"
    csv = "csv"
    jsonl = "jsonl"


SUFFIXES = {
    ".html": Format.html,
    ".htm": Format.html,
    ".json": Format.json,
    ".csv": Format.csv,
    ".jsonl": Format.jsonl,
    ".ndjson": Format.jsonl,
    ".txt": Format.terminal,
}


def infer(output: Path | None, interactive: bool) -> Format:
    """The format an output file's suffix asks for; else terminal on a terminal, else json.
    A suffix that names no format is refused, not written as JSON under a misleading name."""
    if output is not None:
        found = SUFFIXES.get(output.suffix.lower())
        if found is None:
            raise UsageError(
                f"cannot tell the format of {output.name!r} from its suffix",
                where=str(output),
                hint=f"use one of {', '.join(sorted(SUFFIXES))}, or give --format",
            )
        return found
    return Format.terminal if interactive else Format.json


def check_output(output: Path | None) -> None:
    """Refuse, before the analysis runs, an output that cannot be written."""
    if output is None:
        return
    folder = output.parent  # "." for a bare file name
    if not folder.is_dir():
        raise UsageError(
            "the output's folder does not exist",
            where=str(output),
            hint=f"create it first (mkdir -p {folder}), or write elsewhere",
        )
    if output.is_dir():
        raise UsageError("the output is a folder", where=str(output), hint="name a file in it")
