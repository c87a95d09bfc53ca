"""Shared paths and helpers. Real files are referenced in ../shared/real-evtx, never copied."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
REAL = SHARED / "real-evtx"


def real(name: str) -> Path:
    path = REAL / name
    if not path.exists():
        pytest.skip(f"{path} not present (the shared real-evtx folder sits beside the repo)")
    return path


def real_files() -> list[Path]:
    return sorted(REAL.glob("*.evtx")) if REAL.exists() else []


@pytest.fixture
def copy_real(tmp_path: Path):
    """Copy a real file into tmp_path under a new name (for tests that must alter it)."""

    def _copy(name: str, as_name: str | None = None) -> Path:
        target = tmp_path / (as_name or name)
        shutil.copyfile(real(name), target)
        target.chmod(0o644)
        return target

    return _copy
