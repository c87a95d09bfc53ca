"""Names and units the stages share (one definition each)."""

from __future__ import annotations

SECOND = 1_000_000_000  # ns: every time in evtxdoc is UTC nanoseconds since the Unix epoch
MINUTE = 60 * SECOND
HOUR = 3600 * SECOND
ASSUMED_SKEW_NS = 5 * MINUTE  # clocks with no offset evidence are assumed to agree this well
WINDOW_SLACK_NS = 2 * MINUTE  # time windows are widened by this much on each side
