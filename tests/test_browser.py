"""The report in a real browser: headless Debian Chromium driven by Playwright.

Skipped where Chromium or Playwright is missing, unless EVTXDOC_REQUIRE_BROWSER=1 (set by
.ci/run, which installs both): there a missing browser is a failure. The screenshots land in
test-artifacts/ (or $EVTXDOC_ARTIFACTS).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from evtxdoc import pipeline
from evtxdoc.report import html
from tests.hostile import write_hostile_bundle

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("EVTXDOC_ARTIFACTS", ROOT / "test-artifacts"))
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _browser_or_skip():
    required = os.environ.get("EVTXDOC_REQUIRE_BROWSER") == "1"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if required:
            raise
        pytest.skip("playwright is not installed (pip install -e '.[dev]')")
    if not CHROMIUM.exists():
        if required:
            pytest.fail(f"{CHROMIUM} missing: apt-get install chromium")
        pytest.skip(f"{CHROMIUM} missing (apt-get install chromium)")
    return sync_playwright


@pytest.fixture(scope="module")
def browser():
    sync_playwright = _browser_or_skip()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield launched
        launched.close()


def _open(browser, path: Path):  # type: ignore[no-untyped-def]
    """A page on `path` that records console errors, page errors, requests and dialogs."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    seen: dict[str, list[str]] = {"errors": [], "requests": [], "dialogs": []}
    page.on("console", lambda m: seen["errors"].append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    page.on("request", lambda r: seen["requests"].append(r.url))
    page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page, seen


def test_the_report_works_in_a_real_browser(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    analysis = pipeline.analyze([ROOT / "sample_logs/multi-device-two-connectors/bundle"])
    report = tmp_path / "report.html"
    report.write_text(html.render(analysis), encoding="utf-8")
    page, seen = _open(browser, report)

    # the verdict of the failing device, with its root cause linked
    failing = page.locator("tr.verdict.status-timed_out")
    assert failing.count() == 1
    assert "timed out at odj_blob" in failing.inner_text()
    failing.locator("a.cause-link").click()
    target = page.locator("details.finding[open]").first
    assert "managed service account" in target.inner_text()

    # expand a collapsed finding and its evidence
    anchor = page.locator("details.finding:not([open])").first.get_attribute("id")
    closed = page.locator(f"details.finding#{anchor}")
    closed.locator("> summary").click()
    assert closed.evaluate("node => node.open") is True
    evidence = closed.locator("details.evidence > summary")
    if evidence.count():
        evidence.first.click()
        assert closed.locator("details.evidence").first.evaluate("n => n.open") is True

    # the event filter: by event id, then free text. The long sections render lazily until
    # used; a filter lifts that for the events (a lazy section whose height a filter changes is
    # laid out again and again: 20 s on a 1,000-device report)
    lazy = "id => getComputedStyle(document.getElementById(id)).contentVisibility"
    assert [page.evaluate(lazy, s) for s in ("findings", "attempts", "events")] == ["auto"] * 3
    rows = page.locator("#event-table > tbody > tr")
    total = rows.count()
    page.fill("#event-filters input[name=id]", "30130")
    assert page.evaluate(lazy, "events") == "visible"
    visible = page.locator("#event-table > tbody > tr:not([hidden])")
    assert 0 < visible.count() < total
    assert set(visible.evaluate_all("rows => rows.map(r => r.dataset.id)")) == {"30130"}
    assert page.inner_text("#event-count").startswith(f"{visible.count()} of {total}")
    page.fill("#event-filters input[name=id]", "")
    page.fill("#event-filters input[name=q]", "KSK-8M6N4B2V0C")
    assert 0 < visible.count() < total

    # swimlanes: one SVG per attempt, marks with hover details
    assert page.locator("figure.swimlane svg").count() == len(analysis.correlation.attempts)
    mark = page.locator("figure.swimlane svg g.mark").first
    mark.hover(force=True)
    assert page.locator("#tip").is_visible() and page.inner_text("#tip")

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.locator("#verdicts").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "report-multi-device.png"), full_page=True)
    assert seen["errors"] == []  # a CSP violation would be reported here too
    assert seen["requests"] == [report.as_uri()]  # nothing but the file itself
    page.close()


