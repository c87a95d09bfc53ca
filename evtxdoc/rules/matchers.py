"""Value matchers: one scalar meaning, applied to whole columns through their unique values.

A matcher spec is a value (equals), a list (in), or a mapping of operators that must all hold:
`equals`, `in`, `regex`, `contains`, `gt`/`ge`/`lt`/`le`, `exists`, `code`, `not`.
String comparisons ignore case (Windows names do). `code` compares error codes in every form
(`0x80070774`, `80070774`, `-2147022988`, Win32 `1908`, NERR `2710`, symbolic names).
Columns are matched by evaluating the scalar test once per distinct value (`pd.factorize`),
so a million rows with a handful of distinct values cost a handful of tests.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from evtxdoc import catalog
from evtxdoc.errors import EvtxdocError

if TYPE_CHECKING:  # pandas and numpy load when a column is matched: `rules lint` needs neither
    import numpy as np
    import pandas as pd

Test = Callable[[Any], bool]


@dataclass(frozen=True)
class Matcher:
    """A compiled matcher; `spec` is what the rule wrote (for display and caching)."""

    spec: Any
    test: Test
    # The only 32-bit values a match can hold when the matcher requires a `code` (None: it
    # can match anything); the engine skips decoding events whose payload cannot hold one.
    codes: frozenset[int] | None = None

    def __call__(self, value: Any) -> bool:
        return self.test(value)

    def column(self, values: pd.Series | list[Any]) -> np.ndarray:
        """Boolean mask over `values`, one test per distinct value."""
        import numpy as np
        import pandas as pd

        series = values if isinstance(values, pd.Series) else pd.Series(values, dtype=object)
        if series.empty:
            return np.zeros(0, dtype=bool)
        try:
            codes, uniques = pd.factorize(series, use_na_sentinel=True)
        except TypeError:  # lists or dicts among the values
            codes, uniques = pd.factorize(series.map(_hashable), use_na_sentinel=True)
        results = np.fromiter(
            (self.test(_restore(u)) for u in uniques), dtype=bool, count=len(uniques)
        )
        missing = self.test(None)
        return np.where(
            codes >= 0, results[np.maximum(codes, 0)] if len(results) else False, missing
        )


class MatcherError(EvtxdocError, ValueError):
    """A matcher spec that cannot work (bad regex, unknown code); `key` says where."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


def _hashable(value: Any) -> Any:
    if isinstance(value, list | dict):
        return repr(value)
    return value


def _restore(value: Any) -> Any:
    return None if value is None or (isinstance(value, float) and value != value) else value


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def number(value: Any) -> float | None:
    """A numeric reading of a value: numbers, decimal or hex strings (codes)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    parsed = catalog.parse_code(text) if text.lower().startswith("0x") else None
    return float(parsed) if parsed is not None else None


def _equals(expected: Any) -> Test:
    if expected is None:
        return lambda value: value is None or value == ""
    if isinstance(expected, bool):
        word = "true" if expected else "false"
        return lambda value: value is expected or (_text(value) or "").lower() == word
    if isinstance(expected, int | float):
        target = float(expected)
        return lambda value: number(value) == target
    folded = str(expected).casefold()
    return lambda value: value is not None and str(value).casefold() == folded


def code_values(spec: Any) -> tuple[set[int], set[int]]:
    """The values and Win32 numbers a `code` spec stands for (names through the catalog)."""
    specs = spec if isinstance(spec, list) else [spec]
    values: set[int] = set()
    win32: set[int] = set()
    for item in specs:
        value = catalog.parse_code(item)
        if value is None:
            entries = catalog.load().lookup(str(item))
            if not entries:
                raise MatcherError(
                    f"{item!r} is neither a number nor a code name the catalog knows", "code"
                )
            for entry in entries:
                if entry.value is not None:
                    values.add(entry.value)
                if entry.win32 is not None:
                    win32.add(entry.win32)
            continue
        values.add(value)
        small = catalog.win32_of(value)
        if small is not None:
            win32.add(small)
    return values, win32


def accepted_codes(spec: Any, bare: bool = True) -> frozenset[int]:
    """Every unsigned 32-bit value a `code` test accepts: the codes themselves, for each Win32
    number w the HRESULT 0x8007xxxx that carries it, and (`bare`) w itself."""
    values, win32 = code_values(spec)
    small = {w for w in win32 if w < 0x10000}
    accepted = values | {0x80070000 | w for w in small} | (small if bare else set())
    return frozenset(v for v in accepted if bare or v >= 0x10000)


def _code(spec: Any, bare: bool = True) -> Test:
    """`bare=False` (any_field): only HRESULT-sized values count; a field that merely holds 13
    is not ERROR_INVALID_DATA when nothing says the field is a code."""
    accepted = accepted_codes(spec, bare)

    def test(value: Any) -> bool:
        if value is None or isinstance(value, bool):
            return False
        return catalog.parse_code(value if isinstance(value, int) else str(value)) in accepted

    return test


def _compare(op: str, bound: float) -> Test:
    ops: dict[str, Callable[[float, float], bool]] = {
        "gt": float.__gt__,
        "ge": float.__ge__,
        "lt": float.__lt__,
        "le": float.__le__,
    }
    compare = ops[op]
    bound = float(bound)

    def test(value: Any) -> bool:
        reading = number(value)
        return reading is not None and compare(reading, bound)

    return test


def _operator(op: str, arg: Any, bare: bool = True) -> Test:
    if op == "equals":
        return _equals(arg)
    if op == "in":
        tests = [_equals(item) for item in arg]
        return lambda value: any(t(value) for t in tests)
    if op == "regex":
        try:
            pattern = re.compile(str(arg), re.IGNORECASE)
        except re.error as exc:
            raise MatcherError(f"bad regex {arg!r}: {exc}", "regex") from exc
        return lambda value: value is not None and pattern.search(_text(value) or "") is not None
    if op == "contains":
        needle = str(arg).casefold()
        return lambda value: value is not None and needle in (_text(value) or "").casefold()
    if op in ("gt", "ge", "lt", "le"):
        return _compare(op, arg)
    if op == "exists":
        wanted = bool(arg)
        return lambda value: (value is not None and value != "") is wanted
    if op == "code":
        return _code(arg, bare)
    if op == "not":
        inner = compile_matcher(arg, bare_codes=bare)
        return lambda value: not inner.test(value)
    raise MatcherError(f"unknown operator {op!r}", op)


def compile_matcher(spec: Any, bare_codes: bool = True) -> Matcher:
    """A spec as rules write it → a Matcher (raises MatcherError). `bare_codes=False` (for
    any_field) makes `code` ignore bare Win32 numbers, which any counter or id could equal."""
    if isinstance(spec, dict):
        tests = [_operator(op, arg, bare_codes) for op, arg in spec.items()]
        codes = accepted_codes(spec["code"], bare_codes) if "code" in spec else None
        if len(tests) == 1:
            return Matcher(spec, tests[0], codes)
        return Matcher(spec, lambda value: all(t(value) for t in tests), codes)
    if isinstance(spec, list):
        return Matcher(spec, _operator("in", spec))
    return Matcher(spec, _equals(spec))
