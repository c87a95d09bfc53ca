"""The events the synthetic writer takes (SynthEvent with its payload Fields) and the BinXML
templates they are written with: the System template as real records carry it (shape A for
manifest providers; shape B, provider and channel literal, for classic event sources), and one
EventData/UserData template per event shape (reference/evtx-format.md §8).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from evtxdoc.synth.binxml import (
    BINXML,
    FILETIME,
    GUID,
    HEXINT64,
    SID,
    STRING,
    UINT8,
    UINT16,
    UINT32,
    UINT64,
    Element,
    Sub,
    Template,
    template_guid,
)

EVENT_NS = "http://schemas.microsoft.com/win/2004/08/events/event"


@dataclass(frozen=True)
class Field:
    """One payload value: `<Data Name=name>` (name None: unnamed `<Data>`), or a UserData child."""

    name: str | None
    vtype: int
    value: Any


@dataclass(frozen=True)
class SynthEvent:
    """One event to write, with every System value Windows records."""

    time_ns: int  # UTC ns since the Unix epoch (TimeCreated and the record's written time)
    provider: str
    event_id: int
    channel: str
    computer: str
    level: int = 4
    provider_guid: str | None = None
    version: int = 0
    task: int = 0
    opcode: int = 0
    keywords: int = 0x8000000000000000
    qualifiers: int | None = None
    process_id: int = 0
    thread_id: int = 0
    activity_id: str | None = None
    related_activity_id: str | None = None
    user_sid: str | None = None
    data: tuple[Field, ...] = ()
    user_data: tuple[str, str, tuple[Field, ...]] | None = None  # (element, xmlns, fields)
    classic: bool = False  # shape B: an event source of the classic event log API
    written_ns: int | None = None  # true time of writing (write order when the clock jumps)


@lru_cache(maxsize=4096)
def system_template(computer: str, classic_key: tuple[str, str | None, str] | None) -> Template:
    """The System template of a host (shape A), or of a classic source on it (shape B)."""
    if classic_key is None:
        root = _system_shape_a(computer)
    else:
        provider, guid, channel = classic_key
        root = _system_shape_b(provider, guid, channel, computer)
    return Template(root, template_guid(root))


def _system_shape_a(computer: str) -> Element:
    """Manifest providers: provider and channel are substitutions (values 14-16), payload 17."""
    provider = (("Name", Sub(14, STRING)), ("Guid", Sub(15, GUID)))
    return _system(provider, Sub(16, STRING), computer, related=13, payload=17)


def _system_shape_b(name: str, guid: str | None, channel: str, computer: str) -> Element:
    """Classic event sources: provider and channel are literal; related 18, payload 19."""
    provider: tuple[tuple[str, str | Sub], ...] = (("Name", name),)
    if guid:
        provider += (("Guid", "{" + guid.strip("{}").lower() + "}"), ("EventSourceName", name))
    return _system(provider, channel, computer, related=18, payload=19)


def _system(
    provider: tuple[tuple[str, str | Sub], ...],
    channel: str | Sub,
    computer: str,
    related: int,
    payload: int,
) -> Element:
    """The System template as real records carry it (security.evtx / system.evtx)."""
    return Element(
        "Event",
        (("xmlns", EVENT_NS),),
        (
            Element(
                "System",
                (),
                (
                    Element("Provider", provider),
                    Element("EventID", (("Qualifiers", Sub(4, UINT16)),), (Sub(3, UINT16),)),
                    Element("Version", (), (Sub(11, UINT8),)),
                    Element("Level", (), (Sub(0, UINT8),)),
                    Element("Task", (), (Sub(2, UINT16),)),
                    Element("Opcode", (), (Sub(1, UINT8),)),
                    Element("Keywords", (), (Sub(5, HEXINT64),)),
                    Element("TimeCreated", (("SystemTime", Sub(6, FILETIME)),)),
                    Element("EventRecordID", (), (Sub(10, UINT64),)),
                    Element(
                        "Correlation",
                        (("ActivityID", Sub(7, GUID)), ("RelatedActivityID", Sub(related, GUID))),
                    ),
                    Element(
                        "Execution", (("ProcessID", Sub(8, UINT32)), ("ThreadID", Sub(9, UINT32)))
                    ),
                    Element("Channel", (), (channel,)),
                    Element("Computer", (), (computer,)),
                    Element("Security", (("UserID", Sub(12, SID)),)),
                ),
            ),
            Sub(payload, BINXML),
        ),
    )


def payload_template(event: SynthEvent) -> Template:
    """The provider's event template: `<EventData>` with one `<Data>` per field, or UserData."""
    if event.user_data is not None:
        name, xmlns, fields = event.user_data
        return _payload_template(tuple((f.name, f.vtype) for f in fields), (name, xmlns))
    return _payload_template(tuple((f.name, f.vtype) for f in event.data), None)


@lru_cache(maxsize=4096)
def _payload_template(
    fields: tuple[tuple[str | None, int], ...], user_data: tuple[str, str] | None
) -> Template:
    if user_data is not None:
        name, xmlns = user_data
        children = tuple(
            Element(field or f"Value{i}", (), (Sub(i, vtype),))
            for i, (field, vtype) in enumerate(fields)
        )
        inner = Element(name, (("xmlns", xmlns),) if xmlns else (), children)
        root = Element("UserData", (), (inner,))
    else:
        root = Element(
            "EventData",
            (),
            tuple(
                Element("Data", (("Name", field),), (Sub(i, vtype),))
                if field
                else Element("Data", (), (Sub(i, vtype),))
                for i, (field, vtype) in enumerate(fields)
            ),
        )
    return Template(root, template_guid(root))


def payload_fields(event: SynthEvent) -> tuple[Field, ...]:
    return event.user_data[2] if event.user_data is not None else event.data
