"""The web service: access, uploads and their limits, analyses in their own process, reports
served sandboxed, restart, delete. Starlette's TestClient drives the real app; analyses run in
real spawned processes on the bundled sample logs."""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from evtxdoc import pipeline
from evtxdoc.report.formats import document
from evtxdoc.web import WebSettings, create_app, load_token
from evtxdoc.web.store import JobStore, Status, new_job_id
from evtxdoc.web.uploads import safe_relative_name

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_logs" / "access-denied-legacy" / "bundle"
CAB = SAMPLE / "DESKTOP-Q8RT2ZB-mdmdiag.cab"
CONNECTOR = SAMPLE / "ODJSRV.fabrikam.local" / "ODJ Connector Service.evtx"
TOKEN = "test-token-0123456789"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
ORIGIN = {"Origin": "http://testserver"}


def _settings(tmp_path: Path, **limits) -> WebSettings:
    return WebSettings(tmp_path / "data", TOKEN, **limits)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    app = create_app(_settings(tmp_path_factory.mktemp("web")))
    with TestClient(app, base_url="http://testserver") as test_client:
        yield test_client


def _files(*paths: Path, names: list[str] | None = None):
    names = names or [p.name for p in paths]
    return [
        ("files", (name, p.read_bytes(), "application/octet-stream"))
        for name, p in zip(names, paths, strict=True)
    ]


def _wait(client: TestClient, job_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get(f"/analyses/{job_id}/status", headers=BEARER).json()
        if status["status"] in ("done", "failed"):
            return status
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s: {status}")


def test_nothing_is_shown_without_the_token(client):
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"
    api = client.get("/analyses", headers={"Accept": "application/json"})
    assert api.status_code == 401 and api.headers["www-authenticate"] == "Bearer"
    assert client.get("/analyses", headers={"Authorization": "Bearer wrong"}).status_code == 401
    post = client.post("/analyses", files=_files(CONNECTOR), follow_redirects=False)
    assert (post.status_code, post.headers["location"]) == (303, "/login")
    assert client.get("/healthz").json()["ok"] is True


def test_signing_in_with_the_token_opens_the_pages(tmp_path):
    with TestClient(create_app(_settings(tmp_path)), base_url="http://testserver") as browser:
        refused = browser.post("/login", data={"token": "nope"}, headers=ORIGIN)
        assert refused.status_code == 401 and "not the access token of this service" in refused.text
        signed = browser.post(
            "/login", data={"token": TOKEN}, headers=ORIGIN, follow_redirects=False
        )
        assert signed.status_code == 303
        cookie = signed.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and TOKEN not in cookie
        page = browser.get("/")
        assert page.status_code == 200 and "Analyze logs" in page.text
        assert "script-src 'nonce-" in page.headers["content-security-policy"]
        browser.post("/logout", headers=ORIGIN)
        assert browser.get("/", follow_redirects=False).status_code == 303


def test_a_link_with_the_token_signs_in(tmp_path):
    with TestClient(create_app(_settings(tmp_path)), base_url="http://testserver") as browser:
        assert browser.get(f"/login?token={TOKEN}").url.path == "/"


def test_a_cross_site_form_post_is_refused(tmp_path):
    with TestClient(create_app(_settings(tmp_path)), base_url="http://testserver") as browser:
        browser.get(f"/login?token={TOKEN}")
        foreign = browser.post(
            "/analyses", files=_files(CONNECTOR), headers={"Origin": "http://evil.example"}
        )
        assert foreign.status_code == 403
        assert browser.post("/analyses", files=_files(CONNECTOR)).status_code == 403  # no origin
        junk = {"Origin": "http://evil.example", "Authorization": "Bearer nonsense"}
        assert browser.post("/analyses", files=_files(CONNECTOR), headers=junk).status_code == 403
        assert JobStore(tmp_path / "data").recent() == []


def test_wrong_tokens_are_throttled_per_client(tmp_path):
    with TestClient(create_app(_settings(tmp_path)), base_url="http://testserver") as browser:
        codes = [browser.get("/login?token=guess").status_code for _ in range(6)]
        assert codes == [401] * 5 + [429]
        throttled = browser.get(f"/login?token={TOKEN}")  # even the right one waits now
        assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) > 50
        api = [browser.get("/analyses", headers={"Authorization": "Bearer x"}) for _ in range(2)]
        assert {reply.status_code for reply in api} == {429}


