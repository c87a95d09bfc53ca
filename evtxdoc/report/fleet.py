"""The fleet summary: what went wrong how often across many devices (issue 22, part 1).

Each device is counted once: a device whose last attempt failed, timed out or stopped
midway goes under that attempt's root cause, or under "cannot be judged" with its reason when
no rule explains it; a device whose last attempt succeeded is healthy (its earlier failures
still count as attempts of their cause). Per cause: the devices, the failed attempts, the
connectors that served them, the first and last attempt, an hourly histogram (UTC).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from evtxdoc.models import Analysis, Attempt
from evtxdoc.parse.times import format_time_ns
from evtxdoc.rules.model import SEVERITY_RANK
from evtxdoc.vocab import HOUR

FLEET_MIN_DEVICES = 5  # below this the verdict table says it all: `fleet` is null
FAILING = ("failed", "timed_out", "incomplete")
NOT_JUDGED = {
    "unknown": "the connector side only: no device log for these requests",
    "no_attempt": "no join attempt in the device's logs",
}


def fleet_summary(analysis: Analysis, verdicts: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The `fleet` member of the JSON document (None for fewer than FLEET_MIN_DEVICES)."""
    if len(verdicts) < FLEET_MIN_DEVICES:
        return None
    correlation, evaluation = analysis.correlation, analysis.evaluation
    attempts: dict[str, Attempt] = {a.id: a for a in correlation.attempts} if correlation else {}
    causes: dict[str, dict[str, Any]] = {}
    starts: dict[str, list[int]] = defaultdict(list)
    connectors: dict[str, Counter[str]] = defaultdict(Counter)
    for attempt in attempts.values():
        cause = evaluation.root_cause(attempt.id) if evaluation else None
        if cause is None or str(attempt.outcome) not in FAILING:
            continue
        entry = causes.setdefault(cause.rule, _cause(cause.rule, cause.title, cause.severity))
        entry["attempts"] += 1
        starts[cause.rule].append(attempt.started)
        if attempt.connector:
            connectors[cause.rule][attempt.connector] += 1
    judged: dict[str, dict[str, Any]] = {}
    healthy = not_hybrid = 0
    for verdict in verdicts:
        status = verdict["status"]
        if status == "succeeded":
            healthy += 1
        elif status == "not_hybrid":
            not_hybrid += 1
        elif status in FAILING and verdict["root_cause"]:
            cause = verdict["root_cause"]
            entry = causes.setdefault(
                cause["rule"], _cause(cause["rule"], cause["title"], cause["severity"])
            )
            entry["devices"] += 1
            entry["device_list"].append({"name": verdict["name"], "attempt": cause["attempt"]})
        else:
            reason = NOT_JUDGED.get(status) or f"{verdict['verdict']}: no rule explains it"
            group = judged.setdefault(reason, {"reason": reason, "devices": 0, "device_list": []})
            group["devices"] += 1
            group["device_list"].append(
                {"name": verdict["name"], "attempt": verdict["last_attempt"]}
            )
    for rule, entry in causes.items():
        times = sorted(starts.get(rule, ()))
        entry["connectors"] = [name for name, _ in connectors[rule].most_common()]
        entry["first"] = format_time_ns(times[0]) if times else None
        entry["last"] = format_time_ns(times[-1]) if times else None
        entry["per_hour"] = [
            {"hour": format_time_ns(hour * HOUR), "attempts": count}
            for hour, count in sorted(Counter(t // HOUR for t in times).items())
        ]
    ranked = sorted(
        causes.values(),
        key=lambda c: (-c["devices"], -c["attempts"], SEVERITY_RANK[c["severity"]], c["rule"]),
    )
    return {
        "devices": len(verdicts),
        "healthy": healthy,
        "not_hybrid": not_hybrid,
        "failing": sum(c["devices"] for c in ranked) + sum(g["devices"] for g in judged.values()),
        "causes": ranked,
        "not_judged": sorted(judged.values(), key=lambda g: (-g["devices"], g["reason"])),
    }


def _cause(rule: str, title: str, severity: str) -> dict[str, Any]:
    return {
        "rule": rule,
        "title": title,
        "severity": severity,
        "devices": 0,
        "attempts": 0,
        "connectors": [],
        "first": None,
        "last": None,
        "per_hour": [],
        "device_list": [],
    }
