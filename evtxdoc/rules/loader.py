"""Read rule files strictly: every problem with file:line and, where we can, the fix.

`load_rule(path)` returns the compiled rule (or None) and the problems found; `load_rules(dirs)`
reads whole folders (the built-in knowledge base plus `--rules DIR`), skipping `*.test.yaml`
fixtures and the `catalog/` folder, and checks what spans files (duplicate ids, `supersedes`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evtxdoc import catalog, yamlpos
from evtxdoc.models import Problem, Severity
from evtxdoc.rules import schema, templates
from evtxdoc.rules.lint import authoring, beside_the_schema, check_sources
from evtxdoc.rules.matchers import Matcher, MatcherError, compile_matcher
from evtxdoc.rules.model import (
    AppliesTo,
    DurationCondition,
    Match,
    Rule,
    Selector,
    SequenceCondition,
    StepCondition,
    seconds,
)

TEST_SUFFIX = ".test.yaml"


def rule_problem(file: str, line: int | None, message: str, hint: str | None = None) -> Problem:
    """A problem in a rule or fixture file: the one `Problem` shape, kind "rule", at file:line."""
    return Problem(file, "rule", message, Severity.ERROR, hint=hint, line=line)


@dataclass
class RuleSet:
    rules: list[Rule] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    folders: tuple[str, ...] = ()

    def get(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)


class _Checker:
    """Collects problems for one file, turning key paths into lines."""

    def __init__(self, path: Path, lines: yamlpos.Lines) -> None:
        self.path = str(path)
        self.lines = lines
        self.problems: list[Problem] = []

    def add(self, key_path: tuple[str | int, ...], message: str, hint: str | None = None) -> None:
        where = ".".join(map(str, key_path))
        text = f"{where}: {message}" if where else message
        self.problems.append(rule_problem(self.path, self.lines.at(key_path), text, hint))


def rule_files(folder: Path) -> list[Path]:
    """The rule files of a folder tree (fixtures and the catalog left out)."""
    return sorted(
        p
        for p in folder.rglob("*.yaml")
        if not p.name.endswith(TEST_SUFFIX) and "catalog" not in p.relative_to(folder).parts[:-1]
    )


def read_yaml(path: Path) -> tuple[Any, yamlpos.Lines, list[Problem]]:
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, yamlpos.Lines(), [rule_problem(str(path), 1, f"cannot read: {exc}")]
    try:
        data, lines = yamlpos.load(text)
    except yamlpos.YamlError as exc:
        return None, yamlpos.Lines(), [rule_problem(str(path), exc.line, exc.message)]
    return data, lines, []


def load_rule(path: Path) -> tuple[Rule | None, list[Problem]]:
    """One rule file → (rule or None, problems)."""
    data, lines, problems = read_yaml(path)
    if problems:
        return None, problems
    check = _Checker(path, lines)
    if not isinstance(data, dict):
        check.add(
            (),
            "a rule file holds one mapping (id, title, severity, …)",
            "start from `evtxdoc rules new ID`",
        )
        return None, check.problems
    for key_path, message, hint in schema.check(data):
        check.add(key_path, message, hint)
    if check.problems:  # still say what else is wrong, so that one lint run finds it all
        beside_the_schema(data, path, check)
        return None, sorted(check.problems, key=lambda p: p.line or 0)
    if data["id"] != path.name.removesuffix(".yaml"):
        check.add(
            ("id",),
            f"id {data['id']!r} differs from the file name {path.name!r}",
            f"rename the file to {data['id']}.yaml or change the id",
        )
    rule = _compile(data, check)
    return (rule if not check.problems else None), check.problems


def fixture_path(rule: Rule) -> Path:
    """The test file beside a rule: `<id>.test.yaml`."""
    return Path(rule.path).with_name(f"{rule.id}{TEST_SUFFIX}")


def authoring_problems(path: Path) -> list[Problem]:
    """Lint's checks of a rule that loads: the template's TODO texts and placeholders naming a
    field the catalog does not list (they do not stop the rule from running)."""
    data, lines, problems = read_yaml(path)
    if problems or not isinstance(data, dict):
        return problems
    check = _Checker(path, lines)
    authoring(data, check)
    return check.problems


def _compile(data: dict[str, Any], check: _Checker) -> Rule | None:
    scope = data["scope"]
    match = _match(data["match"], ("match",), scope, check)
    names = set(match.event_names())
    for key in ("cause", "fix"):
        for message in templates.problems(data[key], scope, names):
            check.add((key,), message)
    for index, name in enumerate(data.get("evidence") or ()):
        if name not in names:
            check.add(
                ("evidence", index),
                f"{name!r} is not an event of match.events",
                schema.did_you_mean(name, names) or f"events: {', '.join(sorted(names))}",
            )
    known = catalog.load().sources
    check_sources(data.get("sources"), check)
    if not data.get("sources") and not data.get("references"):
        check.add((), "a rule cites its sources: give sources (S-numbers) or references (URLs)")
    urls = [known[s].url for s in data.get("sources") or () if s in known and known[s].url]
    references = tuple(dict.fromkeys([*(data.get("references") or ()), *urls]))
    applies = _applies_to(data.get("applies_to") or {}, check)
    if scope == "event" and (len(match.events) != 1 or match.absent or match.any):
        check.add(
            ("match",),
            "an event rule has exactly one entry under match.events and no absent/any",
            "use scope: host or attempt to combine events",
        )
    if check.problems:
        return None
    return Rule(
        id=data["id"],
        title=" ".join(data["title"].split()),
        severity=data["severity"],
        confidence=data["confidence"],
        scope=scope,
        match=match,
        cause=data["cause"].strip(),
        fix=data["fix"].strip(),
        references=references,
        applies_to=applies,
        sources=tuple(data.get("sources") or ()),
        evidence=tuple(data.get("evidence") or ()),
        supersedes=tuple(data.get("supersedes") or ()),
        tags=tuple(data.get("tags") or ()),
        description=" ".join(str(data.get("description") or "").split()),
        path=check.path,
        raw=data,
    )


def _matcher(spec: Any, key_path: tuple[str | int, ...], check: _Checker) -> Matcher | None:
    try:
        return compile_matcher(spec, bare_codes=key_path[-1] != "any_field")
    except MatcherError as exc:
        check.add(
            (*key_path, exc.key) if exc.key and isinstance(spec, dict) else key_path, str(exc)
        )
        return None


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(value) if isinstance(value, list) else (value,)


def _selector(
    name: str, raw: dict[str, Any], key_path: tuple[str | int, ...], scope: str, check: _Checker
) -> Selector:
    if scope != "attempt":
        for key in ("side", "window"):
            if key in raw:
                check.add((*key_path, key), f"{key!r} only applies to scope: attempt")
    if not any(k in raw for k in ("channel", "provider", "event_id")):
        check.add(
            key_path,
            "say which events: give a channel, provider or event_id",
            "matching every event is slow and rarely meant",
        )
    fields = tuple(
        (field_name, m)
        for field_name, spec in (raw.get("fields") or {}).items()
        if (m := _matcher(spec, (*key_path, "fields", field_name), check))
    )
    ids = raw.get("event_id")
    return Selector(
        name=name,
        channels=_strings(raw["channel"]) if "channel" in raw else None,
        providers=_strings(raw["provider"]) if "provider" in raw else None,
        event_ids=(
            tuple(int(i) for i in (ids if isinstance(ids, list) else [ids]))
            if ids is not None
            else None
        ),
        level=_matcher(raw["level"], (*key_path, "level"), check) if "level" in raw else None,
        side=raw.get("side", "any"),
        window=raw.get("window", "attempt"),
        message=(
            _matcher(raw["message"], (*key_path, "message"), check) if "message" in raw else None
        ),
        fields=fields,
        any_field=(
            _matcher(raw["any_field"], (*key_path, "any_field"), check)
            if "any_field" in raw
            else None
        ),
        count=(
            _matcher(raw["count"], (*key_path, "count"), check) or compile_matcher({"ge": 1})
            if "count" in raw
            else compile_matcher({"ge": 1})
        ),
    )


ATTEMPT_ONLY = ("attempt", "steps", "sequence", "duration", "clock_offset")


def _match(
    raw: dict[str, Any],
    key_path: tuple[str | int, ...],
    scope: str,
    check: _Checker,
    seen: set[str] | None = None,
) -> Match:
    seen = set() if seen is None else seen
    for key in ATTEMPT_ONLY:
        if key in raw and scope != "attempt":
            check.add((*key_path, key), f"{key!r} only applies to scope: attempt")
    if "coverage" in raw and scope != "bundle":
        check.add((*key_path, "coverage"), "'coverage' only applies to scope: bundle")
    events = []
    for group in ("events", "absent"):
        for name, spec in (raw.get(group) or {}).items():
            if name in seen:
                check.add((*key_path, group, name), f"event name {name!r} is used twice")
            seen.add(name)
            events.append((group, _selector(name, spec, (*key_path, group, name), scope, check)))
    attempt = tuple(
        (attr, m)
        for attr, spec in (raw.get("attempt") or {}).items()
        if (m := _matcher(spec, (*key_path, "attempt", attr), check))
    )
    steps = []
    for name, spec in (raw.get("steps") or {}).items():
        place = (*key_path, "steps", name)
        if isinstance(spec, str):
            steps.append(StepCondition(name, present=spec == "present"))
        else:
            steps.append(
                StepCondition(
                    name,
                    present=True,
                    status=_matcher(spec["status"], (*place, "status"), check)
                    if "status" in spec
                    else None,
                    detail=_matcher(spec["detail"], (*place, "detail"), check)
                    if "detail" in spec
                    else None,
                )
            )
    refs = set(schema.STEP_NAMES) | {s.name for g, s in events if g == "events"}
    sequence = []
    for index, item in enumerate(raw.get("sequence") or ()):
        place = (*key_path, "sequence", index)
        _refs(item, ("first", "then"), refs, place, check)
        sequence.append(
            SequenceCondition(
                item["first"],
                item["then"],
                _seconds(item, "within", place, check),
                bool(item.get("absent", False)),
            )
        )
    durations = []
    for index, item in enumerate(raw.get("duration") or ()):
        place = (*key_path, "duration", index)
        _refs(item, ("from", "to"), refs, place, check)
        if "over" not in item and "under" not in item:
            check.add(place, "give 'over' or 'under' (or both)")
        durations.append(
            DurationCondition(
                item["from"],
                item["to"],
                _seconds(item, "over", place, check),
                _seconds(item, "under", place, check),
            )
        )
    offset = None
    if "clock_offset" in raw:
        place = (*key_path, "clock_offset")
        offset = (
            _seconds(raw["clock_offset"], "over", place, check),
            _seconds(raw["clock_offset"], "under", place, check),
        )
    coverage = raw.get("coverage") or {}
    branches = tuple(
        _match(branch, (*key_path, "any", index), scope, check, seen)
        for index, branch in enumerate(raw.get("any") or ())
    )
    return Match(
        attempt=attempt,
        events=tuple(s for g, s in events if g == "events"),
        absent=tuple(s for g, s in events if g == "absent"),
        steps=tuple(steps),
        sequence=tuple(sequence),
        duration=tuple(durations),
        clock_offset=offset,
        missing_channels=tuple(c.lower() for c in _strings(coverage["missing_channels"]))
        if "missing_channels" in coverage
        else (),
        present_channels=tuple(c.lower() for c in _strings(coverage["present_channels"]))
        if "present_channels" in coverage
        else (),
        any=branches,
    )


def _refs(
    item: dict[str, Any],
    keys: Sequence[str],
    refs: set[str],
    place: tuple[str | int, ...],
    check: _Checker,
) -> None:
    for key in keys:
        if item[key] not in refs and item[key].partition(":")[0] not in schema.STEP_NAMES:
            check.add(
                (*place, key),
                f"{item[key]!r} is neither a step nor an event of this match",
                schema.did_you_mean(item[key], refs) or f"steps: {', '.join(schema.STEP_NAMES)}",
            )


def _seconds(
    raw: dict[str, Any], key: str, place: tuple[str | int, ...], check: _Checker
) -> float | None:
    if key not in raw:
        return None
    try:
        return seconds(raw[key])
    except ValueError as exc:
        check.add((*place, key), str(exc))
        return None


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.strip().split("."))


def _applies_to(raw: dict[str, Any], check: _Checker) -> AppliesTo:
    bounds = []
    for part in str(raw.get("connector_version") or "").split(","):
        part = part.strip()
        if not part:
            continue
        op = next(o for o in ("<=", ">=", "==", "<", ">") if part.startswith(o))
        bounds.append((op, _version(part[len(op) :])))
    if bounds and raw.get("connector") in ("none", "entra"):
        check.add(("applies_to", "connector_version"), "a version needs a connector")
    return AppliesTo(
        join=raw.get("join", "any"),
        connector=raw.get("connector", "any"),
        connector_version=tuple(bounds),
        systems=tuple(raw.get("systems") or ()),
    )


def load_rules(folders: Iterable[Path]) -> RuleSet:
    """Every rule of the folders; problems collected, never raised."""
    out = RuleSet(folders=tuple(str(f) for f in folders))
    first: dict[str, str] = {}
    for folder in folders:
        if not folder.is_dir():
            out.problems.append(
                rule_problem(
                    str(folder),
                    None,  # a folder has no line: `rules/mine: not a folder of rules`
                    "not a folder of rules",
                    "give a folder that holds <id>.yaml files",
                )
            )
            continue
        for path in rule_files(folder):
            rule, problems = load_rule(path)
            out.problems += problems
            if rule is None:
                continue
            if rule.id in first:
                out.problems.append(
                    rule_problem(
                        str(path),
                        1,
                        f"duplicate rule id {rule.id!r}",
                        f"first defined in {first[rule.id]}",
                    )
                )
                continue
            first[rule.id] = str(path)
            out.rules.append(rule)
    ids = set(first)
    for rule in out.rules:
        for target in rule.supersedes:
            if target not in ids:
                lines = yamlpos.load(Path(rule.path).read_text("utf-8"))[1]
                index = rule.supersedes.index(target)
                out.problems.append(
                    rule_problem(
                        rule.path,
                        lines.at(("supersedes", index)),
                        f"supersedes: unknown rule {target!r}",
                        schema.did_you_mean(target, ids),
                    )
                )
    out.rules.sort(key=lambda r: r.order)
    return out


def default_folders(extra: Sequence[Path] = ()) -> list[Path]:
    """The built-in knowledge base, then the user's folders."""
    return [catalog.RULES_DIR, *extra]