def test_an_upload_that_stalls_is_dropped(monkeypatch):
    import asyncio

    from evtxdoc.web import uploads

    monkeypatch.setattr(uploads, "IDLE_S", 0.2)

    class Stalling:
        async def stream(self):
            yield b"--boundary\r\n"
            await asyncio.sleep(5)
            yield b"never"

    async def drain():
        return [chunk async for chunk in uploads._limited(Stalling(), 1 << 20)]

    with pytest.raises(uploads.UploadError) as raised:
        asyncio.run(drain())
    assert raised.value.status == 408


def test_an_upload_is_analyzed_in_its_own_process_like_the_cli_does(client):
    created = client.post("/analyses", files=_files(CAB, CONNECTOR), headers=BEARER)
    assert created.status_code == 201, created.text
    job = created.json()
    assert [f["name"] for f in job["files"]] == [CAB.name, CONNECTOR.name]
    status = _wait(client, job["id"])
    assert status["status"] == "done", status["error"]
    assert set(status["reports"]) == {
        "report.html",
        "report.json",
        "report-redacted.html",
        "report-redacted.json",
    }
    served = client.get(f"/analyses/{job['id']}/report.json", headers=BEARER).json()
    local = document(pipeline.analyze([CAB, CONNECTOR]))
    assert served["verdicts"] == local["verdicts"]
    assert served["verdicts"][0]["root_cause"]["rule"] == "connector-access-denied-legacy"
    assert [f["path"] for f in served["files"]][:1] == [CAB.name]  # upload names, no server path
    assert str(client.app.state.service.store.data_dir) not in json.dumps(served)
    assert status["summary"]["verdicts"][0]["status"] == "timed_out"


def test_reports_are_served_sandboxed_and_redacted_on_request(client):
    job = client.post("/analyses", files=_files(CAB, CONNECTOR), headers=BEARER).json()
    _wait(client, job["id"])
    report = client.get(f"/analyses/{job['id']}/report.html", headers=BEARER)
    assert report.status_code == 200 and "DESKTOP-Q8RT2ZB" in report.text
    policy = report.headers["content-security-policy"]
    assert policy.startswith("sandbox allow-scripts") and "default-src 'none'" in policy
    assert "allow-same-origin" not in policy
    redacted = client.get(f"/analyses/{job['id']}/report-redacted.html", headers=BEARER)
    assert "DESKTOP-Q8RT2ZB" not in redacted.text and "FAB-7TQ2XK9M3A" not in redacted.text
    download = client.get(f"/analyses/{job['id']}/report.json?download=1", headers=BEARER)
    assert download.headers["content-disposition"].startswith('attachment; filename="evtxdoc-')
    assert client.get(f"/analyses/{job['id']}/other.html", headers=BEARER).status_code == 404
    page = client.get(f"/analyses/{job['id']}", headers=BEARER)
    assert "Open the report" in page.text
    assert "FAB-7TQ2XK9M3A" in page.text  # signed in: the names as logged (redacted: to share)
    assert "timed out at odj_blob" in page.text


@pytest.mark.parametrize(
    ("limits", "files", "status", "says"),
    [
        ({"max_files": 1}, [CAB, CONNECTOR], 400, "too many files in one upload (at most 1)"),
        ({"max_upload_bytes": 20_000}, [CONNECTOR], 413, "larger than this service accepts"),
    ],
)
def test_uploads_over_the_limits_are_refused_with_the_reason(tmp_path, limits, files, status, says):
    with TestClient(create_app(_settings(tmp_path, **limits))) as api:
        refused = api.post("/analyses", files=_files(*files), headers=BEARER)
        assert refused.status_code == status and says in refused.json()["error"]
        assert JobStore(tmp_path / "data").recent() == []
        assert not any((tmp_path / "data" / "jobs").iterdir())


