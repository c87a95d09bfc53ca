"""Correlation cost against ingest, on fleet bundles of two sizes, in one run.

    python benchmarks/correlate.py [--devices 10000] [--small 2500] [--repeat 2]
                                   [--out /tmp/evtxdoc-corr]

For each size, `evtxdoc.synth.scale` writes a fleet (one device in five retries, so 10,000
devices make 12,000 attempts; two updated connectors; three attempts in ten failing in a
connector fault) unless it already exists under --out. Then, in this process: ingest
(discover + read + timeline, exactly as `pipeline.analyze` does it), correlation
(`correlate.correlate`), and the check of the attempts against the fleet's expected.yaml.
Prints the best times (ingest: best of --repeat; correlation: best of 3 per ingest run, as
it is short and noisier on a shared machine), correlate / ingest, and the growth of
correlation time against n log n.
"""

from __future__ import annotations

import argparse
import gc
import math
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml
from fleet_ingest import ingest as ingest_fleet

from evtxdoc.correlate import correlate
from evtxdoc.synth.scale import write_scaled

RETRY_EVERY = 5
CORRELATE_RUNS = 3  # per ingest run


def fleet(out: Path, devices: int) -> Path:
    folder = out / f"fleet-{devices}"
    if not (folder / "expected.yaml").exists():
        start = time.perf_counter()
        write_scaled(folder, devices * 32, seed=1, devices=devices, retry_every=RETRY_EVERY)
        print(f"  wrote {folder} in {time.perf_counter() - start:.1f} s")
    return folder


def measure(folder: Path, repeat: int) -> dict:
    ingest = correlating = float("inf")
    for _ in range(repeat):  # best of `repeat` for both, so the ratio compares like with like
        gc.collect()
        frame, coverage, supporting, seconds = ingest_fleet(folder)
        ingest = min(ingest, seconds)
        for _ in range(CORRELATE_RUNS):  # cheap next to ingest, and noisier: run it more
            gc.collect()
            start = time.perf_counter()
            correlation = correlate(frame, supporting, coverage)
            correlating = min(correlating, time.perf_counter() - start)
    expected = yaml.safe_load((folder / "expected.yaml").read_text())["attempts"]
    numbers: Counter = Counter()
    wanted = {}
    for item in expected:  # expected.yaml lists each device's attempts in order
        numbers[item["device"]] += 1
        wanted[(item["device"], numbers[item["device"]])] = (
            item["outcome"],
            item["failed_step"],
            item["computer_name"],
        )
    found = {
        ((a.device.oobe_names or a.device.hosts)[0], a.number): (
            str(a.outcome),
            a.failed_step,
            a.device.computer_name,
        )
        for a in correlation.attempts
    }
    outcome_ok = sum(1 for key, value in found.items() if wanted.get(key, ())[:2] == value[:2])
    return {
        "events": len(frame),
        "ingest": ingest,
        "correlate": correlating,
        "attempts": len(correlation.attempts),
        "expected": len(expected),
        "exact": sum(1 for key, value in found.items() if wanted.get(key) == value),
        "outcome_ok": outcome_ok,
        "matched": Counter(a.match_basis or a.connector_evidence for a in correlation.attempts),
        "devices": sum(1 for m in correlation.machines if m.role == "device"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=2_500)
    parser.add_argument("--repeat", type=int, default=2, help="best of N runs")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "evtxdoc-corr")
    args = parser.parse_args()
    rows = []
    for devices in (args.small, args.devices):
        result = measure(fleet(args.out, devices), args.repeat)
        rows.append((devices, result))
        print(
            f"{devices:>6} devices  {result['events']:>8,} events  "
            f"{result['attempts']:>6,} attempts  ingest {result['ingest']:6.2f} s  "
            f"correlate {result['correlate']:6.2f} s  "
            f"= {100 * result['correlate'] / result['ingest']:4.1f} % of ingest"
        )
        print(
            f"        expected {result['expected']:,} attempts: {result['outcome_ok']:,} with "
            f"the same outcome and step, {result['exact']:,} also with the same computer "
            f"name"
        )
        print(f"        match basis / connector evidence: {dict(result['matched'])}")
    (n1, small), (n2, large) = rows
    growth = large["correlate"] / small["correlate"]
    nlogn = (n2 * math.log(n2)) / (n1 * math.log(n1))
    print(
        f"growth {n1} → {n2} devices: correlate ×{growth:.2f}, n log n ×{nlogn:.2f}, "
        f"linear ×{n2 / n1:.2f}"
    )


if __name__ == "__main__":
    main()
