"""The report's promises: hostile event text renders inert and bounded, --redact leaves no
identifier behind, every JSON document validates against docs/report.schema.json, --tz is
honoured, and the CSV/Timesketch exports carry attempt ids."""

from __future__ import annotations

import csv
import io
import json
import re
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import pandas as pd
import pytest
from typer.testing import CliRunner

from evtxdoc import pipeline
from evtxdoc.cli import app
from evtxdoc.models import Analysis
from evtxdoc.report import html
from evtxdoc.report.clock import display_zone
from evtxdoc.report.event_view import positions_of
from evtxdoc.report.formats import Format, OutputOptions, document, write
from evtxdoc.report.redact import EMAIL, GUID, IPV4, SID, for_analysis
from evtxdoc.report.schema import schema_text
from tests.hostile import HOSTILE_HOST, IMG, LONG, SCRIPT, write_hostile_bundle

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted(p for p in (ROOT / "sample_logs").glob("*/bundle"))
SCHEMA = json.loads((ROOT / "docs" / "report.schema.json").read_text())
runner = CliRunner()


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Analysis:
    """A failing device and a connector whose event text is an attack, plus a hostile host."""
    return pipeline.analyze([write_hostile_bundle(tmp_path_factory.mktemp("hostile"))])


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text of each <script>."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)


def test_hostile_event_text_renders_inert_and_bounded(hostile: Analysis) -> None:
    page = html.render(hostile)
    parsed = Elements()
    parsed.feed(page)
    tags = [tag for tag, _ in parsed.tags]
    assert tags.count("script") == 1 and "img" not in tags  # only our own script
    assert not [tag for tag, attrs in parsed.tags if tag == "svg" and "onload" in attrs]
    for tag, attrs in parsed.tags:
        assert not [name for name in attrs if name.startswith("on")], (tag, attrs)
        for name in ("href", "src", "action", "xlink:href"):
            assert not (attrs.get(name) or "").lower().startswith("javascript:"), (tag, attrs)
    assert SCRIPT not in page and IMG not in page and HOSTILE_HOST not in page
    # the attack is shown as text, escaped, so a reader sees what the log said
    assert "&lt;script&gt;alert(" in page and "&lt;svg onload=alert(4)&gt;" in page
    assert LONG not in page and "more characters)" in page
    assert len(page) < 400_000
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    assert policy is not None
    rules = unescape(policy.group(1))
    assert "default-src 'none'" in rules and "script-src 'sha256-" in rules
    assert "unsafe-inline" not in rules and "http" not in rules


def test_the_failing_hostile_device_still_gets_a_verdict_and_a_finding(hostile: Analysis) -> None:
    data = document(hostile)
    verdict = next(v for v in data["verdicts"] if v["name"].startswith("DESKTOP-H0ST1LE"))
    assert verdict["status"] in ("failed", "timed_out")
    assert any(f["attempt"] == verdict["last_attempt"] for f in data["findings"])


def _identifiers(analysis: Analysis, text: str) -> set[str]:
    """Every identifier the report of `analysis` may hold: known names and found patterns."""
    found: set[str] = set()
    for host in analysis.timeline["host"].cat.categories:
        found.add(host)
        found.update(
            p
            for p in re.split(r"[.\s\"<>=()]+", host)
            if len(p) >= 4 and p.lower() not in ("local", "evil", "onload", "alert")
        )
    for attempt in analysis.correlation.attempts:
        device = attempt.device
        found.update(
            v
            for v in (
                *device.oobe_names,
                *device.hosts,
                device.computer_name,
                device.domain,
                device.serial,
                device.ztdid,
                device.entdmid,
                device.tenant_id,
            )
            if v
        )
        for request in attempt.requests:
            found.update(
                v
                for v in (request.device_name, request.device_id, request.domain, request.user_sid)
                if v
            )
    for pattern in (SID, GUID, EMAIL, IPV4):
        found.update(m.group(0) for m in re.finditer(pattern, text))
    return {f for f in found if len(f) >= 4}


@pytest.mark.parametrize("bundle", SAMPLES, ids=lambda p: p.parent.name)
def test_redact_leaves_no_identifier_of_any_sample(bundle: Path) -> None:
    analysis = pipeline.analyze([bundle])
    plain = unescape(html.render(analysis))
    redacted_html = html.render(analysis, html.ReportOptions(redactor=for_analysis(analysis)))
    redacted_json = json.dumps(document(analysis, for_analysis(analysis)))
    identifiers = _identifiers(analysis, plain)
    exchange_only = not analysis.correlation.attempts and analysis.correlation.exchange
    if exchange_only:  # a connector server: its names and its Exchange server's
        identifiers |= {"cas01", "WIEC_USER"} & set(re.findall(r"[\w.]+", plain))
    assert len(identifiers) >= (2 if exchange_only else 5)
    for text in (unescape(redacted_html).lower(), redacted_json.lower()):
        assert [i for i in identifiers if i.lower() in text] == []
    assert ("host-01" if exchange_only else "device-01") in redacted_html  # pseudonyms


