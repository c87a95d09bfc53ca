"""Cause and fix texts with values from the evidence: `{computer_name}`, `{denied.DiagnosticText}`.

A placeholder is a context name, or `<event name>.<what>` where the event name is one of the
rule's `match.events` and `<what>` is a field of the first matching event or one of `host`,
`time`, `channel`, `event_id`, `count`, `message`. A filter may follow: `{x|code}` decodes an
error code through the catalog, `{x|duration}` writes seconds as "5 h 3 min". `{{` and `}}` are
literal braces. Values are evidence text: bounded here, escaped by the renderers.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from typing import Any

from evtxdoc import catalog

PLACEHOLDER = re.compile(
    r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)((?:\.[A-Za-z0-9_]+)*)"
    r"(?:\|([a-z]+))?\}"
)
FILTERS = ("code", "duration")
EVENT_ATTRIBUTES = ("host", "time", "channel", "event_id", "count", "message")
CONTEXT: dict[str, tuple[str, ...]] = {
    "attempt": (
        "attempt",
        "device",
        "host",
        "computer_name",
        "domain",
        "connector",
        "connector_kind",
        "outcome",
        "failed_step",
        "offset",
        "offset_s",
        "ou",
        "reason",
        "connector_evidence",
        "missing",
    ),
    "host": ("host", "connector_kind"),
    "event": ("host",),
    "bundle": ("hosts", "missing_channels"),
}
MAX_VALUE = 300  # characters of one evidence value in a text
UNKNOWN = "(unknown)"


def placeholders(text: str) -> Iterator[tuple[str, str, str | None]]:
    """(name, dotted rest, filter) of every placeholder."""
    for match in PLACEHOLDER.finditer(text):
        if match.group(1):
            yield match.group(1), match.group(2).lstrip("."), match.group(3)


def problems(text: str, scope: str, event_names: set[str]) -> list[str]:
    """What is wrong with the placeholders of `text` for a rule of `scope`."""
    found = []
    for name, rest, filter_name in placeholders(text):
        if filter_name and filter_name not in FILTERS:
            found.append(f"unknown filter |{filter_name} (filters: {', '.join(FILTERS)})")
        if name in event_names:
            if not rest:
                found.append(f"{{{name}}} needs a field, e.g. {{{name}.host}}")
        elif name not in CONTEXT[scope]:
            candidates = [*CONTEXT[scope], *sorted(event_names)]
            close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
            known = ", ".join(candidates)
            found.append(
                f"unknown placeholder {{{name}}}"
                + (f" — did you mean {{{close[0]}}}?" if close else "")
                + f" (known here: {known})"
            )
    return found


def render(text: str, context: Mapping[str, Any]) -> str:
    """Fill the placeholders; missing values read "(unknown)"."""

    def replace(match: re.Match[str]) -> str:
        whole = match.group(0)
        if whole in ("{{", "}}"):
            return whole[0]
        value: Any = context.get(match.group(1))
        for part in match.group(2).lstrip(".").split(".") if match.group(2) else ():
            value = value.get(part) if isinstance(value, Mapping) else None
        return _filtered(value, match.group(3))

    return PLACEHOLDER.sub(replace, text)


def _filtered(value: Any, filter_name: str | None) -> str:
    if value is None or value == "":
        return UNKNOWN
    if filter_name == "code":
        return describe_code(value)
    if filter_name == "duration":
        try:
            return duration(float(value))
        except (TypeError, ValueError):
            return UNKNOWN
    text = " ".join(str(value).split())
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"


def describe_code(value: Any) -> str:
    """`8557` → `8557 (0x0000216D ERROR_DS_MACHINE_ACCOUNT_QUOTA_EXCEEDED: …)`."""
    parsed = catalog.parse_code(value if isinstance(value, int) else str(value))
    if parsed is None:
        return _filtered(value, None)
    entries = catalog.load().lookup(value if isinstance(value, int) else str(value))
    shown = str(value)
    if entries:
        entry = entries[0]
        return f"{shown} ({entry.name or entry.code}: {entry.meaning.rstrip('.')})"
    return f"{shown} ({catalog.describe_unknown(parsed)})"


def duration(value: float) -> str:
    """Seconds in words a support engineer reads at a glance."""
    sign = "-" if value < 0 else ""
    value = abs(value)
    if value < 120:
        return f"{sign}{value:.0f} s"
    if value < 7200:
        return f"{sign}{value / 60:.0f} min"
    hours, minutes = divmod(round(value / 60), 60)
    return f"{sign}{hours} h {minutes} min" if minutes else f"{sign}{hours} h"
