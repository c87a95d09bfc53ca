"""Clock offsets: how far each host's clock was off, and which events each estimate covers.

Two kinds of evidence (design.md §3, issue 4):
- **Clock sets** on the host itself (Kernel-General 1 / Time-Service 261 with OldTime and
  NewTime, domain.md a.9): events written before the set were off by OldTime − NewTime. Which
  events those are is found per log file in write order (EventRecordID), because a clock that
  was ahead makes later events look earlier: the first backward step of at least half the
  jump is where the set happened. Where a file shows no such step and a time is ambiguous,
  ODJ-phase channels (DMEDP, Autopilot) count as before the set, the rest as after it.
- **Causal order** against a connector: the device starts waiting (111 / 109 state 1) before
  the connector handles its request, and the connector creates the blob before the device
  processes it (109 state 2 / 107 / 4098) or gives up (110 state 3). Each matched pair bounds
  the offset to an interval; the intervals of a host are intersected.
Offsets are host clock − reference clock, reference being the connector the device talked to
(connector servers are domain members on domain time; that is the stated assumption).

**Latency model.** The connector polls Intune outbound for requests (domain.md (d) step 5), so
it acts some time after the device asks; no figure is documented. The real deployment
(real-logs/hybrid-deployment-sequence.md) had its blob 34 ms after asking (109 `0x1` → `0x2`),
the generator's connectors answer within 90 s; we assume **at most 10 minutes**
(`CONNECTOR_LATENCY_NS`, an inferred bound, stated in every basis it tightens). Without it a
device that timed out is bounded only by "between the request and the give-up" — ±30 minutes.

**Applying an estimate.** Device times are shifted only when the estimate is *tight* (half
width ≤ `TIGHT_NS`, 5 minutes, Kerberos' tolerance) and *needed* (its interval excludes zero);
otherwise the host's times stay as logged and the offset is unknown (or "agrees within ±x").
Clock sets on the host itself are exact to the second and always applied.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from evtxdoc.correlate.evidence import AUTOPILOT, DMEDP, ClockJump, Record
from evtxdoc.models import ClockOffset
from evtxdoc.vocab import SECOND

JUMP_PRECISION_NS = 2 * SECOND  # OldTime/NewTime are logged to the second or better
PRE_JUMP_CHANNELS = {DMEDP, AUTOPILOT}
CONNECTOR_LATENCY_NS = 10 * 60 * SECOND  # assumed: the connector acts this soon after a request
TIGHT_NS = 5 * 60 * SECOND  # an estimate this tight (half width) or better is applied
LATENCY_BASIS = (
    "the connector acts within 10 min of the request (assumed: it polls Intune; "
    "the real deployment took 34 ms)"
)


@dataclass
class Interval:
    """Bounds on an offset in ns; None is unbounded on that side."""

    low: int | None = None
    high: int | None = None
    basis: list[str] = field(default_factory=list)

    def intersect(self, other: Interval) -> Interval | None:
        low = max((v for v in (self.low, other.low) if v is not None), default=None)
        high = min((v for v in (self.high, other.high) if v is not None), default=None)
        if low is not None and high is not None and low > high:
            return None
        return Interval(low, high, self.basis + other.basis)

    @property
    def estimate(self) -> tuple[int, int | None]:
        """(offset, half-width); one-sided intervals give their bound and None."""
        if self.low is not None and self.high is not None:
            return (self.low + self.high) // 2, (self.high - self.low + 1) // 2
        if self.low is not None:
            return self.low, None
        if self.high is not None:
            return self.high, None
        return 0, None


class LocalClock:
    """One machine's clock sets, and the correction that puts its events on its final clock."""

    def __init__(self, jumps: list[ClockJump], rows: pd.DataFrame | None = None):
        self.jumps = sorted(jumps, key=lambda j: j.new)
        self._segments: dict[tuple[str, str, int], int] = {}
        if self.jumps and rows is not None and not rows.empty:
            self._assign(rows)

    def _assign(self, rows: pd.DataFrame) -> None:
        frame = rows[["source_file", "channel", "record_id", "ts"]]
        for (source, channel), group in frame.groupby(
            ["source_file", "channel"], observed=True, sort=False
        ):
            group = group.sort_values("record_id")
            ids = group["record_id"].to_numpy()
            times = group["ts"].array.asi8
            segment = np.zeros(len(ids), dtype=np.int64)
            lower = str(channel).lower()
            for jump in self.jumps:
                segment += self._crossed(jump, str(source), lower, ids, times)
            for record_id, seg in zip(ids.tolist(), segment.tolist(), strict=True):
                self._segments[(str(source), lower, record_id)] = seg

    @staticmethod
    def _crossed(
        jump: ClockJump, source: str, channel: str, ids: np.ndarray, times: np.ndarray
    ) -> np.ndarray:
        """1 for the events of one file written after `jump`, else 0."""
        record = jump.record
        if record.source_file == source and record.channel == channel:
            return (ids >= record.record_id).astype(np.int64)
        if jump.offset < 0:  # the clock was behind: before ≤ OldTime < NewTime ≤ after
            return (times >= (jump.old + jump.new) // 2).astype(np.int64)
        running = np.maximum.accumulate(times)
        drops = np.nonzero(times[1:] < running[:-1] - jump.offset // 2)[0]
        if len(drops):
            after = np.zeros(len(ids), dtype=np.int64)
            after[drops[0] + 1 :] = 1
            return after
        ambiguous_after = channel not in PRE_JUMP_CHANNELS
        after = np.where(times < jump.new, 0, np.where(times > jump.old, 1, int(ambiguous_after)))
        return np.maximum.accumulate(after).astype(np.int64)  # write order: once after, after

    def segment(self, record: Record) -> int:
        """How many clock sets happened before `record` was written."""
        if not self.jumps:
            return 0
        key = (record.source_file, record.channel, record.record_id)
        if key in self._segments:
            return self._segments[key]
        return sum(1 for j in self.jumps if record.ts >= j.new)

    def drift(self, segment: int) -> int:
        """How far the clock of `segment` was ahead of the final clock (ns)."""
        return sum(j.offset for j in self.jumps[segment:])

    def local(self, record: Record) -> int:
        """`record`'s time on the machine's final (synchronized) clock."""
        if not self.jumps:
            return record.ts
        return record.ts - self.drift(self.segment(record))


def causal_interval(
    wait_start: int, request_ts: int, blob_at: int | None, gave_up_at: int | None
) -> Interval:
    """Offset bounds (device final clock − connector clock) from one matched pair."""
    low = wait_start - request_ts
    latest = low + CONNECTOR_LATENCY_NS
    if blob_at is not None and blob_at - request_ts <= latest:
        return Interval(
            low,
            blob_at - request_ts,
            ["device waited before the connector acted, blob processed after it"],
        )
    if gave_up_at is not None and gave_up_at - request_ts <= latest:
        return Interval(
            low,
            gave_up_at - request_ts,
            ["device waited before the connector acted and gave up after it"],
        )
    return Interval(low, latest, ["device waited before the connector acted", LATENCY_BASIS])


def tight(interval: Interval | None) -> bool:
    """Bounded on both sides, with a half width of at most TIGHT_NS."""
    if interval is None or interval.low is None or interval.high is None:
        return False
    return interval.high - interval.low <= 2 * TIGHT_NS


def applied_shift(interval: Interval | None) -> int:
    """The offset to correct a host's times by: the estimate when tight and excluding zero."""
    if not tight(interval):
        return 0
    assert interval is not None and interval.low is not None and interval.high is not None
    if interval.low <= 0 <= interval.high:
        return 0
    return interval.estimate[0]


def combine(intervals: list[Interval]) -> tuple[Interval | None, bool]:
    """Intersect; (result, consistent). Inconsistent evidence falls back to the widest hull."""
    if not intervals:
        return None, True
    result: Interval | None = Interval()
    for interval in intervals:
        result = result.intersect(interval) if result else None
        if result is None:
            lows = [i.low for i in intervals if i.low is not None]
            highs = [i.high for i in intervals if i.high is not None]
            hull = Interval(
                min(lows) if lows else None,
                max(highs) if highs else None,
                ["inconsistent pairs: the hull of all bounds"],
            )
            return hull, False
    return result, True


def offsets_for(
    host: str,
    reference: str,
    residual: Interval | None,
    clock: LocalClock,
    synced_basis: str | None,
) -> list[ClockOffset]:
    """One ClockOffset per clock segment of a machine (before each set, then after the last)."""
    value, half, basis_base = _residual_terms(residual)
    low = residual.low if residual is not None else None
    high = residual.high if residual is not None else None
    out = []
    for index in range(len(clock.jumps) + 1):
        drift = clock.drift(index)
        basis = list(basis_base)
        if index < len(clock.jumps):
            jump = clock.jumps[index]
            basis.append(
                f"clock set by {drift / SECOND:+.0f} s "
                f"({jump.record.channel.split('/')[-1]} {jump.record.event_id})"
            )
            until = jump.record.ts
        else:
            until = None
            if synced_basis and clock.jumps:
                basis.append(synced_basis)
        width = (
            None if half is None else half + (JUMP_PRECISION_NS if index < len(clock.jumps) else 0)
        )
        out.append(
            ClockOffset(
                host=host,
                reference=reference,
                offset_ns=value + drift,
                uncertainty_ns=width,
                basis=tuple(basis),
                until_ns=until,
                low_ns=None if low is None else low + drift,
                high_ns=None if high is None else high + drift,
            )
        )
    return out


def _residual_terms(residual: Interval | None) -> tuple[int, int | None, list[str]]:
    """(applied offset, its half width or None when unknown, basis) of the residual."""
    if residual is None:
        return 0, None, ["no evidence bounds the offset: times as logged"]
    basis = list(dict.fromkeys(residual.basis))
    value = applied_shift(residual)
    if value:
        return value, residual.estimate[1], basis
    if residual.low is not None and residual.high is not None:
        agree = max(abs(residual.low), abs(residual.high))
        if residual.low <= 0 <= residual.high and agree <= TIGHT_NS:
            return (
                0,
                agree,
                [
                    *basis,
                    f"the offset lies within {_bounds_text(residual)}: the "
                    "clocks agree within that, times as logged",
                ],
            )
    return (
        0,
        None,
        [
            *basis,
            f"the evidence bounds the offset only to {_bounds_text(residual)}: "
            "too loose to correct times by (needs ±5 min or better), times as logged",
        ],
    )


def _bounds_text(interval: Interval) -> str:
    def text(ns: int | None) -> str:
        if ns is None:
            return "unbounded"
        sign = "-" if ns < 0 else "+"
        seconds = abs(ns) // SECOND
        hours, rest = divmod(seconds, 3600)
        minutes, secs = divmod(rest, 60)
        return sign + (
            f"{hours}h{minutes:02d}m"
            if hours
            else f"{minutes}m{secs:02d}s"
            if minutes
            else f"{secs}s"
        )

    return f"{text(interval.low)} … {text(interval.high)}"


def jumps_by_machine(
    jumps: list[ClockJump], machine_of: dict[str, str]
) -> dict[str, list[ClockJump]]:
    """Clock jumps grouped by the machine that logged them."""
    out: dict[str, list[ClockJump]] = defaultdict(list)
    for jump in jumps:
        machine = machine_of.get(jump.record.host.lower())
        if machine is not None:
            out[machine].append(jump)
    return out
