"""Fleet-scale speed, memory and output sizes against the raw parser, in one run (issue 20).

    python benchmarks/fleet.py [--sizes 250000 1000000] [--rounds 3] [--per-device 1000]

For each size, `evtxdoc synth --scale N` writes a many-device bundle of the healthy-hybrid
scenario (cached under $TMPDIR/evtxdoc-fleet-N, or evtxdoc-fleet-N-dD with `--per-device`: D
devices of about that many events each, noise included — 1,000 is about the real mix, where 530
of 6,909 events of a deployment are steps). Each round runs, interleaved and each in a fresh
subprocess (so its peak RSS is its own):

1. raw: pyevtx-rs `records_json()` over every .evtx of the bundle, strings not parsed (the
   ceiling evtxdoc is measured against);
2. json1: `pipeline.analyze` with one reading process, then the JSON report written;
3. json2: the same with two reading processes;
4. all1: as json1 with every event's row kept in memory (`--events all`: no partitioning,
   evtxdoc/partition.py; the run before issue 22);
5. html: one reading process, then the HTML report;
6. dask2: as json1, the logs read on a Dask LocalCluster of two worker processes
   (`--scheduler local:2`, its start-up included);
7. pq1: as json1, every event also written as Parquet (`--events-to`; its size is the
   Parquet folder's).

Per mode the best round is kept: wall seconds, events/s, the share of raw's events/s, peak RSS
above the after-import baseline (and bytes per event), the output's size (and bytes per event),
and the time of every stage (discover, read, timeline, correlate, evaluate, write).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "sample_logs" / "healthy-hybrid" / "scenario.yaml"
MODES = ("raw", "json1", "json2", "all1", "html", "dask2", "pq1")

MEASURE = r"""
import json, resource, sys, time
from pathlib import Path
mode, folder, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
import evtx, pandas, orjson
from evtxdoc import pipeline
from evtxdoc.models import AnalyzeOptions
from evtxdoc.report.formats import Format, write
baseline_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
stages, marks, worker_kb = {}, [], []
def progress(stage, done, total, detail=""):
    if stage not in stages:
        stages[stage] = time.perf_counter()
        marks.append(stage)
start = time.perf_counter()
if mode == "raw":
    files = sorted(str(p) for p in folder.rglob("*.evtx"))
    events = sum(1 for f in files for _ in evtx.PyEvtxParser(f).records_json())
    size = 0
else:
    options = AnalyzeOptions(
        workers=2 if mode == "json2" else 1, scheduler="local:2" if mode == "dask2" else None,
        all_events=mode == "all1",
        events_to=str(out.parent / "parquet") if mode == "pq1" else None,
    )
    if mode == "dask2":  # each worker's peak RSS, asked before the cluster closes
        from evtxdoc.parse import distributed
        real = distributed.read_on_cluster
        def spied(files, client, **kwargs):
            out = real(files, client, **kwargs)
            peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            worker_kb.extend(client.run(peak).values())
            return out
        distributed.read_on_cluster = spied
    analysis = pipeline.analyze([folder], options, progress)
    events = sum(r.records for r in analysis.file_reports)
    progress("write", 0, 1)
    with out.open("wb") as handle:
        write(analysis, Format.html if mode == "html" else Format.json, handle)
    size = out.stat().st_size
    if mode == "pq1":
        size = sum(p.stat().st_size for p in (out.parent / "parquet").rglob("*.parquet"))
end = time.perf_counter()
marks.append("end"); stages["end"] = end
timing = {name: round(stages[after] - stages[name], 3) for name, after in zip(marks, marks[1:])}
print(json.dumps({
    "mode": mode, "events": events, "seconds": end - start, "size": size, "stages": timing,
    "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "baseline_kb": baseline_kb,
    "child_peak_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    "worker_peak_kb": worker_kb,
}))
"""


def bundle_of(size: int, per_device: int | None = None) -> Path:
    devices = max(1, size // per_device) if per_device else None
    name = f"evtxdoc-fleet-{size}" + (f"-d{devices}" if devices else "")
    folder = Path(tempfile.gettempdir()) / name
    if not (folder / "bundle").is_dir():
        extra = ["--devices", str(devices)] if devices else []
        subprocess.run(
            [sys.executable, "-m", "evtxdoc", "synth", str(SCENARIO), "--scale", str(size),
             *extra, "-o", str(folder)],
            check=True, cwd=ROOT,
        )  # fmt: skip
    return folder / "bundle"


def measure(mode: str, bundle: Path, out: Path) -> dict:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, mode, str(bundle), str(out)],
        check=True, capture_output=True, text=True, cwd=ROOT, env=env,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[250_000, 1_000_000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--per-device", type=int, default=None, help="events a device")
    args = parser.parse_args()
    for size in args.sizes:
        bundle = bundle_of(size, args.per_device)
        best: dict[str, dict] = {}
        with tempfile.TemporaryDirectory() as work:
            for _ in range(args.rounds):
                for mode in args.modes:
                    result = measure(mode, bundle, Path(work) / f"report.{mode}")
                    if mode not in best or result["seconds"] < best[mode]["seconds"]:
                        best[mode] = result
        raw = best.get("raw")
        shape = f", {args.per_device} events a device" if args.per_device else ""
        print(f"\n== synth --scale {size}{shape}: best of {args.rounds} round(s)")
        print(f"{'mode':<6} {'events':>9} {'wall s':>7} {'ev/s':>8} {'vs raw':>7} "
              f"{'peak MB':>8} {'B/ev':>6} {'out MB':>7} {'B/ev':>5}  stages (s)")  # fmt: skip
        for mode, r in best.items():
            rate = r["events"] / r["seconds"]
            share = f"{100 * rate / (raw['events'] / raw['seconds']):.1f}%" if raw else "-"
            peak = (r["peak_kb"] - r["baseline_kb"]) * 1024
            stages = " ".join(f"{k} {v}" for k, v in r["stages"].items())
            print(f"{mode:<6} {r['events']:>9,} {r['seconds']:>7.1f} {rate:>8,.0f} {share:>7} "
                  f"{peak / 1e6:>8.0f} {peak / r['events']:>6.0f} {r['size'] / 1e6:>7.1f} "
                  f"{r['size'] / r['events']:>5.0f}  {stages}")  # fmt: skip
            if r.get("worker_peak_kb"):
                workers = ", ".join(f"{kb / 1024:.0f}" for kb in r["worker_peak_kb"])
                print(f"{'':<6} worker peak RSS (MB): {workers}")


if __name__ == "__main__":
    main()
