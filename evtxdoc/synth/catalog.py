"""The synth event catalog (`events.yaml`): which events can be written, and how sourced."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from evtxdoc.synth.binxml import TYPE_NAMES
from evtxdoc.synth.events import Field, SynthEvent

SHAPES = ("documented", "real", "inferred")


@dataclass(frozen=True)
class EventShape:
    """One catalog entry: provider, channel, id, level and the payload's field names/types."""

    key: str
    provider: str
    provider_guid: str | None
    channel: str
    event_id: int
    level: int
    classic: bool
    qualifiers: int | None
    keywords: int
    shape: str
    fields: tuple[tuple[str | None, int], ...]

    def make(
        self, time_ns: int, computer: str, values: dict[str, Any] | None = None, **system: Any
    ) -> SynthEvent:
        """An event of this shape; `values` by field name (missing ones are empty)."""
        values = values or {}
        unknown = set(values) - {name for name, _ in self.fields if name} - {"_data"}
        if unknown:
            raise KeyError(f"{self.key}: no field(s) {sorted(unknown)} in the catalog shape")
        positional = values.get("_data", ())  # unnamed <Data> values, in order
        data = tuple(
            Field(
                name,
                vtype,
                values.get(name, _empty(vtype))
                if name
                else positional[i]
                if i < len(positional)
                else "",
            )
            for i, (name, vtype) in enumerate(self.fields)
        )
        return SynthEvent(
            time_ns=time_ns,
            provider=self.provider,
            provider_guid=self.provider_guid,
            event_id=self.event_id,
            channel=self.channel,
            computer=computer,
            level=self.level,
            qualifiers=self.qualifiers,
            keywords=self.keywords,
            classic=self.classic,
            data=data,
            **system,
        )


def _empty(vtype: int) -> Any:
    return "" if vtype == TYPE_NAMES["string"] else 0


@cache
def load() -> dict[str, EventShape]:
    """Every catalog entry by key."""
    text = resources.files("evtxdoc.synth").joinpath("events.yaml").read_text("utf-8")
    raw = yaml.safe_load(text)
    providers = raw["providers"]
    shapes: dict[str, EventShape] = {}
    for key, entry in raw["events"].items():
        provider = providers[entry["provider"]]
        classic = bool(provider.get("classic"))
        if entry["shape"] not in SHAPES:
            raise ValueError(f"events.yaml: {key}: shape must be one of {SHAPES}")
        fields = tuple(
            (None if name.startswith("null") else name, TYPE_NAMES[vtype])
            for name, vtype in (entry.get("fields") or {}).items()
        )
        shapes[key] = EventShape(
            key=key,
            provider=provider["name"],
            provider_guid=provider.get("guid"),
            channel=provider["channel"],
            event_id=int(entry["id"]),
            level=int(entry["level"]),
            classic=classic,
            qualifiers=entry.get("qualifiers"),
            keywords=int(
                entry.get("keywords", 0x80000000000000 if classic else 0x8000000000000000)
            ),
            shape=entry["shape"],
            fields=fields,
        )
    return shapes


@cache
def _differs() -> dict[str, dict[str, str]]:
    text = resources.files("evtxdoc.synth").joinpath("events.yaml").read_text("utf-8")
    return {
        key: dict(entry.get("real_differs") or {})
        for key, entry in yaml.safe_load(text)["events"].items()
    }


def real_differs(key: str) -> dict[str, str]:
    """Where an entry knowingly differs from real-logs/shapes.md (aspect → reason): `level`,
    `fields` or `types`. The shapes test accepts exactly these."""
    return _differs().get(key, {})


def shape(key: str) -> EventShape:
    try:
        return load()[key]
    except KeyError:
        raise KeyError(f"no event {key!r} in evtxdoc/synth/events.yaml") from None
