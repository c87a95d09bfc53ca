"""Archive bombs are refused within the bundle's budget, each with a problem naming the archive
and the entry, and what is refused many times is counted, not listed 80,000 times (issue 18).
Peak memory of each is measured by benchmarks/bombs.py."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from evtxdoc.bundle import archive, discover
from evtxdoc.models import AnalyzeOptions
from tests.bombs import (
    MIB,
    cab_of_zero_blocks,
    folder_size,
    many_entries_zip,
    nested_unique_zips,
    zeros_zip,
)


def _discover(tmp_path: Path, path: Path, **options: int) -> tuple[list, Path]:
    work = tmp_path / "work"
    work.mkdir()
    bundle = discover([path], work, AnalyzeOptions(**options))  # type: ignore[arg-type]
    return bundle.problems, work


def test_a_cab_of_zero_blocks_is_read_a_block_at_a_time_and_named(tmp_path: Path) -> None:
    cab = cab_of_zero_blocks(tmp_path / "bomb.cab")  # 16,384 blocks: 512 MiB for 100 bytes
    problems, work = _discover(tmp_path, cab)
    named = [p for p in problems if p.kind == "compression_ratio"]
    assert named and named[0].source == f"{cab}!/MdmLogs.evtx"
    assert "16384 data blocks for 100 declared bytes" in named[0].message
    assert folder_size(work) == 100  # the declared bytes, nothing past them


def test_nested_unique_zips_stop_at_one_budget_for_the_whole_nesting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(archive, "EXPANSION_FLOOR", 32 * MIB)  # the real floor is 512 MiB
    bomb = nested_unique_zips(tmp_path / "nested.zip")  # ~40 KB → 100 unique × 4 MiB
    problems, work = _discover(tmp_path, bomb)
    refused = [p for p in problems if p.kind == "too_large"]
    assert len(refused) == archive.PROBLEMS_PER_KIND + 1  # listed, then counted
    assert refused[0].source.startswith(f"{bomb}!/level2-")
    assert "!/level1-" in refused[0].source and refused[0].source.endswith("System.evtx")
    assert folder_size(work) <= 32 * MIB  # every unpacked byte counts against one budget


def test_a_deflate_bomb_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    bomb = tmp_path / "deflate.zip"
    bomb.write_bytes(zeros_zip(1024 * MIB))  # 1 GiB of zeros in ~1 MB: ~1000:1, under 1,100:1
    problems, work = _discover(tmp_path, bomb)
    assert [(p.kind, p.source) for p in problems] == [("too_large", f"{bomb}!/System.evtx")]
    assert folder_size(work) == 0


def test_a_bzip2_bomb_is_refused_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archive, "EXPANSION_FLOOR", 32 * MIB)
    bomb = tmp_path / "bzip2.zip"
    bomb.write_bytes(zeros_zip(64 * MIB, method=zipfile.ZIP_BZIP2))  # a few hundred bytes
    problems, work = _discover(tmp_path, bomb)
    assert [p.kind for p in problems] == ["too_large"]
    assert folder_size(work) == 0


def test_a_flood_of_entries_gives_a_bounded_list_of_problems(tmp_path: Path) -> None:
    flood = many_entries_zip(tmp_path / "flood.zip", entries=30_000)
    problems, _ = _discover(tmp_path, flood, max_entries=1_000)
    refused = [p for p in problems if p.kind == "too_many_entries"]
    assert len(refused) == archive.PROBLEMS_PER_KIND + 1
    assert refused[-1].source == str(flood)
    assert f"{29_000 - archive.PROBLEMS_PER_KIND} more 'too_many_entries'" in refused[-1].message


def test_a_real_sized_bundle_still_unpacks_under_the_floor(tmp_path: Path) -> None:
    """Twenty empty preallocated 20 MiB logs (~1000:1 each) are a legal bundle."""
    path = tmp_path / "empty-logs.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bundle:
        for number in range(20):
            bundle.writestr(f"log{number}.evtx", bytes(MIB) + number.to_bytes(2, "little"))
    problems, work = _discover(tmp_path, path)
    assert {p.kind for p in problems} <= {"not_evtx"}  # zeros are no EVTX; nothing refused
    assert folder_size(work) == 20 * (MIB + 2)


def test_any_flood_of_one_kind_is_capped_with_a_count() -> None:
    from evtxdoc.models import Problem

    flood = [Problem(f"b.zip!/{n}.evtx", "not_evtx", "zeros") for n in range(50)]
    kept = archive.capped([*flood, Problem("a.evtx", "torn_record", "cut")])
    assert [p.kind for p in kept].count("not_evtx") == archive.PROBLEMS_PER_KIND + 1
    assert kept[-1].source == "b.zip" and "30 more 'not_evtx'" in kept[-1].message
    assert "torn_record" in [p.kind for p in kept]
