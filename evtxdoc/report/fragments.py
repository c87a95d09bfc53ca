"""The report's most repeated pieces (event rows, field tables) rendered in Python.

The event table can hold thousands of rows; Jinja's per-attribute lookups made them most of the
report's cost. These functions build the same markup with `markupsafe.escape` on every value
(and bound every value), and return Markup for the template to insert as is. The hostile-input
and browser tests cover them like the template.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup, escape

MAX_VALUE = 4000  # the template's bound on any printed value


def _text(value: Any, limit: int = MAX_VALUE) -> Markup:
    text = "" if value is None else str(value)
    if len(text) > limit:
        text = f"{text[:limit]}… ({len(text) - limit:,} more characters)"
    return escape(text)


def field_table(event: dict[str, Any]) -> Markup:
    """An event's provider, record and fields as a two-column table."""
    parts = ['<table class="fields"><tbody><tr><th>Provider</th><td>',
             _text(event["provider"]), "</td></tr><tr><th>Record</th><td>",
             _text(event["record_id"]), " in ", _text(event["source"]), "</td></tr>"]
    for item in event["fields"]:
        parts += ["<tr><th>", _text(item["name"]), "</th><td>", _text(item["value"]),
                  "</td></tr>"]
    if event["more_fields"]:
        parts += ["<tr><th>…</th><td>", _text(event["more_fields"]), " more field(s)</td></tr>"]
    parts.append("</tbody></table>")
    return Markup("".join(parts))


def event_detail(event: dict[str, Any]) -> Markup:
    """One evidence event: a summary line that expands to its fields."""
    return Markup("".join([
        '<details class="event"><summary><span class="time">', _text(event["time"]),
        "</span> ", _text(event["host"]), " · ", _text(event["channel"]), " ",
        _text(event["event_id"]), " · ", _text(event["message"], 300), "</summary>",
        field_table(event), "</details>"]))


def event_rows(events: list[dict[str, Any]]) -> Markup:
    """The rows of the event table; the data-* attributes drive the filter script."""
    parts = []
    for event in events:
        level = _text(event["level"])
        parts += [
            '<tr data-host="', _text(event["host"]), '" data-channel="',
            _text(event["channel"]), '" data-id="', _text(event["event_id"]),
            '" data-level="', level, '" class="lvl-', level, '"><td class="time">',
            _text(event["time"]), "</td><td>", _text(event["host"]),
            '</td><td class="channel">', _text(event["channel"]), '</td><td class="num">',
            _text(event["event_id"]), "</td><td>", level, "</td><td>",
            _text(event["message"] or event["provider"])]
        if event["fields"]:
            parts += ["<details><summary>", _text(len(event["fields"])), " field(s)"]
            if event["attempt"]:
                parts += [" · ", _text(event["attempt"])]
            parts += ["</summary>", field_table(event), "</details>"]
        parts.append("</td></tr>\n")
    return Markup("".join(parts))
