"""The report's most repeated pieces (event rows, field tables) rendered in Python.

The event table can hold thousands of rows; Jinja's per-attribute lookups made them most of the
report's cost. These functions build the same markup with `markupsafe.escape` on every value
(and bound every value), and return Markup for the template to insert as is. The hostile-input
and browser tests cover them like the template.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from markupsafe import Markup, escape

from evtxdoc.catalog import parse_code, win32_of
from evtxdoc.report.inline import render_inline

MAX_VALUE = 4000  # the template's bound on any printed value


def _text(value: Any, limit: int = MAX_VALUE) -> str:
    """The value as escaped, bounded text (callers join parts and wrap them in Markup)."""
    text = "" if value is None else str(value)
    if len(text) > limit:
        text = f"{text[:limit]}… ({len(text) - limit:,} more characters)"
    return _escaped_short(text) if len(text) <= SHORT else str(escape(text))


_CODE_FIELD = re.compile(r"code|error|status|hresult|result", re.IGNORECASE)
_CODE_IN_TEXT = re.compile(
    r"(?<![0-9A-Za-z])(0x[0-9A-Fa-f]{1,16}|[0-9A-Fa-f]{8}|-[0-9]{9,10})(?![0-9A-Za-z])"
)
_NUMBER = re.compile(
    r"(?<![0-9A-Za-z])(0x[0-9A-Fa-f]{1,16}|-?[0-9]{1,10}|[0-9A-Fa-f]{8})(?![0-9A-Za-z])"
)


def codes(event: dict[str, Any]) -> str:
    """The error codes an event carries, each as 8 hex digits with its Win32/HRESULT partner
    (0x80070005 and 5), so that the search finds a code however the query writes it: from
    code-like fields (`ErrorCode`, `DiagnosticCode`, `HRESULT`, `Status`) any number, from the
    message only hex and negative HRESULT forms (line numbers and counts are not codes)."""
    found: set[int] = set()
    texts = [(event["message"] or "", _CODE_IN_TEXT)]
    texts += [
        (item["value"], _NUMBER) for item in event["fields"] if _CODE_FIELD.search(item["name"])
    ]
    for text, pattern in texts:
        for token in pattern.findall(str(text)[:2000]):
            value = parse_code(token)
            if value is None:
                continue
            found.add(value)
            win32 = win32_of(value)
            if win32 is not None:
                found.update((win32, 0x80070000 | win32))
    return " ".join(f"{value:08x}" for value in sorted(found))


SHORT = 80  # hosts, channels, levels, times, names: the values a report repeats


def _marked(value: Any, limit: int = MAX_VALUE) -> str:
    """Escaped, bounded text with the authors' inline markup (report/inline.py) turned into
    <code>, <strong> and <em>."""
    return render_inline(
        _text(value, limit),
        lambda text: f"<code>{text}</code>",
        lambda text: f"<strong>{text}</strong>",
        lambda text: f"<em>{text}</em>",
    )


@lru_cache(maxsize=16384)
def _escaped_short(text: str) -> str:
    """Reports repeat the same short values thousands of times: escape each once."""
    return str(escape(text))


def field_table(event: dict[str, Any]) -> Markup:
    """An event's provider, record and fields as a two-column table."""
    parts = [
        '<table class="fields"><tbody><tr><th>Provider</th><td>',
        _text(event["provider"]),
        "</td></tr><tr><th>Record</th><td>",
        _text(event["record_id"]),
        " in ",
        _text(event["source"]),
        "</td></tr>",
    ]
    for item in event["fields"]:
        parts += ["<tr><th>", _text(item["name"]), "</th><td>", _text(item["value"]), "</td></tr>"]
    if event["more_fields"]:
        parts += ["<tr><th>…</th><td>", _text(event["more_fields"]), " more field(s)</td></tr>"]
    parts.append("</tbody></table>")
    return Markup("".join(parts))


