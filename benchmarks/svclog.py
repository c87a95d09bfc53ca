"""Trace reading throughput (issue 21): a generated 100 MB set of Intune Exchange connector
traces (ten 10 MB Connector*.svclog files, as the circular listener writes them) read by the
streamed reader alone, by the whole read into timeline columns, and by a bare expat pass over
the same bytes (the floor), each in its own process for its own peak RSS; then the reader's
peak RSS on one 10 MB file against one 100 MB file (memory must not grow with file size).

    python benchmarks/svclog.py [--rounds 3] [--mb 100]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FILE_BYTES = 10_000_000  # FileSizeQuotaInBytes of TracingConfiguration.xml


def generate(folder: Path, megabytes: int) -> list[Path]:
    """Ten-MB trace files of syncs, exceptions with stacks and verbose lines (cached)."""
    from evtxdoc.synth.svclog_writer import TraceLine, render

    files = sorted(folder.glob("Connector*.svclog"))
    if files and sum(f.stat().st_size for f in files) >= megabytes * 1_000_000 * 0.98:
        return files
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(21)
    at = 1_700_000_000 * 10**9
    texts = [
        "Handling command: Getting the mobile device list with a time filter (quick sync) for "
        "40 users",
        "Invoking Exchange cmdlet Get-CasMailbox",
        "Getting the mobile device list with a time filter (quick sync) for 40 users completed "
        "successfully. Details: Inventory command result - Devices synced: 3 Command ID: "
        f"{uuid.UUID(int=7)}' Exchange health: 'Server health 'Name: "
        "'PowerShellExchangeServer: <Name=cas01>' Status: Connected','",
        "Get next command failed with exception: System.Management.Automation.Remoting."
        "PSRemotingTransportException: Connecting to remote server cas01.contoso.local failed "
        "with the following error message : WinRM cannot complete the operation.\r\n"
        + "\r\n".join(f"   at Frame{i}.Method(Object arg)" for i in range(30)),
    ]
    kinds = ["Information", "Verbose", "Information", "Error"]
    number, size, handle = 0, 0, None
    total = 0
    while total < megabytes * 1_000_000:
        if handle is None or size >= FILE_BYTES:
            if handle:
                handle.close()
            handle = (folder / f"Connector{number}.svclog").open("w", encoding="utf-8")
            number, size = number + 1, 0
        pick = rng.randrange(len(texts))
        at += rng.randrange(1, 30) * 10**9
        line = TraceLine(at, kinds[pick], texts[pick], str(uuid.UUID(int=rng.getrandbits(128))))
        text = render(line, "OnPremisesExchangeConnectorService", "EXCH01", "svc", 2212, 14)
        handle.write(text)
        size += len(text)
        total += len(text)
    if handle:
        handle.close()
    return sorted(folder.glob("Connector*.svclog"))


def child(mode: str, paths: list[str]) -> None:
    """Run one measurement; print events, seconds, peak RSS (KiB)."""
    from evtxdoc.models import DiscoveredFile, FileKind
    from evtxdoc.parse.svclog import read_trace, trace_events

    start = time.perf_counter()
    events = 0
    for path in paths:
        if mode == "reader":
            events += sum(1 for _ in trace_events(path, path))
        elif mode == "columns":
            file = DiscoveredFile(path, path, FileKind.TRACE, Path(path).stat().st_size, "")
            report, _ = read_trace(file)
            events += report.records
        else:  # the floor: expat over the same bytes, fragments wrapped in one root
            parser = ET.XMLPullParser(events=("end",))
            parser.feed("<root>")
            with Path(path).open(encoding="utf-8") as handle:
                while block := handle.read(1 << 20):
                    parser.feed(block)
                    for _, element in parser.read_events():
                        if element.tag.endswith("E2ETraceEvent"):
                            events += 1
                            element.clear()
            parser.feed("</root>")
    seconds = time.perf_counter() - start
    print(events, seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def measure(mode: str, paths: list[Path]) -> tuple[int, float, int]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, *map(str, paths)],
        check=True, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    return int(out[0]), float(out[1]), int(out[2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--child", nargs="+")
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1:])
        return
    folder = Path(os.environ.get("TMPDIR", tempfile.gettempdir())) / f"evtxdoc-svclog-{args.mb}mb"
    files = generate(folder, args.mb)
    megabytes = sum(f.stat().st_size for f in files) / 1e6
    print(f"{len(files)} trace files, {megabytes:.1f} MB ({folder})")
    best: dict[str, tuple[int, float, int]] = {}
    for _ in range(args.rounds):  # interleaved: each round runs every mode once
        for mode in ("expat", "reader", "columns"):
            result = measure(mode, files)
            if mode not in best or result[1] < best[mode][1]:
                best[mode] = result
    print(f"{'mode':<44}{'events':>10}{'s':>8}{'events/s':>11}{'MB/s':>8}{'peak RSS':>10}")
    names = {
        "expat": "expat pass, wrapped in a root (the floor)",
        "reader": "trace_events (streamed reader)",
        "columns": "read_trace (reader + timeline columns)",
    }
    for mode, (events, seconds, rss) in best.items():
        print(f"{names[mode]:<44}{events:>10,}{seconds:>8.2f}{events / seconds:>11,.0f}"
              f"{megabytes / seconds:>8.1f}{rss / 1024:>8.0f} MB")  # fmt: skip
    one = files[0]
    big = folder / "one-file.svclog"
    if not big.exists():
        with big.open("wb") as handle:
            for f in files:
                handle.write(f.read_bytes())
    small_rss = measure("reader", [one])[2]
    big_rss = measure("reader", [big])[2]
    print(f"reader peak RSS: {one.stat().st_size / 1e6:.0f} MB file {small_rss / 1024:.0f} MB, "
          f"{big.stat().st_size / 1e6:.0f} MB file {big_rss / 1024:.0f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
