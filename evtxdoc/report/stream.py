"""The JSON document written as it is made: one top-level member at a time, and the long
lists (attempts, findings, coverage, hosts) one item per line, so that the whole document is
never held in memory as objects nor as bytes (a 1M-event fleet's document took 1.3 GB).

The output is the same JSON data as `document()` gives: only the white space differs (one
line per list item instead of indentation), which keeps it readable with `jq` and line tools.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import IO, Any

import orjson

LISTS_BY_LINE = 64  # a list longer than this is written one item per line


def write_json(
    document: dict[str, Any], out: IO[bytes], redact: Callable[[Any], Any] | None = None
) -> None:
    """`document` (whose values may be iterators) as one JSON object on `out`."""
    clean = redact or (lambda value: value)
    out.write(b"{")
    for index, (key, value) in enumerate(document.items()):
        out.write(b"\n" if index == 0 else b",\n")
        out.write(orjson.dumps(clean(key)) + b": ")
        if isinstance(value, list | dict) and len(value) <= LISTS_BY_LINE:
            out.write(orjson.dumps(clean(value)))
        elif isinstance(value, dict):
            _items(((k, v) for k, v in value.items()), out, clean, b"{", b"}")
        elif isinstance(value, Iterable) and not isinstance(value, str | bytes):
            _items(value, out, clean, b"[", b"]")
        else:
            out.write(orjson.dumps(clean(value)))
    out.write(b"\n}\n")


def _items(
    items: Iterable[Any], out: IO[bytes], clean: Callable[[Any], Any], start: bytes, end: bytes
) -> None:
    out.write(start)
    wrote = False
    for item in items:
        out.write(b"\n  " if not wrote else b",\n  ")
        if start == b"{":
            key, value = item
            out.write(orjson.dumps(clean(key)) + b": " + orjson.dumps(clean(value)))
        else:
            out.write(orjson.dumps(clean(item)))
        wrote = True
    out.write(b"\n" + end if wrote else end)
