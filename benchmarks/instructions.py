"""Instructions per record of ingest's hot path against raw pyevtx-rs, counted by callgrind.

    python benchmarks/instructions.py [--file ../shared/real-evtx/big-security-mit-derived.evtx]

Wall-clock figures on a shared VM drift by ±20 % between runs; instruction counts do not, so this
is the way to tell whether a change to the per-record path helps. Three runs under
`valgrind --tool=callgrind` (Debian: `apt-get install valgrind`), side by side: imports only,
imports + raw `records_json()` iteration, imports + `ingest.read_file` (scan, parse, normalize,
columns). Each count minus the imports-only count, per record. Takes a minute or two.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT.parent / "shared" / "real-evtx" / "big-security-mit-derived.evtx"

PROGRAM = r"""
import sys, tempfile
from pathlib import Path
mode, path = sys.argv[1], sys.argv[2]
import evtx, numpy, orjson, pandas
from evtxdoc import bundle
from evtxdoc.parse.reader import read_file
from evtxdoc.models import AnalyzeOptions
found = bundle.discover([path], Path(tempfile.mkdtemp()), AnalyzeOptions()).evtx_files[0]
if mode == "raw":
    print(sum(1 for _ in evtx.PyEvtxParser(path).records_json()))
elif mode == "read":
    print(len(read_file(found).batch))
"""


def count(mode: str, path: Path, folder: Path) -> tuple[int, str]:
    out = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={folder / mode}.out",
            sys.executable,
            "-c",
            PROGRAM,
            mode,
            str(path),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    found = re.search(r"Collected : (\d+)", out.stderr)
    if not found:
        raise SystemExit(f"no instruction count from valgrind for {mode}:\n{out.stderr[-2000:]}")
    return int(found.group(1)), out.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=DEFAULT)
    args = parser.parse_args()
    if not shutil.which("valgrind"):
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    if not args.file.exists():
        raise SystemExit(f"{args.file} does not exist; pass --file PATH to an .evtx file")
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(3) as pool:
        runs = dict(
            zip(
                ("imports", "raw", "read"),
                pool.map(lambda m: count(m, args.file, Path(tmp)), ("imports", "raw", "read")),
                strict=True,
            )
        )
    base = runs["imports"][0]
    records = int(runs["raw"][1])
    raw = (runs["raw"][0] - base) / records
    read = (runs["read"][0] - base) / records
    print(f"{args.file.name}: {records:,} records (read_file kept {runs['read'][1]})")
    print(f"raw records_json   {raw:>10,.0f} instructions/record")
    print(
        f"ingest read_file   {read:>10,.0f} instructions/record  (raw / ingest = {raw / read:.1%})"
    )


if __name__ == "__main__":
    main()
