"""Bundle discovery: identification by content, archives (nested, hostile), duplicates."""

from __future__ import annotations

import stat
import struct
import zipfile
from pathlib import Path

import pytest
from cabarchive import CabArchive, CabFile

from evtxdoc import pipeline
from evtxdoc.bundle import discover
from evtxdoc.models import AnalyzeOptions, FileKind

from .conftest import real

SMALL = "new-user-security.evtx"  # 4 records, 69,632 bytes
DSREG = "+----+\n| Device State |\n+----+\n AzureAdJoined : NO\n DomainJoined : YES\n"


def make_zip(
    path: Path,
    members: dict[str, bytes],
    symlinks: dict[str, str] | None = None,
    method: int = zipfile.ZIP_DEFLATED,
) -> Path:
    with zipfile.ZipFile(path, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return path


def make_cab(members: dict[str, bytes]) -> bytes:
    archive = CabArchive()
    for name, data in members.items():
        archive[name] = CabFile(data)
    return archive.save(compress=True)


def kinds(bundle) -> set[str]:
    return {p.kind for p in bundle.problems}


def test_intune_collect_diagnostics_zip_with_nested_mdm_cab(tmp_path):
    log = real(SMALL).read_bytes()
    cab = make_cab(
        {
            "microsoft-windows-user device registration-admin.evtx": log,
            "AutopilotDDSZTDFile.json": b'{"CloudAssignedDomainJoinMethod": 1}',
            "MdmDiagReport_RegistryDump.reg": "Windows Registry Editor Version 5.00\r\n".encode(
                "utf-16"
            ),
        }
    )
    outer = make_zip(
        tmp_path / "DiagLogs-AP-1.zip",
        {
            "(80) mdmlogs-2025-02-18-10-00-00.cab": cab,
            "(63) dsregcmd.exe status/output.txt": DSREG.encode(),
            "(12) setupact.log": b"text",
        },
    )
    analysis = pipeline.analyze([outer])
    evtx = [f for f in analysis.files if f.kind is FileKind.EVTX]
    assert [f.display for f in evtx] == [
        f"{outer}!/(80) mdmlogs-2025-02-18-10-00-00.cab!/"
        "microsoft-windows-user device registration-admin.evtx"
    ]
    channels = analysis.timeline["channel"].astype(str)
    assert (~channels.str.startswith("Supporting/")).sum() == 4
    # the profile file and the dsregcmd output state facts: one event each (the .reg is empty)
    assert sorted(channels[channels.str.startswith("Supporting/")]) == [
        "Supporting/AutopilotDDSZTDFile.json",
        "Supporting/dsregcmd-status",
    ]
    assert {s.subkind for s in analysis.supporting} == {
        "autopilot_ztd_json",
        "registry_dump",
        "dsregcmd_status",
    }
    skipped = [f for f in analysis.files if f.kind is FileKind.SKIPPED]
    assert skipped[0].reason.startswith("text log")


def test_zip_slip_and_absolute_entries_are_refused(tmp_path):
    archive = make_zip(
        tmp_path / "evil.zip", {"../../etc/evil.evtx": b"x", "/abs/path.evtx": b"y", "ok.txt": b"z"}
    )
    bundle = discover([archive], tmp_path / "work", AnalyzeOptions())
    slips = [p for p in bundle.problems if p.kind == "zip_slip"]
    assert {p.source for p in slips} == {
        f"{archive}!/../../etc/evil.evtx",
        f"{archive}!//abs/path.evtx",
    }
    assert not (tmp_path / "etc").exists()
    assert [f.display for f in bundle.files][-1] == f"{archive}!/ok.txt"


def test_symlink_entries_are_never_created(tmp_path):
    archive = make_zip(tmp_path / "link.zip", {"a.txt": b"a"}, symlinks={"l.evtx": "/etc/passwd"})
    bundle = discover([archive], tmp_path / "work", AnalyzeOptions())
    assert "symlink" in kinds(bundle)
    assert not any(Path(f.path).is_symlink() for f in bundle.files)


def test_limits_total_size_entries_ratio_and_depth(tmp_path):
    big = make_zip(tmp_path / "big.zip", {"a.bin": b"\0" * 3_000_000, "b.bin": b"1" * 10})
    small_budget = AnalyzeOptions(max_total_bytes=1_000_000)
    assert "too_large" in kinds(discover([big], tmp_path / "w1", small_budget))
    assert "compression_ratio" in kinds(
        discover([big], tmp_path / "w2", AnalyzeOptions(max_ratio=100))
    )
    many = make_zip(tmp_path / "many.zip", {f"f{i}.txt": b"x" for i in range(30)})
    bundle = discover([many], tmp_path / "w3", AnalyzeOptions(max_entries=10))
    assert "too_many_entries" in kinds(bundle) and len(bundle.files) == 11  # zip + 10
    inner = make_zip(tmp_path / "l3.zip", {"x.txt": b"x"}).read_bytes()
    for level in (2, 1):
        inner = make_zip(tmp_path / f"l{level}.zip", {f"l{level + 1}.zip": inner}).read_bytes()
    deep = tmp_path / "l1.zip"
    problems = discover([deep], tmp_path / "w4", AnalyzeOptions(max_depth=2)).problems
    assert [p.kind for p in problems] == ["nesting_too_deep"]
    assert problems[0].source.endswith("l2.zip!/l3.zip")


def test_same_content_twice_is_read_once(tmp_path, copy_real):
    first = copy_real(SMALL, "a.evtx")
    second = copy_real(SMALL, "Security (copy).EVTX")
    archive = make_zip(tmp_path / "again.zip", {"inner/third.evtx": first.read_bytes()})
    analysis = pipeline.analyze([first, second, archive])
    assert len(analysis.file_reports) == 1 and len(analysis.timeline) == 4
    duplicates = [f for f in analysis.files if f.duplicate_of]
    assert [f.duplicate_of for f in duplicates] == [str(first), str(first)]


def test_identified_by_magic_not_name(tmp_path, copy_real):
    copy_real(SMALL, "export without extension")
    (tmp_path / "fake.evtx").write_text("Event Viewer CSV export,not evtx")
    (tmp_path / "empty.evtx").write_bytes(b"")
    analysis = pipeline.analyze([tmp_path])
    assert [r.display for r in analysis.file_reports] == [
        str(tmp_path / "export without extension")
    ]
    assert {p.kind: p.source for p in analysis.problems} == {
        "not_evtx": str(tmp_path / "fake.evtx"),
        "empty_file": str(tmp_path / "empty.evtx"),
    }


def test_truncated_file_keeps_what_it_holds(tmp_path, copy_real):
    whole = real("Security_with_size_t.evtx").read_bytes()
    cut = tmp_path / "cut.evtx"
    cut.write_bytes(whole[: 4096 + 65536 + 30000])  # first chunk and part of the second
    analysis = pipeline.analyze([cut])
    assert "truncated_file" in {p.kind for p in analysis.problems}
    assert 100 < len(analysis.timeline) < 636


def test_lzx_cab_names_its_compression(tmp_path):
    cab = bytearray(make_cab({"a.evtx": b"x" * 100}))
    folder = 36  # CFFOLDER follows the 36-byte CFHEADER (no reserve, no set links)
    struct.pack_into("<H", cab, folder + 6, 0x1503)  # typeCompress: LZX, window 21
    path = tmp_path / "mdmlogs.cab"
    path.write_bytes(bytes(cab))
    bundle = discover([path], tmp_path / "work", AnalyzeOptions())
    assert any("LZX" in p.message for p in bundle.problems), bundle.problems


def test_missing_input_is_an_input_error(tmp_path):
    from evtxdoc.errors import InputError

    with pytest.raises(InputError, match="no such file"):
        discover([tmp_path / "nope"], tmp_path, AnalyzeOptions())


def test_broken_zip_is_a_problem_not_a_crash(tmp_path, copy_real):
    good = copy_real(SMALL)
    broken = tmp_path / "broken.zip"
    make_zip(tmp_path / "t.zip", {"x.evtx": good.read_bytes()})
    broken.write_bytes((tmp_path / "t.zip").read_bytes()[:2000])
    analysis = pipeline.analyze([broken, good])
    assert len(analysis.timeline) == 4
    assert {p.kind for p in analysis.problems} & {"bad_archive", "bad_entry"}


def test_a_supporting_file_without_a_time_takes_its_machines_last_event(tmp_path):
    """The registry dump states no time: its event lands on the last event of the machine
    whose logs lie beside it, named as that machine."""
    log = real(SMALL).read_bytes()
    registry = (
        "Windows Registry Editor Version 5.00\r\n\r\n[HKEY_LOCAL_MACHINE\\SOFTWARE\\"
        "Microsoft\\Provisioning\\Diagnostics\\Autopilot\\EstablishedCorrelations]\r\n"
        '"EntDMID"="{0A1B2C3D-0000-4000-8000-000000000001}"\r\n'
    ).encode("utf-16")
    folder = tmp_path / "device"
    folder.mkdir()
    (folder / "udr.evtx").write_bytes(log)
    (folder / "MdmDiagReport_RegistryDump.reg").write_bytes(registry)
    analysis = pipeline.analyze([folder])
    frame = analysis.timeline
    stated = frame[frame["channel"].astype(str) == "Supporting/MdmDiagReport_RegistryDump.reg"]
    assert len(stated) == 1
    logs = frame[frame["provider"].astype(str) != "evtxdoc"]
    assert stated["ts"].iloc[0] == logs["ts"].max()
    assert stated["host"].iloc[0] in set(logs["host"].astype(str))


def test_a_password_protected_zip_is_read_with_its_password_and_only_with_it(
    tmp_path: Path,
) -> None:
    """ZipCrypto entries (7-Zip's and `zip -P`'s default): no password → a problem that says
    how to give one; the right one among several → the events; a wrong one → said so. The
    password appears in no report."""
    from typer.testing import CliRunner

    from evtxdoc.cli import app
    from tests.zipcrypto import write_encrypted_zip

    sample = Path(__file__).resolve().parent.parent / "sample_logs/healthy-hybrid/bundle"
    device_zip = next(sample.glob("DiagLogs-*.zip"))
    with zipfile.ZipFile(device_zip) as source:
        members = {i.filename: source.read(i) for i in source.infolist() if not i.is_dir()}
    locked = tmp_path / "locked.zip"
    write_encrypted_zip(locked, members, "Contoso-2025!")
    plain = pipeline.analyze([device_zip])

    without = pipeline.analyze([locked])
    assert len(without.timeline) == 0
    assert {p.kind for p in without.problems} >= {"encrypted"}
    assert any("--zip-password" in (p.hint or "") for p in without.problems)

    opened = pipeline.analyze([locked], AnalyzeOptions(zip_passwords=("wrong", "Contoso-2025!")))
    assert len(opened.timeline) == len(plain.timeline) > 0
    assert "encrypted" not in {p.kind for p in opened.problems}

    wrong = pipeline.analyze([locked], AnalyzeOptions(zip_passwords=("contoso-2025!",)))
    assert len(wrong.timeline) == 0 and "wrong_password" in {p.kind for p in wrong.problems}

    out = tmp_path / "r.json"
    result = CliRunner().invoke(
        app, ["analyze", str(locked), "-o", str(out)], env={"EVTXDOC_ZIP_PASSWORD": "Contoso-2025!"}
    )
    assert result.exit_code == 0, result.output
    assert "Contoso-2025!" not in out.read_text() and '"events": 0' not in out.read_text()
