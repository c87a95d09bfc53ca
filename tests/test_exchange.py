"""The Intune Exchange connector end to end: its E2E traces (.svclog) read streamed and
leniently, its settings files, its syncs and their verdict, and the rules over them."""

from __future__ import annotations

import codecs
import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from evtxdoc import pipeline
from evtxdoc.bundle.identify import identify, looks_like_trace
from evtxdoc.cli import app
from evtxdoc.correlate.exchange import read_settings
from evtxdoc.models import DiscoveredFile, FileKind
from evtxdoc.parse.svclog import MAX_EVENT_CHARS, MAX_TEXT_CHARS, _Scan, read_trace, trace_events
from evtxdoc.synth.svclog_writer import TraceLine, render
from tests.conftest import ROOT

SAMPLES = ROOT / "sample_logs"
EXCHANGE = sorted(p.name for p in SAMPLES.glob("exchange-*") if (p / "scenario.yaml").exists())
SOURCE = "OnPremisesExchangeConnectorService"
T0 = 1_700_000_000 * 10**9


def event(text: str, at: int = 0, kind: str = "Information") -> str:
    return render(TraceLine(T0 + at * 10**9, kind, text), SOURCE, "EXCH01", "svc", 2212, 14)


def write(tmp_path: Path, text: str, encoding: str = "utf-8", bom: bytes = b"") -> Path:
    path = tmp_path / "Connector0.svclog"
    path.write_bytes(bom + text.encode(encoding))
    return path


def read(path: Path) -> tuple[list, _Scan]:
    scan = _Scan()
    return list(trace_events(path, path.name, scan)), scan


# --- the samples -----------------------------------------------------------------------------


def test_there_are_five_exchange_scenarios() -> None:
    assert len(EXCHANGE) >= 5


@pytest.mark.parametrize("name", EXCHANGE)
def test_each_exchange_sample_names_its_cause_and_its_sync_verdict(name: str) -> None:
    expected = yaml.safe_load((SAMPLES / name / "expected.yaml").read_text("utf-8"))
    analysis = pipeline.analyze([SAMPLES / name / "bundle"])
    document = pipeline_document(analysis)
    for wanted in expected["exchange"]:
        entry = next(e for e in document["exchange"] if e["connector"] == wanted["connector"])
        assert entry["status"] == wanted["status"], entry["verdict"]
        rules = {f.rule for f in analysis.evaluation.findings}
        assert set(wanted["findings"]) <= rules
        errors = {f.rule for f in analysis.evaluation.findings if f.severity == "error"}
        assert errors <= set(wanted["findings"]), "an error finding the fault does not explain"
        mine = [f for f in analysis.evaluation.findings if f.host == wanted["connector"]]
        if wanted["top_finding"]:  # the most severe, most specific finding first
            assert mine[0].rule == wanted["top_finding"], [f.rule for f in mine]
        else:
            assert [f.severity for f in mine] == ["info"]


def pipeline_document(analysis: pipeline.Analysis) -> dict:
    from evtxdoc.report.inventory import inventory

    return json.loads(json.dumps(inventory(analysis), default=str))


def test_the_failing_verdict_says_which_syncs_fail_and_since_when() -> None:
    analysis = pipeline.analyze([SAMPLES / "exchange-cas-no-failover" / "bundle"])
    entry = pipeline_document(analysis)["exchange"][0]
    assert entry["verdict"].startswith("quick syncs failing since 2023-11-07 ")
    assert "last successful full sync 2023-11-07" in entry["verdict"]
    assert entry["settings"]["IsCasFailoverEnabled"] == "false"
    failed = [s for s in entry["syncs"] if s["outcome"] == "failed"]
    assert failed and all("PSRemotingTransportException" in s["error"] for s in failed)
    assert entry["hosts"] == ["EXCH01", "EXCH01.contoso.local"]  # the trace's NetBIOS name


def test_a_stopped_connector_is_told_from_its_server_logs_going_on() -> None:
    analysis = pipeline.analyze([SAMPLES / "exchange-logon-denied" / "bundle"])
    entry = pipeline_document(analysis)["exchange"][0]
    assert entry["status"] == "stopped" and entry["trace_ends"] < entry["logs_end"]


