"""The coordinator's memory at the start of each stage of one analysis (issue 22).

    python benchmarks/stage_memory.py BUNDLE [--workers 1]

Runs `pipeline.analyze` once in this process and prints, as each stage starts, the resident
memory (RSS) and the peak so far, then the rows kept in the timeline, the rows of the summary of
every event and the events counted. For a fleet: `python benchmarks/fleet.py --sizes 10000000
--per-device 1000 --modes raw` makes the bundle under $TMPDIR/evtxdoc-fleet-10000000-d10000.
"""

from __future__ import annotations

import argparse
import resource
from pathlib import Path

from evtxdoc import pipeline
from evtxdoc.models import AnalyzeOptions


def resident_mb() -> int:
    """This process's resident memory now (Linux: /proc/self/statm)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() // 2**20


def peak_mb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    seen: set[str] = set()

    def progress(stage: str, done: int, total: int, detail: str = "") -> None:
        if stage not in seen:
            seen.add(stage)
            line = f"{stage:10s} starts: RSS {resident_mb():,} MB, peak {peak_mb():,} MB"
            print(line, flush=True)

    analysis = pipeline.analyze([args.bundle], AnalyzeOptions(workers=args.workers), progress)
    print(
        f"end: RSS {resident_mb():,} MB, peak {peak_mb():,} MB; {len(analysis.timeline):,} rows "
        f"kept, summary {len(analysis.every_event):,} rows, {analysis.events:,} events"
    )


if __name__ == "__main__":
    main()
