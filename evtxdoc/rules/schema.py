"""The rule format as a JSON Schema (shipped for editors) and the checker that uses it.

`SCHEMA` is the single description of which keys exist and what they hold. `check()` walks a
loaded rule against it and reports every problem with its key path (the loader turns paths
into file:line), with a did-you-mean for unknown keys. `rules/rule.schema.json` is written
from `SCHEMA` (`evtxdoc rules schema`); a test keeps the two equal.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from typing import Any

from evtxdoc.vocab import CONFIDENCES, FINDING_SEVERITIES, STEPS

SEVERITIES = FINDING_SEVERITIES
SCOPES = ("event", "host", "attempt", "bundle")
STEP_NAMES = STEPS
ATTEMPT_ATTRIBUTES = (
    "outcome",
    "failed_step",
    "connector_evidence",
    "match_basis",
    "join_method",
    "skip_dc_check",
    "computer_name",
    "domain",
    "connector",
    "connector_kind",
    "requests",
    "failed_requests",
    "diagnostic_code",
    "offset_s",
    "device",
    "missing_logs",
)
DURATION_PATTERN = r"^[0-9]+(\.[0-9]+)?\s*(ms|s|m|h|d)?$"

_STRINGS = {
    "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}]
}
_DURATION = {
    "anyOf": [{"type": "number", "minimum": 0}, {"type": "string", "pattern": DURATION_PATTERN}],
    "description": "seconds, or a number with a unit: 500ms, 90s, 30m, 2h, 1d",
}
_SCALAR = {"type": ["string", "integer", "number", "boolean", "null"]}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://evtxdoc.invalid/rule.schema.json",
    "title": "evtxdoc rule",
    "description": "One knowledge-base rule (docs/rule-authoring.md). File stem = id.",
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "title", "severity", "confidence", "scope", "match", "cause", "fix"],
    "properties": {
        "id": {
            "type": "string",
            "pattern": "^[a-z0-9][a-z0-9-]*[a-z0-9]$",
            "description": "Unique, lower-case words with dashes; equals the file stem.",
        },
        "title": {
            "type": "string",
            "minLength": 8,
            "description": "One line a support engineer reads first.",
        },
        "description": {"type": "string", "description": "Longer background (optional)."},
        "severity": {"enum": list(SEVERITIES)},
        "confidence": {
            "enum": list(CONFIDENCES),
            "description": "documented (Microsoft says so), community (field "
            "reports), inferred (our reasoning; domain.md 'not "
            "confirmed').",
        },
        "scope": {
            "enum": list(SCOPES),
            "description": "event: each matching event; host: one host's events; "
            "attempt: one join attempt (its device and connector "
            "events, steps and clock offset); bundle: the whole "
            "analysis and its coverage.",
        },
        "applies_to": {"$ref": "#/$defs/applies_to"},
        "match": {"$ref": "#/$defs/match"},
        "cause": {
            "type": "string",
            "minLength": 10,
            "description": "Why, in words; {placeholders} take evidence values.",
        },
        "fix": {
            "type": "string",
            "minLength": 10,
            "description": "Numbered Markdown steps; {placeholders} allowed.",
        },
        "references": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "string", "pattern": "^https://"},
            "description": "URLs beyond `sources` (their URLs are added).",
        },
        "sources": {
            "type": "array",
            "items": {"type": "string", "pattern": "^S[0-9]+[a-z]?$"},
            "description": "S-numbers of rules/catalog/sources.yaml; a rule needs "
            "sources or references.",
        },
        "evidence": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Names of `match.events` to show as evidence (default: all).",
        },
        "supersedes": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Rule ids this more specific rule replaces on the same attempt or host.",
        },
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "$defs": {
        "applies_to": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "join": {"enum": ["hybrid", "entra", "any"]},
                "connector": {"enum": ["legacy", "updated", "any", "none"]},
                "connector_version": {
                    "type": "string",
                    "pattern": r"^\s*(<=|>=|<|>|==)\s*[0-9]+(\.[0-9]+)*\s*"
                    r"(,\s*(<=|>=|<|>|==)\s*[0-9]+(\.[0-9]+)*\s*)*$",
                    "description": "e.g. '<6.2501.2000.5' or '>=6.2501.2000.5, <6.2504.2001.8'",
                },
                "systems": {
                    "type": "array",
                    "items": {"enum": ["device", "odj-connector", "exchange-connector"]},
                },
            },
        },
        "matcher": {
            "description": "A value (equals), a list (in), or one or more operators.",
            "anyOf": [
                _SCALAR,
                {"type": "array", "items": _SCALAR, "minItems": 1},
                {
                    "type": "object",
                    "additionalProperties": False,
                    "minProperties": 1,
                    "properties": {
                        "equals": _SCALAR,
                        "in": {"type": "array", "items": _SCALAR, "minItems": 1},
                        "regex": {"type": "string"},
                        "contains": {"type": "string"},
                        "gt": {"type": "number"},
                        "ge": {"type": "number"},
                        "lt": {"type": "number"},
                        "le": {"type": "number"},
                        "exists": {"type": "boolean"},
                        "code": {
                            "anyOf": [
                                {"type": ["string", "integer"]},
                                {
                                    "type": "array",
                                    "items": {"type": ["string", "integer"]},
                                    "minItems": 1,
                                },
                            ],
                            "description": "error-code equality in any written form",
                        },
                        "not": {"$ref": "#/$defs/matcher"},
                    },
                },
            ],
        },
        "selector": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "channel": _STRINGS,
                "provider": _STRINGS,
                "event_id": {
                    "anyOf": [
                        {"type": "integer"},
                        {"type": "string", "pattern": "^[0-9]+$"},
                        {
                            "type": "array",
                            "items": {
                                "anyOf": [
                                    {"type": "integer"},
                                    {"type": "string", "pattern": "^[0-9]+$"},
                                ]
                            },
                            "minItems": 1,
                        },
                    ],
                    "description": 'an event id, or a list: 30130 and "30130" are the same',
                },
                "level": {"$ref": "#/$defs/matcher"},
                "side": {
                    "enum": ["device", "connector", "request", "any"],
                    "description": "attempt scope: the device's events, the connector "
                    "servers' events, only the connector events matched "
                    "to this attempt, or device and connector",
                },
                "window": {"enum": ["attempt", "bundle"]},
                "message": {"$ref": "#/$defs/matcher"},
                "fields": {"type": "object", "additionalProperties": {"$ref": "#/$defs/matcher"}},
                "any_field": {
                    "$ref": "#/$defs/matcher",
                    "description": "holds when any field's value matches (e.g. an "
                    "error code wherever the event carries it)",
                },
                "count": {"$ref": "#/$defs/matcher"},
            },
        },
        "selectors": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": {"$ref": "#/$defs/selector"},
        },
        "step": {
            "anyOf": [
                {"enum": ["missing", "present"]},
                {
                    "type": "object",
                    "additionalProperties": False,
                    "minProperties": 1,
                    "properties": {
                        "status": {"$ref": "#/$defs/matcher"},
                        "detail": {"$ref": "#/$defs/matcher"},
                    },
                },
            ]
        },
        "match": {
            "type": "object",
            "additionalProperties": False,
            "minProperties": 1,
            "properties": {
                "attempt": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        name: {"$ref": "#/$defs/matcher"} for name in ATTEMPT_ATTRIBUTES
                    },
                },
                "events": {"$ref": "#/$defs/selectors"},
                "absent": {"$ref": "#/$defs/selectors"},
                "steps": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {name: {"$ref": "#/$defs/step"} for name in STEP_NAMES},
                },
                "sequence": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["first", "then"],
                        "properties": {
                            "first": {"type": "string"},
                            "then": {"type": "string"},
                            "within": _DURATION,
                            "absent": {"type": "boolean"},
                        },
                    },
                },
                "duration": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["from", "to"],
                        "properties": {
                            "from": {"type": "string"},
                            "to": {"type": "string"},
                            "over": _DURATION,
                            "under": _DURATION,
                        },
                    },
                },
                "clock_offset": {
                    "type": "object",
                    "additionalProperties": False,
                    "minProperties": 1,
                    "properties": {"over": _DURATION, "under": _DURATION},
                },
                "coverage": {
                    "type": "object",
                    "additionalProperties": False,
                    "minProperties": 1,
                    "properties": {"missing_channels": _STRINGS, "present_channels": _STRINGS},
                },
                "any": {"type": "array", "minItems": 2, "items": {"$ref": "#/$defs/match"}},
            },
        },
    },
}

Issue = tuple[tuple[str | int, ...], str, str | None]  # path, message, hint

_TYPES: dict[str, Any] = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "array": list,
    "object": dict,
    "null": type(None),
}


def _is(value: Any, kind: str) -> bool:
    if isinstance(value, bool) and kind in ("integer", "number"):
        return False
    return isinstance(value, _TYPES[kind])


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = SCHEMA["$defs"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def did_you_mean(word: str, choices: Any) -> str | None:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


def check(
    value: Any, schema: dict[str, Any] = SCHEMA, path: tuple[str | int, ...] = ()
) -> Iterator[Issue]:
    """Every way `value` breaks `schema` (the subset of JSON Schema SCHEMA uses)."""
    schema = _resolve(schema)
    if "anyOf" in schema:
        options = [list(check(value, option, path)) for option in schema["anyOf"]]
        if not any(not found for found in options):
            # report the option that got furthest (the fewest problems, deepest path)
            best = min(options, key=lambda found: (len(found), -max(len(p) for p, _, _ in found)))
            if all(p == path for p, _, _ in best):
                yield path, f"{_show(value)} is not {_describe(schema)}", None
            else:
                yield from best
        return
    if "enum" in schema:
        if value not in schema["enum"]:
            choices = ", ".join(map(str, schema["enum"]))
            yield (
                path,
                f"{_show(value)} is not one of: {choices}",
                did_you_mean(value, schema["enum"]),
            )
        return
    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if not any(_is(value, kind) for kind in kinds):
            yield path, f"{_show(value)} should be {' or '.join(kinds)}", None
            return
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            yield path, f"{_show(value)} does not have the expected form", schema.get("description")
        if len(value.strip()) < schema.get("minLength", 0):
            yield path, f"too short (at least {schema['minLength']} characters)", None
    if (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and "minimum" in schema
        and value < schema["minimum"]
    ):
        yield path, f"{value} is below {schema['minimum']}", None
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            yield path, f"needs at least {schema['minItems']} item(s)", None
        if "items" in schema:
            for index, item in enumerate(value):
                yield from check(item, schema["items"], (*path, index))
    if isinstance(value, dict):
        yield from _check_object(value, schema, path)


def _check_object(
    value: dict[str, Any], schema: dict[str, Any], path: tuple[str | int, ...]
) -> Iterator[Issue]:
    properties = schema.get("properties", {})
    if len(value) < schema.get("minProperties", 0):
        yield path, "must not be empty", None
    for key in schema.get("required", ()):
        if key not in value:
            yield path, f"missing required key {key!r}", None
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        if key in properties:
            yield from check(item, properties[key], (*path, key))
        elif extra is False:
            hint = did_you_mean(key, properties) or f"allowed: {', '.join(properties)}"
            yield (*path, key), f"unknown key {key!r}", hint
        elif isinstance(extra, dict):
            yield from check(item, extra, (*path, key))


def _describe(schema: dict[str, Any]) -> str:
    schema = _resolve(schema)
    if schema.get("description"):
        return str(schema["description"])
    kinds = []
    for option in schema.get("anyOf", ()):
        option = _resolve(option)
        kind = option.get("type", "a value")
        kind = " or ".join(kind) if isinstance(kind, list) else kind
        if kind == "array" and "items" in option:
            inner = _resolve(option["items"]).get("type", "value")
            kind = f"a list of {inner if isinstance(inner, str) else '/'.join(inner)}"
        kinds.append(kind)
    return " or ".join(dict.fromkeys(kinds)) or "an allowed form"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