def event_detail(event: dict[str, Any]) -> Markup:
    """One evidence event: a summary line that expands to its fields."""
    return Markup(
        "".join(
            [
                '<details class="event"><summary><span class="time"',
                _shifted(event),
                ">",
                _text(event["time"]),
                "</span> ",
                _text(event["host"]),
                " · ",
                _text(event["channel"]),
                " ",
                _text(event["event_id"]),
                " · ",
                _text(event["message"], 300),
                "</summary>",
                field_table(event),
                "</details>",
            ]
        )
    )


def _shifted(event: dict[str, Any]) -> str:
    """A time moved onto the reference clock says so, with the time as logged."""
    raw = event.get("raw_time")
    return (
        f' title="device clock: {_text(raw)} (shifted, see the attempt\'s clock note)"'
        if (raw)
        else ""
    )


def event_rows(events: list[dict[str, Any]]) -> Markup:
    """The rows of the event table; the data-* attributes drive the filter script."""
    parts = []
    for event in events:
        level = _text(event["level"])
        parts += [
            '<tr data-host="',
            _text(event["host"]),
            '" data-channel="',
            _text(event["channel"]),
            '" data-id="',
            _text(event["event_id"]),
            '" data-level="',
            level,
            '" data-time="',
            _text(event["time"]),
            '" data-codes="',
            codes(event),
            '" class="lvl-',
            level,
            '"><td class="time"',
            _shifted(event),
            ">",
            _text(event["time"]),
            "</td><td>",
            _text(event["host"]),
            '</td><td class="channel">',
            _text(event["channel"]),
            '</td><td class="num">',
            _text(event["event_id"]),
            "</td><td>",
            level,
            "</td><td>",
            _message(event),
        ]
        if event["fields"]:
            parts += ["<details><summary>", _text(len(event["fields"])), " field(s)"]
            if event["attempt"]:
                parts += [" · ", _text(event["attempt"])]
            parts += ["</summary>", field_table(event), "</details>"]
        parts.append("</td></tr>\n")
    return Markup("".join(parts))


def _message(event: dict[str, Any]) -> str:
    """What the event says: the catalog's message, else its fields as Event Viewer lists them
    when it has no message text for an event (marked as such), else the provider."""
    if event["message"]:
        return _text(event["message"])
    if event["fields"]:
        listed = "; ".join(
            f"{item['name']}: {item['value']}" for item in event["fields"][:6] if item["value"]
        )
        if listed:
            return f'<span class="fallback">{_text(listed, 300)}</span>'
    return _text(event["provider"])


def zone_words(zone: dict[str, Any]) -> str:
    """`Pacific Standard Time (bias 480 min = UTC−08:00)`."""
    return f"{zone['name']} (bias {zone['bias_minutes']} min = {zone['utc_offset']})"


def _plain(step: str) -> str:
    """A fix step as plain text for the clipboard (markup dropped), escaped for an attribute."""
    text = render_inline(step, str, str, str)
    return str(escape(text)).replace("\n", "&#10;")


def _reference(reference: str) -> str:
    """A source: a link when it is a web address (opened without referrer), else text."""
    if reference.startswith(("https://", "http://")):
        shown = reference.split("://", 1)[1].removeprefix("www.")
        return (
            f'<a class="ref" href="{_text(reference)}" rel="noreferrer noopener" '
            f'target="_blank">{_text(shown if len(shown) <= 90 else shown[:89] + "…")}</a>'
        )
    return f'<span class="ref">{_text(reference)}</span>'


def _status_badge(outcome: str, failed_step: str | None) -> str:
    words = _text(outcome.replace("_", " "))
    at = f" at {_text(failed_step)}" if failed_step else ""
    return f'<span class="badge status-{_text(outcome)}">{words}{at}</span>'


def _cause_link(anchor: str | None, title: Any, css: str = "") -> str:
    if anchor:
        return f'<a{css} href="#{_text(anchor)}">{_text(title)}</a>'
    return str(_text(title or ""))


