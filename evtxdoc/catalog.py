"""The catalog (rules/catalog/): events, error codes and the sources they cite.

Events (events.yaml): per channel and id, the meaning, the fields and a message template in
our own words; `Catalog.message()` renders it so a timeline reads like Event Viewer.

Codes are understood in every form logs write them (reference/domain.md (b)):
`0x80070774`, `80070774`, `-2147022988`, Win32 `1908` or `0x774` inside HRESULT 0x8007XXXX,
NERR / NetStatusCode values (`2710`, `0x00000A96`), and symbolic names
(`ERROR_DOMAIN_CONTROLLER_NOT_FOUND`, `SEC_E_TIME_SKEW`, `OOBEIDPS`).
`evtxdoc catalog show CODE` prints one entry.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from evtxdoc import yamlpos
from evtxdoc.errors import InputError, InternalError
from evtxdoc.vocab import CONFIDENCES

RULES_DIR = Path(
    os.environ.get("EVTXDOC_RULES") or Path(__file__).resolve().parent.parent / "rules"
)
CONFIDENCE = CONFIDENCES
EVENT_KEYS = {"channel", "provider", "id", "meaning", "fields", "template", "sources", "confidence"}
_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.]*)\}")
CODE_KEYS = {
    "code",
    "win32",
    "name",
    "also",
    "meaning",
    "context",
    "fix",
    "sources",
    "confidence",
    "scope",
}
_HEX8 = re.compile(r"^[0-9a-fA-F]{8}\Z")
_HEX_PREFIXED = re.compile(r"^0[xX][0-9a-fA-F]+\Z")
_SIGNED = re.compile(r"^[+-]?[0-9]+\Z")


@dataclass(frozen=True)
class Source:
    id: str
    title: str
    url: str | None


@dataclass(frozen=True)
class ErrorCode:
    """One catalog entry."""

    code: str  # canonical form as written in the catalog
    value: int | None  # the 32-bit value, None for names such as OOBEIDPS
    win32: int | None
    name: str | None
    also: tuple[str, ...]
    meaning: str
    context: str
    fix: str
    sources: tuple[Source, ...]
    confidence: str
    scope: str | None  # "connector": a connector-internal DiagnosticCode

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for n in (self.name, self.code, *self.also) if n)


def parse_code(text: str | int) -> int | None:
    """A code in any numeric form → its unsigned 32-bit value (None: not a 32-bit number).

    8 hex digits without `0x` (as ESP shows `80070774`) are hex; other digit strings are
    decimal (signed HRESULTs such as `-2147022988` included). `0x` forms keep their low 32
    bits (a sign-extended `0xFFFFFFFF80070774` is 0x80070774); decimal numbers and integers
    must fit 32 bits, signed or unsigned. Digits are ASCII only.
    """
    if isinstance(text, int):
        return text & 0xFFFFFFFF if -(1 << 31) <= text < (1 << 32) else None
    value = str(text).strip()
    if _HEX_PREFIXED.match(value):
        return int(value, 16) & 0xFFFFFFFF
    if _HEX8.match(value) and (not value.isdigit() or value[0] in "89"):
        return int(value, 16)
    if _SIGNED.match(value):
        number = int(value)
        return number & 0xFFFFFFFF if -(1 << 31) <= number < (1 << 32) else None
    return None


def win32_of(value: int) -> int | None:
    """The Win32 code an HRESULT carries (0x8007XXXX → XXXX), or a small value itself."""
    if value >> 16 == 0x8007:
        return value & 0xFFFF
    if value < 0x10000:
        return value
    return None


def forms(value: int) -> dict[str, Any]:
    """Every way the value may be written."""
    signed = value - (1 << 32) if value & 0x80000000 else value
    out: dict[str, Any] = {"hex": f"0x{value:08X}", "unsigned": value, "signed": signed}
    win32 = win32_of(value)
    if win32 is not None:
        out["win32"] = win32
        out["hresult"] = f"0x{0x80070000 | win32:08X}"
    return out


def describe_unknown(value: int) -> str:
    """What the bits of a code say when the catalog does not know it."""
    if value & 0x80000000:
        facility = (value >> 16) & 0x7FF
        code = value & 0xFFFF
        if facility == 7:
            return f"HRESULT from Win32 error {code} (0x{code:X})"
        return f"failure HRESULT, facility {facility}, code {code} (0x{code:X})"
    if value < 0x10000:
        return f"a plain value {value}: a Win32, NERR or NetStatus code"
    return f"not a failure HRESULT (severity bit clear): {value}"


@dataclass(frozen=True)
class EventEntry:
    """One known event: where it is logged, what it means, how to word it."""

    channel: str
    provider: str | None
    id: int
    meaning: str
    fields: tuple[str, ...]
    template: str
    sources: tuple[Source, ...]
    confidence: str

    def render(self, fields: dict[str, Any]) -> str:
        def value(match: re.Match[str]) -> str:
            found = fields.get(match.group(1))
            text = " ".join(str(found).split()) if found not in (None, "") else "?"
            return text if len(text) <= 200 else text[:199] + "…"

        return _FIELD.sub(value, self.template)


class Catalog:
    """The loaded catalog: codes indexed by value, Win32 number and name; events by channel."""

    def __init__(
        self,
        codes: list[ErrorCode],
        sources: dict[str, Source],
        events: list[EventEntry] | None = None,
    ):
        self.codes = codes
        self.sources = sources
        self.events = events or []
        self._events: dict[tuple[str, int], list[EventEntry]] = {}
        for event in self.events:
            self._events.setdefault((event.channel.lower(), event.id), []).append(event)
        self._by_value: dict[int, list[ErrorCode]] = {}
        self._by_win32: dict[int, list[ErrorCode]] = {}
        self._by_name: dict[str, list[ErrorCode]] = {}
        for entry in codes:
            if entry.value is not None:
                self._by_value.setdefault(entry.value, []).append(entry)
            if entry.win32 is not None:
                self._by_win32.setdefault(entry.win32, []).append(entry)
            for name in entry.names:
                self._by_name.setdefault(name.lower(), []).append(entry)

    def event(self, channel: str, event_id: int, provider: str | None = None) -> EventEntry | None:
        """The entry for an event (a provider-specific one first)."""
        entries = self._events.get((channel.lower(), event_id), [])
        exact = [
            e for e in entries if e.provider and provider and e.provider.lower() == provider.lower()
        ]
        found = exact or [e for e in entries if not e.provider]
        return found[0] if found else None

    def message(
        self, channel: str, event_id: int, provider: str | None, fields: dict[str, Any]
    ) -> str | None:
        """The event's message from its template (None: not in the catalog)."""
        entry = self.event(channel, event_id, provider)
        return entry.render(fields) if entry else None

    def events_with_id(self, event_id: int) -> list[EventEntry]:
        return [e for e in self.events if e.id == event_id]

    def lookup(self, text: str | int, scope: str | None = None) -> list[ErrorCode]:
        """Entries for a code in any form; connector-scoped ones only when asked or exact."""
        found: list[ErrorCode] = []
        if isinstance(text, str) and text.strip().lower() in self._by_name:
            found = list(self._by_name[text.strip().lower()])
        value = parse_code(text)
        if value is not None:
            found += self._by_value.get(value, [])
            win32 = win32_of(value)
            if win32 is not None:
                found += self._by_win32.get(win32, [])
        unique = list(dict.fromkeys(found))
        exact = isinstance(text, str) and len(text.strip()) >= 10
        return [e for e in unique if e.scope is None or e.scope == scope or exact]


