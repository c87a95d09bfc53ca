"""The EVTX backends. This is the only module that imports an EVTX library.

Both backends yield `RawRecord`s: the record-header id, the header timestamp as text, and the
event in pyevtx-rs's JSON shape (`{"System": …, "EventData": …}` with `#attributes` and
`#text` keys), so normalization has one input shape whichever backend read the record. rs
hands over its JSON text unparsed (normalize parses only what it needs); python-evtx's XML is
converted to the same shape as a dict.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterator
from typing import Any

PyEvtxParser: Any
try:  # On Windows `evtx` refuses to import beside python-evtx (`Evtx`): fall back, don't die.
    from evtx import PyEvtxParser
except ImportError:  # pragma: no cover - exercised only where the package is missing
    PyEvtxParser = None

MAX_CONSECUTIVE_ERRORS = 10_000
_CHUNK_MAGIC_ERROR = re.compile(r"chunk number (\d+): Failed to parse chunk header")
_INT = re.compile(r"-?(0|[1-9][0-9]*)")
_PY_EVTX_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?\+00:00")
_STRING_ITEM = re.compile(r"<string>(.*?)</string>", re.DOTALL)
_HEX = re.compile(r"0x[0-9A-Fa-f]+")


# One record as a backend delivered it: (header id, header time, event). A plain tuple, built
# once per record on the hottest path.
# - header id: the record-header id (exports renumber it; EventRecordID is inside the event);
# - header time: the record-header written time as rs renders it (100 ns), or None;
# - event: rs's JSON text of the whole record (`{"Event": {…}}`), or the <Event> element as a
#   dict in that shape (python-evtx, tests).
RawRecord = tuple[int, str | None, str | dict[str, Any]]


ErrorSink = Callable[[str, str], None]  # (where, message)


def rs_available() -> bool:
    return PyEvtxParser is not None


def fallback_available() -> bool:
    try:
        import Evtx.Evtx  # noqa: F401
    except ImportError:
        return False
    return True


def rs_records(
    path: str, on_error: ErrorSink, *, strict: bool = False, threads: int = 1
) -> Iterator[RawRecord]:
    """Records via pyevtx-rs `records_json()`; per-record errors go to `on_error`, not up.

    Errors about chunk-header magic are left out: the structural scan reports every slot.
    """
    try:
        parser = PyEvtxParser(path, number_of_threads=threads, validate_checksums=strict)
        records = parser.records_json()
    except (
        RuntimeError,
        OSError,
        ValueError,
    ) as exc:  # e.g. "Could not calculate valid chunk count"
        on_error("", f"cannot open: {exc}")
        return
    consecutive = 0
    while True:
        try:
            for record in records:  # the fast loop; an exception drops to the handler below
                consecutive = 0
                yield (record["event_record_id"], record.get("timestamp"), record["data"])
            return
        except (RuntimeError, OSError, ValueError) as exc:
            consecutive += 1
            text = str(exc)
            if not _CHUNK_MAGIC_ERROR.search(text):
                on_error("", text)
            if consecutive > MAX_CONSECUTIVE_ERRORS:
                on_error("", "too many consecutive errors; reading stopped")
                return


def python_evtx_records(
    path: str,
    skip_header_ids: set[int],
    on_error: ErrorSink,
    tick: Callable[[], None] = lambda: None,
    deadline: float | None = None,
) -> Iterator[RawRecord]:
    """Records via python-evtx over every chunk slot, rendering only ids not in `skip`;
    `tick` is called per record tried, and reading stops (with an error) at `deadline`
    (`time.monotonic()`), as python-evtx can spend many seconds on a damaged file."""
    from Evtx.Evtx import Evtx

    # python-evtx logs "Unexpected token encountered" per damaged record; with no handler,
    # logging prints it on stderr. Its errors reach us as exceptions: keep the terminal clean.
    logging.getLogger("Evtx").addHandler(logging.NullHandler())
    with Evtx(path) as log:
        for chunk_index, chunk in enumerate(log.get_file_header().chunks(include_inactive=True)):
            try:
                for record in chunk.records():
                    tick()
                    if deadline is not None and time.monotonic() > deadline:
                        on_error(f"chunk {chunk_index}", "python-evtx: out of time; stopped")
                        return
                    header_id = record.record_num()
                    if header_id in skip_header_ids:
                        continue
                    try:
                        event = xml_to_event(record.xml())
                    except Exception as exc:  # python-evtx raises many private types
                        on_error(
                            f"chunk {chunk_index}, record {header_id}",
                            f"python-evtx: {type(exc).__name__}: {exc}",
                        )
                        continue
                    yield (header_id, None, event)
            except Exception as exc:  # a broken chunk ends that chunk only
                on_error(f"chunk {chunk_index}", f"python-evtx: {type(exc).__name__}: {exc}")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def typed_text(text: str | None) -> Any:
    """XML text → the JSON type rs would have given: int, bool, unpadded HexInt, or text.

    XML renderers write HexInt64 zero-padded (`0x00000000000003e7`); rs writes `0x3e7`.
    """
    if not text:
        return text
    if _INT.fullmatch(text) and len(text) < 20:
        return int(text)
    if text in ("true", "false", "True", "False"):  # python-evtx writes Python's spelling
        return text in ("true", "True")
    if text.startswith("0x") and _HEX.fullmatch(text):
        return f"0x{int(text, 16):x}"
    if _PY_EVTX_TIME.fullmatch(text):  # python-evtx's FILETIME form → rs's
        return f"{text[:10]}T{text[11:-6]}Z"
    return text


def _element_value(element: ElementTree.Element, typed: bool = True) -> Any:
    """Generic element → rs-shaped value: leaf text, or dict of children and #attributes."""
    convert = typed_text if typed else (lambda text: text)
    attributes = {_local(k): convert(v) for k, v in element.attrib.items()}
    children = list(element)
    if not children and not attributes:
        return convert(element.text)
    value: dict[str, Any] = {}
    if attributes:
        value["#attributes"] = attributes
    for child in children:
        value[_local(child.tag)] = _element_value(child, typed)
    if element.text and element.text.strip():
        value["#text"] = convert(element.text)
    return value