OVERLAPS = """svg => {
  const boxes = Array.from(svg.querySelectorAll('text')).filter(t => t.textContent.trim())
    .map(t => [t.textContent, t.getBoundingClientRect()]);
  const hits = [];
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    const [ta, a] = boxes[i], [tb, b] = boxes[j];
    const apart = a.right - 0.5 <= b.left || b.right - 0.5 <= a.left ||
      a.bottom - 0.5 <= b.top || b.bottom - 0.5 <= a.top;
    if (!apart) hits.push(ta + ' / ' + tb);
  }
  return hits;
}"""


@pytest.mark.parametrize("width", [800, 1400])
def test_the_report_is_usable_from_800_px(browser, tmp_path: Path, width: int) -> None:  # type: ignore[no-untyped-def]
    """No sideways scroll of the page, swimlane labels in words that never overlap and stay
    readable, sorting, a time filter, code search in any written form, copy and print."""
    from playwright.sync_api import expect

    analysis = pipeline.analyze([ROOT / "sample_logs/multi-device-two-connectors/bundle"])
    report = tmp_path / "report.html"
    report.write_text(html.render(analysis), encoding="utf-8")
    page, seen = _open(browser, report)
    page.set_viewport_size({"width": width, "height": 900})
    assert page.evaluate("document.documentElement.scrollWidth") <= width

    # swimlanes: labels are words (no step id, no bare event id), none overlaps another
    for svg in page.locator("figure.swimlane svg").all():
        assert svg.evaluate(OVERLAPS) == []
        labels = svg.locator("g.mark text").evaluate_all("ts => ts.map(t => t.textContent)")
        assert labels and not [t for t in labels if "_" in t or t.strip().isdigit()], labels
        size = svg.locator("g.mark text").first.evaluate("t => t.getBoundingClientRect().height")
        assert size >= 8.5, f"labels are {size:.1f} px high at {width} px"
    assert "ODJ blob" in page.locator("figure.swimlane").first.inner_text()

    # code search in any form finds the connector's access-denied event (DiagnosticCode 5)
    visible = page.locator("#event-table > tbody > tr:not([hidden])")
    for query in ("0x80070005", "80070005", "-2147024891", "2147942405"):
        page.fill("#event-filters input[name=q]", query)
        assert visible.count() == 1, query
        assert "DiagnosticCode 5" in visible.first.inner_text()
    page.fill("#event-filters input[name=q]", "")

    # a time span, then sorting by event id both ways
    total = visible.count()
    page.fill("#event-filters input[name=from]", "2025-09-26T08:14:00")
    page.fill("#event-filters input[name=to]", "2025-09-26T08:20:00")
    assert 0 < visible.count() < total
    times = visible.evaluate_all("rows => rows.map(r => r.dataset.time)")
    # "to 08:20" keeps the whole minute, as the input shows minutes when seconds are zero
    assert all(t[:19] >= "2025-09-26 08:14:00" and t[:16] <= "2025-09-26 08:20" for t in times)
    page.click("#event-filters button[type=reset]")
    expect(visible).to_have_count(total)
    ids = lambda: visible.evaluate_all("rows => rows.map(r => Number(r.dataset.id))")  # noqa: E731
    page.click("#event-table th:nth-child(4)")
    assert ids() == sorted(ids())
    page.click("#event-table th:nth-child(4)")
    assert ids() == sorted(ids(), reverse=True)
    assert page.get_attribute("#event-table th:nth-child(4)", "aria-sort") == "descending"

    # events the catalog has no text for say what their fields hold, not only a provider
    fallback = page.locator("#event-table td span.fallback")
    assert fallback.count() > 0 and ":" in fallback.first.inner_text()

    # sources are links that leave without a referrer; fix steps copy as numbered text
    link = page.locator("details.finding[open] .refs a").first
    assert link.get_attribute("href").startswith("https://")
    assert "noreferrer" in link.get_attribute("rel")
    copy = page.locator("details.finding[open] button.copy").first
    assert copy.get_attribute("data-copy").startswith("1. ")
    copy.click()
    expect(copy).not_to_have_text("Copy")
    assert copy.inner_text() in ("Copied", "Select and copy by hand")

    # print: the button is there, the print stylesheet hides the controls, details open
    assert page.locator("#print").is_visible()
    page.emulate_media(media="print")
    assert not page.locator("#event-filters").is_visible()
    assert not page.locator("#print").is_visible()
    page.evaluate("window.dispatchEvent(new Event('beforeprint'))")
    assert page.locator("details:not([open])").count() == 0
    page.evaluate("window.dispatchEvent(new Event('afterprint'))")
    page.emulate_media(media="screen")
    assert page.locator("details:not([open])").count() > 0

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.locator("article.attempt").first.screenshot(path=str(ARTIFACTS / f"attempt-{width}.png"))
    page.screenshot(path=str(ARTIFACTS / f"report-{width}.png"), full_page=False)
    assert seen["errors"] == [] and seen["requests"] == [report.as_uri()]
    page.close()