def test_redact_covers_upns_ips_and_account_names_consistently(hostile: Analysis) -> None:
    redactor = for_analysis(hostile)
    page = unescape(html.render(hostile, html.ReportOptions(redactor=redactor)))
    for original in (
        "jane.doe",
        "fabrikam",
        "10.20.30.40",
        "evil.user",
        "DESKTOP-H0ST1LE",
        "CONN01",
        "contoso",
    ):
        assert original.lower() not in page.lower(), original
    assert "user01@domain" in page and "192.0.2." in page
    again = for_analysis(hostile)
    assert again.text("DESKTOP-H0ST1LE at CONN01.contoso.local") == redactor.text(
        "DESKTOP-H0ST1LE at CONN01.contoso.local"
    )


def test_shipped_schema_is_the_generated_one() -> None:
    assert (ROOT / "docs" / "report.schema.json").read_text() == schema_text()
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("bundle", SAMPLES, ids=lambda p: p.parent.name)
def test_every_sample_json_report_validates_against_the_schema(bundle: Path) -> None:
    analysis = pipeline.analyze([bundle])
    validator = jsonschema.Draft202012Validator(SCHEMA)
    for data in (document(analysis), document(analysis, for_analysis(analysis))):
        errors = [
            f"{list(e.path)}: {e.message[:200]}"
            for e in validator.iter_errors(json.loads(json.dumps(data)))
        ]
        assert errors == []


def test_the_schema_rejects_a_drifted_document(hostile: Analysis) -> None:
    data = json.loads(json.dumps(document(hostile)))
    data["findings"][0]["severity"] = "catastrophic"
    data["verdicts"][0]["surprise"] = 1
    errors = list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(data))
    assert len(errors) == 2


def test_tz_shows_times_in_the_chosen_zone_with_its_name() -> None:
    analysis = pipeline.analyze([ROOT / "sample_logs/multi-device-two-connectors/bundle"])
    paris = html.render(analysis, html.ReportOptions(zone=display_zone("Europe/Paris")))
    utc = html.render(analysis)
    # 2025-09-26 is summer time in Paris: UTC+2, written CEST. A connector request's time is
    # shown as logged (no device clock offset applies to it).
    request = next(r for a in analysis.correlation.attempts for r in a.requests)
    stamp = pd.Timestamp(request.ts, unit="ns", tz="UTC")
    assert stamp.month == 9 and stamp.day == 26
    shown = f"{stamp:%Y-%m-%d %H:%M:%S}.{stamp.microsecond // 1000:03d}"
    local = stamp.tz_convert("Europe/Paris")
    shown_local = f"{local:%Y-%m-%d %H:%M:%S}.{local.microsecond // 1000:03d}"
    assert f"{shown_local} CEST" in paris and f"{shown} UTC" in utc
    assert "Europe/Paris" in paris
    result = runner.invoke(app, ["analyze", "x", "--tz", "Mars/Olympus"])
    assert result.exit_code == 2 and "unknown time zone" in result.output


def test_csv_and_timesketch_exports_carry_attempt_ids() -> None:
    analysis = pipeline.analyze([ROOT / "sample_logs/multi-device-two-connectors/bundle"])
    out = io.BytesIO()
    write(analysis, Format.csv, out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue().decode())))
    assert len(rows) == len(analysis.timeline)
    claimed = {r["attempt"] for r in rows if r["attempt"]}
    assert claimed == {a.id for a in analysis.correlation.attempts}
    request = next(r for r in rows if r["event_id"] == "30130" and r["attempt"])
    assert request["host"].startswith("CONN")  # the connector's request belongs to the attempt
    out = io.BytesIO()
    write(analysis, Format.jsonl, out, OutputOptions(redact=True))
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) == len(analysis.timeline)
    for line in lines:
        assert {"message", "datetime", "timestamp_desc", "timestamp"} <= set(line)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00", line["datetime"])
    assert "contoso" not in out.getvalue().decode().lower()


def test_output_suffix_picks_the_format(tmp_path: Path) -> None:
    bundle = str(ROOT / "sample_logs/healthy-hybrid/bundle")
    for suffix, probe in (
        (".html", "<!DOCTYPE html>"),
        (".json", '"schema_version"'),
        (".csv", "ts,host,channel"),
        (".jsonl", '"timestamp_desc"'),
        (".txt", "Verdict per device"),
    ):
        target = tmp_path / f"report{suffix}"
        result = runner.invoke(app, ["analyze", bundle, "-o", str(target)])
        assert result.exit_code == 0, result.output
        assert probe in target.read_text(encoding="utf-8")[:3000]