def test_an_upload_without_files_is_refused(client):
    empty = client.post(
        "/analyses", data={"note": "x"}, files=[("x", ("", b"", "text/plain"))], headers=BEARER
    )
    assert empty.status_code == 400
    plain = client.post(
        "/analyses", content=b"{}", headers={**BEARER, "Content-Type": "application/json"}
    )
    assert plain.status_code == 415


def test_hostile_file_names_stay_inside_the_upload_and_are_escaped(client):
    names = ["../../../etc/passwd.evtx", "..\\..\\win.evtx", "<script>alert(1)</script>.evtx"]
    job = client.post(
        "/analyses", files=_files(CONNECTOR, CONNECTOR, CONNECTOR, names=names), headers=BEARER
    ).json()
    stored = [f["name"] for f in job["files"]]
    assert stored == ["etc/passwd.evtx", "win.evtx", "_script_alert(1)_/script_.evtx"]
    upload = client.app.state.service.store.upload_folder(job["id"])
    assert all((upload / name).resolve().is_relative_to(upload.resolve()) for name in stored)
    _wait(client, job["id"])
    page = client.get(f"/analyses/{job['id']}", headers=BEARER).text
    assert "<script>alert" not in page


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("System.evtx", "System.evtx"),
        ("bundle/ODJSRV/ODJ Connector Service.evtx", "bundle/ODJSRV/ODJ Connector Service.evtx"),
        ("Microsoft-Windows-AAD%4Operational.evtx", "Microsoft-Windows-AAD%4Operational.evtx"),
        ("/abs/../x.evtx", "abs/x.evtx"),
        ("C:\\Users\\me\\x.evtx", "C_/Users/me/x.evtx"),
        ("a\x00b\x1b[31m.evtx", "ab_31m.evtx"),
        ("..", "upload"),
        ("", "upload"),
    ],
)
def test_file_names_are_made_safe(name, safe):
    assert safe_relative_name(name).as_posix() == safe


def test_two_files_of_one_name_are_both_kept(client):
    job = client.post(
        "/analyses", files=_files(CONNECTOR, CAB, names=["System.evtx"] * 2), headers=BEARER
    ).json()
    assert [f["name"] for f in job["files"]] == ["System.evtx", "System (2).evtx"]
    _wait(client, job["id"])


def test_jobs_left_unfinished_run_again_when_the_service_restarts(tmp_path):
    settings = _settings(tmp_path)
    store = JobStore(settings.data_dir)
    ids = []
    for status in (Status.queued, Status.running):
        job_id = new_job_id()
        upload = store.upload_folder(job_id)
        upload.mkdir(parents=True)
        shutil.copyfile(CONNECTOR, upload / CONNECTOR.name)
        store.create(job_id, [{"name": CONNECTOR.name, "size": CONNECTOR.stat().st_size}])
        if status is Status.running:  # the service died in the middle of this one
            assert store.claim(job_id, "gone-host:1:dead")
            with sqlite3.connect(store.path) as db:  # its owner stopped beating the lease
                db.execute("UPDATE jobs SET lease = lease - 60 WHERE id = ?", (job_id,))
        ids.append(job_id)
    with TestClient(create_app(settings)) as api:
        for job_id in ids:
            assert _wait(api, job_id)["status"] == "done"
        assert (
            api.get(f"/analyses/{ids[1]}/report.json", headers=BEARER).json()["summary"]["events"]
            > 0
        )


def test_a_report_file_gone_from_disk_is_a_clear_404(client):
    job = client.post("/analyses", files=_files(CONNECTOR), headers=BEARER).json()
    _wait(client, job["id"])
    (client.app.state.service.store.folder(job["id"]) / "report.html").unlink()
    missing = client.get(f"/analyses/{job['id']}/report.html", headers=BEARER)
    assert missing.status_code == 404 and "missing from the data folder" in missing.text


