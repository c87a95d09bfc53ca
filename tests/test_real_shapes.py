"""The generator writes the shapes real logs hold (issue 15): per event id, every catalog
entry of evtxdoc/synth/events.yaml that real-logs/shapes.md also lists is written, read back
with pyevtx-rs and compared with the real one: field names in order, each value's rendered
shape (int, bool, hex-text, text …) and the level. A difference fails unless the entry lists
it under `real_differs` with its reason."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from evtx import PyEvtxParser

from evtxdoc.synth import catalog
from evtxdoc.synth.binxml import TYPE_NAMES
from evtxdoc.synth.writer import EvtxWriter
from tests.conftest import SHARED

SHAPES = SHARED / "reference" / "real-logs" / "shapes.md"
_FIELD = re.compile(r"`([^`]+)` ([a-z/-]+) \(")
_HEX = re.compile(r"^0x[0-9a-f]+$")
_INT = re.compile(r"^-?\d+$")
_GUID = re.compile(r"^\{?[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}\}?$", re.I)
SAMPLE = {
    TYPE_NAMES["string"]: "text",
    TYPE_NAMES["guid"]: "00000000-0000-4000-8000-000000000001",
    TYPE_NAMES["bool"]: False,
}


def real_shapes() -> dict[tuple[str, int], dict[str, Any]]:
    """(channel, id) → {"levels": {…}, "fields": [(name, {shapes})]} from shapes.md."""
    out = {}
    for line in SHAPES.read_text("utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 6 or not cells[2].isdigit():
            continue
        channel, _, event_id, _, levels, fields = cells
        out[(channel.lower(), int(event_id))] = {
            "levels": {int(level) for level in re.findall(r"(\d)×", levels)},
            "fields": [(name, set(shape.split("/"))) for name, shape in _FIELD.findall(fields)],
        }
    return out


def rendered_shape(value: Any) -> str:
    """A value's shape as shapes.md names it (pyevtx-rs JSON)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    text = str(value)
    if _HEX.match(text):
        return "hex-text"
    if _GUID.match(text):
        return "guid"
    if _INT.match(text):
        return "int-text"
    return "text"


def written(shape: catalog.EventShape, tmp: Path) -> tuple[int, list[tuple[str, str]]]:
    """(level, [(field, rendered shape)]) of one event of `shape` as the reader sees it."""
    values = {name: SAMPLE.get(vtype, 1) for name, vtype in shape.fields if name}
    writer = EvtxWriter()
    writer.add(shape.make(1_700_000_000 * 10**9, "HOST-1", values))
    path = tmp / f"{shape.key}.evtx"
    writer.write(path)
    [record] = list(PyEvtxParser(str(path)).records_json())
    event = json.loads(record["data"])["Event"]
    data = event.get("EventData") or {}
    fields = (
        [(k, rendered_shape(v)) for k, v in data.items() if k != "#attributes"]
        if isinstance(data, dict)
        else []
    )
    return int(event["System"]["Level"]), fields


ENTRIES = sorted(catalog.load())


@pytest.mark.skipif(not SHAPES.exists(), reason=f"{SHAPES} missing")
def test_the_generator_covers_the_events_the_analysis_reads() -> None:
    shapes = real_shapes()
    known = {(s.channel.lower(), s.event_id) for s in catalog.load().values()}
    read = (
        [
            ("microsoft-windows-moderndeployment-diagnostics-provider/autopilot", i)
            for i in (100, 101, 103, 153)
        ]
        + [("microsoft-windows-user device registration/admin", i) for i in (204, 304, 360)]
        + [
            ("microsoft-windows-devicemanagement-enterprise-diagnostics-provider/admin", i)
            for i in (109, 111)
        ]
    )
    assert all(key in shapes for key in read)
    assert [key for key in read if key not in known] == []


@pytest.mark.skipif(not SHAPES.exists(), reason=f"{SHAPES} missing")
@pytest.mark.parametrize("key", ENTRIES)
def test_the_generator_writes_the_real_shape(key: str, tmp_path: Path) -> None:
    shape = catalog.load()[key]
    real = real_shapes().get((shape.channel.lower(), shape.event_id))
    if real is None:
        pytest.skip(f"{shape.channel} {shape.event_id} is not in the real deployment")
    level, fields = written(shape, tmp_path)
    differs = catalog.real_differs(key)
    problems = []
    if level not in real["levels"] and "level" not in differs:
        problems.append(f"level {level}, real {sorted(real['levels'])}")
    names = [name for name, _ in fields]
    real_names = [name for name, _ in real["fields"]]
    if names != real_names and "fields" not in differs:
        problems.append(f"fields {names}, real {real_names}")
    for (name, got), (_, allowed) in zip(fields, real["fields"], strict=False):
        textual = got == "text" and allowed & {"text", "int-text", "guid"}  # a string field
        if got not in allowed and not textual and "types" not in differs:
            problems.append(f"{name} renders as {got}, real {sorted(allowed)}")
    assert problems == [], f"{key}: {problems}"
