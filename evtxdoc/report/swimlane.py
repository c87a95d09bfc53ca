"""The swimlane of one join attempt: lanes per host, steps as marks, gaps and timeouts as bands.

Geometry only: `build()` turns an Attempt (and the times of its evidence) into plain numbers and
words; the HTML template draws them as inline SVG, so the picture exists without JavaScript and
survives printing. Device times are drawn on the reference clock (the connector's), shifted by
the estimated offset, and the drawing says so.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from evtxdoc.models import Attempt, EventRef
from evtxdoc.report.clock import DisplayZone, duration
from evtxdoc.vocab import SECOND, STEP_WORDS

WIDTH = 960
LEFT = 190  # lane titles
RIGHT = 24
LANE_HEIGHT = 80
TOP = 28
AXIS = 34
GAP_FRACTION = 0.18  # a pause longer than this share of the attempt is drawn as a gap
GAP_MIN_NS = 120 * SECOND
LABEL_ROWS = (-12.0, -27.0, 24.0)  # label baselines against the lane line: two above, one below
CHAR_WIDTH = 6.4  # px per character of a 11 px label (system-ui is narrower: an upper bound)
LABEL_CHARS = 24  # longer labels are cut with "…" (the tooltip has the whole text)
LABEL_PAD = 6  # px kept free between two labels


@dataclass
class Mark:
    x: float
    y: float
    status: str  # ok | failed | waiting | timed_out | not_configured | info | evidence
    label: str  # short, drawn
    tip: str  # long, hover and <title>
    label_y: float = 0  # baseline of the label (labels never overlap: `_placed`)
    anchor: str = "middle"  # text-anchor of the label (start/end near the edges)


@dataclass
class Band:
    x1: float
    x2: float
    y: float
    kind: str  # gap | timeout | wait
    label: str
    label_y: float = 0


@dataclass
class Link:
    x1: float
    y1: float
    x2: float
    y2: float
    label: str


@dataclass
class Lane:
    y: float
    title: str
    role: str


@dataclass
class Swimlane:
    attempt: str
    width: int
    height: int
    lanes: list[Lane] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    bands: list[Band] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    ticks: list[tuple[float, str]] = field(default_factory=list)
    axis_y: float = 0
    left: int = LEFT
    right: int = WIDTH - RIGHT
    clock_note: str = ""
    span_note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the template and the redactor (faster than dataclasses.asdict)."""
        return {
            "attempt": self.attempt,
            "width": self.width,
            "height": self.height,
            "lanes": [vars(lane).copy() for lane in self.lanes],
            "marks": [vars(mark).copy() for mark in self.marks],
            "bands": [vars(band).copy() for band in self.bands],
            "links": [vars(link).copy() for link in self.links],
            "ticks": [list(tick) for tick in self.ticks],
            "axis_y": self.axis_y,
            "left": self.left,
            "right": self.right,
            "clock_note": self.clock_note,
            "span_note": self.span_note,
        }


def _short(host: str) -> str:
    return host.split(".")[0]