def _binary_hex(text: str | None) -> str | None:
    """python-evtx renders <Binary> as base64; rs (and Event Viewer) as upper-case hex."""
    if not text:
        return text
    try:
        return base64.b64decode(text, validate=True).hex().upper()
    except (binascii.Error, ValueError):
        return text


def _event_data(element: ElementTree.Element) -> dict[str, Any]:
    """EventData in rs's shape: named Data by name, unnamed Data as `Data: {#text: [...]}`."""
    out: dict[str, Any] = {}
    if element.attrib:
        out["#attributes"] = {_local(k): v for k, v in element.attrib.items()}
    unnamed: list[Any] = []
    for child in element:
        tag = _local(child.tag)
        if tag == "Data" and "Name" in child.attrib:
            out[child.attrib["Name"]] = typed_text(child.text)
        elif tag == "Data" and (child.text or "").startswith("<string>"):
            # python-evtx renders a string array as escaped text "<string>a</string>\n…"
            unnamed.extend(typed_text(item) for item in _STRING_ITEM.findall(child.text or ""))
        elif tag == "Data":
            unnamed.append(typed_text(child.text or ""))
        elif tag == "Binary":
            out[tag] = _binary_hex(child.text)
        else:
            out[tag] = typed_text(child.text)
    if unnamed:
        out["Data"] = {"#text": unnamed if len(unnamed) > 1 else unnamed[0]}
    return out


def xml_to_event(xml: str) -> dict[str, Any]:
    """Convert one rendered `<Event>` XML document into rs's JSON shape."""
    root = ElementTree.fromstring(xml)
    event: dict[str, Any] = {}
    for section in root:
        tag = _local(section.tag)
        if tag == "System":  # left as text: a computer named "1234" stays a string
            event["System"] = {_local(c.tag): _element_value(c, typed=False) for c in section}
        elif tag == "EventData":
            event["EventData"] = _event_data(section)
        else:
            event[tag] = _element_value(section)
    return event
