"""Names and units the stages share (one definition each)."""

from __future__ import annotations

SECOND = 1_000_000_000  # ns: every time in evtxdoc is UTC nanoseconds since the Unix epoch
MINUTE = 60 * SECOND
HOUR = 3600 * SECOND
ASSUMED_SKEW_NS = 5 * MINUTE  # clocks with no offset evidence are assumed to agree this well
WINDOW_SLACK_NS = 2 * MINUTE  # time windows are widened by this much on each side

# The steps of a join attempt in the order they happen (domain.md (d)); rules name them too.
STEPS = (
    "profile",
    "enrollment",
    "odj_request",
    "odj_blob",
    "blob_applied",
    "offline_join",
    "dc_connectivity",
    "reboot",
    "esp",
    "hybrid_registration",
)
# The steps in words, for drawings and people (the ids stay in JSON and rules).
STEP_WORDS = {
    "profile": "Autopilot profile",
    "enrollment": "MDM enrollment",
    "odj_request": "blob awaited",
    "odj_blob": "ODJ blob",
    "blob_applied": "blob applied",
    "offline_join": "offline join",
    "dc_connectivity": "domain controller",
    "reboot": "reboot",
    "esp": "ESP",
    "hybrid_registration": "hybrid registration",
}
# Finding severities and confidences, most important first (rules and findings use these).
FINDING_SEVERITIES = ("critical", "error", "warning", "info")
CONFIDENCES = ("documented", "community", "inferred")