def build(
    attempt: Attempt, zone: DisplayZone, evidence: dict[EventRef, tuple[int, str]] | None = None
) -> Swimlane:
    """Lay out one attempt. `evidence` maps extra event refs to (raw time, label)."""
    device_hosts = {h.lower() for h in attempt.device.hosts}
    connector = attempt.connector or (attempt.requests[0].connector if attempt.requests else None)
    lanes = [
        (
            "device",
            attempt.device.computer_name or _short(attempt.device.hosts[0])
            if attempt.device.hosts
            else "device",
        )
    ]
    lanes.append(("connector", _short(connector) if connector else "connector: no logs"))
    extra_hosts: list[str] = []
    step_refs = {s.ref for s in attempt.steps} | {r.ref for r in attempt.requests}
    points: list[tuple[int, int, str, str, str]] = []  # (ts, lane, status, label, tip)
    for step in attempt.steps:
        tip = f"{step.name}: {step.status}" + (f" — {step.detail}" if step.detail else "")
        tip += f"\n{zone.time(step.ts_corrected)}"
        if step.ts != step.ts_corrected:
            tip += f" (device clock {zone.time(step.ts)})"
        words = STEP_WORDS.get(step.name, step.name.replace("_", " "))
        points.append((step.ts_corrected, 0, step.status, words, tip))
    for request in attempt.requests:
        verdict = "blob created" if request.succeeded else "request failed"
        detail = request.diagnostic_text or request.error_code or ""
        tip = f"{_short(request.connector)}: {verdict} for {request.device_name or '?'}"
        tip += (f" — {detail}" if detail else "") + f"\n{zone.time(request.ts)}"
        points.append((request.ts, 1, "ok" if request.succeeded else "failed", verdict, tip))
    for ref, (ts, label) in (evidence or {}).items():
        if ref in step_refs:
            continue
        host = ref.host.lower()
        if host in device_hosts:
            lane, ts = 0, _on_reference_clock(attempt, ts)
        elif connector and host == connector.lower():
            lane = 1
        else:
            if ref.host not in extra_hosts:
                extra_hosts.append(ref.host)
            lane = 2 + extra_hosts.index(ref.host)
        title = label.rsplit(" (", 1)[0]  # the finding's title, without "(channel id)"
        points.append((ts, lane, "evidence", title, f"{label}\n{zone.time(ts)}"))
    for host in extra_hosts:
        lanes.append(("other", _short(host)))
    if not points:
        return Swimlane(attempt.id, WIDTH, TOP + AXIS)
    start = min(p[0] for p in points)
    end = max(p[0] for p in points)
    span = max(end - start, SECOND)
    start -= span // 20
    end += span // 20
    scale = (WIDTH - LEFT - RIGHT) / (end - start)

    def x_of(ts: int) -> float:
        return round(LEFT + (ts - start) * scale, 1)

    def y_of(lane: int) -> float:
        return TOP + lane * LANE_HEIGHT + LANE_HEIGHT / 2

    drawing = Swimlane(attempt.id, WIDTH, TOP + len(lanes) * LANE_HEIGHT + AXIS)
    drawing.lanes = [Lane(y_of(i), title, role) for i, (role, title) in enumerate(lanes)]
    drawing.axis_y = TOP + len(lanes) * LANE_HEIGHT + 4
    _gaps(attempt, drawing, x_of, y_of(0))
    below = len(LABEL_ROWS) - 1  # band labels sit in the device lane's row below the line
    taken = {
        (0, below): [
            ((b.x1 + b.x2) / 2 - w / 2 - LABEL_PAD, (b.x1 + b.x2) / 2 + w / 2 + LABEL_PAD)
            for b in drawing.bands
            for w in (len(b.label) * CHAR_WIDTH,)
        ]
    }
    drawing.marks = _placed(sorted(points), x_of, y_of, taken)
    _links(attempt, drawing, x_of, y_of(0), y_of(1))
    drawing.ticks = [
        (x_of(start + (end - start) * i // 4), zone.clock(start + (end - start) * i // 4))
        for i in range(5)
    ]
    drawing.span_note = f"{zone.time(start, precise=False)} → {zone.time(end, precise=False)}"
    drawing.clock_note = clock_note(attempt)
    return drawing


def _placed(
    points: list[tuple[int, int, str, str, str]],
    x_of: Callable[[int], float],
    y_of: Callable[[int], float],
    taken: dict[tuple[int, int], list[tuple[float, float]]],
) -> list[Mark]:
    """Marks with their labels laid out so that no two labels overlap.

    Each label is a box of its estimated width; it goes in the first label row of its lane
    where the box is free, anchored so it stays inside the drawing. A label with no free row,
    or the same words as the label just before it nearby, is left off: the mark keeps its
    tooltip and <title>, so nothing is lost but the clutter.
    """
    last_words: dict[int, tuple[str, float]] = {}
    marks = []
    for ts, lane, status, label, tip in points:
        x, y = x_of(ts), y_of(lane)
        words = clip_words(label)
        previous = last_words.get(lane)
        if previous and previous[0] == words and x - previous[1] < 160:
            words = ""  # the same step again close by: the mark and its tooltip say it
        mark = Mark(x, y, status, "", tip)
        if words:
            width = len(words) * CHAR_WIDTH
            anchor, left = _anchored(x, width)
            box = (left - LABEL_PAD, left + width + LABEL_PAD)
            for row, offset in enumerate(LABEL_ROWS):
                boxes = taken.setdefault((lane, row), [])
                if all(box[1] <= a or box[0] >= b for a, b in boxes):
                    boxes.append(box)
                    mark.label, mark.label_y, mark.anchor = words, y + offset, anchor
                    last_words[lane] = (words, x)
                    break
        marks.append(mark)
    return marks


def clip_words(text: str, limit: int = LABEL_CHARS) -> str:
    """A label cut at a word boundary with "…" when longer than `limit` characters."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0]
    return (cut if len(cut) >= limit // 2 else text[: limit - 1]) + "…"


def _anchored(x: float, width: float) -> tuple[str, float]:
    """The text-anchor that keeps a label of `width` inside the plot, and its left edge."""
    if x - width / 2 < LEFT - 20:
        return "start", x
    if x + width / 2 > WIDTH - 4:
        return "end", x - width
    return "middle", x - width / 2


def _on_reference_clock(attempt: Attempt, ts: int) -> int:
    """A device time moved like the nearest step's (the offset may change at a clock jump)."""
    if not attempt.steps:
        return ts
    nearest = min(attempt.steps, key=lambda s: abs(s.ts - ts))
    return ts + (nearest.ts_corrected - nearest.ts)


def _gaps(attempt: Attempt, drawing: Swimlane, x_of: Callable[[int], float], y: float) -> None:
    steps = sorted(attempt.steps, key=lambda s: s.ts_corrected)
    total = (steps[-1].ts_corrected - steps[0].ts_corrected) if steps else 0
    for before, after in itertools.pairwise(steps):
        pause = after.ts_corrected - before.ts_corrected
        if pause < GAP_MIN_NS or pause < total * GAP_FRACTION:
            continue
        kind = (
            "timeout"
            if after.status == "timed_out"
            else ("wait" if before.status == "waiting" else "gap")
        )
        words = {"timeout": "timed out after", "wait": "waited", "gap": "no event for"}[kind]
        drawing.bands.append(
            Band(
                x_of(before.ts_corrected),
                x_of(after.ts_corrected),
                y,
                kind,
                f"{words} {duration(pause)}",
                y + LABEL_ROWS[-1],
            )
        )


def _links(
    attempt: Attempt,
    drawing: Swimlane,
    x_of: Callable[[int], float],
    device_y: float,
    connector_y: float,
) -> None:
    asked = next((s for s in attempt.steps if s.name == "odj_request"), None)
    blob = next((s for s in attempt.steps if s.name == "odj_blob" and s.status == "ok"), None)
    for request in attempt.requests:
        if asked is not None and asked.ts_corrected <= request.ts:
            drawing.links.append(
                Link(
                    x_of(asked.ts_corrected),
                    device_y,
                    x_of(request.ts),
                    connector_y,
                    duration(request.ts - asked.ts_corrected),
                )
            )
        if request.succeeded and blob is not None and blob.ts_corrected >= request.ts:
            drawing.links.append(
                Link(
                    x_of(request.ts),
                    connector_y,
                    x_of(blob.ts_corrected),
                    device_y,
                    duration(blob.ts_corrected - request.ts),
                )
            )


def clock_note(attempt: Attempt) -> str:
    """How device times were placed on the connector's clock, in words."""
    offset = attempt.offset
    if offset is None:
        return "Device times as the device wrote them (no clock offset could be estimated)."
    basis = "; ".join(offset.basis)
    if offset.offset_ns == 0:
        if offset.uncertainty_ns is None:
            return f"Device times as the device wrote them: its clock offset is unknown ({basis})."
        return (
            f"Device times as the device wrote them: its clock agrees with "
            f"{_short(offset.reference)}'s within ±{duration(offset.uncertainty_ns)} "
            f"({basis})."
        )
    spread = f" ±{duration(offset.uncertainty_ns)}" if offset.uncertainty_ns is not None else ""
    return (
        f"Device times shifted by {duration(-offset.offset_ns, signed=True)}{spread} onto "
        f"{_short(offset.reference)}'s clock (device clock "
        f"{duration(offset.offset_ns, signed=True)}): {basis}."
    )
