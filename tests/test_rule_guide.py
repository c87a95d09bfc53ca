"""docs/rule-authoring.md's walk-through, run as written: its commands in order, its files
written when the text reaches them, each command's exit code as the text states it."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evtxdoc.cli import app

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "rule-authoring.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)
EXIT = re.compile(r"#\s*exit (\d+)")


def _walkthrough() -> list[tuple[str, str]]:
    text = GUIDE.read_text(encoding="utf-8")
    start = text.index("## From nothing to a tested rule")
    end = text.index("\n## ", start + 1)
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(text[start:end])]


def test_the_guide_walks_from_nothing_to_a_green_connector_event_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "sample_logs").symlink_to(ROOT / "sample_logs")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    ran: list[tuple[str, int, str]] = []
    for language, body in _walkthrough():
        if language == "yaml":
            first, _, rest = body.partition("\n")
            target = first.removeprefix("# file: ").strip()
            assert first.startswith("# file: ") and target, first
            (tmp_path / target).write_text(rest, encoding="utf-8")
            continue
        assert language == "sh"
        for line in body.splitlines():
            if not line.startswith("evtxdoc "):
                continue
            command, _, comment = line.partition("#")
            expected = EXIT.search("#" + comment)
            code = int(expected.group(1)) if expected and "exit 1 on any" not in comment else 0
            result = runner.invoke(app, shlex.split(command)[1:])
            ran.append((command.strip(), result.exit_code, result.output))
            assert result.exit_code == code, (command, result.output)
    commands = [c for c, _, _ in ran]
    assert commands[0].startswith("evtxdoc rules new connector-slow-request")
    first_lint = ran[1]
    assert first_lint[1] == 1 and first_lint[2].count("TODO") == 3, first_lint[2]
    tested = next(out for c, _, out in ran if c.startswith("evtxdoc rules test"))
    assert "3 case(s): 3 passed, 0 failed" in tested, tested
    shown = next(out for c, _, out in ran if c.startswith("evtxdoc rules show"))
    assert "ElapsedMilliseconds" in shown


def test_lint_names_a_field_the_catalog_does_not_list_for_the_event(tmp_path: Path) -> None:
    """`{slow.ElapsedMs}` would read "(unknown)" on every real log: lint says so, with the
    field the catalog does list."""
    runner = CliRunner()
    folder = tmp_path / "mine"
    assert (
        runner.invoke(
            app, ["rules", "new", "connector-slow-request", "--dir", str(folder)]
        ).exit_code
        == 0
    )
    yaml_block = next(body for language, body in _walkthrough() if language == "yaml")
    rule = yaml_block.partition("\n")[2].replace("{slow.ElapsedMilliseconds}", "{slow.ElapsedMs}")
    (folder / "connector-slow-request.yaml").write_text(rule, encoding="utf-8")
    result = runner.invoke(app, ["rules", "lint", str(folder)])
    assert result.exit_code == 1
    assert "the catalog lists no field 'ElapsedMs'" in result.output
    assert "did you mean {slow.ElapsedMilliseconds}?" in result.output
    assert "connector-slow-request.yaml:17: cause:" in result.output