def test_hostile_event_text_runs_no_script_in_a_browser(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    analysis = pipeline.analyze(
        [
            write_hostile_bundle(
                tmp_path / "bundle" if (tmp_path / "bundle").mkdir() is None else tmp_path
            )
        ]
    )
    report = tmp_path / "hostile.html"
    report.write_text(html.render(analysis), encoding="utf-8")
    page, seen = _open(browser, report)
    page.locator("#expand-all").click()
    page.fill("#event-filters input[name=q]", "script")
    for node in page.locator("figure.swimlane svg g.mark").all():
        node.hover(force=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report-hostile.png"), full_page=False)
    assert seen["dialogs"] == []
    assert seen["errors"] == []
    assert seen["requests"] == [report.as_uri()]
    assert page.locator("img").count() == 0
    page.close()


def _serve(settings):  # type: ignore[no-untyped-def]
    """`evtxdoc serve`'s app under uvicorn on a free localhost port, in a thread."""
    import socket
    import threading
    import time

    import uvicorn

    from evtxdoc.web import create_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    return server, thread, f"http://127.0.0.1:{port}"


@pytest.fixture
def live_service(tmp_path: Path):  # type: ignore[no-untyped-def]
    from evtxdoc.web import WebSettings

    server, thread, url = _serve(WebSettings(tmp_path / "data", "browser-token"))
    yield url
    server.should_exit = True
    thread.join(15)


@pytest.fixture
def small_service(tmp_path: Path):  # type: ignore[no-untyped-def]
    """The service with a 1 MiB upload limit."""
    from evtxdoc.web import WebSettings

    settings = WebSettings(tmp_path / "data", "browser-token", max_upload_bytes=2**20)
    server, thread, url = _serve(settings)
    yield url
    server.should_exit = True
    thread.join(15)


def test_the_upload_page_checks_size_first_takes_a_folder_and_a_case_name(  # type: ignore[no-untyped-def]
    browser, small_service, tmp_path: Path
):
    """A file over the limit is refused before a byte is sent; a folder is uploaded with its
    subfolders' names; the case name titles the job and finds it again."""
    page = browser.new_page(viewport={"width": 800, "height": 900})
    posts: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{small_service}/login?token=browser-token")
    big = tmp_path / "huge.evtx"
    big.write_bytes(b"\0" * (2 * 2**20))
    page.set_input_files("#files", str(big))
    assert "takes at most 1.0 MiB" in page.inner_text("#chosen")
    page.click("#upload button[type=submit]")
    assert posts == [] and "takes at most 1.0 MiB" in page.inner_text("#chosen")

    page.set_input_files("#files", [])
    bundle = ROOT / "sample_logs" / "access-denied-legacy" / "bundle"
    page.set_input_files("#folder", str(bundle))
    assert "file(s)" in page.inner_text("#chosen")
    page.fill("#case", "TrackingID 2412030010009876")
    page.click("#upload button[type=submit]")
    page.wait_for_selector("text=Open the report", timeout=120_000)
    assert "TrackingID 2412030010009876" in page.inner_text("h1")
    files = page.locator("section:has(h2:text('Files')) td:first-child").all_inner_texts()
    assert "bundle/ODJSRV.fabrikam.local/ODJ Connector Service.evtx" in files, files
    assert "FAB-7TQ2XK9M3A" in page.content()  # signed in: names as logged
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-job-800.png"), full_page=True)
    page.goto(f"{small_service}/")
    page.fill("input[name=q]", "2412030010009876")
    page.press("input[name=q]", "Enter")
    page.wait_for_load_state("load")
    assert page.locator("table tbody tr").count() == 1
    page.screenshot(path=str(ARTIFACTS / "web-search-800.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 800
    assert errors == []
    page.close()


def test_a_support_engineer_uploads_logs_and_reads_the_report(browser, live_service):  # type: ignore[no-untyped-def]
    """Sign in by the link serve prints, upload a device cab and a connector log, wait on the
    job page, open the report: it renders under the service's sandbox CSP with no errors and
    loads nothing from elsewhere."""
    sample = ROOT / "sample_logs" / "access-denied-legacy" / "bundle"
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(f"{live_service}/login?token=browser-token")
    assert page.locator("h1").inner_text() == "Analyze logs"
    page.set_input_files(
        "#files",
        [
            str(sample / "DESKTOP-Q8RT2ZB-mdmdiag.cab"),
            str(sample / "ODJSRV.fabrikam.local" / "ODJ Connector Service.evtx"),
        ],
    )
    page.click("#upload button[type=submit]")
    page.wait_for_selector("text=Open the report", timeout=120_000)  # the page refreshes itself
    assert "timed out at odj_blob" in page.content()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-job.png"), full_page=True)
    page.click("text=Open the report")
    page.wait_for_load_state("load")
    assert page.url.endswith("/report.html")
    assert page.get_by_text("connector-access-denied-legacy").first.is_visible()
    page.screenshot(path=str(ARTIFACTS / "web-report.png"), full_page=False)
    page.go_back()
    page.goto(live_service + "/")
    assert page.locator("table tbody tr").count() == 1  # the past analyses list
    assert errors == [], requests
    assert all(url.startswith(live_service) for url in requests)


def test_the_exchange_section_fits_800_px_and_tells_each_sync(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """An Exchange connector's page: no sideways scroll at 800 px, the lane's bars as wide as
    the section, each bar's tooltip with its outcome and time, the settings table behind its
    summary, no script error."""
    analysis = pipeline.analyze([ROOT / "sample_logs/exchange-cas-no-failover/bundle"])
    report = tmp_path / "report.html"
    report.write_text(html.render(analysis), encoding="utf-8")
    page, seen = _open(browser, report)
    page.set_viewport_size({"width": 800, "height": 900})
    assert page.evaluate("document.documentElement.scrollWidth") <= 800
    lane = page.locator("#exchange svg.sync-lane")
    width = lane.evaluate("s => s.getBoundingClientRect().width")
    assert width > 600
    tips = lane.locator("rect.sync title").evaluate_all("ts => ts.map(t => t.textContent)")
    assert len(tips) == 12 and sum("quick sync failed" in t for t in tips) == 4
    assert not page.locator("#exchange table.settings").is_visible()
    page.locator("#exchange details.settings summary").click()
    assert page.locator("#exchange table.settings").is_visible()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.locator("#exchange").screenshot(path=str(ARTIFACTS / "exchange-800.png"))
    assert seen["errors"] == [] and all(u.startswith("file:") for u in seen["requests"])
