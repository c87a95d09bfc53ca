"""Ingest speed and memory against the raw parser, measured in one run on the same files.

    python benchmarks/ingest.py [--copies 7] [--real ../shared/real-evtx]

1. raw: pyevtx-rs `records_json()` strings, not parsed (the ceiling);
2. ingest, 1 process: `pipeline.analyze` to the timeline DataFrame (and the join attempts),
   rules off (`evaluate=False`; benchmarks/rules.py measures them), workers=1;
3. ingest, 2 processes: the same bundle with workers=2 (several files: both cores);
4. analyze, 1 process: the whole `pipeline.analyze`, rules included, for reference;
each in a fresh subprocess, so that its peak RSS is its own. The bundle is the 16 MiB
`big-security-mit-derived.evtx` (28,645 real Windows records) repeated `--copies` times, each
copy made distinct by one byte in the unused header padding (so it is not skipped as the same
file). Events read = 28,645 × copies; the timeline then keeps one copy of each event (the rest
are duplicates across files), but every copy is parsed and held until then, so peak memory is
measured for all events read. Memory is peak RSS above the after-import baseline.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIG = "big-security-mit-derived.evtx"
MODES = ("raw", "ingest1", "ingest2", "analyze1")

MEASURE = r"""
import json, resource, sys, time
from pathlib import Path
mode, folder = sys.argv[1], Path(sys.argv[2])
files = sorted(str(p) for p in folder.glob("*.evtx"))
import evtx, pandas, orjson
from evtxdoc import pipeline
from evtxdoc.models import AnalyzeOptions
baseline_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter(); cpu0 = time.process_time()
if mode == "raw":
    events = sum(1 for f in files for _ in evtx.PyEvtxParser(f).records_json())
    kept = events
else:
    workers = 2 if mode == "ingest2" else 1
    options = AnalyzeOptions(workers=workers, evaluate=mode == "analyze1")
    analysis = pipeline.analyze([folder], options)
    events = sum(r.records for r in analysis.file_reports)
    kept = len(analysis.timeline)
seconds = time.perf_counter() - start
children = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({
    "mode": mode, "events": events, "kept": kept, "seconds": seconds,
    "bytes": sum(Path(f).stat().st_size for f in files),
    "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "baseline_kb": baseline_kb,
    "child_peak_kb": children.ru_maxrss,
    "cpu_seconds": time.process_time() - cpu0 + children.ru_utime + children.ru_stime,
}))
"""


def build_bundle(real: Path, copies: int, folder: Path) -> None:
    source = real / BIG
    for index in range(copies):
        target = folder / f"copy{index:02d}.evtx"
        shutil.copyfile(source, target)
        with target.open("r+b") as handle:  # bytes 128..4095 of the header: unused padding
            handle.seek(200)
            handle.write(bytes([index + 1]))


def measure(mode: str, folder: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, mode, str(folder)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=7)
    parser.add_argument("--real", type=Path, default=ROOT.parent / "shared" / "real-evtx")
    parser.add_argument("--repeat", type=int, default=5, help="runs per mode (best is kept)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        build_bundle(args.real, args.copies, folder)
        runs: dict[str, list[dict]] = {mode: [] for mode in MODES}
        for _ in range(args.repeat):  # interleaved: every mode sees the same machine load
            for mode in MODES:
                runs[mode].append(measure(mode, folder))
        results = {mode: min(found, key=lambda r: r["seconds"]) for mode, found in runs.items()}
    raw = results["raw"]
    raw_rate = raw["events"] / raw["seconds"]
    print(
        f"bundle: {args.copies} × {BIG}, {raw['bytes'] / 1e6:.1f} MB, "
        f"{raw['events']:,} events read (best of {args.repeat})"
    )
    print(
        f"{'mode':<22}{'events/s':>12}{'MB/s':>9}{'vs raw':>9}{'cpu/wall':>10}"
        f"{'peak RSS':>11}{'B/event':>9}"
    )
    for mode, label in (
        ("raw", "raw rs records_json"),
        ("ingest1", "ingest, 1 process"),
        ("ingest2", "ingest, 2 processes"),
        ("analyze1", "analyze (+rules), 1 p"),
    ):
        r = results[mode]
        rate = r["events"] / r["seconds"]
        extra = (r["peak_kb"] - r["baseline_kb"]) * 1024
        per_event = extra / r["events"]
        print(
            f"{label:<22}{rate:>12,.0f}{r['bytes'] / 1e6 / r['seconds']:>9.1f}"
            f"{rate / raw_rate:>9.1%}{r['cpu_seconds'] / r['seconds']:>10.2f}"
            f"{r['peak_kb'] / 1024:>9.0f}MB{per_event:>9.0f}"
        )
    two = results["ingest2"]
    print(
        f"2 processes: main peak {two['peak_kb'] / 1024:.0f} MB, largest worker peak "
        f"{two['child_peak_kb'] / 1024:.0f} MB; timeline kept {two['kept']:,} events "
        "(copies are duplicates of each other)"
    )


if __name__ == "__main__":
    main()
