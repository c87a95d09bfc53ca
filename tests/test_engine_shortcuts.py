"""The engine's shortcuts must never change a result: the payload code search, window
restriction and shared decoding are checked against the plain definitions they replace."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest

from evtxdoc import catalog
from evtxdoc.parse.payload import code_pattern, decode_fields, encode_payload
from evtxdoc.rules import windows as rule_windows
from evtxdoc.rules.matchers import accepted_codes, compile_matcher

E_FAIL = 0x80004005
ACCESS_DENIED_HRESULT = 0x80070005
CODES = [E_FAIL, ACCESS_DENIED_HRESULT, 0x801C03F3, 0x80072EE7, 2731, 5, 0]


def spellings(code: int) -> list[object]:
    """Every way a log may carry `code` that `catalog.parse_code` reads back as `code`."""
    signed = code - (1 << 32) if code >= 1 << 31 else code
    out: list[object] = [
        code,
        signed,
        str(code),
        str(signed),
        f"0x{code:08X}",
        f"0x{code:x}",
        f"0X{code:X}",
        f" 0x{code:08x} ",
        f"0xFFFFFFFF{code:08X}",
        f"0x000{code:x}",
        f"+{code}",
        f"000{code}",
    ]
    if code >= 0x80000000:
        out.append(f"{code:08x}")  # ESP's 8 hex digits without 0x
    return [s for s in out if catalog.parse_code(s if isinstance(s, int) else str(s)) == code]


def carriers(value: object) -> list[dict[str, object]]:
    """Payloads holding `value`: EventData by name, unnamed Data, UserData, connector bodies."""
    text = value if isinstance(value, str) else str(value)
    return [
        {"EventData": {"ErrorCode": value}},
        {"EventData": {"Data": {"#text": ["x", value]}}},
        {"UserData": {"Evt": {"Inner": {"Code": value}, "#attributes": {"xmlns": "urn:x"}}}},
        {
            "EventData": {
                "Data": {
                    "#text": "EventType: x\r\nDeviceName: AP-1\r\n"
                    f"DiagnosticCode: {text}\r\nDiagnosticText: t"
                }
            }
        },
        {
            "EventData": {
                "Data": {
                    "#text": '{"Metric":{"Dimensions":{"ErrorCode":"'
                    + text
                    + '"},"Name":"N","Value":0}}'
                }
            }
        },
    ]


@pytest.mark.parametrize("code", CODES)
def test_every_spelling_of_a_code_passes_the_payload_search(code: int) -> None:
    for bare in (True, False):
        accepted = accepted_codes(code, bare)
        if not accepted:
            continue
        search = code_pattern(accepted).search
        for spelling in spellings(code):
            for parts in carriers(spelling):
                payload = encode_payload(parts)
                channel = "Microsoft-Intune-ODJConnectorService/Operational"
                values = decode_fields(payload, channel).values()
                if any(compile_matcher({"code": code}, bare).test(v) for v in values):
                    assert search(payload), (code, spelling, parts)


def test_the_payload_search_never_misses_a_match_on_random_payloads() -> None:
    rng = random.Random(7)
    codes = [E_FAIL, ACCESS_DENIED_HRESULT, 0x80072EE7]
    matcher = compile_matcher({"code": codes}, bare_codes=False)
    search = code_pattern(matcher.codes).search
    pool = (
        [s for c in codes for s in spellings(c)]
        + [rng.randrange(-(1 << 31), 1 << 32) for _ in range(50)]
        + [f"0x{rng.randrange(1 << 32):x}" for _ in range(50)]
        + ["text", "", None, True, 1.5]
    )
    matched = 0
    for _ in range(3000):
        parts = rng.choice(carriers(rng.choice(pool)))
        payload = encode_payload(parts)
        if any(matcher.test(v) for v in decode_fields(payload).values()):
            matched += 1
            assert search(payload), parts
    assert matched > 100  # the property was exercised on real matches


def test_any_field_ignores_bare_win32_numbers_but_a_named_field_does_not() -> None:
    anywhere = compile_matcher({"code": "ERROR_ACCESS_DENIED"}, bare_codes=False)
    named = compile_matcher({"code": "ERROR_ACCESS_DENIED"})
    assert not anywhere.test("5") and not anywhere.test(5)  # a count of 5 is not a code
    assert anywhere.test("0x80070005") and anywhere.test(-2147024891)
    assert named.test("5") and named.test("0x80070005")


@pytest.mark.parametrize("text", ["6442450949", "٥", "0x_5", "1.5", "5e3", ""])
def test_numbers_that_are_not_32_bit_codes_are_not_read_as_codes(text: str) -> None:
    assert catalog.parse_code(text) is None


def test_sign_extended_hex_keeps_its_low_32_bits() -> None:
    assert catalog.parse_code("0xFFFFFFFF80070774") == 0x80070774


def _line(hosts: np.ndarray, times: np.ndarray) -> rule_windows.Timeline:
    frame = pd.DataFrame(
        {
            "ts": pd.to_datetime(times, unit="ns", utc=True),
            "host": pd.Categorical(
                [f"h{h}" for h in hosts], categories=[f"h{i}" for i in range(4)]
            ),
            "channel": pd.Categorical(["c"] * len(hosts)),
            "provider": pd.Categorical(["p"] * len(hosts)),
            "event_id": np.ones(len(hosts), dtype=np.int32),
            "message": [None] * len(hosts),
            "payload": [encode_payload({})] * len(hosts),
        }
    )
    return rule_windows.Timeline(frame)


@pytest.mark.parametrize("ordered", [True, False])
def test_window_membership_and_counts_match_a_plain_loop(ordered: bool) -> None:
    rng = np.random.default_rng(3)
    hosts = rng.integers(0, 4, 400)
    times = rng.integers(0, 1000, 400)
    if ordered:
        times = np.sort(times)
    line = _line(hosts, times)
    rows = [
        (a, rng.integers(0, 4), lo, lo + rng.integers(0, 80), 0)
        for a in range(30)
        for lo in rng.integers(0, 1000, 2)
    ]
    windows = rule_windows.Windows.build(rows)
    positions = np.flatnonzero(rng.random(400) < 0.6)
    inside = rule_windows.inside(line, positions, windows)
    hits = rule_windows.count_in_windows(line, positions, windows, 30)
    for index, position in enumerate(positions):
        covering = [w for w in rows if w[1] == hosts[position] and w[2] <= times[position] <= w[3]]
        assert inside[index] == bool(covering)
    for attempt in range(30):
        expected = sorted(
            {
                int(p)
                for p in positions
                for w in rows
                if w[0] == attempt and w[1] == hosts[p] and w[2] <= times[p] <= w[3]
            }
        )
        assert sorted(hits.positions(attempt).tolist()) == expected
        assert hits.count[attempt] == sum(
            1
            for p in positions
            for w in rows
            if w[0] == attempt and w[1] == hosts[p] and w[2] <= times[p] <= w[3]
        )
