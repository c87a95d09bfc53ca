"""The error-code catalog: every code of domain.md (b), in every form logs write it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evtxdoc import catalog
from evtxdoc.cli import app
from evtxdoc.errors import InputError
from tests.conftest import ROOT

DOMAIN = ROOT.parent / "shared" / "reference" / "domain.md"
runner = CliRunner()


def _domain_codes() -> list[str]:
    if not DOMAIN.exists():
        pytest.skip("../shared/reference/domain.md not present")
    text = DOMAIN.read_text("utf-8")
    table = text[text.index("## (b) Error-code table") : text.index("## (c)")]
    codes = []
    for line in table.splitlines():
        if not line.startswith("| ") or line.startswith(("| code", "|---")):
            continue
        first = line.split("|")[1].replace("*", "")
        found = re.findall(r"0x[0-9A-Fa-f]+|\b[A-Z][A-Z_]{5,}\b", first)
        codes += [c for c in found if c not in ("NetStatus",)]
    return codes


def test_every_code_of_the_domain_table_is_in_the_catalog() -> None:
    codes = _domain_codes()
    assert len(codes) >= 40
    known = catalog.load()
    missing = [c for c in codes if not known.lookup(c, scope="connector")]
    assert missing == []


@pytest.mark.parametrize(
    "form",
    [
        "0x80070774",
        "80070774",
        "-2147022988",
        "1908",
        "0x774",
        "0X80070774",
        "ERROR_DOMAIN_CONTROLLER_NOT_FOUND",
    ],
)
def test_a_code_is_found_in_every_form(form: str) -> None:
    (entry,) = catalog.load().lookup(form)
    assert (entry.code, entry.win32) == ("0x80070774", 1908)
    assert entry.sources[0].id == "S24" and entry.sources[1].url.startswith("https://learn")


def test_nerr_and_netstatus_values_resolve_and_connector_codes_stay_scoped() -> None:
    known = catalog.load()
    assert [e.name for e in known.lookup("2710")] == ["NERR_BadOfflineJoinInfo"]
    assert [e.name for e in known.lookup("0x0000232B")] == ["DNS_ERROR_RCODE_NAME_ERROR"]
    assert [e.name for e in known.lookup(8557)] == ["ERROR_DS_MACHINE_ACCOUNT_QUOTA_EXCEEDED"]
    assert known.lookup("2048") == []  # Win32 2048 is not the connector's DiagnosticCode
    assert [e.scope for e in known.lookup("0x00000800")] == ["connector"]
    assert [e.scope for e in known.lookup("0x800", scope="connector")] == ["connector"]


def test_forms_and_unknown_codes_are_decoded() -> None:
    assert catalog.forms(catalog.parse_code("-2147022988")) == {
        "hex": "0x80070774",
        "unsigned": 2147944308,
        "signed": -2147022988,
        "win32": 1908,
        "hresult": "0x80070774",
    }
    assert catalog.parse_code("12345678") == 12345678  # digits not starting 8/9: decimal
    assert catalog.parse_code("not a code") is None
    assert catalog.describe_unknown(0x80071234) == "HRESULT from Win32 error 4660 (0x1234)"


def test_entries_are_sourced_and_carry_a_confidence() -> None:
    codes = catalog.load().codes
    assert len(codes) >= 40  # the loop below checks the real catalog, not an empty one
    for entry in codes:
        assert entry.confidence in catalog.CONFIDENCE
        assert entry.sources or entry.confidence == "inferred", entry.code


def _catalog(root: Path, codes: str) -> None:
    """A catalog folder under `root` with one source (S1) and these error codes."""
    folder = root / "catalog"
    folder.mkdir()
    (folder / "sources.yaml").write_text("sources:\n  S1: {title: t, url: https://x}\n")
    (folder / "error_codes.yaml").write_text(codes)


def test_a_broken_catalog_names_the_file_and_the_entry(tmp_path: Path) -> None:
    _catalog(
        tmp_path,
        "codes:\n  - {code: '0x1', meaning: m, context: c, fix: f, confidence: documented,"
        " sources: [S1]}\n  - {code: '0x2', meaning: m, context: c, fix: f,"
        " confidence: documented, sources: [S1], fixx: typo}\n",
    )
    with pytest.raises(InputError) as caught:
        catalog.load(tmp_path)
    assert "codes[1]" in caught.value.where and "fixx" in str(caught.value)
    assert "error_codes.yaml:3: codes[1]" in caught.value.where  # its line


def test_every_broken_catalog_entry_is_reported_in_one_pass(tmp_path: Path) -> None:
    _catalog(
        tmp_path,
        "codes:\n  - {code: '0x1', meaning: m, context: c, fix: f, confidence: sure}\n"
        "  - {code: '0x2', meaning: m, context: c, fix: f, confidence: documented,"
        " sources: [S9]}\n",
    )
    with pytest.raises(InputError) as caught:
        catalog.load(tmp_path)
    text = str(caught.value)
    assert "2 broken catalog entries" in text
    assert "error_codes.yaml:2: codes[0]: confidence 'sure'" in text
    assert "error_codes.yaml:3: codes[1]: unknown source 'S9'" in text


def test_catalog_show_explains_a_code_and_exits_1_for_an_unknown_one() -> None:
    result = runner.invoke(app, ["catalog", "show", "0x80070774"])
    assert result.exit_code == 0, result.output
    assert "ERROR_DOMAIN_CONTROLLER_NOT_FOUND (Win32 1908)" in result.output
    assert "signed -2147022988" in result.output and "fix:" in result.output
    assert "troubleshoot-windows-enrollment-errors" in result.output
    result = runner.invoke(app, ["catalog", "show", "0x80071234"])
    assert result.exit_code == 1
    assert "HRESULT from Win32 error 4660" in result.output


def test_event_messages_are_rendered_from_the_catalog_templates() -> None:
    from evtxdoc import catalog as catalog_module

    known = catalog_module.load()
    assert len(known.events) >= 30
    text = known.message(
        "system",
        4099,
        "Microsoft-Windows-CoreSystem-NetProvision-JoinProviderOnline",
        {"ComputerName": "AP-1", "DomainName": "contoso.local", "NetStatusCode": 2710},
    )
    assert text == "Offline domain join of AP-1 to contoso.local failed: NetStatusCode 2710"
    assert known.message("System", 4099, "SomeOtherProvider", {}) is None
    assert known.message(
        "Microsoft-Windows-DeviceManagement-Enterprise-Diagnostics-Provider/Admin", 109, "x", {}
    ) == ("Offline domain join state ? (1 waiting, 2 blob processed, 3 timed out)")


def test_exported_events_read_like_event_viewer() -> None:
    from pathlib import Path

    from evtxdoc import timeline
    from evtxdoc.models import AnalyzeOptions
    from evtxdoc.pipeline import analyze

    bundle = Path(__file__).parent.parent / "sample_logs" / "blob-rejected" / "bundle"
    frame = analyze([bundle], AnalyzeOptions(evaluate=False)).timeline
    rows = timeline.select(frame, event_ids=[4099])
    events = list(timeline.to_events(rows))
    assert events and events[0].message == (
        "Offline domain join of AP-5H8J2K4L6MN to contoso.local failed: NetStatusCode 2710"
    )
