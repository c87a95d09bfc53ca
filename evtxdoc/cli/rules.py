"""`evtxdoc rules …`: author, lint, test, list and show knowledge-base rules.

Exit codes: 0 all good; 1 a rule or fixture has problems / a case failed; 2 usage error.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from evtxdoc.report.printable import printable
from evtxdoc.rules.schema import SCHEMA, SCOPES

if TYPE_CHECKING:  # the loader loads when a command reads rules (start-up: issue 20)
    from evtxdoc.models import Problem
    from evtxdoc.rules import RuleSet

rules_app = typer.Typer(
    help="Write, lint, test, list and show knowledge-base rules (docs/rule-authoring.md).",
    no_args_is_help=True,
)
Folders = Annotated[
    list[Path] | None,
    typer.Argument(
        metavar="FOLDER",
        help="Rule folders besides the built-in knowledge base (default: the built-in one only).",
        show_default=False,
    ),
]
Only = Annotated[
    bool,
    typer.Option(
        "--only", help="Only the given folders, not the built-in knowledge base with them."
    ),
]
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]*[a-z0-9]$")

RULE_TEMPLATE = """\
id: {id}
title: "TODO: say in one line what went wrong"
severity: error            # critical | error | warning | info
confidence: inferred       # documented | community | inferred
scope: {scope}
applies_to:
  join: hybrid             # hybrid | entra | any
match:
{match}
cause: >-
  TODO: why it happened, with values from the evidence: {{computer_name}} in {{domain}},
  {{failed.NetStatusCode|code}}.
fix: |
  1. TODO: the first step.
  2. Then retry the deployment.
sources: [S1]              # TODO: the S-numbers of rules/catalog/sources.yaml that say so
"""
MATCHES = {
    "attempt": """\
  events:
    failed:
      side: device
      channel: System
      event_id: 4099""",
    "host": """\
  events:
    failed:
      channel: System
      event_id: 4099""",
    "event": """\
  events:
    failed:
      channel: System
      event_id: 4099""",
    "bundle": """\
  events:
    failed:
      channel: System
      event_id: 4099""",
}
TEST_TEMPLATE = """\
cases:
  - name: the failure this rule explains
    expect: match
    events:
      - {t: 0, host: DESKTOP-1, channel: dmedp, id: 111}
      - {t: 100, host: DESKTOP-1, channel: dmedp, id: 107}
      - {t: 102, host: DESKTOP-1, channel: system, id: 4099, level: 2,
         data: {DomainName: contoso.local, ComputerName: AP-1, NetStatusCode: 2710}}
  - name: a healthy join
    expect: no_match
    events:
      - {t: 0, host: DESKTOP-1, channel: dmedp, id: 111}
      - {t: 100, host: DESKTOP-1, channel: dmedp, id: 107}
      - {t: 102, host: DESKTOP-1, channel: system, id: 4098,
         data: {DomainName: contoso.local, ComputerName: AP-1}}
"""


def _ruleset(folders: list[Path] | None, only: bool) -> RuleSet:
    from evtxdoc.rules import default_folders, load_rules

    chosen = list(folders or [])
    return load_rules(chosen if only and chosen else default_folders(chosen))


def _print_problems(problems: list[Problem]) -> None:
    for problem in problems:
        typer.echo(printable(problem))


@rules_app.command("new")
def rules_new(
    rule_id: Annotated[str, typer.Argument(metavar="ID", help="lower-case-words-with-dashes")],
    folder: Annotated[Path, typer.Option("--dir", help="Where to write the two files.")] = Path(),
    scope: Annotated[str, typer.Option(help=f"One of {', '.join(SCOPES)}.")] = "attempt",
) -> None:
    """Write ID.yaml and ID.test.yaml: a working example whose TODO texts lint refuses until
    you replace them (its test cases pass as written)."""
    if not ID_PATTERN.match(rule_id):
        typer.echo(f"error: {rule_id!r} is not a rule id (lower-case words with dashes)", err=True)
        raise typer.Exit(2)
    if scope not in SCOPES:
        typer.echo(f"error: scope {scope!r}: one of {', '.join(SCOPES)}", err=True)
        raise typer.Exit(2)
    rule, test = folder / f"{rule_id}.yaml", folder / f"{rule_id}.test.yaml"
    for path in (rule, test):
        if path.exists():
            typer.echo(f"error: {path} exists; not overwriting it", err=True)
            raise typer.Exit(2)
    folder.mkdir(parents=True, exist_ok=True)
    match = MATCHES[scope]
    text = RULE_TEMPLATE.format(id=rule_id, scope=scope, match=match)
    if scope != "attempt":
        host = "{hosts}" if scope == "bundle" else "{host}"
        text = text.replace("{computer_name} in {domain},\n  ", f"{host}, ")
    rule.write_text(text, "utf-8")
    test.write_text(TEST_TEMPLATE, "utf-8")
    typer.echo(
        f"wrote {rule} and {test}\nnext: replace every TODO and edit the match and the cases, "
        f"then `evtxdoc rules lint {folder}` (it fails while a TODO is left) "
        f"and `evtxdoc rules test {folder}`"
    )


@rules_app.command("lint")
def rules_lint(folders: Folders = None, only: Only = False) -> None:
    """Check every rule and fixture file; print all problems with file:line (exit 1 on any)."""
    from evtxdoc.rules.loader import authoring_problems, fixture_path, rule_problem

    ruleset = _ruleset(folders, only)
    problems = list(ruleset.problems)
    for rule in ruleset.rules:
        problems += authoring_problems(Path(rule.path))
        if not fixture_path(rule).exists():
            problems.append(
                rule_problem(
                    rule.path,
                    1,
                    f"no test file {fixture_path(rule).name}",
                    "evtxdoc rules new writes one; every rule needs a positive and a negative case",
                )
            )
    _print_problems(problems)
    typer.echo(
        f"{len(ruleset.rules)} rule(s) in {', '.join(ruleset.folders)}: {len(problems)} problem(s)"
    )
    if problems:
        raise typer.Exit(1)


@rules_app.command("test")
def rules_test(
    folders: Folders = None,
    only: Only = False,
    rule_id: Annotated[str | None, typer.Option("--rule", help="Only this rule.")] = None,
    verbose: Annotated[
        bool, typer.Option("-v", "--verbose", help="List passing cases too.")
    ] = False,
) -> None:
    """Run every case of every rule's ID.test.yaml (exit 1 on any failure or problem)."""
    from evtxdoc.fixtures import run_rule_tests  # the pipeline: only when cases run

    ruleset = _ruleset(folders, only)
    problems = list(ruleset.problems)
    chosen = [r for r in ruleset.rules if rule_id in (None, r.id)]
    if rule_id and not chosen:
        typer.echo(f"error: no rule {rule_id!r}", err=True)
        raise typer.Exit(2)
    passed = failed = 0
    for rule in chosen:
        results, found = run_rule_tests(rule)
        problems += found
        for result in results:
            passed += result.passed
            failed += not result.passed
            if verbose or not result.passed:
                typer.echo(printable(result))
    _print_problems(problems)
    typer.echo(
        f"{len(chosen)} rule(s), {passed + failed} case(s): {passed} passed, "
        f"{failed} failed, {len(problems)} problem(s)"
    )
    if failed or problems:
        raise typer.Exit(1)


