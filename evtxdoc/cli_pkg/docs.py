"""docs/cli-reference.md: every command's `--help`, as the CLI prints it.

`python -m evtxdoc.cli_docs > docs/cli-reference.md` regenerates it (`make docs`); a test fails
when the file and the CLI disagree, so the reference cannot drift from `--help`.
"""

from __future__ import annotations

import typer
from typer.testing import CliRunner

COMMANDS = (
    ("analyze",),
    ("events",),
    ("catalog", "show"),
    ("rules", "new"),
    ("rules", "lint"),
    ("rules", "test"),
    ("rules", "list"),
    ("rules", "show"),
    ("rules", "schema"),
    ("synth",),
    ("serve",),
    ("version",),
)
ENV = {"COLUMNS": "100", "TERM": "dumb", "NO_COLOR": "1", "_TYPER_FORCE_DISABLE_TERMINAL": "1"}


def help_text(app: typer.Typer, command: tuple[str, ...]) -> str:
    """The `--help` output of one command, trailing spaces removed."""
    result = CliRunner().invoke(app, [*command, "--help"], env=ENV, prog_name="evtxdoc")
    if result.exit_code != 0:
        raise RuntimeError(f"{' '.join(command)} --help failed: {result.output}")
    return "\n".join(line.rstrip() for line in result.output.strip("\n").splitlines())


def reference() -> str:
    from evtxdoc.cli import app

    parts = [
        "# CLI reference",
        "",
        "Generated from `--help` by `python -m evtxdoc.cli_docs` (`make docs`); a test keeps",
        "it equal to what the installed command prints. The guide to the commands, with",
        "examples, is [cli.md](cli.md).",
        "",
    ]
    for command in COMMANDS:
        parts += [
            f"## evtxdoc {' '.join(command)}",
            "",
            "```text",
            help_text(app, command),
            "```",
            "",
        ]
    return "\n".join(parts)


if __name__ == "__main__":
    print(reference(), end="")