def test_events_lists_the_trace_events_with_their_svclog_source(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["events", str(SAMPLES / "exchange-cmdlets-denied" / "bundle"), "--format", "jsonl"]
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    traced = [r for r in rows if r["channel"] == "WCF trace"]
    assert traced and all(r["source_file"].endswith(".svclog") for r in traced)
    denied = [r for r in traced if r["fields"].get("MissingCmdlet")]
    assert denied[0]["fields"]["MissingCmdlet"] == "Get-ActiveSyncDeviceStatistics"
    assert denied[0]["level"] == 2  # TraceEventType Error → Windows level 2


def test_a_mixed_bundle_reads_devices_odj_connector_and_exchange_connector_in_one_run() -> None:
    analysis = pipeline.analyze(
        [SAMPLES / "msa-ou-not-configured" / "bundle", SAMPLES / "exchange-bad-request" / "bundle"]
    )
    rules = {f.rule for f in analysis.evaluation.findings}
    assert {"connector-access-denied-msa", "exchange-connector-bad-request"} <= rules
    document = pipeline_document(analysis)
    assert [e["status"] for e in document["exchange"]] == ["no_syncs"]
    assert document["verdicts"] and document["verdicts"][0]["status"] != "succeeded"
    roles = {c["role"] for c in document["coverage"]}
    assert {"device", "connector", "exchange"} <= roles


def test_two_connectors_for_one_organization_are_named(tmp_path: Path) -> None:
    from evtxdoc.synth import synthesize

    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(
        "name: two\nsummary: s\nroot_cause: r\nseed: 3\nstart: '2023-11-06T07:00:00Z'\n"
        "exchange:\n  - {name: EXCH01.contoso.local, days: 1}\n"
        "  - {name: EXCH02.contoso.local, cas: cas02.contoso.local, days: 1}\n"
    )
    synthesize(scenario, tmp_path / "out")
    analysis = pipeline.analyze([tmp_path / "out" / "bundle"])
    found = [
        f for f in analysis.evaluation.findings if f.rule == "exchange-connector-second-connector"
    ]
    assert len(found) == 2


# --- the trace reader -------------------------------------------------------------------------


def test_fragments_without_separators_and_with_line_breaks_read_alike(tmp_path: Path) -> None:
    texts = [event("Handling command: Getting the mobile device list without a time filter "
                   "(full sync) for 4 users", 0), event("second", 5)]  # fmt: skip
    joined, _ = read(write(tmp_path, "".join(texts)))
    lined, _ = read(write(tmp_path, "\r\n".join(texts) + "\r\n"))
    assert (
        [e.message for e in joined]
        == [e.message for e in lined]
        == [
            "Handling command: Getting the mobile device list without a time filter (full sync) "
            "for 4 users",
            "second",
        ]
    )
    first = joined[0]
    assert first.ts == T0 and first.host == "EXCH01" and first.provider == SOURCE
    assert first.fields["SyncKind"] == "full" and first.fields["Users"] == 4
    assert first.fields["ProcessID"] == "2212" and first.level == 4


@pytest.mark.parametrize(
    ("encoding", "bom"),
    [
        ("utf-8", codecs.BOM_UTF8),
        ("utf-16-le", codecs.BOM_UTF16_LE),
        ("utf-16-be", codecs.BOM_UTF16_BE),
        ("utf-16-le", b""),
    ],
)
def test_boms_and_encodings(tmp_path: Path, encoding: str, bom: bytes) -> None:
    text = event("Gerät — ✓ 完了", 0) + event("zwei", 1)
    path = write(tmp_path, text, encoding, bom)
    head = path.read_bytes()[:8192]
    assert looks_like_trace(head)
    assert identify(path.name, head, len(head)).kind is FileKind.TRACE
    events, scan = read(path)
    assert [e.message for e in events] == ["Gerät — ✓ 完了", "zwei"] and not scan.problems


def test_time_keeps_its_100_ns_precision(tmp_path: Path) -> None:
    text = event("x").replace(".0000000Z", ".1234567Z")
    (only,), _ = read(write(tmp_path, text))
    assert only.ts == T0 + 123_456_700


def test_huge_application_data_is_kept_bounded(tmp_path: Path) -> None:
    big = "A" * (MAX_TEXT_CHARS * 3)
    events, scan = read(write(tmp_path, event(big, 0) + event("after", 1)))
    assert len(events) == 2 and not scan.problems
    kept = events[0].fields["ApplicationData"]
    assert len(kept) < MAX_TEXT_CHARS + 100 and kept.endswith("more characters)")
    assert events[0].fields["ApplicationDataLength"] == len(big)


def test_an_event_beyond_the_size_bound_is_skipped_and_the_next_one_read(tmp_path: Path) -> None:
    text = event("B" * (MAX_EVENT_CHARS + 10), 0) + event("after", 1)
    events, scan = read(write(tmp_path, text))
    assert [e.message for e in events] == ["after"]
    assert [p.kind for p in scan.problems] == ["oversized_trace_event"]


@pytest.mark.parametrize("torn", [False, True])
def test_an_oversized_event_s_end_across_a_read_block_is_still_found(
    tmp_path: Path, torn: bool
) -> None:
    """The end tag of a skipped event straddling two 1 MiB reads, or never written (the next
    event starts inside it): the event after it is read either way."""
    from evtxdoc.parse.svclog import READ_BYTES

    closing = "</ApplicationData></E2ETraceEvent>"
    empty = event("")
    opening = empty[: len(empty) - len(closing)]
    before_end = len(opening) + len("</ApplicationData>")  # characters before </E2ETraceEvent>
    size = 5 * READ_BYTES - 5 - before_end  # so that it starts 5 bytes before a block ends
    if torn:  # longer: the next event begins only after the skipping has begun
        size += READ_BYTES + 7
    big = opening + "B" * size + ("" if torn else closing)
    events, scan = read(write(tmp_path, big + event("after", 1)))
    assert [e.message for e in events] == ["after"]
    assert [p.kind for p in scan.problems] == ["oversized_trace_event"]


def test_truncation_in_the_middle_of_an_event_keeps_what_came_before(tmp_path: Path) -> None:
    whole = event("one", 0) + event("two", 1) + event("three", 2)
    path = write(tmp_path, whole[: len(whole) - 60])
    file = DiscoveredFile(path.name, str(path), FileKind.TRACE, path.stat().st_size, "x")
    report, batch = read_trace(file)
    assert report.records == 2 and len(batch) == 2
    assert [p.kind for p in report.problems] == ["truncated_trace"]
    (damage,) = report.damage
    assert damage.after_ns == T0 + 10**9 and damage.before_ns is None


def test_a_torn_event_costs_only_itself(tmp_path: Path) -> None:
    torn = event("torn", 0)[:200]
    events, scan = read(write(tmp_path, event("one", 0) + torn + event("two", 2)))
    assert [e.message for e in events] == ["one", "two"]
    assert [p.kind for p in scan.problems] == ["torn_trace_event"]
    assert scan.damage[0].after_ns == T0 and scan.damage[0].before_ns == T0 + 2 * 10**9


def test_garbage_between_events_is_a_problem_not_a_loss(tmp_path: Path) -> None:
    events, scan = read(write(tmp_path, event("one", 0) + "\x00\x00garbage!!" + event("two", 1)))
    assert [e.message for e in events] == ["one", "two"]
    assert [p.kind for p in scan.problems] == ["trace_garbage"]


def test_billion_laughs_is_refused_and_nothing_expands(tmp_path: Path) -> None:
    lol = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        + "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10))
        + "]>"
    ).replace("&lol0;", "&lol;")
    text = lol + event("&lol9;", 0).replace("&amp;lol9;", "&lol9;") + event("fine", 1)
    events, scan = read(write(tmp_path, text))
    assert [e.message for e in events] == ["fine"]
    assert {p.kind for p in scan.problems} == {"trace_dtd_refused", "bad_trace_event"}


