"""The `evtxdoc` command line: parse arguments, call pipeline.analyze, render.

Exit codes: 0 ran (nothing at or above --fail-on); 1 findings at or above --fail-on;
2 usage error or unreadable input (or --strict and data problems, or a broken rule); 130
interrupted.
"""

from evtxdoc.cli import analyze, tools  # noqa: F401 (registering the commands, in help order)
from evtxdoc.cli.app import app


def main() -> None:
    """Console-script entry point."""
    app()


__all__ = ["app", "main"]
