"""What one host wrote in a story (HostLog), its clock (true time + offset until a time sync)
and the writer that emits catalog events through that clock."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from evtxdoc.synth import catalog
from evtxdoc.synth.events import SynthEvent
from evtxdoc.vocab import SECOND


@dataclass
class HostLog:
    """What one host wrote: events by channel in write order, and supporting files."""

    name: str  # the host as the bundle names it (device: OOBE name; connector: server name)
    role: str  # device | connector
    layout: str
    events: dict[str, list[SynthEvent]] = field(default_factory=dict)
    supporting: dict[str, bytes] = field(default_factory=dict)  # file name → content

    def add(self, event: SynthEvent) -> None:
        self.events.setdefault(event.channel, []).append(event)


class HostClock:
    """A host's clock: true time + offset, until a time sync (if any) corrects it."""

    def __init__(self, offset: float, fixed_at_ns: int | None = None):
        self.offset_ns = int(offset * SECOND)
        self.fixed_at_ns = fixed_at_ns

    def __call__(self, true_ns: int) -> int:
        if self.fixed_at_ns is not None and true_ns >= self.fixed_at_ns:
            return true_ns
        return true_ns + self.offset_ns


class HostWriter:
    """Emits catalog events on one host at true times, through the host's clock."""

    def __init__(self, log: HostLog, clock: HostClock, rng: random.Random):
        self.log, self.clock, self.rng = log, clock, rng
        self.pid = rng.randrange(600, 9000)

    def emit(
        self,
        key: str,
        true_ns: int,
        computer: str,
        values: dict[str, Any] | None = None,
        **system: Any,
    ) -> None:
        shape = catalog.shape(key)
        system.setdefault("process_id", self.pid)
        system.setdefault("thread_id", self.pid + 4 * self.rng.randrange(1, 400))
        if not shape.classic:
            system.setdefault("user_sid", "S-1-5-18")
        jitter = self.rng.randrange(0, 100_000) * 100  # up to 10 ms, at 100 ns like Windows
        self.log.add(
            shape.make(
                self.clock(true_ns) + jitter,
                computer,
                values,
                written_ns=true_ns + jitter,
                **system,
            )
        )
