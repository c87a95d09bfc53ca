"""The self-contained HTML report: one file, no network, readable printed.

`build_view()` turns an Analysis into plain data (the JSON document plus what only the page
shows: swimlanes, evidence events, the event table); `render()` redacts that data when asked
and fills the Jinja2 template. Event text is untrusted: autoescape everywhere, StrictUndefined,
every value bounded, and a Content-Security-Policy that allows only this page's own script and
style (by hash) and no remote load at all.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import jinja2
import markupsafe
import numpy as np
import pandas as pd

from evtxdoc.models import Analysis, Attempt, EventRef
from evtxdoc.report import fragments, swimlane
from evtxdoc.report.attempts import attempt_dict
from evtxdoc.report.clock import UTC, DeviceShifts, DisplayZone, duration
from evtxdoc.report.document import device_name
from evtxdoc.report.event_view import (
    bound,
    choose_rows,
    clip,
    event_views,
    positions_of,
)
from evtxdoc.report.events import attempt_ids
from evtxdoc.report.exchange import lane
from evtxdoc.report.findings import finding_dict
from evtxdoc.report.inventory import inventory
from evtxdoc.report.kinds import MAX_EVENTS
from evtxdoc.report.redact import Redactor
from evtxdoc.rules.model import CONFIDENCE_RANK, SEVERITY_RANK

MAX_SWIMLANES = 250  # attempts drawn in full (failing first); the rest are listed
PAGE_KEYS = ("schema_version", "tool", "inputs", "summary", "files", "problems", "rules",
             "correlation_notes")  # fmt: skip  # the document's parts the page prints as they are
MAX_FLEET_NAMES = 200  # devices named under each cause on the page (JSON: all)
MAX_VERDICT_ROWS = 300  # devices listed one by one (failing first); the fleet summary counts all
MAX_FINDINGS = 1000  # findings shown in full; info findings beyond are counted
MAX_OTHER_ATTEMPTS = 2000  # attempts listed (without swimlane) after the drawn ones
MAX_COVERAGE_ROWS = 300  # machines in the coverage table: those lacking logs first
MAX_EVIDENCE_SHOWN = 8  # evidence events per finding
MAX_PRINTED = 4000  # characters of any value the template prints
STATUS_ORDER = (
    "failed",
    "timed_out",
    "incomplete",
    "unknown",
    "no_attempt",
    "not_hybrid",
    "succeeded",
)


@dataclass(frozen=True)
class ReportOptions:
    zone: DisplayZone = UTC
    redactor: Redactor | None = None
    max_events: int = MAX_EVENTS
    max_swimlanes: int = MAX_SWIMLANES
    back_link: str | None = None  # the page this report belongs to (the web service's job)


# --- the view ----------------------------------------------------------------------------


def build_view(analysis: Analysis, options: ReportOptions = ReportOptions()) -> dict[str, Any]:
    """Everything the template shows, as plain data (redacted later if asked)."""
    zone = options.zone
    document = inventory(analysis, lazy=True)  # attempts made one by one below, not kept
    frame = analysis.timeline
    correlation, evaluation = analysis.correlation, analysis.evaluation
    attempts = list(correlation.attempts) if correlation else []
    findings = list(evaluation.findings) if evaluation else []
    findings.sort(
        key=lambda f: (SEVERITY_RANK[f.severity], not f.root_cause, CONFIDENCE_RANK[f.confidence])
    )
    shown_findings = [f for f in findings if f.severity != "info"][:MAX_FINDINGS]
    shown_findings += [f for f in findings if f.severity == "info"][
        : max(0, MAX_FINDINGS - len(shown_findings))
    ]
    hidden_findings = len(findings) - len(shown_findings)

    order = {s: i for i, s in enumerate(STATUS_ORDER)}
    drawn = sorted(attempts, key=lambda a: order.get(str(a.outcome), 9))[: options.max_swimlanes]
    refs: set[EventRef] = set()
    for finding in shown_findings:
        refs.update(finding.evidence[:MAX_EVIDENCE_SHOWN])
    for attempt in drawn:
        refs.update(s.ref for s in attempt.steps)
        refs.update(r.ref for r in attempt.requests)
    located = positions_of(frame, refs)
    table_rows = choose_rows(frame, located.values(), options.max_events)
    extra = np.array(sorted(set(located.values()) - set(table_rows.tolist())), dtype=np.int64)
    shown = np.concatenate([table_rows, extra]).astype(np.int64)
    # which attempt claims each shown row (a row's claim does not depend on the other rows)
    claimed = dict(zip(shown.tolist(), attempt_ids(frame.iloc[shown], correlation), strict=True))
    shifts = DeviceShifts(attempts)
    events = event_views(frame, table_rows, zone, claimed, shifts)
    event_by_row = {
        e["row"]: e for e in (*events, *event_views(frame, extra, zone, claimed, shifts))
    }

    def evidence_of(ref: EventRef) -> dict[str, Any]:
        position = located.get(ref)
        if position is not None:
            return event_by_row[position]
        return {
            "row": None,
            "time": "",
            "host": ref.host,
            "channel": ref.channel,
            "event_id": ref.event_id,
            "record_id": ref.record_id,
            "source": ref.source_file,
            "message": "(event not in the timeline)",
            "fields": [],
            "more_fields": 0,
            "level": "",
            "provider": "",
            "attempt": None,
        }

    finding_views: list[dict[str, Any]] = []
    for index, finding in enumerate(shown_findings):
        finding_views.append(
            {
                **finding_dict(finding),  # the JSON document's fields, then the view's own
                "anchor": f"finding-{index + 1}",
                "cause": bound(finding.cause, 4000),
                "fix_steps": _fix_steps(finding.fix),
                "evidence": [evidence_of(r) for r in finding.evidence[:MAX_EVIDENCE_SHOWN]],
                "more_evidence": max(0, len(finding.evidence) - MAX_EVIDENCE_SHOWN),
            }
        )
    anchor_of: dict[tuple[str, str | None], str] = {}
    for view in finding_views:
        anchor_of.setdefault((view["rule"], view["attempt"]), view["anchor"])

    lanes = []
    for attempt in drawn:
        extra_refs = {}
        for finding in evaluation.for_attempt(attempt.id) if evaluation else []:
            for ref in finding.evidence[:MAX_EVIDENCE_SHOWN]:
                position = located.get(ref)
                if position is not None:
                    view = event_by_row[position]
                    extra_refs[ref] = (
                        view["ts"],
                        f"{finding.title} ({ref.channel} {ref.event_id})",
                    )
        drawing = swimlane.build(attempt, zone, extra_refs)
        lanes.append(drawing.to_dict())
    lane_of = {lane["attempt"]: lane for lane in lanes}

    zone_of_host = {
        host.lower(): c["time_zone"]
        for c in document["coverage"]
        if c["time_zone"]
        for host in c["hosts"]
    }
    drawn_ids = {a.id for a in drawn}
    attempt_views, other_attempts = [], []
    for attempt in sorted(attempts, key=lambda a: order.get(str(a.outcome), 9)):
        data = attempt_dict(attempt)
        cause = evaluation.root_cause(attempt.id) if evaluation else None
        summary = {
            "id": attempt.id,
            "name": _attempt_name(attempt),
            "outcome": data["outcome"],
            "failed_step": data["failed_step"],
            "connector": data["connector"],
            "started_text": zone.time(attempt.started),
            "root_cause_anchor": anchor_of.get((cause.rule, cause.attempt)) if cause else None,
            "root_cause_title": cause.title if cause else None,
        }
        if attempt.id not in drawn_ids:
            other_attempts.append(summary)
            continue
        attempt_views.append(
            {
                **data,
                **summary,
                "swimlane": lane_of.get(attempt.id),
                "device_zone": next(
                    (
                        zone_of_host[h.lower()]
                        for h in attempt.device.hosts
                        if h.lower() in zone_of_host
                    ),
                    None,
                ),
                "requests": [
                    {**request, "time_text": zone.time(model.ts)}
                    for request, model in zip(data["requests"], attempt.requests, strict=True)
                ],
                "ended_text": zone.time(attempt.ended),
                "total": duration(attempt.ended - attempt.started),
                "step_rows": [
                    {
                        "name": s.name,
                        "status": s.status,
                        "detail": bound(s.detail, 600),
                        "time": zone.time(s.ts_corrected),
                        "raw": zone.time(s.ts) if s.ts != s.ts_corrected else "",
                    }
                    for s in attempt.steps
                ],
            }
        )
    verdicts = []
    for verdict in document["verdicts"]:
        cause = verdict["root_cause"]
        verdicts.append(
            {
                **verdict,
                "anchor": anchor_of.get((cause["rule"], cause["attempt"])) if cause else None,
            }
        )
    verdicts.sort(key=lambda v: order.get(str(v["status"]), 9))

    filters = {
        "hosts": sorted({e["host"] for e in events}, key=str.lower),
        "channels": sorted({e["channel"] for e in events}, key=str.lower),
        "levels": [
            name
            for name in ("critical", "error", "warning", "information", "verbose")
            if any(e["level"] == name for e in events)
        ],
    }
    return {
        "document": {key: document[key] for key in PAGE_KEYS},
        "zone": zone.describe(),
        "generated": zone.time(int(analysis.started * 1_000_000_000), precise=False),
        "verdicts": verdicts[:MAX_VERDICT_ROWS],
        "verdicts_total": len(verdicts),
        "fleet": _fleet_view(document["fleet"], anchor_of, attempt_views),
        "exchange": [lane(e, zone.time) for e in document["exchange"]],
        "attempts": attempt_views,
        "other_attempts": other_attempts[:MAX_OTHER_ATTEMPTS],
        "other_attempts_total": len(other_attempts),
        "findings": finding_views,
        "hidden_findings": hidden_findings,
        "findings_total": len(findings),
        "events": events,
        "events_total": len(frame),
        "filters": filters,
        "coverage": [
            {**c, "first_text": zone.time(_ns(c["first"])), "last_text": zone.time(_ns(c["last"]))}
            for c in _worth_a_look(document["coverage"])[:MAX_COVERAGE_ROWS]
        ],
        "coverage_total": len(document["coverage"]),
        "redacted": options.redactor is not None,
        "back_link": options.back_link,
    }


def _worth_a_look(coverage: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Machines whose logs lack a channel or are damaged first, then the others, each group in
    its own order (a fleet's table must show the gaps before it runs out of rows)."""

    def complete(c: dict[str, Any]) -> bool:
        return not c["no_events_from"] and not any(ch["damaged"] for ch in c["channels"])

    return sorted(coverage, key=complete)


