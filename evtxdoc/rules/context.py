"""What the engine works in: the timeline index, the machines and their channels, and the
attempts as a table with their device, connector and request windows."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from evtxdoc.correlate import attempts_frame
from evtxdoc.correlate.evidence import (
    connector_kinds,
)
from evtxdoc.correlate.machines import display_name
from evtxdoc.models import (
    Attempt,
    ChannelCoverage,
    Correlation,
)
from evtxdoc.rules.model import (
    Selector,
)
from evtxdoc.rules.windows import Hits, Timeline, Windows, count_in_windows
from evtxdoc.vocab import ASSUMED_SKEW_NS, SECOND

PAD_BEFORE_NS = 15 * 60 * SECOND  # device events this long before an attempt's first step count
PAD_AFTER_NS = 30 * 60 * SECOND
MIN_TS = -(2**62)
MAX_TS = 2**62


# --- the context the engine works in ------------------------------------------------------------


@dataclass
class AttemptTable:
    attempts: list[Attempt]
    frame: pd.DataFrame  # one row per attempt: attributes rules match on
    steps: pd.DataFrame  # attempt, name, status, ts, detail
    windows: dict[tuple[str, str], Windows]  # (side, window) → windows
    connector_kinds: list[frozenset[str]]


class Context:
    def __init__(
        self,
        frame: pd.DataFrame,
        correlation: Correlation | None,
        coverage: Sequence[ChannelCoverage],
    ) -> None:
        self.line = Timeline(frame)
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
        self.kinds = {m: connector_kinds(c) for m, c in self.channels.items()}
        self.machine_keys = sorted(set(self.machine_of.values()) | set(self.machine_hosts))
        position = {key: i for i, key in enumerate(self.machine_keys)}
        for host in self.line.host_lower:  # a host coverage did not list (no channel) stands alone
            key = self.machine_of.setdefault(host, host)
            if key not in position:
                position[key] = len(self.machine_keys)
                self.machine_keys.append(key)
        self.host_machine = np.array(
            [position[self.machine_of[h]] for h in self.line.host_lower] or [0], dtype=np.int64
        )
        self._attempts: AttemptTable | None = None
        self._hits: dict[tuple[Any, ...], Hits] = {}
        self.branch_masks: dict[int, np.ndarray] = {}  # id(any-branch) → attempts it holds for

    def display(self, machine: str) -> str:
        """A machine's name for people: its longest (usually final, FQDN) host name."""
        return display_name(self.machine_hosts.get(machine) or (), machine)

    def connector_machines(self) -> list[str]:
        return [m for m, kinds in self.kinds.items() if kinds]

    def host_codes(self, hosts: Iterable[str]) -> list[int]:
        if not hasattr(self, "_host_index"):
            self._host_index = {h: i for i, h in enumerate(self.line.host_lower)}
        index = self._host_index
        return [index[h.lower()] for h in hosts if h.lower() in index]

    # -- attempts --

    def attempts(self) -> AttemptTable:
        if self._attempts is None:
            self._attempts = self._build_attempts()
        return self._attempts

    def _build_attempts(self) -> AttemptTable:
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
                mine = self.host_codes(
                    self.machine_hosts.get(
                        self.machine_of.get(attempt.connector.lower(), attempt.connector),
                        (attempt.connector,),
                    )
                )
            else:
                mine = connector_hosts
            slack = 0 if attempt.offset else ASSUMED_SKEW_NS
            for host in mine:
                rows[("connector", "attempt")].append(
                    (
                        index,
                        host,
                        attempt.started - PAD_BEFORE_NS - slack,
                        attempt.ended + PAD_AFTER_NS + slack,
                        0,
                    )
                )
                rows[("connector", "bundle")].append((index, host, MIN_TS, MAX_TS, 0))
            for request in attempt.requests:  # exactly the connector events matched to it
                for host in self.host_codes((request.ref.host,)):
                    for window in ("attempt", "bundle"):
                        rows[("request", window)].append((index, host, request.ts, request.ts, 0))
            if attempt.requests:
                kinds.append(frozenset(r.kind for r in attempt.requests))
            else:
                kinds.append(frozenset(k for m in connectors for k in self.kinds[m]))
            for step in attempt.steps:
                step_rows.append((index, step.name, step.status, step.ts_corrected, step.detail))
        windows = {
            key: Windows.build(rows.get(key, []))
            for key in (
                ("device", "attempt"),
                ("device", "bundle"),
                ("connector", "attempt"),
                ("connector", "bundle"),
                ("request", "attempt"),
                ("request", "bundle"),
            )
        }
        for window in ("attempt", "bundle"):
            windows[("any", window)] = windows[("device", window)] + windows[("connector", window)]
        steps = pd.DataFrame(step_rows, columns=["attempt", "name", "status", "ts", "detail"])
        table = attempts_frame(self.correlation)
        table["connector_kind"] = [",".join(sorted(k)) or "none" for k in kinds]
        return AttemptTable(attempts, table, steps, windows, kinds)

    def hits(self, selector: Selector) -> Hits:
        key = (selector.key, selector.side, selector.window)
        if key not in self._hits:
            table = self.attempts()
            windows = table.windows[(selector.side, selector.window)]
            self._hits[key] = count_in_windows(
                self.line, self.line.rows(selector, within=windows), windows, len(table.attempts)
            )
        return self._hits[key]
