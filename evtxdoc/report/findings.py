"""Findings as JSON data (the `findings` and `rules` parts of the report document)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evtxdoc.catalog import RULES_DIR
from evtxdoc.models import Evaluation, Finding
from evtxdoc.vocab import FINDING_SEVERITIES

SEVERITIES = tuple(reversed(FINDING_SEVERITIES))  # least first: counts and --fail-on floors


def finding_dict(finding: Finding) -> dict[str, Any]:
    return {
        "rule": finding.rule,
        "title": finding.title,
        "severity": finding.severity,
        "confidence": finding.confidence,
        "scope": finding.scope,
        "attempt": finding.attempt,
        "host": finding.host,
        "root_cause": finding.root_cause,
        "cause": finding.cause,
        "fix": finding.fix,
        "references": list(finding.references),
        "count": finding.count,
        "evidence": [ref._asdict() for ref in finding.evidence],
        "superseded": list(finding.superseded),
        "unconfirmed": list(finding.unconfirmed),
    }


def evaluation_dict(evaluation: Evaluation | None, lazy: bool = False) -> dict[str, Any]:
    """The `findings` and `rules` members of the JSON inventory (`lazy`: findings as an
    iterator)."""
    if evaluation is None:
        return {"findings": [], "rules": None}
    counts = {s: sum(1 for f in evaluation.findings if f.severity == s) for s in SEVERITIES}
    return {
        "findings": (
            map(finding_dict, evaluation.findings)
            if lazy
            else [finding_dict(f) for f in evaluation.findings]
        ),
        "rules": {
            "evaluated": evaluation.rules,
            "folders": [_folder_name(f) for f in evaluation.rule_folders],
            "not_evaluated": [{"rule": g.rule, "reason": g.reason} for g in evaluation.gaps],
            "findings_by_severity": counts,
        },
    }


def _folder_name(folder: str) -> str:
    """`built-in` for the knowledge base shipped with evtxdoc, else the folder as given."""
    try:
        return "built-in" if Path(folder).resolve() == RULES_DIR.resolve() else folder
    except OSError:
        return folder


def at_or_above(evaluation: Evaluation | None, severity: str) -> list[Finding]:
    """Findings whose severity is `severity` or worse (for --fail-on)."""
    if evaluation is None:
        return []
    floor = SEVERITIES.index(severity)
    return [f for f in evaluation.findings if SEVERITIES.index(f.severity) >= floor]