def _fleet_view(
    fleet: dict[str, Any] | None,
    anchor_of: dict[tuple[str, str | None], str],
    drawn: list[dict[str, Any]],
) -> dict[str, Any] | None:
    """The fleet summary with the page's links: each cause to its first finding, each device to
    its drawn attempt, and its hourly histogram as bar heights (an SVG: no style attributes
    under the page's CSP)."""
    if fleet is None:
        return None
    attempt_anchor = {a["id"]: f"attempt-{index}" for index, a in enumerate(drawn, 1)}
    finding_of_rule: dict[str, str] = {}
    for (rule, _), anchor in anchor_of.items():
        finding_of_rule.setdefault(rule, anchor)

    def devices(listed: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**d, "anchor": attempt_anchor.get(d["attempt"])} for d in listed[:MAX_FLEET_NAMES]]

    causes = []
    for cause in fleet["causes"]:
        hours = cause["per_hour"]
        peak = max((h["attempts"] for h in hours), default=0) or 1
        causes.append(
            {
                **cause,
                "anchor": finding_of_rule.get(cause["rule"]),
                "device_list": devices(cause["device_list"]),
                "bars": [
                    {"x": i * 4, "h": max(1, round(16 * h["attempts"] / peak)), "tip": h}
                    for i, h in enumerate(hours[-60:])
                ],
            }
        )
    not_judged = [{**g, "device_list": devices(g["device_list"])} for g in fleet["not_judged"]]
    return {**fleet, "causes": causes, "not_judged": not_judged}