def test_an_external_entity_is_never_fetched(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    dtd = f'<!DOCTYPE x [<!ENTITY xxe SYSTEM "file://{secret}">]>'
    text = dtd + event("x", 0).replace(">x<", ">&xxe;<") + event("after", 1)
    events, _scan = read(write(tmp_path, text))
    assert all("TOP SECRET" not in e.message for e in events)
    assert [e.message for e in events] == ["after"]


def test_a_file_named_svclog_without_trace_events_is_skipped_with_a_reason() -> None:
    ident = identify("Connector0.svclog", b"hello, not xml", 14)
    assert ident.kind is FileKind.SKIPPED and "E2ETraceEvent" in (ident.reason or "")


def test_settings_files_refuse_a_dtd_and_read_the_documented_keys() -> None:
    ok = read_settings(
        "exchange_connector_config",
        b"<C><ExchangeWebServiceURL>https://cas/EWS/Exchange.asmx</ExchangeWebServiceURL>"
        b"<IsCasFailoverEnabled>false</IsCasFailoverEnabled></C>",
    )
    assert ok == {
        "ExchangeWebServiceURL": "https://cas/EWS/Exchange.asmx",
        "IsCasFailoverEnabled": "false",
    }
    bad = read_settings(
        "exchange_connector_config",
        b'<!DOCTYPE c [<!ENTITY a "b">]><C><IsCasFailoverEnabled>&a;</IsCasFailoverEnabled></C>',
    )
    assert list(bad) == ["Error"]


def test_the_html_report_draws_each_connector_s_syncs_and_says_its_verdict() -> None:
    from evtxdoc.report import html

    page = html.render(pipeline.analyze([SAMPLES / "exchange-cas-no-failover" / "bundle"]))
    section = page[page.index('<section id="exchange">') : page.index('<section id="findings">')]
    assert '<a href="#exchange">Exchange syncs</a>' in page
    assert "quick syncs failing since 2023-11-07" in section
    assert section.count('class="sync sync-failed"') == 4
    assert section.count('class="sync sync-completed"') == 8
    assert "IsCasFailoverEnabled" in section and "PSRemotingTransportException" in section
    verdicts = page[page.index('<section id="verdicts">') : page.index('<section id="exchange">')]
    assert "No device in these logs: they are an Intune Exchange connector" in verdicts


def test_tracing_below_information_is_said_not_read_as_failure(tmp_path: Path) -> None:
    from evtxdoc.synth import synthesize

    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(
        "name: quiet\nsummary: s\nroot_cause: r\nseed: 9\nstart: '2023-11-06T07:00:00Z'\n"
        "exchange:\n  - {name: EXCH01.contoso.local, days: 1}\n"
    )
    synthesize(scenario, tmp_path / "out")
    tracing = tmp_path / "out" / "bundle" / "EXCH01.contoso.local" / "TracingConfiguration.xml"
    tracing.write_text(tracing.read_text().replace("Information ActivityTracing", "Warning "
                                                   "ActivityTracing"))  # fmt: skip
    entry = pipeline_document(pipeline.analyze([tmp_path / "out" / "bundle"]))["exchange"][0]
    assert entry["settings"]["SourceLevel"] == "Warning ActivityTracing"
    assert entry["notes"] and "proves nothing" in entry["notes"][0]
    quiet = tmp_path / "quiet"  # only errors traced, no sync line: not judged, not "no syncs"
    (quiet / "EXCH01.contoso.local").mkdir(parents=True)
    for name in ("System.evtx", "TracingConfiguration.xml"):
        source = tracing.parent / name
        (quiet / "EXCH01.contoso.local" / name).write_bytes(source.read_bytes())
    (quiet / "EXCH01.contoso.local" / "Connector0.svclog").write_text(
        event("Connecting to the Microsoft Intune service failed: System.Net.WebException: "
              "The remote server returned an error: (503) Server Unavailable.", 3600, "Error")
    )  # fmt: skip
    entry = pipeline_document(pipeline.analyze([quiet]))["exchange"][0]
    assert entry["status"] == "not_traced" and "cannot be judged" in entry["verdict"]


def test_the_layouts_microsoft_documents_read_pretty_printed_and_with_xml_data(
    tmp_path: Path,
) -> None:
    """As Learn shows E2E events (XmlWriterTraceListener; the WCF tracing docs): one element per
    line and indented, and a WCF `TraceRecord` as XML application data."""
    system = (
        '<System xmlns="http://schemas.microsoft.com/2004/06/windows/eventlog/system">\n'
        "    <EventID>262163</EventID>\n    <Type>3</Type>\n"
        '    <SubType Name="Information">0</SubType>\n    <Level>8</Level>\n'
        '    <TimeCreated SystemTime="2006-08-04T18:45:30.8491051Z" />\n'
        '    <Source Name="System.ServiceModel" />\n'
        '    <Correlation ActivityID="{27c6331d-8998-43aa-a382-03239013a6bd}"/>\n'
        '    <Execution ProcessName="client" ProcessID="1808" ThreadID="1" />\n'
        "    <Channel />\n    <Computer>TEST1</Computer>\n  </System>\n"
    )
    record = (
        '<TraceRecord xmlns="http://schemas.microsoft.com/2004/10/E2ETraceEvent/TraceRecord" '
        'Severity="Information"><TraceIdentifier>http://msdn.microsoft.com/library/'
        "System.ServiceModel.Channels.MessageSent.aspx</TraceIdentifier>"
        "<Description>Sent a message over a channel.</Description>"
        "<AppDomain>client.exe</AppDomain></TraceRecord>"
    )
    text = (
        '<E2ETraceEvent xmlns="http://schemas.microsoft.com/2004/06/E2ETraceEvent">\n  '
        + system
        + f"  <ApplicationData>\n  <TraceData>\n   <DataItem>{record}</DataItem>\n"
        "  </TraceData>\n  </ApplicationData>\n</E2ETraceEvent>\n"
    )
    (only,), scan = read(write(tmp_path, text))
    assert not scan.problems
    assert only.ts == 1154717130849105100 and only.host == "TEST1"
    assert only.event_id == 262163 and only.provider == "System.ServiceModel"
    assert only.activity_id == "{27C6331D-8998-43AA-A382-03239013A6BD}"
    assert only.fields["Description"] == "Sent a message over a channel."
    assert only.fields["AppDomain"] == "client.exe" and only.fields["ThreadID"] == "1"
    assert "Sent a message over a channel." in only.message
