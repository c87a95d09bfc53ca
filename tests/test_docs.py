"""Docs that cannot drift: the CLI reference equals `--help`, the guide names every option."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from evtxdoc.cli import app
from evtxdoc.cli.docs import commands, help_text, reference

DOCS = Path(__file__).resolve().parent.parent / "docs"
BOX = re.compile(r"[─│╭╮╰╯┃━┏┓┗┛┡┩╇┳┻┼]+")


def _words(text: str) -> list[str]:
    """The text without box drawing and layout: what a reader reads, in order."""
    return BOX.sub(" ", text).split()


def test_cli_reference_is_what_help_prints() -> None:
    shipped = (DOCS / "cli-reference.md").read_text(encoding="utf-8")
    assert _words(shipped) == _words(reference()), (
        "docs/cli-reference.md differs from --help: run `make docs` and commit the result"
    )


@pytest.mark.parametrize("command", commands(app), ids=" ".join)
def test_the_cli_guide_names_every_option(command: tuple[str, ...]) -> None:
    guide = (DOCS / "cli.md").read_text(encoding="utf-8")
    options = set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", help_text(app, command))) - {"--help"}
    assert sorted(o for o in options if o not in guide) == []


def test_fail_on_and_exit_codes_are_documented() -> None:
    guide = (DOCS / "cli.md").read_text(encoding="utf-8")
    for text in ("--fail-on", "exit 1", "exit 2", "| 3 |", "130"):
        assert text in guide
    assert "--fail-on" in help_text(app, ("analyze",))


def test_every_command_is_walked_from_the_cli_itself() -> None:
    walked = commands(app)
    assert ("analyze",) in walked and ("rules", "test") in walked and ("catalog", "show") in walked
    assert len(walked) == len(set(walked)) >= 12
