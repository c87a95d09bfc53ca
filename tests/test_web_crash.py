"""The web service survives its own death and its analyses' (issue 18): kill -9 the server, or
one analysis process, while jobs run; every job still ends exactly once with its report, and no
process or temporary folder is left behind. Runs the real `evtxdoc serve` on a free port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx  # the HTTP client the test extras install (Starlette's TestClient uses it)
import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_logs" / "access-denied-legacy" / "bundle"
TOKEN = "crash-test-token-0123456789"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux processes")


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _serve(data: Path, port: int) -> subprocess.Popen[bytes]:
    evtxdoc = Path(sys.executable).with_name("evtxdoc")
    server = subprocess.Popen(
        [str(evtxdoc), "serve", "--data", str(data), "--port", str(port), "--jobs", "3",
         "--workers", "1", "--token", TOKEN],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise AssertionError("the service did not start")


def _upload(port: int) -> str:
    files = [
        ("files", (path.name, path.read_bytes(), "application/octet-stream"))
        for path in sorted(SAMPLE.rglob("*"))
        if path.is_file()
    ]
    reply = httpx.post(f"http://127.0.0.1:{port}/analyses", files=files, headers=BEARER)
    assert reply.status_code == 201, reply.text
    return str(reply.json()["id"])


def _status(port: int, job: str) -> dict:
    return httpx.get(f"http://127.0.0.1:{port}/analyses/{job}/status", headers=BEARER).json()


def _wait(port: int, jobs: list[str], wanted: set[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(_status(port, job)["status"] in wanted for job in jobs):
            return
        time.sleep(0.1)
    raise AssertionError([_status(port, job) for job in jobs])


def _analyses(data: Path) -> list[int]:
    """Pids of analysis processes working on this data folder."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                command = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in command and _descends_from_data(int(proc.name), data):
                found.append(int(proc.name))
    return found


def _leftovers(data: Path) -> list[str]:
    """Every process but this one that carries this test's marker: the server's children of
    any kind (analyses, readers, multiprocessing's resource tracker)."""
    found = []
    for proc in Path("/proc").iterdir():
        mine = proc.name.isdigit() and int(proc.name) != os.getpid()
        if mine and _descends_from_data(int(proc.name), data):
            try:
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
            except OSError:
                continue
    return found


def _descends_from_data(pid: int, data: Path) -> bool:
    """Whether the process carries this test's marker (inherited from the server it runs)."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return f"EVTXDOC_TEST_DATA={data}".encode() in environ


def _ended_once_with_reports(data: Path, port: int, jobs: list[str]) -> None:
    for job in jobs:
        status = _status(port, job)
        assert status["status"] == "done", status
        assert len(status["reports"]) == 4
        report = httpx.get(f"http://127.0.0.1:{port}/analyses/{job}/report.json", headers=BEARER)
        assert report.json()["summary"]["events"] > 0
        folder = data / "jobs" / job
        assert not list(folder.glob(".*.part")) and not (folder / "tmp").exists()


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "data"
    monkeypatch.setenv("EVTXDOC_TEST_DATA", str(folder))  # marks this test's processes
    return folder


def test_a_killed_server_leaves_no_orphan_and_each_job_ends_once(data: Path) -> None:
    port = _port()
    server = _serve(data, port)
    jobs = [_upload(port) for _ in range(3)]
    _wait(port, jobs, {"running", "done"})
    server.send_signal(signal.SIGKILL)
    server.wait()
    deadline = time.monotonic() + 10
    while _analyses(data) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _analyses(data) == [], "analysis processes outlived the server"
    server = _serve(data, port)
    try:
        _wait(port, jobs, {"done", "failed"})
        _ended_once_with_reports(data, port, jobs)
    finally:
        server.terminate()
        server.wait(10)
    time.sleep(0.5)
    assert _leftovers(data) == [], "SIGTERM left processes behind (pool workers, trackers)"


def test_a_killed_analysis_costs_no_other_job_and_is_run_again(data: Path) -> None:
    port = _port()
    server = _serve(data, port)
    try:
        jobs = [_upload(port) for _ in range(3)]
        _wait(port, jobs, {"running", "done"})
        victims = _analyses(data)
        assert victims, "no analysis process found"
        os.kill(victims[0], signal.SIGKILL)
        _wait(port, jobs, {"done", "failed"})
        _ended_once_with_reports(data, port, jobs)
    finally:
        server.terminate()
        server.wait(10)