def _checked(
    raw: Any, place: str, keys: set[str], required: tuple[str, ...], sources: dict[str, Source]
) -> tuple[Source, ...]:
    """Validate one catalog entry (keys, required values, confidence); its cited sources."""
    if not isinstance(raw, dict):
        raise InputError("a catalog entry is a mapping", where=place)
    unknown = set(raw) - keys
    if unknown:
        raise InputError(
            f"unknown key(s) {sorted(unknown)}",
            where=place,
            hint=f"keys: {', '.join(sorted(keys))}",
        )
    for key in required:
        if raw.get(key) in (None, ""):
            raise InputError(f"missing {key!r}", where=place)
    if raw["confidence"] not in CONFIDENCE:
        raise InputError(
            f"confidence {raw['confidence']!r}", where=place, hint=f"one of {', '.join(CONFIDENCE)}"
        )
    cited = []
    for source in raw.get("sources") or []:
        if source not in sources:
            raise InputError(
                f"unknown source {source!r}",
                where=place,
                hint="add it to rules/catalog/sources.yaml",
            )
        cited.append(sources[source])
    return tuple(cited)


def _entry(raw: Any, index: int, sources: dict[str, Source], where: str) -> ErrorCode:
    cited = _checked(
        raw,
        f"{where}: codes[{index}]",
        CODE_KEYS,
        ("code", "meaning", "context", "fix", "confidence"),
        sources,
    )
    code = str(raw["code"])
    value = parse_code(code) if code.lower().startswith("0x") else None
    win32 = raw.get("win32")
    return ErrorCode(
        code=code,
        value=value,
        win32=int(win32) if win32 is not None else None,
        name=raw.get("name"),
        also=tuple(raw.get("also") or ()),
        meaning=" ".join(str(raw["meaning"]).split()),
        context=" ".join(str(raw["context"]).split()),
        fix=" ".join(str(raw["fix"]).split()),
        sources=cited,
        confidence=raw["confidence"],
        scope=raw.get("scope"),
    )


