"""Writer throughput and a large generated bundle, measured in one run.

    python benchmarks/synth.py [--events 200000] [--scale 1000000 --out /tmp/evtxdoc-scale]

1. writer: `EvtxWriter` on `--events` catalog events (records/s, MB/s), then pyevtx-rs reading
   the same file back (`records_json()`), so the two rates sit side by side;
2. scale (optional): `evtxdoc synth --scale N` — the fleet bundle later issues use for
   correlation and rules benchmarks; prints its size, files and events and the time it took.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import evtx

from evtxdoc.synth.catalog import shape
from evtxdoc.synth.scale import write_scaled
from evtxdoc.synth.writer import EvtxWriter

T0 = 1_757_923_200_000_000_000


def catalog_events(count: int):
    state, message = shape("odj_state"), shape("dmedp_noise_814")
    for index in range(count):
        if index % 2:
            yield state.make(T0 + index * 1_000_000, "DESKTOP-4F7Q2LM", {"HexInt1": index % 4})
        else:
            yield message.make(
                T0 + index * 1_000_000,
                "DESKTOP-4F7Q2LM",
                {
                    "HexInt1": 1,
                    "HexInt2": 0,
                    "Message1": "./Device/Vendor/MSFT/Policy/Config",
                    "Message2": f"Update{index}",
                    "Message3": "1",
                    "Message4": "",
                    "Message5": "int",
                },
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--scale", type=int, default=0, help="also write a --scale bundle")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    events = list(catalog_events(args.events))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.evtx"
        start = time.perf_counter()
        writer = EvtxWriter()
        writer.extend(events)
        data = writer.to_bytes()
        path.write_bytes(data)
        wrote = time.perf_counter() - start
        start = time.perf_counter()
        read = sum(1 for _ in evtx.PyEvtxParser(str(path)).records_json())
        parsed = time.perf_counter() - start
    assert read == len(events)
    megabytes = len(data) / 1e6
    print(
        f"writer      {len(events) / wrote:>10,.0f} records/s {megabytes / wrote:7.1f} MB/s "
        f"({len(events):,} records, {megabytes:.1f} MB, {len(writer.chunks)} chunks)"
    )
    print(
        f"rs reading  {read / parsed:>10,.0f} records/s {megabytes / parsed:7.1f} MB/s (same file)"
    )
    if args.scale:
        out = args.out or Path(tempfile.mkdtemp(prefix="evtxdoc-scale-"))
        start = time.perf_counter()
        written = write_scaled(out, args.scale)
        seconds = time.perf_counter() - start
        files = [p for p in written if p.suffix == ".evtx"]
        total = sum(p.stat().st_size for p in files)
        count = sum(sum(1 for _ in evtx.PyEvtxParser(str(p)).records_json()) for p in files)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"scale       {count:,} events in {len(files)} files, {total / 1e6:.0f} MB, "
            f"written in {seconds:.0f} s ({count / seconds:,.0f} events/s end to end, "
            f"peak RSS {peak:.0f} MB) → {out}"
        )


if __name__ == "__main__":
    main()
