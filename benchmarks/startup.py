"""Start-up time of the commands a user types most (issue 20: --help, version and the rules and
catalog commands < 0.3 s; a small analyze < 0.6 s), best of N runs, against the bare
interpreter in the same run.

    python benchmarks/startup.py [--runs 7]

Each command runs the way an installed evtxdoc does: with its bytecode cached. A pip install
compiles the modules, and an editable one writes `__pycache__` on its first run; so the children
run with PYTHONDONTWRITEBYTECODE removed from their environment (some shells and CI images set
it, and then every start compiles evtxdoc's ~80 modules anew, ≈0.1 s), after one uncounted run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SMALL = ROOT / "sample_logs" / "healthy-hybrid" / "bundle" / "CONN01.contoso.local"
COMMANDS = {
    "python -c pass (the floor)": [sys.executable, "-c", "pass"],
    "evtxdoc --help": ["--help"],
    "evtxdoc --version": ["--version"],
    "evtxdoc analyze --help": ["analyze", "--help"],
    "evtxdoc rules show odj-blob-timeout": ["rules", "show", "odj-blob-timeout"],
    "evtxdoc rules lint": ["rules", "lint"],
    "evtxdoc catalog show 0x80070774": ["catalog", "show", "0x80070774"],
    "evtxdoc analyze (one small connector folder) -o x.json": ["analyze", str(SMALL), "-o"],
}


def best_of(command: list[str], runs: int, out: Path) -> float:
    if command[0] != sys.executable:
        command = [sys.executable, "-m", "evtxdoc", *command]
        if command[-1] == "-o":
            command.append(str(out))
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(command, check=True, capture_output=True, env=env)  # caches the bytecode
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=env)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    out = Path("/tmp") / "evtxdoc-startup.json"
    print(f"{'command':<58} best of {args.runs}")
    for name, command in COMMANDS.items():
        print(f"{name:<58} {best_of(command, args.runs, out):6.3f} s", flush=True)


if __name__ == "__main__":
    main()
