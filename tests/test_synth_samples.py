"""sample_logs/: every bundle regenerates byte for byte, reads clean, and looks like Windows.

The committed bundles are what `evtxdoc synth` writes for each scenario: a test regenerates
them and compares bytes, so a scenario and its bundle cannot drift apart. Generated device logs
are checked against the shapes of real files: the System template layout of real Windows
records (../shared/real-evtx), provider and channel spellings from reference/domain.md, and the
EventData field names observed in real Autopilot/MDM exports (parsers.md §7, domain.md [REAL]).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from evtxdoc import pipeline, timeline
from evtxdoc.synth import synthesize
from evtxdoc.synth.catalog import load as load_catalog
from tests.conftest import REAL, ROOT, real

SAMPLES = ROOT / "sample_logs"
SCENARIOS = sorted(p.parent.name for p in SAMPLES.glob("*/scenario.yaml"))
DOMAIN_MD = REAL.parent / "reference" / "domain.md"


def test_there_are_at_least_twelve_scenarios_each_with_bundle_and_expectation() -> None:
    assert len(SCENARIOS) >= 12
    for name in SCENARIOS:
        folder = SAMPLES / name
        assert (folder / "expected.yaml").is_file()
        assert any((folder / "bundle").iterdir())
        expected = yaml.safe_load((folder / "expected.yaml").read_text())
        assert expected["root_cause"] and (expected["attempts"] or expected.get("exchange"))


@pytest.mark.parametrize("name", SCENARIOS)
def test_bundle_regenerates_byte_for_byte(tmp_path: Path, name: str) -> None:
    folder = SAMPLES / name
    written = synthesize(folder / "scenario.yaml", tmp_path)
    assert written
    committed = {
        p.relative_to(folder): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file() and p.name != "scenario.yaml"
    }
    fresh = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert set(fresh) == set(committed), "run sample_logs/regenerate.sh"
    for path, data in fresh.items():
        assert data == committed[path], f"{name}/{path} differs: run sample_logs/regenerate.sh"


@pytest.mark.parametrize("name", SCENARIOS)
def test_bundle_reads_with_exactly_the_injected_problems(name: str) -> None:
    folder = SAMPLES / name
    scenario = yaml.safe_load((folder / "scenario.yaml").read_text())
    analysis = pipeline.analyze([folder / "bundle"])
    injected = {
        (d["host"], kind)
        for d in scenario.get("damage") or []
        for key, kinds in DAMAGE_PROBLEMS.items()
        if d.get(key)
        for kind in kinds
    }
    found = {(p.source.split("/bundle/")[1].split("/")[0], p.kind) for p in analysis.problems}
    assert found == injected
    assert len(analysis.timeline) > 0
    hosts = set(analysis.timeline["host"].astype(str))
    for device in scenario.get("devices") or []:
        if device.get("layout") != "not_collected":
            assert device["oobe_name"] in hosts
    for server in scenario.get("exchange") or []:  # its System log and its trace's NetBIOS name
        assert {server["name"], server["name"].split(".")[0].upper()} <= hosts


DAMAGE_PROBLEMS = {  # scenario damage → the problems reading it must report, no more
    "dirty": ("dirty_header",),
    "torn_last_record": ("torn_record", "bad_chunk_data_crc", "channel_inferred"),
    "truncate_at_record": (
        "truncated_file",
        "bad_free_space",
        "bad_record",
        "truncated_records_recovered",
    ),
}


def test_same_seed_same_bytes_other_seed_other_names(tmp_path: Path) -> None:
    scenario = SAMPLES / "no-connector-timeout" / "scenario.yaml"
    first = synthesize(scenario, tmp_path / "a", seed=5)
    second = synthesize(scenario, tmp_path / "b", seed=5)
    third = synthesize(scenario, tmp_path / "c", seed=6)
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
    assert [p.read_bytes() for p in first] != [p.read_bytes() for p in third]


def _first_template_view(path: Path, match: str) -> str:
    pytest.importorskip("Evtx", reason="python-evtx (the optional extra) is not installed")
    from Evtx.Evtx import Evtx
    from Evtx.Views import evtx_template_readable_view

    with Evtx(str(path)) as log:
        for record in log.records():
            if match in record.xml():
                view = evtx_template_readable_view(record.root())
                return re.sub(r"<Computer>[^<]*</Computer>", "<Computer/>", view)
    raise AssertionError(f"no record matching {match!r} in {path}")


def test_system_templates_are_laid_out_as_in_real_windows_files() -> None:
    live = SAMPLES / "device-clock-wrong" / "bundle" / "DESKTOP-T4Y6U8I" / "winevt" / "Logs"
    # shape A (manifest providers): as security.evtx writes it
    ours = _first_template_view(live / "System.evtx", "Microsoft-Windows-Kernel-General")
    assert ours == _first_template_view(real("security.evtx"), "Security-Auditing")
    # shape B (classic event sources): as system.evtx writes Service Control Manager events
    server = SAMPLES / "device-clock-wrong" / "bundle" / "CONN01.contoso.local"
    ours = _first_template_view(server / "System.evtx", "Service Control Manager")
    theirs = _first_template_view(real("system.evtx"), "Service Control Manager")
    assert ours == theirs


def _fields_by_event(bundle: Path) -> dict[tuple[str, int], set[str]]:
    frame = pipeline.analyze([bundle]).timeline
    out: dict[tuple[str, int], set[str]] = {}
    for (channel, event_id), group in frame.groupby(["channel", "event_id"], observed=True):
        for fields in timeline.fields_of(group.head(3)):
            out.setdefault((str(channel), int(event_id)), set()).update(fields)
    return out


REAL_FIELDS = {  # parsers.md §7 and domain.md a.2 [REAL]: field names per event id
    ("Microsoft-Windows-DeviceManagement-Enterprise-Diagnostics-Provider/Admin", 109): {"HexInt1"},
    ("Microsoft-Windows-DeviceManagement-Enterprise-Diagnostics-Provider/Admin", 111): {"Boolean1"},
    ("Microsoft-Windows-DeviceManagement-Enterprise-Diagnostics-Provider/Admin", 2750): {
        "HRESULT",
        "HexInt1",
        "Message1",
    },
    ("Microsoft-Windows-ModernDeployment-Diagnostics-Provider/Autopilot", 153): {
        "InitialState",
        "UpdateState",
    },
    ("Microsoft-Windows-ModernDeployment-Diagnostics-Provider/Autopilot", 103): {
        "Message1",
        "Message2",
    },
    ("Microsoft-Windows-ModernDeployment-Diagnostics-Provider/ManagementService", 1005): {
        "File",
        "HRESULT",
        "Line",
        "Message",
    },
    ("Microsoft-Windows-Shell-Core/Operational", 62407): {"Name", "Value"},
    ("System", 4098): {"DomainName", "ComputerName"},  # domain.md a.8 (S28)
    ("System", 4099): {"DomainName", "ComputerName", "NetStatusCode"},
}


def test_device_events_carry_the_real_field_names() -> None:
    seen: dict[tuple[str, int], set[str]] = {}
    for name in ("healthy-hybrid", "blob-rejected", "device-clock-wrong"):
        for key, fields in _fields_by_event(SAMPLES / name / "bundle").items():
            seen.setdefault(key, set()).update(fields)
    for key, names in REAL_FIELDS.items():
        assert key in seen, f"no {key} event in the samples"
        assert seen[key] == names, key


def test_provider_and_channel_spellings_come_from_domain_md() -> None:
    if not DOMAIN_MD.exists():
        pytest.skip("../shared/reference/domain.md not present")
    text = DOMAIN_MD.read_text("utf-8")
    for shape in load_catalog().values():
        if shape.shape == "documented" or shape.channel.startswith("Microsoft-Windows-Device"):
            assert shape.channel in text or shape.channel == "System", shape.key
            assert shape.provider in text, shape.key


def test_connector_bodies_decode_into_the_documented_fields() -> None:
    frame = pipeline.analyze([SAMPLES / "multi-device-two-connectors" / "bundle"]).timeline
    requests = timeline.select(frame, event_ids=[30130])
    fields = timeline.fields_of(requests)
    assert {f["DeviceName"] for f in fields} >= {
        "AP-2W4E6R8T0YU",
        "AP-3E5R7T9Y1UI",
        "KSK-8M6N4B2V0C",
    }
    failed = [f for f in fields if f["DiagnosticCode"] != "0"]
    assert [f["DeviceName"] for f in failed] == ["KSK-8M6N4B2V0C"]
    legacy = pipeline.analyze([SAMPLES / "access-denied-legacy" / "bundle"]).timeline
    body = timeline.fields_of(timeline.select(legacy, event_ids=[30132]))[0]
    assert body["MetricName"] == "RequestOfflineDomainJoinBlob_Failure"
    assert (body["ErrorCode"], body["DiagnosticCode"]) == ("5", "0x00000800")
    assert body["MachineName"] == "FAB-7TQ2XK9M3A"
