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

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from evtxdoc.correlate import attempts_frame
from evtxdoc.correlate.evidence import CONNECTOR_LEGACY, CONNECTOR_UPDATED, category_codes
from evtxdoc.models import (
    Attempt,
    ChannelCoverage,
    Correlation,
    Evaluation,
    EventRef,
    Finding,
    Outcome,
    RuleGap,
)
from evtxdoc.normalize import code_pattern, decode_fields, format_time_ns
from evtxdoc.rules import templates
from evtxdoc.rules.model import (
    CONFIDENCE_RANK,
    SEVERITY_RANK,
    AppliesTo,
    Match,
    Rule,
    Selector,
)
from evtxdoc.timeline import time_sorted
from evtxdoc.vocab import ASSUMED_SKEW_NS, SECOND

PAD_BEFORE_NS = 15 * 60 * SECOND  # device events this long before an attempt's first step count
PAD_AFTER_NS = 30 * 60 * SECOND
MIN_TS = -(2**62)
MAX_TS = 2**62
MAX_EVIDENCE = 10  # events per selector kept as evidence
FAILED = {Outcome.FAILED, Outcome.TIMED_OUT, Outcome.INCOMPLETE, Outcome.UNKNOWN}
LEGACY_BELOW = (6, 2501, 2000, 5)  # the MSA-based connector starts at this version (S1, S2)
_OU = re.compile(r"((?:OU|CN)=[^,;\"'\r\n]+(?:,\s*(?:OU|CN|DC)=[^,;\"'\r\n]+)*)", re.IGNORECASE)


# --- the timeline, reduced to what selectors need ---------------------------------------------

