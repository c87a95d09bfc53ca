"""How long a browser takes to open an HTML report: navigation timing and Chromium's own
layout, style and script durations, best and worst of N loads, alternating between reports.

    python benchmarks/page_load.py REPORT.html [OTHER.html ...] [--loads 3]
    python benchmarks/page_load.py --fleet 1000000   # the fleet report, written anew

Needs Playwright and a Chromium (Debian: `apt-get install chromium`; `--browser` points at
another). Each load is a fresh page; the figures are milliseconds from navigation start
(`responseEnd`: the file read, `domInteractive`: parsed, `load`: the load event) and seconds of
Chromium's Performance metrics (LayoutDuration, RecalcStyleDuration, ScriptDuration), with the
page's DOM node count. Compare two versions of a page in the same run: they alternate.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TIMING = """() => {
  const n = performance.getEntriesByType('navigation')[0];
  return {responseEnd: n.responseEnd, domInteractive: n.domInteractive, load: n.loadEventEnd};
}"""
METRICS = ("LayoutDuration", "RecalcStyleDuration", "ScriptDuration", "Nodes")


def fleet_report(events: int) -> Path:
    """The HTML report of benchmarks/fleet.py's fleet of `events` events, written anew by this
    checkout (the bundle is kept; a kept report would measure the code that wrote it)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from fleet import bundle_of  # type: ignore[import-not-found]

    bundle = bundle_of(events, 1000)
    page = bundle.parent / "report.html"
    command = [sys.executable, "-m", "evtxdoc", "analyze", str(bundle), "-o", str(page)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
    return page


def load_once(browser, page_path: Path) -> dict[str, float]:  # type: ignore[no-untyped-def]
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    try:
        session = page.context.new_cdp_session(page)
        session.send("Performance.enable")
        page.goto(page_path.resolve().as_uri(), wait_until="load", timeout=120_000)
        figures = page.evaluate(TIMING)
        metrics = {m["name"]: m["value"] for m in session.send("Performance.getMetrics")["metrics"]}
        figures.update({name: metrics.get(name, float("nan")) for name in METRICS})
        return figures
    finally:
        page.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="*", type=Path)
    parser.add_argument("--fleet", type=int, help="events of a benchmarks/fleet.py fleet to open")
    parser.add_argument("--loads", type=int, default=3)
    parser.add_argument("--browser", default="/usr/bin/chromium")
    args = parser.parse_args()
    reports = list(args.reports) + ([fleet_report(args.fleet)] if args.fleet else [])
    if not reports:
        parser.error("name a report, or --fleet EVENTS")
    from playwright.sync_api import sync_playwright

    runs: dict[Path, list[dict[str, float]]] = {report: [] for report in reports}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.browser, args=["--no-sandbox"])
        for _ in range(args.loads):
            for report in reports:
                runs[report].append(load_once(browser, report))
        browser.close()
    print(
        f"{'report':<40} {'MB':>6} {'nodes':>8} {'read ms':>9} {'parsed ms':>10} {'load ms':>9} "
        f"{'layout s':>9} {'style s':>8} {'script s':>9}  (best – worst)"
    )
    for report, figures in runs.items():
        print(
            f"{report.name[:40]:<40} {report.stat().st_size / 1e6:6.1f} "
            f"{int(figures[0]['Nodes']):>8} {_span(figures, 'responseEnd'):>9} "
            f"{_span(figures, 'domInteractive'):>10} {_span(figures, 'load'):>9} "
            f"{_span(figures, 'LayoutDuration', 2):>9} "
            f"{_span(figures, 'RecalcStyleDuration', 2):>8} "
            f"{_span(figures, 'ScriptDuration', 2):>9}"
        )


def _span(figures: list[dict[str, float]], key: str, digits: int = 0) -> str:
    values = sorted(f[key] for f in figures)
    return f"{values[0]:.{digits}f}–{values[-1]:.{digits}f}"


if __name__ == "__main__":
    main()
