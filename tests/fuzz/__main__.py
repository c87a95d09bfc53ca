"""`python -m tests.fuzz`: the long fuzz run (see the package docstring)."""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from tests.fuzz import cases, run_case

ROOT = Path(__file__).resolve().parents[2]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--real", type=Path, default=ROOT.parent / "shared" / "real-evtx")
    parser.add_argument("--keep", type=Path, default=Path(tempfile.gettempdir()) / "evtxdoc-fuzz")
    parser.add_argument("--slow", type=float, default=10.0, help="seconds a case may take")
    args = parser.parse_args()
    started = time.monotonic()
    failures: list[str] = []
    slow = 0
    worst = 0.0
    rs_hangs = 0
    kinds: Counter[str] = Counter()
    with tempfile.TemporaryDirectory(prefix="evtxdoc-fuzz-") as tmp:
        for number, case in enumerate(cases(args.real, args.cases, args.seed), 1):
            verdict = run_case(case, Path(tmp))
            worst = max(worst, verdict.seconds)
            rs_hangs += verdict.rs_hung
            kinds[case.what.split(" ")[0]] += 1
            problem = verdict.failed or (
                f"took {verdict.seconds:.1f} s" if verdict.seconds > args.slow else None
            )
            slow += verdict.seconds > args.slow
            if problem:
                line = f"case {case.seed} ({case.source.name}: {case.what}): {problem}"
                failures.append(line)
                print(line, flush=True)
                args.keep.mkdir(parents=True, exist_ok=True)
                (args.keep / f"fuzz-{case.seed}.evtx").write_bytes(case.data)
            if number % 500 == 0:
                print(f"{number} cases, {len(failures)} failing, worst {worst:.1f} s", flush=True)
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{args.cases} cases (seed {args.seed}) in {time.monotonic() - started:.0f} s: "
        f"{len(failures)} failing, {slow} over {args.slow:.0f} s, slowest {worst:.2f} s, "
        f"rs alone hung on {rs_hangs}; peak RSS: harness {own:.0f} MB, largest child "
        f"{children:.0f} MB"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