def test_every_evidence_event_of_every_sample_is_shown_with_its_fields() -> None:
    """Refs to one event may differ in spelling (a host's case): each still finds its row."""
    analysis = pipeline.analyze(SAMPLES)
    page = html.render(analysis)
    assert "(event not in the timeline)" not in page
    frame = analysis.timeline
    some = next(f.evidence[0] for f in analysis.evaluation.findings if f.evidence)
    respelled = some._replace(host=some.host.swapcase(), channel=some.channel.upper())
    located = positions_of(frame, [some, respelled])
    assert located[some] == located[respelled]


def test_inline_markup_of_causes_and_fixes_becomes_three_tags_and_nothing_else():
    from evtxdoc.report.fragments import finding_blocks

    finding = {
        "severity": "error",
        "root_cause": True,
        "anchor": "f1",
        "title": "T",
        "attempt": "A#1",
        "host": None,
        "confidence": "documented",
        "rule": "r",
        "scope": "attempt",
        "count": 1,
        "superseded": [],
        "references": [],
        "evidence": [],
        "more_evidence": 0,
        "cause": "The account *svc* failed: <img src=x onerror=alert(1)> **denied**",
        "fix_steps": [
            "Grant **Log on as a service**.",
            "Run `wevtutil epl System C:\\t\\*.evtx`.",
            "Keep `**literal**` and 2*3*4 as written.",
        ],
    }
    html = str(finding_blocks([finding]))
    assert "<em>svc</em>" in html and "<strong>denied</strong>" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "<img" not in html
    assert "<li>Grant <strong>Log on as a service</strong>.</li>" in html
    assert "<code>wevtutil epl System C:\\t\\*.evtx</code>" in html
    assert "<code>**literal**</code> and 2*3*4 as written." in html


def test_a_machine_s_own_time_zone_is_read_from_system_6013() -> None:
    """The real System log of DESKTOP-2KGM189 says `480 Pacific Standard Time` in 6013."""
    from evtxdoc.report.zones import parse_zone

    assert parse_zone(["", "14", "60", "480 Pacific Standard Time"]) == {
        "name": "Pacific Standard Time",
        "bias_minutes": 480,
        "utc_offset": "UTC−08:00",
    }
    assert parse_zone(["-330 India Standard Time"])["utc_offset"] == "UTC+05:30"
    assert parse_zone(["60", "14"]) is None  # numbers alone are no zone
    real = ROOT.parent / "shared" / "real-evtx" / "system.evtx"
    if not real.exists():
        pytest.skip(f"{real} missing")
    analysis = pipeline.analyze([real])
    (machine,) = document(analysis)["coverage"]
    assert machine["time_zone"]["name"] == "Pacific Standard Time"
    assert "time zone: Pacific Standard Time (bias 480 min = UTC−08:00)" in html.render(analysis)


def test_the_event_table_lists_each_event_s_codes_in_every_form() -> None:
    """`data-codes` holds the 32-bit value and its Win32/HRESULT partner, from code fields and
    from hex in the message; line numbers and counts are not codes."""
    from evtxdoc.report.fragments import codes

    event = {
        "message": "HRESULT: 0x8007000d; File: x.cpp; Line: 172; took 881 ms",
        "fields": [
            {"name": "DiagnosticCode", "value": "5"},
            {"name": "ErrorCode", "value": "-2147022988"},
            {"name": "ElapsedMilliseconds", "value": "881"},
        ],
    }
    assert codes(event).split() == sorted(
        ["0000000d", "8007000d", "00000005", "80070005", "80070774", "00000774"]
    )


