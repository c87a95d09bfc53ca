"""The ingest step the fleet benchmarks time: discover + read + timeline, as
`pipeline.analyze` does it (shared by correlate.py and rules.py)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from evtxdoc import timeline
from evtxdoc.bundle import discover
from evtxdoc.models import AnalyzeOptions
from evtxdoc.parse.files import read_files


def ingest(folder: Path) -> tuple[Any, list, tuple, float]:
    """(timeline frame, coverage, supporting files, seconds) for `folder/bundle`."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        bundle = discover([folder / "bundle"], Path(work), AnalyzeOptions())
        results = read_files(bundle.evtx_files, strict=False, use_fallback=True, workers=None)
    frame, _ = timeline.finish(timeline.build_frame([r.batch for r in results]))
    coverage = timeline.coverage(frame)
    return frame, coverage, tuple(bundle.supporting), time.perf_counter() - start