@rules_app.command("list")
def rules_list(folders: Folders = None, only: Only = False) -> None:
    """The rules, most severe first."""
    ruleset = _ruleset(folders, only)
    table = Table(box=None, pad_edge=False)
    for column in ("id", "severity", "confidence", "scope", "title"):
        table.add_column(column, overflow="fold")
    for rule in ruleset.rules:
        table.add_row(rule.id, rule.severity, rule.confidence, rule.scope, rule.title)
    Console(width=160).print(table)
    _print_problems(ruleset.problems)
    if ruleset.problems:
        raise typer.Exit(1)


@rules_app.command("show")
def rules_show(
    rule_id: Annotated[
        str, typer.Argument(metavar="ID", help="A rule id, or a rule's .yaml file.")
    ],
    folders: Folders = None,
    only: Only = False,
    extra: Annotated[
        list[Path] | None,
        typer.Option("--rules", help="A folder of your own rules (as `analyze --rules`)."),
    ] = None,
) -> None:
    """One rule, by id or by its file: what it matches, cause, fix, sources, confidence."""
    folders = [*(folders or []), *(extra or [])] or None
    given = Path(rule_id)
    if given.suffix == ".yaml" and given.is_file():  # `rules show mine/my-rule.yaml`
        folders = [*(folders or []), given.parent]
        rule_id = given.name.removesuffix(".yaml")
    from evtxdoc.rules.loader import fixture_path

    ruleset = _ruleset(folders, only)
    rule = ruleset.get(rule_id)
    if rule is None:
        from evtxdoc.rules.schema import did_you_mean

        hint = did_you_mean(rule_id, [r.id for r in ruleset.rules])
        typer.echo(f"error: no rule {rule_id!r}" + (f"; {hint}" if hint else ""), err=True)
        raise typer.Exit(1)
    applies = rule.applies_to
    typer.echo(f"{rule.id}: {rule.title}")
    typer.echo(
        f"  severity {rule.severity} · confidence {rule.confidence} · scope {rule.scope}"
        f" · join {applies.join} · connector {applies.connector}"
    )
    if rule.description:
        typer.echo(f"  about:  {rule.description}")
    typer.echo(f"  file:   {rule.path} (tests: {fixture_path(rule).name})")
    typer.echo("  match:  " + json.dumps(rule.raw.get("match"), ensure_ascii=False))
    typer.echo(f"  cause:  {' '.join(rule.cause.split())}")
    typer.echo("  fix:\n" + "\n".join(f"    {line}" for line in rule.fix.splitlines()))
    if rule.supersedes:
        typer.echo(f"  replaces: {', '.join(rule.supersedes)}")
    for reference in rule.references:
        typer.echo(f"  source: {reference}")


@rules_app.command("schema")
def rules_schema(
    output: Annotated[Path | None, typer.Option("-o", "--output")] = None,
) -> None:
    """Print (or write) the JSON Schema of the rule format, for editors."""
    text = schema_text()
    if output:
        output.write_text(text, "utf-8")
    else:
        typer.echo(text, nl=False)


def schema_text() -> str:
    """The shipped rules/rule.schema.json, byte for byte."""
    return json.dumps(SCHEMA, indent=2) + "\n"