def test_a_fleet_s_page_counts_devices_by_cause_and_stays_bounded(tmp_path: Path) -> None:
    """The fleet summary counts each device once: under its last attempt's root cause, as
    healthy, or as not judged; on a generated fleet its counts are the generator's faults (the
    scale bundle merges the devices' logs without their registry dumps, so a device that timed
    out cannot be tied to the connector's failed request: all such devices are blob timeouts).
    The page lists the first 300 devices, failing first, and caps the coverage table."""
    import yaml

    from evtxdoc.report.html import MAX_COVERAGE_ROWS, MAX_VERDICT_ROWS

    scenario = ROOT / "sample_logs" / "healthy-hybrid" / "scenario.yaml"
    made = CliRunner().invoke(
        app, ["synth", str(scenario), "--scale", "22000", "-o", str(tmp_path / "fleet")]
    )
    assert made.exit_code == 0, made.output
    expected = yaml.safe_load((tmp_path / "fleet" / "expected.yaml").read_text())
    last = {a["device"]: a for a in expected["attempts"]}  # each device's last attempt
    analysis = pipeline.analyze([tmp_path / "fleet" / "bundle"])
    data = document(analysis)
    fleet = data["fleet"]
    total = len(data["verdicts"])
    assert fleet["devices"] == total == len(last) > MAX_VERDICT_ROWS
    assert fleet["healthy"] == sum(1 for a in last.values() if a["outcome"] == "succeeded")
    by_rule = {c["rule"]: c["devices"] for c in fleet["causes"]}
    faults = {a["fault"] for a in last.values()}
    assert by_rule == {
        "offline-join-failed": sum(1 for a in last.values() if a["fault"] == "blob_rejected"),
        "odj-blob-timeout": sum(1 for a in last.values() if a["outcome"] == "timed_out"),
    }, faults
    assert fleet["failing"] == sum(by_rule.values()) == total - fleet["healthy"]
    assert fleet["not_judged"] == []
    for cause in fleet["causes"]:
        assert len(cause["device_list"]) == cause["devices"] <= cause["attempts"]
        assert sum(h["attempts"] for h in cause["per_hour"]) == cause["attempts"]
        assert cause["first"] <= cause["last"]
    view = html.build_view(analysis)
    assert len(view["verdicts"]) == MAX_VERDICT_ROWS
    failing = [v["status"] not in ("succeeded", "not_hybrid") for v in view["verdicts"]]
    assert failing == sorted(failing, reverse=True)  # failing devices first
    assert len(view["coverage"]) == min(MAX_COVERAGE_ROWS, view["coverage_total"])
    page = html.render(analysis)
    assert f"{total} devices: {fleet['failing']} failing, {fleet['healthy']} healthy" in page
    assert f"The first {MAX_VERDICT_ROWS} of {total} devices are listed below" in page
    terminal = CliRunner().invoke(
        app, ["analyze", str(tmp_path / "fleet" / "bundle"), "-f", "terminal"]
    )
    assert f"Fleet: {total} devices, {fleet['failing']} failing" in terminal.output


@pytest.mark.parametrize("redact", [False, True])
def test_the_streamed_json_is_the_document(redact: bool) -> None:
    """`--format json` is written as it is made (report/stream.py): the same data as the
    document, plain and redacted, on every sample."""
    for bundle in SAMPLES:
        analysis = pipeline.analyze([bundle])
        out = io.BytesIO()
        write(analysis, Format.json, out, OutputOptions(redact=redact))
        redactor = for_analysis(analysis) if redact else None
        assert json.loads(out.getvalue()) == json.loads(json.dumps(document(analysis, redactor)))


def test_the_fleet_summary_counts_a_generated_fleet_s_faults_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each device's own Intune "Collect diagnostics" zip (synth --scale --layout intune): the
    registry dump beside its logs ties a device that timed out to the connector's request, so
    every device lands under the root cause its generated fault has, and the rest are healthy.
    The 700 small logs are read in batches under the watchdog: the document is the one an
    unguarded in-process read gives."""
    import yaml

    scenario = ROOT / "sample_logs" / "healthy-hybrid" / "scenario.yaml"
    out = tmp_path / "fleet"
    made = CliRunner().invoke(
        app, ["synth", str(scenario), "--scale", "5500", "--layout", "intune", "-o", str(out)]
    )
    assert made.exit_code == 0, made.output
    assert len(list((out / "bundle" / "devices").glob("DiagLogs-*.zip"))) == 100
    expected = yaml.safe_load((out / "expected.yaml").read_text())
    last = {a["device"]: a for a in expected["attempts"]}
    data = document(pipeline.analyze([out / "bundle"]))
    fleet = data["fleet"]
    monkeypatch.setenv("EVTXDOC_WATCHDOG", "0")
    unguarded = document(pipeline.analyze([out / "bundle"]))
    for doc in (data, unguarded):
        doc["summary"].pop("seconds")
    assert data == unguarded
    wanted: dict[str, int] = {}
    for attempt in last.values():
        if attempt["outcome"] != "succeeded":
            wanted[attempt["top_finding"]] = wanted.get(attempt["top_finding"], 0) + 1
    assert {c["rule"]: c["devices"] for c in fleet["causes"]} == wanted
    assert len(wanted) == 3  # access denied, no connector, blob rejected
    assert fleet["healthy"] == sum(1 for a in last.values() if a["outcome"] == "succeeded")
    assert fleet["not_judged"] == [] and fleet["devices"] == len(last)
    by_rule = {c["rule"]: c for c in fleet["causes"]}
    assert by_rule["no-connector-answered"]["connectors"] == []
    assert by_rule["connector-access-denied-msa"]["connectors"]  # the connectors that refused
