"""Archive bombs against `evtxdoc analyze`: peak RSS and TMPDIR growth, with the real limits.

    python benchmarks/bombs.py

Each bomb (tests/bombs.py) is built in a scratch folder and analyzed by `evtxdoc analyze` in a
fresh process whose TMPDIR is its own empty folder; the folder's size is sampled every 20 ms
(its peak is the disk the bomb cost), and the process's peak RSS is read from rusage. For
contrast, the first row is what `cabarchive` alone takes to open the cab bomb (the reader
evtxdoc used before: it inflates the whole folder in memory).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.bombs import (  # noqa: E402
    MIB,
    cab_of_zero_blocks,
    folder_size,
    many_entries_zip,
    nested_unique_zips,
    zeros_zip,
)


def _size(folder: Path) -> int:
    try:
        return folder_size(folder)
    except FileNotFoundError:  # the analysis removes its folders as the sampler walks them
        return 0


def _run(command: list[str], tmpdir: Path) -> tuple[float, float, float]:
    """(seconds, peak RSS MB of the process and its children, peak TMPDIR MB) of a command."""
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _size(tmpdir))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    start = time.monotonic()
    # wait4 gives this process's own peak (its children's too, once waited for): RUSAGE_CHILDREN
    # would carry the largest earlier command's peak into every later row
    wrapper = (
        "import os, resource, subprocess, sys; subprocess.run(sys.argv[1:], capture_output=True);"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    env = {"TMPDIR": str(tmpdir), "PATH": "/usr/bin"}
    out = subprocess.run(
        [sys.executable, "-c", wrapper, *command], capture_output=True, text=True, env=env
    )
    seconds = time.monotonic() - start
    done.set()
    sampler.join()
    return seconds, int(out.stdout.split()[-1]) / 1024, peak / MIB


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="evtxdoc-bombs-") as scratch:
        root = Path(scratch)
        bombs = {
            "cab: 16,384 MSZIP blocks of zeros, 100 B declared": cab_of_zero_blocks(
                root / "bomb.cab"
            ),
            "zip: 3 levels x 10 unique zips, 16 MiB leaves": nested_unique_zips(
                root / "nested.zip", leaf=16 * MIB
            ),
            "zip: 4 levels x 10 unique zips, 2 MiB leaves": nested_unique_zips(
                root / "nested4.zip", leaf=2 * MIB, levels=4
            ),
            "zip: 100,000 entries": many_entries_zip(root / "flood.zip"),
        }
        deflate = root / "deflate.zip"
        deflate.write_bytes(zeros_zip(1024 * MIB))
        bombs["zip: 1 GiB deflate bomb"] = deflate
        print(f"{'bomb':52} {'size':>9} {'s':>6} {'RSS MB':>7} {'TMP MB':>7}  outcome")
        cab = bombs["cab: 16,384 MSZIP blocks of zeros, 100 B declared"]
        tmp = root / "tmp-cabarchive"
        tmp.mkdir()
        code = f"from cabarchive import CabArchive; CabArchive(open({str(cab)!r},'rb').read())"
        seconds, rss, disk = _run([sys.executable, "-c", code], tmp)
        print(
            f"{'(cabarchive alone on the cab bomb, for contrast)':52} {'':>9} "
            f"{seconds:6.1f} {rss:7.0f} {disk:7.0f}"
        )
        for number, (name, path) in enumerate(bombs.items()):
            tmp = root / f"tmp{number}"
            tmp.mkdir()
            report = root / f"report{number}.json"
            command = [
                str(Path(sys.executable).with_name("evtxdoc")),
                "analyze",
                str(path),
                "--format",
                "json",
                "-o",
                str(report),
            ]
            seconds, rss, disk = _run(command, tmp)
            size = path.stat().st_size
            document = json.loads(report.read_text()) if report.exists() else {}
            kinds = Counter(p["kind"] for p in document.get("problems", []))
            kb = report.stat().st_size / 1024 if report.exists() else 0
            print(
                f"{name:52} {size:>9,} {seconds:6.1f} {rss:7.0f} {disk:7.0f}  "
                f"report {kb:,.0f} KB; problems {dict(kinds)}"
            )


if __name__ == "__main__":
    main()