def _ns(iso: str) -> int:
    return pd.Timestamp(iso).value


def _attempt_name(attempt: Attempt) -> str:
    return f"{device_name(attempt)}, attempt {attempt.number}"


def _fix_steps(fix: str) -> list[str]:
    """`1. Do this\n2. Then that` → the steps without their numbers."""
    steps = []
    for line in fix.splitlines():
        line = line.strip()
        if not line:
            continue
        head, dot, rest = line.partition(". ")
        if dot and head.isdigit():
            steps.append(bound(rest, 1000))
        elif steps:
            steps[-1] += " " + bound(line, 1000)
        else:
            steps.append(bound(line, 1000))
    return steps


# --- rendering ---------------------------------------------------------------------------


def _asset(name: str) -> str:
    return resources.files("evtxdoc.report").joinpath("templates", name).read_text("utf-8")


def _bounded(value: Any) -> Any:
    """Every printed value is bounded, whatever the template forgot (our own assets aside)."""
    if isinstance(value, str) and not isinstance(value, markupsafe.Markup):
        return bound(value, MAX_PRINTED)
    return value


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    """The one template environment (templates compile once per process)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("evtxdoc.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_bounded,
    )
    env.filters["bound"] = bound
    env.filters["clip"] = clip
    env.globals.update(
        {
            name: getattr(fragments, name)
            for name in (
                "event_rows",
                "event_detail",
                "verdict_rows",
                "finding_blocks",
                "step_rows",
                "other_attempt_rows",
                "coverage_rows",
                "zone_words",
            )
        }
    )
    return env


def _sha256(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


def _in_document_order(analysis: Analysis, redactor: Redactor) -> None:
    """Let the redactor meet every identifier in the JSON document's order first (one item at
    a time), so that the page numbers pseudonyms (GUID 1, 2, …) exactly as the redacted JSON
    does, although the page keeps only a part of the document."""
    for value in inventory(analysis, lazy=True).values():
        if isinstance(value, list | Iterator):  # the long lists, item by item
            for item in value:
                redactor.data(item)
        else:
            redactor.data(value)


def render(analysis: Analysis, options: ReportOptions = ReportOptions()) -> str:
    """The report as one HTML document."""
    view = build_view(analysis, options)
    if options.redactor is not None:
        _in_document_order(analysis, options.redactor)
        back, view = view["back_link"], options.redactor.data(view)
        view["back_link"] = back  # our own path, not evidence
    style, script = _asset("report.css"), _asset("report.js")
    policy = (
        "default-src 'none'; img-src data:; "
        f"style-src 'sha256-{_sha256(style)}'; script-src 'sha256-{_sha256(script)}'; "
        "base-uri 'none'; form-action 'none'"
    )
    template = _environment().get_template("report.html.j2")
    return template.render(
        view=view, doc=view["document"], style=style, script=script, policy=policy
    )