def test_delete_removes_the_job_and_its_files(client):
    job = client.post("/analyses", files=_files(CONNECTOR), headers=BEARER).json()
    _wait(client, job["id"])
    folder = client.app.state.service.store.folder(job["id"])
    assert folder.exists()
    assert client.post(f"/analyses/{job['id']}/delete", headers=BEARER).status_code == 200
    assert not folder.exists()
    assert client.get(f"/analyses/{job['id']}/status", headers=BEARER).status_code == 404
    assert job["id"] not in [j["id"] for j in client.get("/analyses", headers=BEARER).json()]


def test_the_token_is_kept_in_the_data_folder_across_restarts(tmp_path, monkeypatch):
    monkeypatch.delenv("EVTXDOC_TOKEN", raising=False)
    first, generated = load_token(tmp_path)
    assert generated and len(first) >= 30
    assert (tmp_path / "token").stat().st_mode & 0o077 == 0
    assert load_token(tmp_path) == (first, False)
    monkeypatch.setenv("EVTXDOC_TOKEN", "from-env")
    assert load_token(tmp_path) == ("from-env", False)
    assert load_token(tmp_path, "given") == ("given", False)


def test_the_data_folder_is_the_owners_alone(tmp_path):
    store = JobStore(tmp_path / "new" / "data")
    assert store.data_dir.stat().st_mode & 0o077 == 0
    assert (store.data_dir / "jobs").stat().st_mode & 0o077 == 0


def test_a_hostile_archive_is_a_problem_in_the_report_not_a_failed_job(client, tmp_path):
    import zipfile

    archive = tmp_path / "collected.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("../../escape.evtx", CONNECTOR.read_bytes())
        zipped.write(CONNECTOR, "logs/ODJ Connector Service.evtx")
    job = client.post("/analyses", files=_files(archive), headers=BEARER).json()
    assert _wait(client, job["id"])["status"] == "done"
    served = client.get(f"/analyses/{job['id']}/report.json", headers=BEARER).json()
    assert [p["kind"] for p in served["problems"]] == ["zip_slip"]
    assert served["summary"]["events"] > 0
    assert not (client.app.state.service.store.folder(job["id"]) / "escape.evtx").exists()


def test_analyses_past_keep_days_are_deleted_at_start(tmp_path):
    settings = _settings(tmp_path, keep_days=7)
    store = JobStore(settings.data_dir)
    ids = {}
    for age_days, status in (
        (30, Status.done),
        (30, Status.failed),
        (1, Status.done),
        (30, Status.queued),
    ):
        job_id = new_job_id()
        store.upload_folder(job_id).mkdir(parents=True)
        (store.upload_folder(job_id) / "x.evtx").write_bytes(CONNECTOR.read_bytes())
        store.create(job_id, [{"name": "x.evtx", "size": CONNECTOR.stat().st_size}])
        with sqlite3.connect(store.path) as db:
            db.execute(
                "UPDATE jobs SET created = ?, status = ? WHERE id = ?",
                (time.time() - age_days * 86400, status, job_id),
            )
        ids[(age_days, status)] = job_id
    with TestClient(create_app(settings)) as api:
        listed = {job["id"] for job in api.get("/analyses", headers=BEARER).json()}
        _wait(api, ids[(30, Status.queued)])  # unfinished work is never pruned: it runs
    assert listed == {ids[(1, Status.done)], ids[(30, Status.queued)]}
    assert not store.folder(ids[(30, Status.done)]).exists()
    assert store.folder(ids[(1, Status.done)]).exists()


def test_api_clients_get_their_errors_as_json(client):
    """Issue 17: the plain-text refusals a script could not parse are JSON for API clients."""
    missing = client.get("/analyses/nosuchjob/report.html", headers=BEARER)
    assert missing.status_code == 404 and missing.json() == {"error": "no such report"}
    gone = client.post("/analyses/nosuchjob/delete", headers=BEARER)
    assert gone.status_code == 404 and gone.json() == {
        "error": "no such analysis (deleted already?)"
    }


def test_a_file_and_a_folder_of_one_name_are_both_kept(client):
    """`a` then `a/b.evtx` was an HTTP 500 that left the upload folder without its job."""
    files = _files(CONNECTOR, CONNECTOR, CONNECTOR, names=["a", "a/b.evtx", "c/d.evtx"])
    files.append(("files", ("c", CONNECTOR.read_bytes(), "application/octet-stream")))
    reply = client.post("/analyses", files=files, headers=BEARER)
    assert reply.status_code == 201, reply.text
    names = [f["name"] for f in reply.json()["files"]]
    assert names == ["a", "a (2)/b.evtx", "c/d.evtx", "c (2)"]
    _wait(client, reply.json()["id"])


