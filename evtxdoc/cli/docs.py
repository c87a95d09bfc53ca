"""docs/cli-reference.md: every command's `--help`, as the CLI prints it.

`python -m evtxdoc.cli.docs > docs/cli-reference.md` regenerates it (`make docs`); a test fails
when the file and the CLI disagree, so the reference cannot drift from `--help`; the commands
are walked from the click tree, so none can be left out.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.testing import CliRunner

ENV = {"COLUMNS": "100", "TERM": "dumb", "NO_COLOR": "1", "_TYPER_FORCE_DISABLE_TERMINAL": "1"}


def commands(app: typer.Typer) -> list[tuple[str, ...]]:
    """Every command of the CLI, walked from its click tree (groups expanded), so a new
    command is in the reference without anyone listing it."""
    found: list[tuple[str, ...]] = []

    def walk(command: Any, path: tuple[str, ...]) -> None:
        if hasattr(command, "list_commands"):  # a group (Typer's own click, not `import click`)
            context = type(command).context_class(command)
            for name in command.list_commands(context):
                sub = command.get_command(context, name)
                if sub is not None and not sub.hidden:
                    walk(sub, (*path, name))
        else:
            found.append(path)

    walk(typer.main.get_command(app), ())
    return found


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
        "Generated from `--help` by `python -m evtxdoc.cli.docs` (`make docs`); a test keeps",
        "it equal to what the installed command prints. The guide to the commands, with",
        "examples, is [cli.md](cli.md).",
        "",
    ]
    for command in commands(app):
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