def _event(raw: Any, index: int, sources: dict[str, Source], where: str) -> EventEntry:
    cited = _checked(
        raw,
        f"{where}: events[{index}]",
        EVENT_KEYS,
        ("channel", "id", "meaning", "template", "confidence"),
        sources,
    )
    return EventEntry(
        channel=str(raw["channel"]),
        provider=raw.get("provider"),
        id=int(raw["id"]),
        meaning=" ".join(str(raw["meaning"]).split()),
        fields=tuple(raw.get("fields") or ()),
        template=str(raw["template"]),
        sources=cited,
        confidence=raw["confidence"],
    )


def _read(path: Path) -> Any:
    """One catalog file, strictly: a duplicate key is an error at its line (yamlpos)."""
    return _read_with_lines(path)[0]


def _read_with_lines(path: Path) -> tuple[Any, yamlpos.Lines]:
    try:
        return yamlpos.load(path.read_text("utf-8"))
    except OSError as exc:
        raise InputError(
            f"cannot read the catalog: {exc}",
            where=str(path),
            hint="set EVTXDOC_RULES to the rules folder of an evtxdoc checkout",
        ) from exc
    except yamlpos.YamlError as exc:
        raise InputError(
            f"cannot read the catalog: {exc.message}",
            where=f"{path}:{exc.line}",
            hint="fix the file at that line",
        ) from exc


@lru_cache(maxsize=4)
def load(root: Path = RULES_DIR) -> Catalog:
    """Read rules/catalog/ (cached per folder); the shipped one broken is an InternalError."""
    try:
        return _load(root)
    except InputError as error:
        if root != RULES_DIR:
            raise
        raise InternalError(
            error.message,
            where=error.where,
            hint="this is a bug in the "
            "installed evtxdoc: reinstall it, or report it to the maintainers",
        ) from error


def _load(root: Path) -> Catalog:
    folder = root / "catalog"
    raw_sources = (_read(folder / "sources.yaml") or {}).get("sources") or {}
    sources = {
        key: Source(key, str(value.get("title", "")), value.get("url"))
        for key, value in raw_sources.items()
    }
    errors: list[InputError] = []
    codes = _entries(folder / "error_codes.yaml", "codes", _entry, sources, errors)
    events_file = folder / "events.yaml"
    events = (
        _entries(events_file, "events", _event, sources, errors) if events_file.exists() else []
    )
    if errors:  # every broken entry at once, each at its line
        listed = "\n".join(
            f"  {e.where}: {e.message}" + (f" ({e.hint})" if e.hint else "") for e in errors[:20]
        )
        more = f"\n  … and {len(errors) - 20} more" if len(errors) > 20 else ""
        raise InputError(
            f"{len(errors)} broken catalog entr{'y' if len(errors) == 1 else 'ies'}"
            f":\n{listed}{more}",
            where=errors[0].where,
            hint="fix each entry at its line",
        )
    return Catalog(codes, sources, events)


def _entries(
    path: Path, key: str, make: Any, sources: dict[str, Source], errors: list[InputError]
) -> list[Any]:
    """The entries under `key`, each checked; a broken one is collected with its line."""
    data, lines = _read_with_lines(path)
    out = []
    for index, raw in enumerate((data or {}).get(key) or []):
        try:
            out.append(make(raw, index, sources, f"{path}:{lines.at((key, index))}"))
        except InputError as error:
            errors.append(error)
    return out