class _Timeline:
    """Integer views of the frame and the selector cache."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.size = len(frame)
        self.ts = frame["ts"].array.asi8 if self.size else np.empty(0, np.int64)
        self.event_id = frame["event_id"].to_numpy()
        self.host_code, self.host_names = category_codes(frame["host"])
        self.channel_code, channel_names = category_codes(frame["channel"])
        self.provider_code, provider_names = category_codes(frame["provider"])
        self.channel_original = channel_names
        self.channel_names = [c.lower() for c in channel_names]
        self.provider_names = [p.lower() for p in provider_names]
        self.host_lower = [h.lower() for h in self.host_names]
        self._base: dict[tuple[Any, ...], np.ndarray] = {}
        self._decoded: np.ndarray | None = None  # position → fields, filled on demand
        self._message = frame["message"].to_numpy()
        self._rows: dict[tuple[Any, ...], np.ndarray] = {}

    @cached_property
    def _time_order(self) -> tuple[np.ndarray, np.ndarray]:
        """(each row's rank in time order, the times sorted); the timeline comes sorted by
        time, so the rank is the row itself unless somebody built the frame unsorted."""
        if time_sorted(self.ts):
            return np.arange(self.size, dtype=np.int64), self.ts
        order = np.argsort(self.ts, kind="stable")
        rank = np.empty(self.size, dtype=np.int64)
        rank[order] = np.arange(self.size, dtype=np.int64)
        return rank, self.ts[order]

    @property
    def rank(self) -> np.ndarray:
        return self._time_order[0]

    def rank_bounds(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Times → ranks: a row is in [lo, hi] (inclusive times) iff lo' <= rank < hi'."""
        ordered = self._time_order[1]
        return np.searchsorted(ordered, lo, "left"), np.searchsorted(ordered, hi, "right")

    def _codes(self, names: list[str], wanted: Iterable[str]) -> list[int]:
        wanted = {w.lower() for w in wanted}
        return [i for i, name in enumerate(names) if name in wanted]

    def base(self, selector: Selector) -> np.ndarray:
        """Positions passing channel, provider and event id (cheap integer masks)."""
        key = (selector.channels, selector.providers, selector.event_ids)
        if key not in self._base:
            mask = np.ones(self.size, dtype=bool)
            if selector.channels is not None:
                mask &= np.isin(self.channel_code,
                                self._codes(self.channel_names, selector.channels))
            if selector.providers is not None:
                mask &= np.isin(self.provider_code,
                                self._codes(self.provider_names, selector.providers))
            if selector.event_ids is not None:
                mask &= np.isin(self.event_id, selector.event_ids)
            self._base[key] = np.flatnonzero(mask)
        return self._base[key]

    def fields(self, positions: np.ndarray) -> list[dict[str, Any]]:
        """Decoded fields of these rows (read-only: rows with the same payload share one dict);
        each distinct payload is decoded at most once per evaluation."""
        if self._decoded is None:
            self._decoded = np.full(self.size, None, dtype=object)
            self._bodies = [c in CONNECTOR_UPDATED or c in CONNECTOR_LEGACY
                            for c in self.channel_names]
            self._by_payload: dict[tuple[int, int], dict[str, Any]] = {}
        cached = self._decoded[positions]
        missing = positions[np.equal(cached, None)]
        if len(missing):
            numbers, payloads = self._payload_index
            names, bodies, by_payload = self.channel_original, self._bodies, self._by_payload
            found = []
            for number, channel in zip(numbers[missing].tolist(),
                                       self.channel_code[missing].tolist(), strict=True):
                body = channel >= 0 and bodies[channel]
                key = (number, channel if body else -1)  # bodies depend on the channel
                fields = by_payload.get(key)
                if fields is None:
                    fields = by_payload[key] = decode_fields(
                        payloads[number], names[channel] if channel >= 0 else "", bodies=body)
                found.append(fields)
            self._decoded[missing] = found
            cached = self._decoded[positions]
        return list(cached)

    def rows(self, selector: Selector, within: _Windows | None = None) -> np.ndarray:
        """Positions (time order) of every event `selector` matches anywhere, or only inside
        `within` (cheap columns first: the fields of rows outside are never decoded)."""
        key = selector.key if within is None else (selector.key, id(within))
        if key in self._rows:
            return self._rows[key]
        positions = self.base(selector)
        if within is not None and selector.needs_fields and len(positions):
            positions = positions[_inside(self, positions, within)]
        positions = self._could_hold_codes(selector, positions)
        keep = np.ones(len(positions), dtype=bool)
        if len(positions) and selector.level is not None:
            keep &= selector.level.column(pd.Series(self.frame["level"].to_numpy()[positions],
                                                    dtype=object))
        if len(positions) and selector.message is not None:
            keep &= selector.message.column(pd.Series(
                self.frame["message"].to_numpy()[positions], dtype=object))
        if len(positions) and (selector.fields or selector.any_field):
            decoded = self.fields(positions)
            for name, matcher in selector.fields:
                keep &= matcher.column([f.get(name) for f in decoded])
            if selector.any_field is not None:  # every (row, value) pair, one test per value
                rows = [i for i, f in enumerate(decoded) if keep[i] for _ in f]
                values = [v for i, f in enumerate(decoded) if keep[i] for v in f.values()]
                hit = selector.any_field.column(values)
                matched = np.zeros(len(decoded), dtype=bool)
                matched[np.asarray(rows, dtype=np.int64)[hit]] = True
                keep &= matched
        self._rows[key] = positions[keep]
        return self._rows[key]

    @cached_property
    def _payload_index(self) -> tuple[np.ndarray, np.ndarray]:
        """(each row's payload number, the distinct payloads): logs repeat payloads a lot
        (1M fleet events hold 30k distinct ones; the real-evtx folder 8.9k of 44k)."""
        codes, uniques = pd.factorize(self.frame["payload"].to_numpy())
        return codes, np.asarray(uniques, dtype=object)

    def _could_hold_codes(self, selector: Selector, positions: np.ndarray) -> np.ndarray:
        """Drop rows whose stored payload cannot hold a code the selector requires: a bytes
        search in C instead of decoding (see normalize.code_pattern), once per distinct
        payload."""
        matchers = [m for _, m in selector.fields] + [selector.any_field]
        for codes in {m.codes for m in matchers if m is not None and m.codes is not None}:
            if not len(positions):
                break
            numbers, payloads = self._payload_index
            row_numbers = numbers[positions]
            distinct = np.unique(row_numbers)
            search = code_pattern(codes).search
            held = np.fromiter((search(p) is not None for p in payloads[distinct]),
                               dtype=bool, count=len(distinct))
            positions = positions[np.isin(row_numbers, distinct[held])]
        return positions

    def _text(self, position: int) -> tuple[str, str]:
        host = self.host_code[position]
        channel = self.channel_code[position]
        return (self.host_names[host] if host >= 0 else "",
                self.channel_original[channel] if channel >= 0 else "")

    def event(self, position: int) -> dict[str, Any]:
        """One row as a template value: its fields plus host, time, channel, event id."""
        host, channel = self._text(position)
        values = dict(self.fields(np.array([position]))[0])
        values.update(host=host, time=format_time_ns(int(self.ts[position])), channel=channel,
                      event_id=int(self.event_id[position]),
                      message=self._message[position])
        return values

    def ref(self, position: int) -> EventRef:
        if not hasattr(self, "_sources"):
            self._source_code, self._sources = category_codes(self.frame["source_file"])
            self._record_id = self.frame["record_id"].to_numpy()
        host, channel = self._text(position)
        source = self._source_code[position]
        return EventRef(host, channel, int(self.event_id[position]),
                        int(self._record_id[position]),
                        self._sources[source] if source >= 0 else "")


# --- attempt windows ----------------------------------------------------------------------------

@dataclass
class _Windows:
    """Per (attempt, host) time windows; `offset` turns a window's host clock into reference."""

    attempt: np.ndarray
    host: np.ndarray  # host codes of the timeline
    lo: np.ndarray
    hi: np.ndarray
    offset: np.ndarray

    @classmethod
    def build(cls, rows: list[tuple[int, int, int, int, int]]) -> _Windows:
        data = np.array(rows, dtype=np.int64).reshape(-1, 5)
        return cls(*(data[:, i].copy() for i in range(5)))

    def __add__(self, other: _Windows) -> _Windows:
        return _Windows(*(np.concatenate([getattr(self, k), getattr(other, k)])
                          for k in ("attempt", "host", "lo", "hi", "offset")))


@dataclass
class _Hits:
    """Where one selector's rows fall in the windows of all attempts."""

    order: np.ndarray  # timeline positions sorted by (host, time)
    start: np.ndarray  # per window: first index into `order`
    end: np.ndarray
    windows: _Windows
    count: np.ndarray  # per attempt
    by_attempt: dict[int, np.ndarray] = field(default_factory=dict)  # attempt → window indexes

    def positions(self, attempt: int) -> np.ndarray:
        """The attempt's hits in time order (read-only: may be a view of `order`)."""
        windows = self.by_attempt.get(attempt)
        if windows is None or not len(windows):
            return np.empty(0, dtype=np.int64)
        if len(windows) == 1:  # one host's slice: already in time order, no repeats
            return self.order[self.start[windows[0]]:self.end[windows[0]]]
        found = np.concatenate([self.order[self.start[w]:self.end[w]] for w in windows])
        return np.unique(found)

    def corrected(self, attempt: int, ts: np.ndarray) -> np.ndarray:
        """Reference-clock times of the attempt's hits, sorted."""
        windows = self.by_attempt.get(attempt)
        if windows is None or not len(windows):
            return np.empty(0, dtype=np.int64)
        parts = [ts[self.order[self.start[w]:self.end[w]]] - self.windows.offset[w]
                 for w in windows]
        return np.sort(np.concatenate(parts))


def _inside(line: _Timeline, positions: np.ndarray, windows: _Windows) -> np.ndarray:
    """Which of `positions` fall in some window of their own host (a boolean mask).

    Host and time rank become one integer key, so every window is an interval on one axis;
    intervals sorted by start with a running maximum of their ends answer "is this key
    covered" with one sorted search.
    """
    if not len(windows.host):
        return np.zeros(len(positions), dtype=bool)
    scale = line.size + 1
    keys = line.host_code[positions].astype(np.int64) * scale + line.rank[positions]
    lo, hi = line.rank_bounds(windows.lo, windows.hi)
    starts, ends = windows.host * scale + lo, windows.host * scale + hi - 1  # inclusive
    order = np.argsort(starts, kind="stable")
    starts, reach = starts[order], np.maximum.accumulate(ends[order])
    last = np.searchsorted(starts, keys, "right") - 1
    return (last >= 0) & (reach[np.maximum(last, 0)] >= keys)


def _count_in_windows(line: _Timeline, positions: np.ndarray, windows: _Windows,
                      attempts: int) -> _Hits:
    """One sorted search for every window at once: key = host × (rank of time)."""
    hosts = line.host_code[positions].astype(np.int64)
    ranks = line.rank[positions]
    order_local = np.lexsort((ranks, hosts))
    order = positions[order_local]
    scale = line.size + 1
    keys = hosts[order_local] * scale + ranks[order_local]
    lo, hi = line.rank_bounds(windows.lo, windows.hi)
    start = np.searchsorted(keys, windows.host * scale + lo, "left")
    end = np.searchsorted(keys, windows.host * scale + hi, "left")
    start = np.minimum(start, end)
    count = np.bincount(windows.attempt, weights=end - start, minlength=attempts).astype(
        np.int64)
    hits = _Hits(order, start, end, windows, count)
    nonzero = np.flatnonzero(end > start)
    if len(nonzero):
        owners = windows.attempt[nonzero]
        sort = np.argsort(owners, kind="stable")
        owners, nonzero = owners[sort], nonzero[sort]
        cuts = np.flatnonzero(np.diff(owners)) + 1
        for group in np.split(nonzero, cuts):
            hits.by_attempt[int(windows.attempt[group[0]])] = group
    return hits


# --- the context the engine works in ------------------------------------------------------------

@dataclass
class _AttemptTable:
    attempts: list[Attempt]
    frame: pd.DataFrame  # one row per attempt: attributes rules match on
    steps: pd.DataFrame  # attempt, name, status, ts, detail
    windows: dict[tuple[str, str], _Windows]  # (side, window) → windows
    connector_kinds: list[frozenset[str]]


class _Context:
    def __init__(self, frame: pd.DataFrame, correlation: Correlation | None,
                 coverage: Sequence[ChannelCoverage]) -> None:
        self.line = _Timeline(frame)
        self.correlation = correlation
        coverage = [c for c in coverage if c.host]  # a log damaged to nothing has no host
        self.coverage = coverage
        self.machine_of: dict[str, str] = {}
        self.machine_hosts: dict[str, tuple[str, ...]] = {}
        self.role: dict[str, str] = {}
        for machine in correlation.machines if correlation else ():
            self.machine_hosts[machine.key] = machine.hosts
            self.role[machine.key] = machine.role
            for host in machine.hosts:
                self.machine_of[host.lower()] = machine.key
        for item in coverage:  # hosts correlation did not group stand alone
            key = self.machine_of.setdefault(item.host.lower(), item.host)
            if key == item.host:
                self.machine_hosts.setdefault(key, (item.host,))
        self.channels: dict[str, set[str]] = defaultdict(set)
        for item in coverage:
            self.channels[self.machine_of[item.host.lower()]].add(item.channel.lower())
        self.all_channels = {c for found in self.channels.values() for c in found}
        self.kinds = {m: _connector_kinds(c) for m, c in self.channels.items()}
        self.machine_keys = sorted(set(self.machine_of.values()) | set(self.machine_hosts))
        position = {key: i for i, key in enumerate(self.machine_keys)}
        for host in self.line.host_lower:  # a host coverage did not list (no channel) stands alone
            key = self.machine_of.setdefault(host, host)
            if key not in position:
                position[key] = len(self.machine_keys)
                self.machine_keys.append(key)
        self.host_machine = np.array(
            [position[self.machine_of[h]] for h in self.line.host_lower] or [0], dtype=np.int64)
        self._attempts: _AttemptTable | None = None
        self._hits: dict[tuple[Any, ...], _Hits] = {}
        self.branch_masks: dict[int, np.ndarray] = {}  # id(any-branch) → attempts it holds for

    def display(self, machine: str) -> str:
        """A machine's name for people: its longest (usually final, FQDN) host name."""
        hosts = self.machine_hosts.get(machine) or (machine,)
        return max(hosts, key=lambda h: ("." in h, len(h), h))

    def connector_machines(self) -> list[str]:
        return [m for m, kinds in self.kinds.items() if kinds]

    def host_codes(self, hosts: Iterable[str]) -> list[int]:
        if not hasattr(self, "_host_index"):
            self._host_index = {h: i for i, h in enumerate(self.line.host_lower)}
        index = self._host_index
        return [index[h.lower()] for h in hosts if h.lower() in index]

    # -- attempts --

    def attempts(self) -> _AttemptTable:
        if self._attempts is None:
            self._attempts = self._build_attempts()
        return self._attempts

    def _build_attempts(self) -> _AttemptTable:
        attempts = list(self.correlation.attempts) if self.correlation else []
        connectors = self.connector_machines()
        connector_hosts = [c for m in connectors for c in self.host_codes(self.machine_hosts[m])]
        rows: dict[tuple[str, str], list[tuple[int, int, int, int, int]]] = defaultdict(list)
        step_rows = []
        kinds = []
        previous_end: dict[str, int] = {}
        for index, attempt in enumerate(attempts):
            raw = [s.ts for s in attempt.steps] or [attempt.started]
            offset = attempt.offset.offset_ns if attempt.offset else 0
            lo = max(min(raw) - PAD_BEFORE_NS, previous_end.get(attempt.device.machine, MIN_TS))
            hi = max(raw) + PAD_AFTER_NS
            previous_end[attempt.device.machine] = max(raw) + 1
            for host in self.host_codes(attempt.device.hosts):
                rows[("device", "attempt")].append((index, host, lo, hi, offset))
                rows[("device", "bundle")].append((index, host, MIN_TS, MAX_TS, offset))
            if attempt.connector:
                mine = self.host_codes(self.machine_hosts.get(
                    self.machine_of.get(attempt.connector.lower(), attempt.connector),
                    (attempt.connector,)))
            else:
                mine = connector_hosts
            slack = 0 if attempt.offset else ASSUMED_SKEW_NS
            for host in mine:
                rows[("connector", "attempt")].append(
                    (index, host, attempt.started - PAD_BEFORE_NS - slack,
                     attempt.ended + PAD_AFTER_NS + slack, 0))
                rows[("connector", "bundle")].append((index, host, MIN_TS, MAX_TS, 0))
            for request in attempt.requests:  # exactly the connector events matched to it
                for host in self.host_codes((request.ref.host,)):
                    for window in ("attempt", "bundle"):
                        rows[("request", window)].append((index, host, request.ts, request.ts,
                                                          0))
            if attempt.requests:
                kinds.append(frozenset(r.kind for r in attempt.requests))
            else:
                kinds.append(frozenset(k for m in connectors for k in self.kinds[m]))
            for step in attempt.steps:
                step_rows.append((index, step.name, step.status, step.ts_corrected,
                                  step.detail))
        windows = {key: _Windows.build(rows.get(key, [])) for key in
                   (("device", "attempt"), ("device", "bundle"), ("connector", "attempt"),
                    ("connector", "bundle"), ("request", "attempt"), ("request", "bundle"))}
        for window in ("attempt", "bundle"):
            windows[("any", window)] = windows[("device", window)] + windows[
                ("connector", window)]
        steps = pd.DataFrame(step_rows, columns=["attempt", "name", "status", "ts", "detail"])
        table = attempts_frame(self.correlation)
        table["connector_kind"] = [",".join(sorted(k)) or "none" for k in kinds]
        return _AttemptTable(attempts, table, steps, windows, kinds)

    def hits(self, selector: Selector) -> _Hits:
        key = (selector.key, selector.side, selector.window)
        if key not in self._hits:
            table = self.attempts()
            windows = table.windows[(selector.side, selector.window)]
            self._hits[key] = _count_in_windows(
                self.line, self.line.rows(selector, within=windows), windows,
                len(table.attempts))
        return self._hits[key]


def _connector_kinds(channels: set[str]) -> frozenset[str]:
    kinds = set()
    if not channels.isdisjoint(CONNECTOR_UPDATED):
        kinds.add("updated")
    if not channels.isdisjoint(CONNECTOR_LEGACY):
        kinds.add("legacy")
    return frozenset(kinds)


# --- applies_to -------------------------------------------------------------------------------

def _version_possible(bounds: Sequence[tuple[str, tuple[int, ...]]],
                      kinds: frozenset[str]) -> bool:
    """Can a connector of these kinds (exact version unknown) satisfy the bounds?"""
    if not bounds:
        return True
    if not kinds:
        return False
    ranges = []
    if "legacy" in kinds:
        ranges.append(((0,), LEGACY_BELOW, False))  # [0, 6.2501.2000.5)
    if "updated" in kinds:
        ranges.append((LEGACY_BELOW, (10**9,), True))
    for low, high, _ in ranges:
        if all(_bound_allows(op, version, low, high) for op, version in bounds):
            return True
    return False


def _bound_allows(op: str, version: tuple[int, ...], low: tuple[int, ...],
                  high: tuple[int, ...]) -> bool:
    """Does [low, high) contain a version satisfying `op version`?"""
    if op in ("<", "<="):
        return low < version or (op == "<=" and low == version)
    if op in (">", ">="):
        return high > version
    return low <= version < high


def _applies(applies: AppliesTo, join: str | None, kinds: frozenset[str]) -> bool:
    if applies.join != "any" and join is not None and join != applies.join:
        return False
    if applies.connector == "none" and kinds:
        return False
    if applies.connector in ("legacy", "updated") and applies.connector not in kinds:
        return False
    return _version_possible(applies.connector_version, kinds) if (
        applies.connector_version) else True


# --- evaluation -------------------------------------------------------------------------------

def evaluate(rules: Sequence[Rule], frame: pd.DataFrame, correlation: Correlation | None,
             coverage: Sequence[ChannelCoverage] = (), folders: Sequence[str] = ()
             ) -> Evaluation:
    """Run every rule; findings most important first, root causes marked."""
    context = _Context(frame, correlation, coverage)
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
            findings += _host_rule(rule, context)
        elif rule.scope == "event":
            findings += _event_rule(rule, context)
        else:
            findings += _bundle_rule(rule, context)
    by_id = {rule.id: rule for rule in rules}
    return Evaluation(findings=tuple(_finish(findings, by_id, correlation)), gaps=tuple(gaps),
                      rules=len(rules), rule_folders=tuple(folders))


def _gap(rule: Rule, context: _Context) -> str | None:
    """Why a rule cannot be judged here: a channel it reads is absent from every host."""
    specific_absences = [s for s in rule.match.absent  # "no such channel" is not a gap
                         if s.event_ids or s.fields or s.any_field or s.message or s.level]
    for group, selectors in (("needs", rule.match.events), ("cannot tell absence of",
                                                            specific_absences)):
        for selector in selectors:
            if selector.channels and not {c.lower() for c in selector.channels} & (
                    context.all_channels):
                return (f"{group} {selector.name!r}: no host has "
                        f"{' or '.join(selector.channels)}")
    return None


def _attempt_rule(rule: Rule, context: _Context) -> list[Finding]:
    table = context.attempts()
    if not table.attempts:
        return []
    candidates = np.array([
        _applies(rule.applies_to, _join(a), kinds)
        for a, kinds in zip(table.attempts, table.connector_kinds, strict=True)], dtype=bool)
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


def _match_mask(match: Match, context: _Context, table: _AttemptTable) -> np.ndarray:
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


def _evidence(match: Match, context: _Context, index: int) -> dict[str, np.ndarray] | None:
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
            limit = first[0] + (condition.within * SECOND if condition.within is not None
                                else MAX_TS)
            later = then[(then > first[0]) & (then <= limit)]
            if bool(len(later)) == condition.absent:
                return None
        for condition in match.duration:
            start, end = times(condition.start), times(condition.end)
            if not len(start) or not len(end):
                return None
            span = (end[-1] - start[0]) / SECOND
            if condition.over is not None and not span > condition.over:
                return None
            if condition.under is not None and not span < condition.under:
                return None
    if match.any:
        held = [branch_found for branch in match.any
                if context.branch_masks[id(branch)][index]
                and (branch_found := _evidence(branch, context, index)) is not None]
        if not held:
            return None
        for branch in held:
            found.update({k: v for k, v in branch.items() if len(v)})
    return found


def _times(match: Match, context: _Context, index: int) -> Callable[[str], np.ndarray]:
    """ref (a step name, `step:status`, or an event name) → the attempt's sorted times."""
    steps = context.attempts().attempts[index].steps
    selectors = {s.name: s for s in match.events}

    def times(ref: str) -> np.ndarray:
        if ref in selectors:
            return context.hits(selectors[ref]).corrected(index, context.line.ts)
        name, _, status = ref.partition(":")
        return np.array(sorted(s.ts_corrected for s in steps
                               if s.name == name and (not status or s.status == status)),
                        dtype=np.int64)
    return times


def _attempt_finding(rule: Rule, context: _Context, index: int,
                     evidence: dict[str, np.ndarray]) -> Finding:
    table = context.attempts()
    attempt = table.attempts[index]
    values = _attempt_values(attempt, table.connector_kinds[index])
    refs, count = _refs(rule, context, evidence, values)
    step_refs = tuple(s.ref for s in attempt.steps
                      if s.name in {c.name for c in rule.match.steps} and s.status != "info")
    return Finding(
        rule=rule.id, title=rule.title, severity=rule.severity, confidence=rule.confidence,
        scope=rule.scope, cause=templates.render(rule.cause, values),
        fix=templates.render(rule.fix, values), references=rule.references,
        evidence=tuple(dict.fromkeys(refs + step_refs)), attempt=attempt.id,
        host=context.display(attempt.device.machine) if attempt.steps else (
            attempt.device.computer_name or attempt.device.hosts[0]), count=count)


def _attempt_values(attempt: Attempt, kinds: frozenset[str]) -> dict[str, Any]:
    offset = attempt.offset
    texts = [r.diagnostic_text or "" for r in attempt.requests]
    ou = next((m.group(1) for t in texts if (m := _OU.search(t))), None)
    return {
        "attempt": attempt.id, "device": (attempt.device.oobe_names or attempt.device.hosts
                                          or ("",))[0],
        "host": attempt.device.machine, "computer_name": attempt.device.computer_name,
        "domain": attempt.device.domain, "connector": attempt.connector,
        "connector_kind": ", ".join(sorted(kinds)) or None, "outcome": str(attempt.outcome),
        "failed_step": attempt.failed_step,
        "offset": templates.duration(offset.offset_ns / SECOND) if offset else None,
        "offset_s": offset.offset_ns / SECOND if offset else None, "ou": ou,
        "reason": attempt.reason, "connector_evidence": attempt.connector_evidence,
        "missing": "; ".join(attempt.missing) or None,
    }


def _refs(rule: Rule, context: _Context, evidence: dict[str, np.ndarray],
          values: dict[str, Any]) -> tuple[tuple[EventRef, ...], int]:
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

def _per_machine(context: _Context, positions: np.ndarray) -> np.ndarray:
    machines = context.host_machine[context.line.host_code[positions]] if len(positions) else (
        np.empty(0, dtype=np.int64))
    return np.bincount(machines, minlength=len(context.machine_keys))


def _host_rule(rule: Rule, context: _Context) -> list[Finding]:
    keys = context.machine_keys
    mask = np.array([_applies(rule.applies_to, None, context.kinds.get(k, frozenset()))
                     for k in keys], dtype=bool)
    mask &= _host_mask(rule.match, context)
    out = []
    for index in np.flatnonzero(mask).tolist():
        machine = keys[index]
        evidence = _machine_positions(rule.match, context, index)
        values: dict[str, Any] = {"host": context.display(machine),
                                  "connector_kind": ", ".join(sorted(context.kinds.get(
                                      machine, ()))) or None}
        out.append(_finding(rule, context, evidence, values, context.display(machine)))
    return out


def _finding(rule: Rule, context: _Context, evidence: dict[str, np.ndarray],
             values: dict[str, Any], host: str | None) -> Finding:
    """A host, event or bundle finding, its texts rendered with the evidence values."""
    refs, count = _refs(rule, context, evidence, values)
    if host is not None and refs:  # name the host that wrote the evidence, not a sibling name
        host = refs[0].host
        values["host"] = host
    return Finding(rule=rule.id, title=rule.title, severity=rule.severity,
                   confidence=rule.confidence, scope=rule.scope,
                   cause=templates.render(rule.cause, values),
                   fix=templates.render(rule.fix, values), references=rule.references,
                   evidence=refs, host=host, count=count)


def _host_mask(match: Match, context: _Context) -> np.ndarray:
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


def _machine_positions(match: Match, context: _Context, machine: int) -> dict[str, np.ndarray]:
    found = {}
    for selector in match.events:
        rows = context.line.rows(selector)
        found[selector.name] = rows[context.host_machine[context.line.host_code[rows]] == machine]
    for branch in match.any:
        found.update({k: v for k, v in _machine_positions(branch, context, machine).items()
                      if len(v)})
    return found


def _event_rule(rule: Rule, context: _Context) -> list[Finding]:
    selector = rule.match.events[0]
    rows = context.line.rows(selector)
    out = []
    if not len(rows):
        return out
    machines = context.host_machine[context.line.host_code[rows]]
    for index in np.unique(machines).tolist():
        machine = context.machine_keys[index]
        if not _applies(rule.applies_to, None, context.kinds.get(machine, frozenset())):
            continue
        mine = rows[machines == index]
        values: dict[str, Any] = {"host": context.display(machine)}
        out.append(_finding(rule, context, {selector.name: mine}, values,
                            context.display(machine)))
    return out


def _bundle_rule(rule: Rule, context: _Context) -> list[Finding]:
    match = rule.match
    if not _bundle_holds(match, context):
        return []
    kinds = frozenset(k for found in context.kinds.values() for k in found)
    if not _applies(rule.applies_to, None, kinds):
        return []
    evidence = {s.name: context.line.rows(s) for s in match.events}
    missing = [c for c in match.missing_channels if c not in context.all_channels]
    values: dict[str, Any] = {"hosts": ", ".join(sorted(context.machine_hosts)) or None,
                              "missing_channels": ", ".join(missing) or None}
    return [_finding(rule, context, evidence, values, None)]


def _bundle_holds(match: Match, context: _Context) -> bool:
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


# --- dedupe, order, root causes ---------------------------------------------------------------

def _finish(findings: list[Finding], rules: dict[str, Rule],
            correlation: Correlation | None) -> list[Finding]:
    groups: dict[tuple[str | None, str | None], list[Finding]] = defaultdict(list)
    for finding in findings:
        groups[(finding.attempt, finding.host if finding.attempt is None else None)].append(
            finding)
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
                finding = _replace(finding, superseded=tuple(replaced[finding.rule]))
            kept.append(finding)
    attempts = {a.id: a for a in correlation.attempts} if correlation else {}
    outcome = {key: a.outcome for key, a in attempts.items()}
    kept = [_by_outcome(f, outcome.get(f.attempt)) if f.attempt else f for f in kept]
    kept.sort(key=lambda f: _order(f, rules))
    causes: dict[str, Finding] = {}
    for finding in kept:  # supported causes first; a missing-evidence finding only if alone
        if (finding.attempt and outcome.get(finding.attempt) in FAILED
                and finding.severity != "info"):
            held = causes.get(finding.attempt)
            if held is None or (_coverage(held, rules) and not _coverage(finding, rules)):
                causes[finding.attempt] = finding
    root = {id(f): _as_root_cause(f, attempts[key], rules[f.rule])
            for key, f in causes.items()}
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
    if attempt.outcome in (Outcome.FAILED, Outcome.TIMED_OUT) and SEVERITY_RANK[
            finding.severity] > SEVERITY_RANK["error"]:
        changes["severity"] = "error"
    reads_connector = any(s.side in ("connector", "request") for s in _selectors(rule.match))
    if (attempt.connector_evidence in UNKNOWN_CONNECTOR and not reads_connector
            and "coverage" not in rule.tags):
        changes["confidence"] = CONFIDENCE_DOWN[finding.confidence]
        changes["unconfirmed"] = attempt.missing
    return _replace(finding, **changes)


def _selectors(match: Match) -> list[Selector]:
    return [*match.events, *match.absent, *(s for b in match.any for s in _selectors(b))]


HEALTHY = (Outcome.SUCCEEDED, Outcome.NOT_HYBRID)
HEALTHY_NOTE = ("Logged during an attempt that went on to succeed, so it did not decide the "
                "outcome (shown for context): ")


def _by_outcome(finding: Finding, outcome: Outcome | None) -> Finding:
    """A finding explains an outcome and never invents one: an error or critical rule that
    matched an attempt which succeeded (or was an Entra join) is context, shown as info."""
    if outcome not in HEALTHY or finding.severity not in ("error", "critical"):
        return finding
    return _replace(finding, severity="info", cause=HEALTHY_NOTE + finding.cause)


def _order(finding: Finding, rules: dict[str, Rule]) -> tuple[Any, ...]:
    rule = rules[finding.rule]
    specificity = _conditions(rule.match)
    return (SEVERITY_RANK[finding.severity], not finding.root_cause, _coverage(finding, rules),
            CONFIDENCE_RANK[finding.confidence],
            -len(finding.superseded), -specificity, finding.attempt or "", finding.host or "",
            finding.rule)


def _conditions(match: Match) -> int:
    return (len(match.attempt) + 2 * len(match.events) + len(match.absent) + len(match.steps)
            + len(match.sequence) + len(match.duration) + (match.clock_offset is not None)
            + sum(_conditions(b) for b in match.any[:1]))


def _replace(finding: Finding, **changes: Any) -> Finding:
    values = {name: getattr(finding, name) for name in Finding.__slots__}
    values.update(changes)
    return Finding(**values)
