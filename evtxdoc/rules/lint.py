"""The checks a rule gets even when its schema check failed, so that one `rules lint` run
reports every problem of the file: type errors do not hide the rest."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Protocol

from evtxdoc import catalog
from evtxdoc.rules import schema, templates

TODO = "TODO:"  # what `evtxdoc rules new` leaves for the author to replace


class Problems(Protocol):
    """Where problems are collected (the loader's checker)."""

    def add(self, key_path: tuple[Any, ...], message: str, hint: str | None = None) -> None: ...


def beside_the_schema(data: dict[str, Any], path: Path, check: Problems) -> None:
    """The checks that do not need a well-typed rule, on the parts that are well typed:
    the id against the file name, the sources against the catalog, the placeholders."""
    if isinstance(data.get("id"), str) and data["id"] != path.name.removesuffix(".yaml"):
        check.add(
            ("id",),
            f"id {data['id']!r} differs from the file name {path.name!r}",
            f"rename the file to {data['id']}.yaml or change the id",
        )
    check_sources(data.get("sources"), check)
    scope = data.get("scope")
    match = data.get("match")
    events = match.get("events") if isinstance(match, dict) else None
    names = {str(n) for n in events} if isinstance(events, dict) else set()
    if scope in templates.CONTEXT:
        for key in ("cause", "fix"):
            if isinstance(data.get(key), str):
                for message in templates.problems(data[key], scope, names):
                    check.add((key,), message)
    authoring(data, check)


def authoring(data: dict[str, Any], check: Problems) -> None:
    """What a well-typed rule can still get wrong: the template's TODO texts left in, and
    `{event.Field}` placeholders naming a field the catalog does not list for that event."""
    for key in ("title", "cause", "fix", "description"):
        if isinstance(data.get(key), str) and TODO in data[key]:
            check.add(
                (key,),
                f"still holds the template's {TODO!r} text",
                "say it for this rule: `rules new` writes a working example to change",
            )
    match = data.get("match")
    events = match.get("events") if isinstance(match, dict) else None
    if not isinstance(events, dict):
        return
    for key in ("cause", "fix"):
        if isinstance(data.get(key), str):
            for message, hint in field_problems(data[key], events):
                check.add((key,), message, hint)


def field_problems(text: str, events: dict[str, Any]) -> list[tuple[str, str | None]]:
    """`{slow.ElapsedMs}` where the catalog lists the fields of the `slow` event and
    ElapsedMs is not one of them: the text would read "(unknown)" on every real log."""
    found: list[tuple[str, str | None]] = []
    for name, rest, _ in templates.placeholders(text):
        selector = events.get(name)
        field = rest.split(".")[0] if rest else ""
        if not isinstance(selector, dict) or not field or field in templates.EVENT_ATTRIBUTES:
            continue
        known = catalog_fields(selector.get("channel"), selector.get("event_id"))
        if known is None or field in known:
            continue
        close = difflib.get_close_matches(field, sorted(known), n=1, cutoff=0.5)
        where = f"{selector.get('channel')} {selector.get('event_id')}"
        found.append(
            (
                f"{{{name}.{field}}}: the catalog lists no field {field!r} for {where} "
                f"(its fields: {', '.join(sorted(known))})",
                f"did you mean {{{name}.{close[0]}}}?"
                if close
                else f"the event attributes are {', '.join(templates.EVENT_ATTRIBUTES)}; "
                "if real logs carry the field, add it to rules/catalog/events.yaml",
            )
        )
    return found


def catalog_fields(channel: Any, event_id: Any) -> set[str] | None:
    """The fields the catalog lists for a selector's channel and id(s); None when it lists
    none (an event it does not know, or one whose fields it does not give)."""
    if not isinstance(channel, str):
        return None
    ids = event_id if isinstance(event_id, list) else [event_id]
    known = catalog.load()
    fields: set[str] = set()
    for value in ids:
        try:
            number = int(value)
        except (TypeError, ValueError):
            return None
        entries = [e for e in known.events if e.id == number]
        entries = [e for e in entries if e.channel.lower() == channel.lower()]
        if not entries or not any(e.fields for e in entries):
            return None
        for entry in entries:
            fields.update(entry.fields)
    return fields or None


def check_sources(sources: Any, check: Problems) -> None:
    """Each S-number of `sources` against the catalog, with its neighbour or what to do."""
    if not isinstance(sources, list):
        return
    known = catalog.load().sources
    for index, source in enumerate(sources):
        if isinstance(source, str) and source not in known:
            check.add(
                ("sources", index),
                f"unknown source {source!r}",
                schema.did_you_mean(source, known)
                or "S-numbers are those of evtxdoc's rules/catalog/sources.yaml; cite a "
                "source of your own under `references:` as its https:// URL",
            )