def verdict_rows(verdicts: list[dict[str, Any]]) -> Markup:
    """One row per device: verdict, reason, root cause (linked to its finding), counts."""
    parts = []
    for v in verdicts:
        status = _text(v["status"])
        cause = v["root_cause"]
        if cause:
            cell = (
                _cause_link(v["anchor"], cause["title"], ' class="cause-link"')
                + f'\n      <span class="confidence">{_text(cause["confidence"])}</span>'
            )
        elif v["status"] in ("succeeded", "not_hybrid"):
            cell = "—"
        else:
            cell = (
                '<span class="muted">no rule explains it: see the attempt and the coverage</span>'
            )
        counts = "".join(
            f'<span class="count sev-{_text(sev)}">{_text(n)} {_text(sev)}</span> '
            for sev, n in sorted(v["findings"].items())
        )
        parts.append(
            f'<tr class="verdict status-{status}">\n    <td class="device">{_text(v["name"])}'
            f'</td>\n    <td><span class="badge status-{status}">{_text(v["verdict"])}</span>'
            f'<div class="reason">{_text(v["reason"], 400)}</div></td>\n    <td>{cell}</td>\n'
            f"    <td>{_text(v['connector'] or '—')}</td>\n    <td>{len(v['attempts'])}</td>\n"
            f"    <td>{counts}</td>\n  </tr>\n"
        )
    return Markup("".join(parts))


def finding_blocks(findings: list[dict[str, Any]]) -> Markup:
    """Each finding: severity, title, cause, numbered fix, rule, sources, evidence events."""
    parts = []
    for f in findings:
        severity = _text(f["severity"])
        is_open = " open" if f["root_cause"] or f["severity"] in ("critical", "error") else ""
        parts += [
            f'<details class="finding sev-{severity}" id="{_text(f["anchor"])}"{is_open}>\n'
            f'  <summary><span class="badge sev-{severity}">{severity}</span>\n    ',
            '<span class="badge root">root cause</span>' if f["root_cause"] else "",
            f'\n    <span class="title">{_text(f["title"])}</span>\n'
            f'    <span class="where">{_text(f["attempt"] or f["host"] or "bundle")}</span>\n'
            f'    <span class="confidence conf-{_text(f["confidence"])}" title="confidence">'
            f'{_text(f["confidence"])}</span></summary>\n  <div class="body">\n'
            f'    <p class="cause">{_marked(f["cause"])}</p>\n',
        ]
        if f.get("unconfirmed"):
            lacks = "; ".join(_text(item, 400) for item in f["unconfirmed"])
            parts.append(
                f'    <p class="unconfirmed">Not confirmed: the bundle lacks {lacks}.</p>\n'
            )
        if f["fix_steps"]:
            steps = "".join(f"<li>{_marked(step)}</li>" for step in f["fix_steps"])
            plain = "\n".join(f"{n}. {_plain(step)}" for n, step in enumerate(f["fix_steps"], 1))
            parts.append(
                f'    <h4>What to do <button type="button" class="copy" data-copy="{plain}" '
                f'title="Copy the steps as text">Copy</button></h4><ol class="fix">{steps}</ol>\n'
            )
        count = f", {_text(f['count'])} matching event(s)" if f["count"] else ""
        replaces = f"; replaces {_text(', '.join(f['superseded']))}" if f["superseded"] else ""
        parts.append(
            f'    <p class="rule">Rule <code>{_text(f["rule"])}</code> '
            f"({_text(f['scope'])} scope{count}){replaces}.</p>\n"
        )
        if f["references"]:
            refs = " · ".join(_reference(r) for r in f["references"])
            parts.append(f'    <p class="refs">Sources: {refs}</p>\n')
        if f["evidence"]:
            more = f" (and {_text(f['more_evidence'])} more)" if f["more_evidence"] else ""
            parts += [
                f'    <details class="evidence"><summary>Evidence: {len(f["evidence"])} '
                f"event(s){more}</summary>\n      ",
                *(event_detail(e) for e in f["evidence"]),
                "\n    </details>\n",
            ]
        parts.append("  </div>\n</details>\n")
    return Markup("".join(parts))


