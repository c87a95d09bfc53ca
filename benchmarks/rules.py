"""Rule evaluation cost against ingest, for the knowledge base ×1 and ×10, in one run.

    python benchmarks/rules.py [--events 1000000] [--attempts 10000] [--repeat 2]
                               [--out /tmp/evtxdoc-rules]

A fleet bundle of about --events events with about --attempts join attempts is written by
`evtxdoc.synth.scale` (one device in five retries; three attempts in ten fail in a connector
fault) unless it exists under --out. In this process: ingest (discover + read + timeline, as
`pipeline.analyze` does it, best of --repeat), correlation (once), then `engine.evaluate` with
the built-in knowledge base and with 10 distinct copies of it (each copy's selectors carry one
more field condition, so no copy can reuse another's results; ids and `supersedes` renamed).
Prints times, evaluate / ingest, findings per severity, root causes against the fleet's
faults, and the peak RSS growth of the evaluation.
"""

from __future__ import annotations

import argparse
import gc
import resource
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from fleet_ingest import ingest as ingest_fleet

from evtxdoc.catalog import RULES_DIR
from evtxdoc.correlate import correlate
from evtxdoc.rules import engine, load_rules
from evtxdoc.rules.loader import rule_files
from evtxdoc.synth.scale import write_scaled

RETRY_EVERY = 5  # 5 devices → 6 attempts


def fleet(out: Path, events: int, attempts: int) -> Path:
    devices = round(attempts * RETRY_EVERY / (RETRY_EVERY + 1))
    folder = out / f"fleet-{events}-{devices}"
    if not (folder / "expected.yaml").exists():
        start = time.perf_counter()
        write_scaled(folder, events, seed=3, devices=devices, retry_every=RETRY_EVERY)
        print(f"  wrote {folder} in {time.perf_counter() - start:.1f} s")
    return folder


def _selectors(match: dict[str, Any]) -> list[dict[str, Any]]:
    found = [s for group in ("events", "absent") for s in (match.get(group) or {}).values()]
    for branch in match.get("any") or ():
        found += _selectors(branch)
    return found


def copies(target: Path, count: int) -> Path:
    """`count` distinct copies of the knowledge base, written as rule files."""
    for path in rule_files(RULES_DIR):
        raw = yaml.safe_load(path.read_text("utf-8"))
        for index in range(count):
            rule = yaml.safe_load(yaml.safe_dump(raw))
            suffix = f"-copy{index}"
            rule["id"] += suffix
            rule["supersedes"] = [s + suffix for s in rule.get("supersedes") or ()]
            for selector in _selectors(rule["match"]):
                selector.setdefault("fields", {})[f"Copy{index}"] = {"exists": False}
            (target / f"{rule['id']}.yaml").write_text(yaml.safe_dump(rule), "utf-8")
    return target


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--attempts", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=2, help="best of N ingest runs")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "evtxdoc-rules")
    args = parser.parse_args()
    folder = fleet(args.out, args.events, args.attempts)
    ingest = float("inf")
    for _ in range(args.repeat):
        gc.collect()
        frame, coverage, supporting, seconds = ingest_fleet(folder)
        ingest = min(ingest, seconds)
    start = time.perf_counter()
    correlation = correlate(frame, supporting, coverage)
    correlating = time.perf_counter() - start
    print(
        f"{len(frame):,} events, {len(correlation.attempts):,} attempts: ingest {ingest:.2f} s"
        f" (best of {args.repeat}), correlate {correlating:.2f} s"
    )
    base = load_rules([RULES_DIR])
    with tempfile.TemporaryDirectory() as work:
        tenfold = load_rules([copies(Path(work), 10)])
    assert not base.problems and not tenfold.problems, (base.problems, tenfold.problems)
    for label, rules in (("knowledge base ×1", base.rules), ("knowledge base ×10", tenfold.rules)):
        gc.collect()
        before = rss_mib()
        start = time.perf_counter()
        evaluation = engine.evaluate(rules, frame, correlation, coverage)
        seconds = time.perf_counter() - start
        severities = Counter(f.severity for f in evaluation.findings)
        print(
            f"{label:<20} {len(rules):>4} rules  evaluate {seconds:6.2f} s = "
            f"{100 * seconds / ingest:5.1f} % of ingest  findings {dict(severities)}  "
            f"peak RSS +{rss_mib() - before:.0f} MiB"
        )
        if rules is base.rules:
            roots = Counter(f.rule for f in evaluation.findings if f.root_cause)
            print(f"  root causes: {dict(roots.most_common())}")
            expected = yaml.safe_load((folder / "expected.yaml").read_text())["attempts"]
            faults = Counter(a["fault"] for a in expected)
            print(f"  fleet faults: {dict(faults.most_common())}")


if __name__ == "__main__":
    main()
