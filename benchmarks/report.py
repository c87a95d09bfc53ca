"""Report cost against the analysis of the same bundle, in one run.

    python benchmarks/report.py [--devices 1000] [--events 100000] [--repeat 2]
                                [--out /tmp/evtxdoc-report]

A fleet bundle of --devices devices (about --events events; one device in six retries, three
attempts in ten fail in a connector fault) is written by `evtxdoc.synth.scale` unless it exists
under --out. In this process: the raw parser over the bundle's files (pyevtx-rs records_json,
for scale), `pipeline.analyze` (discover, read, correlate, evaluate; best of --repeat), then
each output written from that analysis (best of --repeat): the HTML report, the HTML report
with --redact, the JSON document, the terminal text, the Timesketch JSONL. Prints times, the
share of the analysis time and the size of each output. The bar (issue 6): HTML under 10 % of
the analysis time and under 15 MB.
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import evtx

from evtxdoc import pipeline
from evtxdoc.models import AnalyzeOptions
from evtxdoc.report.formats import Format, OutputOptions, write
from evtxdoc.synth.scale import write_scaled


def fleet(out: Path, devices: int, events: int) -> Path:
    folder = out / f"fleet-{devices}-{events}"
    if not (folder / "bundle").exists():
        started = time.perf_counter()
        write_scaled(folder, events, seed=7, devices=devices)
        print(f"wrote {folder} in {time.perf_counter() - started:.1f} s")
    return folder / "bundle"


def best(repeat: int, run):  # type: ignore[no-untyped-def]
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("/tmp/evtxdoc-report"))
    args = parser.parse_args()
    bundle = fleet(args.out, args.devices, args.events)
    files = sorted(p for p in bundle.rglob("*.evtx"))
    raw, count = best(
        args.repeat, lambda: sum(1 for f in files for _ in evtx.PyEvtxParser(str(f)).records_json())
    )
    analysis_s, analysis = best(args.repeat, lambda: pipeline.analyze([bundle], AnalyzeOptions()))
    correlation, evaluation = analysis.correlation, analysis.evaluation
    print(
        f"bundle: {len(files)} files, {count:,} events, "
        f"{len({a.device.machine for a in correlation.attempts}):,} devices, "
        f"{len(correlation.attempts):,} attempts, {len(evaluation.findings):,} findings"
    )
    print(f"raw parser (pyevtx-rs records_json): {raw:.2f} s")
    print(f"analysis (pipeline.analyze):          {analysis_s:.2f} s")
    print(f"{'output':<16}{'seconds':>9}{'% of analysis':>15}{'size MB':>10}")
    for name, fmt, redact in (
        ("html", Format.html, False),
        ("html --redact", Format.html, True),
        ("json", Format.json, False),
        ("terminal", Format.terminal, False),
        ("jsonl", Format.jsonl, False),
    ):

        def run(fmt: Format = fmt, redact: bool = redact) -> int:
            out = io.BytesIO()
            write(analysis, fmt, out, OutputOptions(redact=redact))
            return len(out.getvalue())

        seconds, size = best(args.repeat, run)
        print(f"{name:<16}{seconds:>9.2f}{100 * seconds / analysis_s:>14.1f}%{size / 1e6:>10.2f}")


if __name__ == "__main__":
    main()