def step_rows(attempt: dict[str, Any]) -> Markup:
    """An attempt's steps (device clock noted when corrected) and connector requests."""
    parts = []
    for s in attempt["step_rows"]:
        raw = f'<div class="muted">device clock {_text(s["raw"])}</div>' if s["raw"] else ""
        parts.append(
            f'<tr class="step-{_text(s["status"])}"><td class="time">{_text(s["time"])}'
            f"{raw}</td><td>{_text(s['name'])}</td><td>{_text(s['status'])}</td>"
            f"<td>{_text(s['detail'])}</td></tr>"
        )
    for r in attempt["requests"]:
        detail = [f"{_text(r['connector'])}: {_text(r['device_name'] or '?')}"]
        if r["diagnostic_code"]:
            detail.append(f", DiagnosticCode {_text(r['diagnostic_code'])}")
        if r["error_code"]:
            detail.append(f", ErrorCode {_text(r['error_code'])}")
        if r["diagnostic_text"]:
            detail.append(f": {_text(r['diagnostic_text'], 600)}")
        ok = "ok" if r["succeeded"] else "failed"
        parts.append(
            f'<tr class="step-{ok}"><td class="time">{_text(r["time_text"])}</td>'
            f"<td>connector {_text(r['kind'])}</td>"
            f"<td>{'blob created' if r['succeeded'] else 'failed'}</td>"
            f"<td>{''.join(detail)}</td></tr>"
        )
    return Markup("\n".join(parts))


def other_attempt_rows(attempts: list[dict[str, Any]]) -> Markup:
    """Attempts listed without a swimlane."""
    return Markup(
        "".join(
            f"<tr><td>{_text(a['name'])}</td><td>{_status_badge(a['outcome'], a['failed_step'])}"
            f'</td><td class="time">{_text(a["started_text"])}</td>'
            f"<td>{_text(a['connector'] or '—')}</td>"
            f"<td>{_cause_link(a['root_cause_anchor'], a['root_cause_title'])}</td></tr>"
            for a in attempts
        )
    )


def _damage(channel: dict[str, Any]) -> str:
    """`damaged (torn_record) after …`: where the channel's records may be lost."""
    spans = []
    for d in channel.get("damaged") or ():
        where = (
            " and ".join(
                part
                for part in (
                    f"after {d['after']}" if d["after"] else "",
                    f"before {d['before']}" if d["before"] else "",
                )
                if part
            )
            or "throughout"
        )
        spans.append(f'<div class="missing">damaged ({_text(d["kind"])}) {_text(where)}</div>')
    return "".join(spans)


def coverage_rows(coverage: list[dict[str, Any]]) -> Markup:
    """One row per machine: role, events, span, channels, channels its role lacks."""
    parts = []
    for c in coverage:
        channels = "".join(
            f'<li>{_text(ch["channel"])} <span class="muted">({_text(ch["host"])}'
            f": {_text(ch['records'])})</span>{_damage(ch)}</li>"
            for ch in c["channels"]
        )
        missing = (
            "".join(f'<div class="missing">{_text(m["why"])}</div>' for m in c["no_events_from"])
            or '<span class="muted">—</span>'
        )
        zone = c.get("time_zone")
        zone_note = (
            f'<div class="muted" title="from System 6013, last written {_text(zone["seen"])}">'
            f"time zone: {_text(zone_words(zone))}</div>"
            if zone
            else ""
        )
        parts.append(
            f"<tr><td>{_text(', '.join(c['hosts']))}{zone_note}</td>"
            f"<td>{_text(c['role_words'])}</td>"
            f'<td class="num">{_text(c["records"])}</td>\n'
            f'    <td class="time">{_text(c["first_text"])}</td><td class="time">'
            f"{_text(c['last_text'])}</td>\n    <td><details><summary>{len(c['channels'])} "
            f'channel(s)</summary><ul class="channels">{channels}</ul></details></td>\n'
            f"    <td>{missing}</td></tr>\n"
        )
    return Markup("".join(parts))
