"""evaluate(rules, timeline, correlation) → findings. Pure: no I/O, no printing.

How the work is shared so that the knowledge base costs little more than one pass:
1. Every selector of every rule is reduced to row positions of the timeline once, cached by
   what decides the rows (`Selector.key`). Channel, provider and event id are compared as
   integer category codes over the whole frame; fields are decoded only for the rows that
   passed, once per (channel, provider, event id) group, and field matchers run once per
   distinct value (`Matcher.column`).
2. Attempt-scope rules count their rows inside each attempt's windows — the device's hosts
   around its steps (device clock), the connector's hosts around the corrected attempt time
   (reference clock) — with one sorted search over (host, time) keys for all attempts at once.
3. Attribute, step and coverage conditions are column operations over all attempts; only the
   few attempts that pass those get per-attempt work (sequences, durations, rendering).
Findings are deduplicated per attempt (`supersedes`) and ordered by severity, confidence and
specificity; the first finding of a failed attempt is marked as its root cause.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from evtxdoc.correlate.evidence import (
    ou_in,
)
from evtxdoc.models import (
    Attempt,
    ChannelCoverage,
    Correlation,
    Evaluation,
    Finding,
    Outcome,
    RuleGap,
)
from evtxdoc.rules import templates
from evtxdoc.rules.context import MAX_TS, AttemptTable, Context
from evtxdoc.rules.model import (
    Match,
    Rule,
)
from evtxdoc.rules.scopes import (
    applies,
    bundle_rule,
    event_rule,
    evidence_refs,
    host_rule,
    rendered,
)
from evtxdoc.rules.verdict import finish
from evtxdoc.vocab import SECOND

# --- evaluation -------------------------------------------------------------------------------


def evaluate(
    rules: Sequence[Rule],
    frame: pd.DataFrame,
    correlation: Correlation | None,
    coverage: Sequence[ChannelCoverage] = (),
    folders: Sequence[str] = (),
) -> Evaluation:
    """Run every rule; findings most important first, root causes marked."""
    context = Context(frame, correlation, coverage)
    findings: list[Finding] = []
    gaps: list[RuleGap] = []
    for rule in rules:
        gap = _gap(rule, context)
        if gap:
            gaps.append(RuleGap(rule.id, gap))
            continue
        if rule.scope == "attempt":
            findings += _attempt_rule(rule, context)
        elif rule.scope == "host":
            findings += host_rule(rule, context)
        elif rule.scope == "event":
            findings += event_rule(rule, context)
        else:
            findings += bundle_rule(rule, context)
    by_id = {rule.id: rule for rule in rules}
    return Evaluation(
        findings=tuple(finish(findings, by_id, correlation)),
        gaps=tuple(gaps),
        rules=len(rules),
        rule_folders=tuple(folders),
    )


def _gap(rule: Rule, context: Context) -> str | None:
    """Why a rule cannot be judged here: a channel it reads is absent from every host."""
    specific_absences = [
        s
        for s in rule.match.absent  # "no such channel" is not a gap
        if s.event_ids or s.fields or s.any_field or s.message or s.level
    ]
    for group, selectors in (
        ("needs", rule.match.events),
        ("cannot tell absence of", specific_absences),
    ):
        for selector in selectors:
            if selector.channels and not {c.lower() for c in selector.channels} & (
                context.all_channels
            ):
                return f"{group} {selector.name!r}: no host has {' or '.join(selector.channels)}"
    return None


def _attempt_rule(rule: Rule, context: Context) -> list[Finding]:
    table = context.attempts()
    if not table.attempts:
        return []
    candidates = np.array(
        [
            applies(rule.applies_to, _join(a), kinds)
            for a, kinds in zip(table.attempts, table.connector_kinds, strict=True)
        ],
        dtype=bool,
    )
    mask = candidates & _match_mask(rule.match, context, table)
    out = []
    for index in np.flatnonzero(mask).tolist():
        evidence = _evidence(rule.match, context, index)
        if evidence is None:  # a sequence / duration condition did not hold
            continue
        out.append(_attempt_finding(rule, context, index, evidence))
    return out


def _join(attempt: Attempt) -> str | None:
    if attempt.device.join_method:
        return attempt.device.join_method
    return "entra" if attempt.outcome is Outcome.NOT_HYBRID else None


def _match_mask(match: Match, context: Context, table: AttemptTable) -> np.ndarray:
    """Attempts passing the column-wise conditions (sequences/durations come later)."""
    size = len(table.attempts)
    mask = np.ones(size, dtype=bool)
    for name, matcher in match.attempt:
        mask &= matcher.column(table.frame[name].astype(object))
    for selector in match.events:
        mask &= selector.count.column(pd.Series(context.hits(selector).count, dtype=object))
    for selector in match.absent:
        mask &= context.hits(selector).count == 0
    for condition in match.steps:
        has = np.zeros(size, dtype=bool)
        steps = table.steps[table.steps["name"] == condition.name]
        keep = np.ones(len(steps), dtype=bool)
        if condition.status is not None:
            keep &= condition.status.column(steps["status"].astype(object))
        if condition.detail is not None:
            keep &= condition.detail.column(steps["detail"].astype(object))
        has[steps["attempt"].to_numpy(dtype=np.int64)[keep]] = True
        mask &= has if condition.present is not False else ~has
    if match.clock_offset is not None:  # judged on the whole uncertainty interval
        over, under = match.clock_offset
        offsets = table.frame["offset_s"].astype(float).abs().to_numpy()
        errors = table.frame["offset_error_s"].astype(float).to_numpy()
        known = ~np.isnan(offsets) & ~np.isnan(errors)
        low, high = np.nan_to_num(offsets - errors), np.nan_to_num(offsets + errors)
        if over is not None:
            mask &= known & (low > over)
        if under is not None:
            mask &= known & (high < under)
    if match.any:
        branches = np.zeros(size, dtype=bool)
        for branch in match.any:
            held = _match_mask(branch, context, table)
            context.branch_masks[id(branch)] = held
            branches |= held
        mask &= branches
    return mask


def _evidence(match: Match, context: Context, index: int) -> dict[str, np.ndarray] | None:
    """Per event name, the attempt's matching positions; None if a timed condition fails."""
    found: dict[str, np.ndarray] = {}
    for selector in match.events:
        found[selector.name] = context.hits(selector).positions(index)
    if match.sequence or match.duration:
        times = _times(match, context, index)
        for condition in match.sequence:
            first, then = times(condition.first), times(condition.then)
            if not len(first):
                return None
            limit = first[0] + (
                condition.within * SECOND if condition.within is not None else MAX_TS
            )
            later = then[(then > first[0]) & (then <= limit)]
            if bool(len(later)) == condition.absent:
                return None
        for timed in match.duration:
            start, end = times(timed.start), times(timed.end)
            if not len(start) or not len(end):
                return None
            span = (end[-1] - start[0]) / SECOND
            if timed.over is not None and not span > timed.over:
                return None
            if timed.under is not None and not span < timed.under:
                return None
    if match.any:
        held = [
            branch_found
            for branch in match.any
            if context.branch_masks[id(branch)][index]
            and (branch_found := _evidence(branch, context, index)) is not None
        ]
        if not held:
            return None
        for branch in held:
            found.update({k: v for k, v in branch.items() if len(v)})
    return found