def test_an_analysis_past_its_time_budget_is_stopped_and_says_so(tmp_path):
    settings = _settings(tmp_path)
    app = create_app(settings)
    with TestClient(app, base_url="http://testserver") as api:
        runner = app.state.service.runner
        runner.budget_s = 0.0  # over it at the first tick: a spawned analysis takes longer to start
        job = api.post("/analyses", files=_files(CAB, CONNECTOR), headers=BEARER).json()
        status = _wait(api, job["id"])
        assert status["status"] == "failed" and "longer than" in status["error"]


def test_an_upload_without_any_event_log_says_so_and_is_not_done(client, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("the customer's notes, no logs")
    job = client.post("/analyses", files=_files(text), headers=BEARER).json()
    status = _wait(client, job["id"])
    assert status["status"] == "failed" and "no readable .evtx event log" in status["error"]
    assert status["state"] == "no logs found"
    page = client.get(f"/analyses/{job['id']}", headers=BEARER)
    assert "no logs found" in page.text


def test_an_upload_is_named_after_its_case_and_found_by_search(client):
    case = "TrackingID#2412030010001234 Contoso\x07"
    data = {"case": case}
    job = client.post("/analyses", files=_files(CAB), data=data, headers=BEARER).json()
    assert job["case"] == "TrackingID#2412030010001234 Contoso"  # control characters dropped
    _wait(client, job["id"])
    for query in ("2412030010001234", "contoso", "DESKTOP-Q8RT2ZB", "mdmdiag.cab"):
        found = client.get("/analyses", params={"q": query}, headers=BEARER).json()
        assert job["id"] in [j["id"] for j in found], query
    assert client.get("/analyses", params={"q": "100%_"}, headers=BEARER).json() == []
    page = client.get("/", params={"q": "2412030010001234"}, headers=BEARER)
    assert "TrackingID#2412030010001234 Contoso" in page.text
    assert "No analysis matches" in client.get("/", params={"q": "zzz"}, headers=BEARER).text
    report = client.get(f"/analyses/{job['id']}/report.html", headers=BEARER).text
    assert f'href="/analyses/{job["id"]}"' in report  # the way back to the job
    shared = client.get(f"/analyses/{job['id']}/report-redacted.html", headers=BEARER).text
    assert "/analyses/" not in shared


def test_a_password_protected_zip_is_opened_with_the_password_given_once(client, tmp_path):
    """The password goes with the upload to its one analysis: it is in no file of the data
    folder and no report, and the same zip uploaded without it says what is missing."""
    import zipfile

    from tests.zipcrypto import write_encrypted_zip

    locked = tmp_path / "locked.zip"
    with zipfile.ZipFile(
        SAMPLE.parent.parent
        / "healthy-hybrid/bundle"
        / next(
            p.name for p in (SAMPLE.parent.parent / "healthy-hybrid/bundle").glob("DiagLogs-*.zip")
        )
    ) as source:
        members = {i.filename: source.read(i) for i in source.infolist() if not i.is_dir()}
    secret = "Tr0ub4dor&3-unique"
    write_encrypted_zip(locked, members, secret)
    job = client.post(
        "/analyses", files=_files(locked), data={"zip_password": secret}, headers=BEARER
    ).json()
    status = _wait(client, job["id"])
    assert status["status"] == "done", status
    assert status["summary"]["summary"]["events"] > 0
    data_dir = client.app.state.service.store.data_dir
    for path in data_dir.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    again = _wait(
        client, client.post("/analyses", files=_files(locked), headers=BEARER).json()["id"]
    )
    assert again["state"] == "no logs found"
    assert "password-protected and no password was given" in again["error"]
    report = client.get(f"/analyses/{job['id']}/report.json", headers=BEARER).json()
    assert secret not in json.dumps(report)
