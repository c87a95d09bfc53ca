"""`applies_to`, evidence references, and the host, event and bundle scopes of the engine."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from evtxdoc.correlate.evidence import (
    LEGACY_BELOW,
)
from evtxdoc.models import (
    EventRef,
    Finding,
)
from evtxdoc.rules import templates
from evtxdoc.rules.context import Context
from evtxdoc.rules.model import (
    AppliesTo,
    Match,
    Rule,
)

MAX_EVIDENCE = 10  # events per selector kept as evidence


# --- applies_to -------------------------------------------------------------------------------


def _version_possible(bounds: Sequence[tuple[str, tuple[int, ...]]], kinds: frozenset[str]) -> bool:
    """Can a connector of these kinds (exact version unknown) satisfy the bounds?"""
    if not bounds:
        return True
    if not kinds:
        return False
    ranges: list[tuple[tuple[int, ...], tuple[int, ...], bool]] = []
    if "legacy" in kinds:
        ranges.append(((0,), LEGACY_BELOW, False))  # [0, 6.2501.2000.5)
    if "updated" in kinds:
        ranges.append((LEGACY_BELOW, (10**9,), True))
    for low, high, _ in ranges:
        if all(_bound_allows(op, version, low, high) for op, version in bounds):
            return True
    return False


def _bound_allows(
    op: str, version: tuple[int, ...], low: tuple[int, ...], high: tuple[int, ...]
) -> bool:
    """Does [low, high) contain a version satisfying `op version`?"""
    if op in ("<", "<="):
        return low < version or (op == "<=" and low == version)
    if op in (">", ">="):
        return high > version
    return low <= version < high


def applies(applies: AppliesTo, join: str | None, kinds: frozenset[str]) -> bool:
    if applies.join != "any" and join is not None and join != applies.join:
        return False
    if applies.connector == "none" and kinds:
        return False
    if applies.connector in ("legacy", "updated") and applies.connector not in kinds:
        return False
    return (
        _version_possible(applies.connector_version, kinds) if (applies.connector_version) else True
    )


def evidence_refs(
    rule: Rule, context: Context, evidence: dict[str, np.ndarray], values: dict[str, Any]
) -> tuple[tuple[EventRef, ...], int]:
    """Evidence refs (the rule's `evidence` names, or all) and template values per event."""
    wanted = rule.evidence or tuple(evidence)
    refs: list[EventRef] = []
    count = 0
    for name, positions in evidence.items():
        count += len(positions)
        if len(positions):
            event = context.line.event(int(positions[0]))
            event["count"] = len(positions)
            values[name] = event
        if name in wanted:
            refs += [context.line.ref(int(p)) for p in positions[:MAX_EVIDENCE]]
    return tuple(refs), count


# --- host, event and bundle scopes ----------------------------------------------------------------


def _per_machine(context: Context, positions: np.ndarray) -> np.ndarray:
    machines = (
        context.host_machine[context.line.host_code[positions]]
        if len(positions)
        else (np.empty(0, dtype=np.int64))
    )
    return np.bincount(machines, minlength=len(context.machine_keys))


def host_rule(rule: Rule, context: Context) -> list[Finding]:
    keys = context.machine_keys
    mask = np.array(
        [applies(rule.applies_to, None, context.kinds.get(k, frozenset())) for k in keys],
        dtype=bool,
    )
    mask &= _host_mask(rule.match, context)
    out = []
    for index in np.flatnonzero(mask).tolist():
        machine = keys[index]
        evidence = _machine_positions(rule.match, context, index)
        values: dict[str, Any] = {
            "host": context.display(machine),
            "connector_kind": ", ".join(sorted(context.kinds.get(machine, ()))) or None,
        }
        out.append(scope_finding(rule, context, evidence, values, context.display(machine)))
    return out


def scope_finding(
    rule: Rule,
    context: Context,
    evidence: dict[str, np.ndarray],
    values: dict[str, Any],
    host: str | None,
) -> Finding:
    """A host, event or bundle finding, its texts rendered with the evidence values."""
    refs, count = evidence_refs(rule, context, evidence, values)
    if host is not None and refs:  # name the host that wrote the evidence, not a sibling name
        writer = refs[0].host  # (but a trace's NetBIOS name is the machine's full name cut short)
        host = host if host.split(".")[0].lower() == writer.lower() else writer
        values["host"] = host
    return rendered(rule, values, refs, count, host=host)


def rendered(
    rule: Rule,
    values: dict[str, Any],
    evidence: tuple[EventRef, ...],
    count: int,
    *,
    attempt: str | None = None,
    host: str | None = None,
) -> Finding:
    """A rule's finding, its cause and fix rendered with `values` (every scope builds it so)."""
    return Finding(
        rule=rule.id,
        title=rule.title,
        severity=rule.severity,
        confidence=rule.confidence,
        scope=rule.scope,
        cause=templates.render(rule.cause, values),
        fix=templates.render(rule.fix, values),
        references=rule.references,
        evidence=evidence,
        attempt=attempt,
        host=host,
        count=count,
    )


def _host_mask(match: Match, context: Context) -> np.ndarray:
    size = len(context.machine_keys)
    mask = np.ones(size, dtype=bool)
    for selector in match.events:
        counts = _per_machine(context, context.line.rows(selector))[:size]
        mask &= selector.count.column(pd.Series(counts, dtype=object))
    for selector in match.absent:
        mask &= _per_machine(context, context.line.rows(selector))[:size] == 0
    if match.any:
        branches = np.zeros(size, dtype=bool)
        for branch in match.any:
            branches |= _host_mask(branch, context)
        mask &= branches
    return mask


def _machine_positions(match: Match, context: Context, machine: int) -> dict[str, np.ndarray]:
    found = {}
    for selector in match.events:
        rows = context.line.rows(selector)
        found[selector.name] = rows[context.host_machine[context.line.host_code[rows]] == machine]
    for branch in match.any:
        found.update(
            {k: v for k, v in _machine_positions(branch, context, machine).items() if len(v)}
        )
    return found


def event_rule(rule: Rule, context: Context) -> list[Finding]:
    selector = rule.match.events[0]
    rows = context.line.rows(selector)
    out: list[Finding] = []
    if not len(rows):
        return out
    machines = context.host_machine[context.line.host_code[rows]]
    for index in np.unique(machines).tolist():
        machine = context.machine_keys[index]
        if not applies(rule.applies_to, None, context.kinds.get(machine, frozenset())):
            continue
        mine = rows[machines == index]
        values: dict[str, Any] = {"host": context.display(machine)}
        out.append(
            scope_finding(rule, context, {selector.name: mine}, values, context.display(machine))
        )
    return out


def bundle_rule(rule: Rule, context: Context) -> list[Finding]:
    match = rule.match
    if not _bundle_holds(match, context):
        return []
    kinds = frozenset(k for found in context.kinds.values() for k in found)
    if not applies(rule.applies_to, None, kinds):
        return []
    evidence = {s.name: context.line.rows(s) for s in match.events}
    missing = [c for c in match.missing_channels if c not in context.all_channels]
    values: dict[str, Any] = {
        "hosts": ", ".join(sorted(context.machine_hosts)) or None,
        "missing_channels": ", ".join(missing) or None,
    }
    return [scope_finding(rule, context, evidence, values, None)]


def _bundle_holds(match: Match, context: Context) -> bool:
    present = context.all_channels
    if match.missing_channels and all(c in present for c in match.missing_channels):
        return False
    if any(c not in present for c in match.present_channels):
        return False
    for selector in match.events:
        if not selector.count(len(context.line.rows(selector))):
            return False
    if any(len(context.line.rows(s)) for s in match.absent):
        return False
    return not match.any or any(_bundle_holds(b, context) for b in match.any)
