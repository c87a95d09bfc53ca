"""Findings deduplicated (`supersedes`), judged by outcome and ordered; the root cause of each
failed attempt chosen and bounded (severity, confidence, what is unconfirmed)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from evtxdoc.models import (
    Attempt,
    Correlation,
    Finding,
    Outcome,
)
from evtxdoc.rules.model import (
    CONFIDENCE_RANK,
    SEVERITY_RANK,
    Match,
    Rule,
    Selector,
)

FAILED = {Outcome.FAILED, Outcome.TIMED_OUT, Outcome.INCOMPLETE, Outcome.UNKNOWN}


# --- dedupe, order, root causes ---------------------------------------------------------------


def finish(
    findings: list[Finding], rules: dict[str, Rule], correlation: Correlation | None
) -> list[Finding]:
    groups: dict[tuple[str | None, str | None], list[Finding]] = defaultdict(list)
    for finding in findings:
        groups[(finding.attempt, finding.host if finding.attempt is None else None)].append(finding)
    kept: list[Finding] = []
    for group in groups.values():
        present = {f.rule for f in group}
        replaced: dict[str, list[str]] = defaultdict(list)
        for finding in group:
            for target in rules[finding.rule].supersedes:
                if target in present:
                    replaced[finding.rule].append(target)
        gone = {t for targets in replaced.values() for t in targets}
        for finding in group:
            if finding.rule in gone:
                continue
            if replaced.get(finding.rule):
                finding = replace_finding(finding, superseded=tuple(replaced[finding.rule]))
            kept.append(finding)
    attempts = {a.id: a for a in correlation.attempts} if correlation else {}
    outcome = {key: a.outcome for key, a in attempts.items()}
    kept = [_by_outcome(f, outcome.get(f.attempt)) if f.attempt else f for f in kept]
    kept.sort(key=lambda f: _order(f, rules))
    causes: dict[str, Finding] = {}
    for finding in kept:  # supported causes first; a missing-evidence finding only if alone
        if (
            finding.attempt
            and outcome.get(finding.attempt) in FAILED
            and finding.severity != "info"
        ):
            held = causes.get(finding.attempt)
            if held is None or (_coverage(held, rules) and not _coverage(finding, rules)):
                causes[finding.attempt] = finding
    root = {id(f): _as_root_cause(f, attempts[key], rules[f.rule]) for key, f in causes.items()}
    out = [root.get(id(f), f) for f in kept]
    out.sort(key=lambda f: _order(f, rules))
    return out


UNKNOWN_CONNECTOR = ("no_connector_logs", "not_covered", "damaged", "ambiguous")
CONFIDENCE_DOWN = {"documented": "community", "community": "inferred", "inferred": "inferred"}


def _coverage(finding: Finding, rules: dict[str, Rule]) -> bool:
    """A finding about missing or damaged evidence, not about a cause."""
    return "coverage" in rules[finding.rule].tags


def _as_root_cause(finding: Finding, attempt: Attempt, rule: Rule) -> Finding:
    """The attempt's root cause: at least error-level when the attempt failed outright, and
    with its confidence lowered and the missing evidence named when the connector side that
    would confirm it is unknown (no logs, not covered, damaged, ambiguous)."""
    changes: dict[str, Any] = {"root_cause": True}
    if (
        attempt.outcome in (Outcome.FAILED, Outcome.TIMED_OUT)
        and SEVERITY_RANK[finding.severity] > SEVERITY_RANK["error"]
    ):
        changes["severity"] = "error"
    reads_connector = any(s.side in ("connector", "request") for s in _selectors(rule.match))
    if (
        attempt.connector_evidence in UNKNOWN_CONNECTOR
        and not reads_connector
        and "coverage" not in rule.tags
    ):
        changes["confidence"] = CONFIDENCE_DOWN[finding.confidence]
        changes["unconfirmed"] = attempt.missing
    return replace_finding(finding, **changes)


def _selectors(match: Match) -> list[Selector]:
    return [*match.events, *match.absent, *(s for b in match.any for s in _selectors(b))]


HEALTHY = (Outcome.SUCCEEDED, Outcome.NOT_HYBRID)
HEALTHY_NOTE = (
    "Logged during an attempt that went on to succeed, so it did not decide the "
    "outcome (shown for context): "
)


def _by_outcome(finding: Finding, outcome: Outcome | None) -> Finding:
    """A finding explains an outcome and never invents one: an error or critical rule that
    matched an attempt which succeeded (or was an Entra join) is context, shown as info."""
    if outcome not in HEALTHY or finding.severity not in ("error", "critical"):
        return finding
    return replace_finding(finding, severity="info", cause=HEALTHY_NOTE + finding.cause)


def _order(finding: Finding, rules: dict[str, Rule]) -> tuple[Any, ...]:
    rule = rules[finding.rule]
    specificity = _conditions(rule.match)
    return (
        SEVERITY_RANK[finding.severity],
        not finding.root_cause,
        _coverage(finding, rules),
        CONFIDENCE_RANK[finding.confidence],
        -len(finding.superseded),
        -specificity,
        finding.attempt or "",
        finding.host or "",
        finding.rule,
    )


def _conditions(match: Match) -> int:
    return (
        len(match.attempt)
        + 2 * len(match.events)
        + len(match.absent)
        + len(match.steps)
        + len(match.sequence)
        + len(match.duration)
        + (match.clock_offset is not None)
        + sum(_conditions(b) for b in match.any[:1])
    )


def replace_finding(finding: Finding, **changes: Any) -> Finding:
    values = {name: getattr(finding, name) for name in Finding.__slots__}
    values.update(changes)
    return Finding(**values)
