"""The checks a rule gets even when its schema check failed, so that one `rules lint` run
reports every problem of the file: type errors do not hide the rest."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from evtxdoc import catalog
from evtxdoc.rules import schema, templates


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