def _times(match: Match, context: Context, index: int) -> Callable[[str], np.ndarray]:
    """ref (a step name, `step:status`, or an event name) → the attempt's sorted times."""
    steps = context.attempts().attempts[index].steps
    selectors = {s.name: s for s in match.events}

    def times(ref: str) -> np.ndarray:
        if ref in selectors:
            return context.hits(selectors[ref]).corrected(index, context.line.ts)
        name, _, status = ref.partition(":")
        return np.array(
            sorted(
                s.ts_corrected
                for s in steps
                if s.name == name and (not status or s.status == status)
            ),
            dtype=np.int64,
        )

    return times


def _attempt_finding(
    rule: Rule, context: Context, index: int, evidence: dict[str, np.ndarray]
) -> Finding:
    table = context.attempts()
    attempt = table.attempts[index]
    values = _attempt_values(attempt, table.connector_kinds[index])
    refs, count = evidence_refs(rule, context, evidence, values)
    step_refs = tuple(
        s.ref
        for s in attempt.steps
        if s.name in {c.name for c in rule.match.steps} and s.status != "info"
    )
    host = (  # a connector-only attempt has no machine of its own: its computer's name
        context.display(attempt.device.machine)
        if attempt.steps
        else (attempt.device.computer_name or attempt.device.hosts[0])
    )
    evidence_all = tuple(dict.fromkeys(refs + step_refs))
    return rendered(rule, values, evidence_all, count, attempt=attempt.id, host=host)


def _attempt_values(attempt: Attempt, kinds: frozenset[str]) -> dict[str, Any]:
    offset = attempt.offset
    ou = ou_in(r.diagnostic_text or "" for r in attempt.requests)
    return {
        "attempt": attempt.id,
        "device": (attempt.device.oobe_names or attempt.device.hosts or ("",))[0],
        "host": attempt.device.machine,
        "computer_name": attempt.device.computer_name,
        "domain": attempt.device.domain,
        "connector": attempt.connector,
        "connector_kind": ", ".join(sorted(kinds)) or None,
        "outcome": str(attempt.outcome),
        "failed_step": attempt.failed_step,
        "offset": templates.duration(offset.offset_ns / SECOND) if offset else None,
        "offset_s": offset.offset_ns / SECOND if offset else None,
        "ou": ou,
        "reason": attempt.reason,
        "connector_evidence": attempt.connector_evidence,
        "missing": "; ".join(attempt.missing) or None,
    }
