"""The compiled rule (design.md §3): what the engine evaluates and the report shows."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from evtxdoc.rules.matchers import Matcher, compile_matcher
from evtxdoc.vocab import CONFIDENCES, FINDING_SEVERITIES

SEVERITY_RANK = {name: rank for rank, name in enumerate(FINDING_SEVERITIES)}
CONFIDENCE_RANK = {name: rank for rank, name in enumerate(CONFIDENCES)}
_DURATION = re.compile(r"^([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d)?$")
_UNITS = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
AT_LEAST_ONE = compile_matcher({"ge": 1})


def seconds(value: Any) -> float:
    """`90`, `"90s"`, `"30m"`, `"2h"` → seconds (ValueError otherwise)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    match = _DURATION.match(str(value).strip())
    if not match:
        raise ValueError(f"{value!r} is not a duration (e.g. 90s, 30m, 2h)")
    return float(match.group(1)) * _UNITS[match.group(2)]


@dataclass(frozen=True)
class Selector:
    """Which events a condition looks at; `name` is how cause/fix/evidence refer to them."""

    name: str
    channels: tuple[str, ...] | None = None  # as written; compared ignoring case
    providers: tuple[str, ...] | None = None
    event_ids: tuple[int, ...] | None = None
    level: Matcher | None = None
    side: str = "any"  # device | connector | request | any (attempt scope)
    window: str = "attempt"  # attempt | bundle (attempt scope)
    message: Matcher | None = None
    fields: tuple[tuple[str, Matcher], ...] = ()
    any_field: Matcher | None = None
    count: Matcher = AT_LEAST_ONE

    @property
    def key(self) -> tuple[Any, ...]:
        """What decides which rows match (the name, side, window and count do not)."""
        return (
            self.channels,
            self.providers,
            self.event_ids,
            _spec(self.level),
            _spec(self.message),
            tuple((name, repr(m.spec)) for name, m in self.fields),
            _spec(self.any_field),
        )

    @property
    def needs_fields(self) -> bool:
        """Whether matching decodes event fields (the costly part)."""
        return bool(self.fields) or self.any_field is not None


def _spec(matcher: Matcher | None) -> str | None:
    return None if matcher is None else repr(matcher.spec)


@dataclass(frozen=True)
class StepCondition:
    name: str
    present: bool | None = None  # True: must be there; False: must be missing; None: see below
    status: Matcher | None = None
    detail: Matcher | None = None


@dataclass(frozen=True)
class SequenceCondition:
    """`first` then `then` within `within` seconds (or `then` absent within it)."""

    first: str
    then: str
    within: float | None = None
    absent: bool = False


@dataclass(frozen=True)
class DurationCondition:
    start: str
    end: str
    over: float | None = None
    under: float | None = None


@dataclass(frozen=True)
class Match:
    """All present conditions must hold; `any` holds when one of its branches does."""

    attempt: tuple[tuple[str, Matcher], ...] = ()
    events: tuple[Selector, ...] = ()
    absent: tuple[Selector, ...] = ()
    steps: tuple[StepCondition, ...] = ()
    sequence: tuple[SequenceCondition, ...] = ()
    duration: tuple[DurationCondition, ...] = ()
    clock_offset: tuple[float | None, float | None] | None = None  # (over, under) seconds
    missing_channels: tuple[str, ...] = ()
    present_channels: tuple[str, ...] = ()
    any: tuple[Match, ...] = ()

    def event_names(self) -> list[str]:
        names = [s.name for s in self.events]
        for branch in self.any:
            names += branch.event_names()
        return names


@dataclass(frozen=True)
class AppliesTo:
    join: str = "any"  # hybrid | entra | any
    connector: str = "any"  # legacy | updated | any | none
    connector_version: tuple[tuple[str, tuple[int, ...]], ...] = ()
    systems: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    severity: str
    confidence: str
    scope: str
    match: Match
    cause: str
    fix: str
    references: tuple[str, ...]
    applies_to: AppliesTo = AppliesTo()
    sources: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()
    supersedes: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    description: str = ""
    path: str = ""  # the file it was loaded from
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def order(self) -> tuple[int, int, str]:
        """Sort key: most severe, best sourced first."""
        return SEVERITY_RANK[self.severity], CONFIDENCE_RANK[self.confidence], self.id
