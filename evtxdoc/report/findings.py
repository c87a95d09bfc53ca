"""Findings as JSON data and as a terminal section (verdicts first, then the rest)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from evtxdoc.models import Evaluation, Finding

SEVERITY_STYLE = {"critical": "bold red", "error": "red", "warning": "yellow", "info": "dim"}
SEVERITIES = ("info", "warning", "error", "critical")


def finding_dict(finding: Finding) -> dict[str, Any]:
    return {
        "rule": finding.rule, "title": finding.title, "severity": finding.severity,
        "confidence": finding.confidence, "scope": finding.scope, "attempt": finding.attempt,
        "host": finding.host, "root_cause": finding.root_cause, "cause": finding.cause,
        "fix": finding.fix, "references": list(finding.references), "count": finding.count,
        "evidence": [ref._asdict() for ref in finding.evidence],
        "superseded": list(finding.superseded),
    }


def evaluation_dict(evaluation: Evaluation | None) -> dict[str, Any]:
    """The `findings` and `rules` members of the JSON inventory."""
    if evaluation is None:
        return {"findings": [], "rules": None}
    counts = {s: sum(1 for f in evaluation.findings if f.severity == s) for s in SEVERITIES}
    return {
        "findings": [finding_dict(f) for f in evaluation.findings],
        "rules": {"evaluated": evaluation.rules, "folders": list(evaluation.rule_folders),
                  "not_evaluated": [{"rule": g.rule, "reason": g.reason}
                                    for g in evaluation.gaps],
                  "findings_by_severity": counts},
    }


def at_or_above(evaluation: Evaluation | None, severity: str) -> list[Finding]:
    """Findings whose severity is `severity` or worse (for --fail-on)."""
    if evaluation is None:
        return []
    floor = SEVERITIES.index(severity)
    return [f for f in evaluation.findings if SEVERITIES.index(f.severity) >= floor]


def render(evaluation: Evaluation | None, console: Console) -> None:
    """Root causes and the other findings, with their fixes."""
    if evaluation is None:
        return
    if not evaluation.findings:
        console.print(f"[green]No findings[/] from {evaluation.rules} rules "
                      f"({len(evaluation.gaps)} could not be evaluated: see --format json).")
        return
    table = Table(title=f"Findings ({evaluation.rules} rules)")
    for column in ("severity", "where", "finding", "confidence"):
        table.add_column(column, overflow="fold")
    for finding in evaluation.findings:
        style = SEVERITY_STYLE[finding.severity]
        mark = " [bold](root cause)[/]" if finding.root_cause else ""
        table.add_row(f"[{style}]{finding.severity}[/]", escape(finding.attempt or finding.host
                                                               or "bundle"),
                      f"{escape(finding.title)}{mark}\n[dim]{finding.rule}[/]",
                      finding.confidence)
    console.print(table)
    for finding in evaluation.findings:
        if finding.severity not in ("critical", "error") and not finding.root_cause:
            continue
        console.print(f"\n[bold]{escape(finding.attempt or finding.host or 'bundle')}[/]: "
                      f"{escape(finding.title)} [dim]({finding.rule}, {finding.confidence})[/]")
        console.print(f"  {escape(finding.cause)}", soft_wrap=False)
        for line in finding.fix.splitlines():
            console.print(f"  {escape(line)}")
        if finding.references:
            console.print(f"  [dim]sources: {escape(' '.join(finding.references[:3]))}[/]")
