"""A seeded slice of the fuzz harness (tests/fuzz): mutations of real files, each read under the
watchdog, checked against pyevtx-rs alone. The long run is `python -m tests.fuzz --cases 10000`."""

from __future__ import annotations

from pathlib import Path

import pytest

from evtxdoc.parse.watchdog import guarded
from tests.conftest import REAL
from tests.fuzz import MUTATIONS, case_of, cases, run_case

pytestmark = pytest.mark.skipif(
    not REAL.exists() or not guarded(), reason="needs ../shared/real-evtx and fork"
)
SLICE = 120  # ≈ 15 s on 2 cores


def test_a_seeded_slice_reads_every_case_with_every_record_rs_gives(tmp_path: Path) -> None:
    verdicts = [run_case(case, tmp_path) for case in cases(REAL, SLICE, seed=20261202)]
    assert len(verdicts) == SLICE
    assert sum(v.rs for v in verdicts) > 0  # the cases hold records at all
    failing = [f"{v.case.seed} {v.case.what}: {v.failed}" for v in verdicts if v.failed]
    assert not failing, failing


def test_the_mutations_are_seeded_and_each_changes_the_bytes() -> None:
    first = [c.data for c in cases(REAL, 5, seed=3)]
    assert first == [c.data for c in cases(REAL, 5, seed=3)]
    assert case_of(REAL, 3, 4).data == first[4]
    original = next(iter(sorted(REAL.glob("*.evtx")))).read_bytes()
    import random

    for mutate in MUTATIONS:
        data = bytearray(original)
        mutate(data, random.Random(1))
        assert bytes(data) != original, mutate.__name__


# Cases the long runs found failing, reproduced from their seed: (seed, index), as printed
# `case <seed·10⁶ + index>`. 153, 155, 1353: records whose EventRecordID was damaged to 0 or to
# another record's were taken for one record; 620, 1265, 1683, 1766: rs yields `{"Event":null}`
# for a damaged record (kept now as a header-only record).
REGRESSIONS: list[tuple[int, int]] = [
    (1, 153),
    (1, 155),
    (1, 620),
    (1, 1265),
    (1, 1353),
    (1, 1683),
    (1, 1766),
]


@pytest.mark.parametrize(("seed", "index"), REGRESSIONS)
def test_a_case_that_once_failed_passes(seed: int, index: int, tmp_path: Path) -> None:
    verdict = run_case(case_of(REAL, seed, index), tmp_path)
    assert verdict.failed is None, verdict.failed
