"""The watchdog's limits follow the file: a child's memory cap grows with what it reads, and a
child busy pickling its (large) result is not taken for a hung parser."""

from __future__ import annotations

import mmap
import time
from typing import Any

import pytest

from evtxdoc.parse import watchdog

pytestmark = pytest.mark.skipif(not watchdog.guarded(), reason="the watchdog needs fork")
GIB = 1024**3


class SlowToPickle:
    """A result whose pickling takes a second, as a 4M-event file's columns do."""

    def __reduce__(self) -> tuple[Any, ...]:
        time.sleep(1.0)
        return (str, ("pickled",))


def _slow_result(beat: Any) -> SlowToPickle:
    beat()
    return SlowToPickle()


def _reserve(size: int, beat: Any) -> str:
    """Reserve `size` bytes of address space (no page is touched)."""
    beat()
    area = mmap.mmap(-1, size)
    area.close()
    return "reserved"


def test_a_child_pickling_its_result_is_not_a_stall() -> None:
    outcome, value = watchdog._in_child(_slow_result, (), 0.3, 30.0)
    assert (outcome, value) == ("done", "pickled")


def test_the_memory_cap_grows_with_the_bytes_a_child_reads() -> None:
    wanted = 4 * GIB  # above the fixed headroom of 3 GiB
    small = watchdog._in_child(_reserve, (wanted,), 5.0, 30.0)
    assert small[0] == "died"  # MemoryError → the child ends with a SystemExit message
    large = watchdog._in_child(_reserve, (wanted,), 5.0, 30.0, reads=GIB)
    assert large == ("done", "reserved")
