"""The web service: sign in with the access token, upload logs, watch the analysis, read the
report. An ASGI app (Starlette); `evtxdoc serve` runs it with uvicorn.

Routes (browsers use the pages; scripts send `Authorization: Bearer <token>` and get JSON):
    GET  /                         upload form and past analyses
    GET  /login, POST /login       sign in (also /login?token=… from the link serve prints)
    POST /logout
    POST /analyses                 upload (multipart, field `files`) → 303 to the job page,
                                   or 201 + the job as JSON when the client accepts JSON
    GET  /analyses                 the jobs as JSON
    GET  /analyses/{id}            the job page (refreshes itself while it runs)
    GET  /analyses/{id}/status     the job as JSON: status, progress, summary, reports
    GET  /analyses/{id}/{report}   report.html, report.json, report-redacted.{html,json}
                                   (?download=1 to save it)
    POST /analyses/{id}/delete     the job and its files
    GET  /healthz                  liveness (no sign-in)
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route

from evtxdoc import __version__
from evtxdoc.web.jobs import JobRunner
from evtxdoc.web.settings import WebSettings
from evtxdoc.web.store import REPORTS, Job, JobStore, Status, new_job_id
from evtxdoc.web.uploads import UploadError, receive

COOKIE = "evtxdoc_session"
PRUNE_EVERY_S = 3600  # how often analyses past --keep-days are deleted
PAGE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "script-src 'nonce-{}'"
)
# A report holds attacker-written event text: it runs sandboxed, in an origin of its own, with
# no access to the service's cookie, and may load nothing from anywhere.
REPORT_CSP = (
    "sandbox allow-scripts allow-popups allow-downloads; default-src 'none'; "
    "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; "
    "frame-ancestors 'self'"
)


def _session_value(token: str) -> str:
    """What the cookie holds: derived from the token, so a new token signs everyone out."""
    return hashlib.sha256(b"evtxdoc-session\0" + token.encode()).hexdigest()


def _templates() -> Environment:
    env = Environment(
        loader=PackageLoader("evtxdoc.web", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
    )
    env.filters["utc"] = lambda ts: dt.datetime.fromtimestamp(ts, dt.UTC).strftime(
        "%Y-%m-%d %H:%M:%S"
    )
    env.filters["mib"] = lambda size: (
        f"{size / 2**20:,.1f} MiB" if size >= 2**20 else f"{size / 1024:,.1f} KiB"
    )
    env.filters["names"] = lambda files: (
        ", ".join(f["name"] for f in files[:4])
        + (f" … (+{len(files) - 4})" if len(files) > 4 else "")
    )
    return env


class Service:
    """The app's state: settings, store, runner, templates; one per app."""

    def __init__(self, settings: WebSettings):
        self.settings = settings
        self.store = JobStore(settings.data_dir)
        self.runner = JobRunner(self.store, settings.concurrent_jobs, settings.read_workers)
        self.templates = _templates()
        self.session = _session_value(settings.token)

    # --- access -------------------------------------------------------------------------

    def signed_in(self, request: Request) -> bool:
        cookie = request.cookies.get(COOKIE, "")
        if cookie and hmac.compare_digest(cookie, self.session):
            return True
        auth = request.headers.get("authorization", "")
        scheme, _, given = auth.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), self.settings.token.encode()
        )

    def same_origin(self, request: Request) -> bool:
        """A form POST must come from this service's own pages (or carry the Bearer token):
        the cookie is SameSite=Strict, and the Origin (or Referer) must be this host."""
        if request.headers.get("authorization"):
            return True
        origin = request.headers.get("origin") or request.headers.get("referer")
        if not origin or origin == "null":
            return False
        return urlsplit(origin).netloc == request.headers.get("host", "")

    def page(self, request: Request, name: str, status: int = 200, **values: Any) -> Response:
        nonce = secrets.token_urlsafe(16)
        html = self.templates.get_template(name).render(
            signed_in=self.signed_in(request), nonce=nonce, **values
        )
        return HTMLResponse(
            html,
            status,
            headers={"Content-Security-Policy": PAGE_CSP.format(nonce), **_COMMON_HEADERS},
        )

    def prune(self) -> list[str]:
        """Delete finished analyses older than --keep-days, with their files."""
        if not self.settings.keep_days:
            return []
        expired = self.store.expired(time.time() - self.settings.keep_days * 86400)
        for job_id in expired:
            self.store.delete(job_id)
        return expired

    def find_job(self, job_id: str) -> Job | None:
        try:
            return self.store.get(job_id)
        except KeyError:
            return None


_COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def _error(request: Request, service: Service, message: str, status: int) -> Response:
    if _wants_json(request) or request.headers.get("authorization"):
        return JSONResponse({"error": message}, status, headers=_COMMON_HEADERS)
    return service.page(
        request,
        "index.html.j2",
        status,
        error=message,
        jobs=service.store.recent(),
        **_limits(service),
    )


def _limits(service: Service) -> dict[str, Any]:
    return {
        "max_files": service.settings.max_files,
        "max_upload_mb": service.settings.max_upload_bytes // 2**20,
    }


def _unauthorized(request: Request) -> Response:
    if _wants_json(request) or request.headers.get("authorization"):
        return JSONResponse(
            {"error": "sign in: send Authorization: Bearer <token>"},
            401,
            headers={"WWW-Authenticate": "Bearer", **_COMMON_HEADERS},
        )
    return RedirectResponse("/login", 303)


def create_app(settings: WebSettings) -> Starlette:
    """The ASGI app; jobs left unfinished by an earlier run are queued again at startup."""
    service = Service(settings)

    def guarded(
        handler: Callable[[Request], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def wrapper(request: Request) -> Response:
            if not service.signed_in(request):
                return _unauthorized(request)
            if request.method == "POST" and not service.same_origin(request):
                return PlainTextResponse("cross-site request refused", 403, headers=_COMMON_HEADERS)
            return await handler(request)

        return wrapper

    async def index(request: Request) -> Response:
        jobs = await run_in_threadpool(service.store.recent)
        return service.page(request, "index.html.j2", jobs=jobs, error=None, **_limits(service))

    async def login_form(request: Request) -> Response:
        token = request.query_params.get("token")
        if token is not None:
            return _sign_in(request, token)
        return service.page(request, "login.html.j2", error=None)

    async def login(request: Request) -> Response:
        if not service.same_origin(request):
            return PlainTextResponse("cross-site request refused", 403, headers=_COMMON_HEADERS)
        form = await request.form(max_files=0, max_fields=4, max_part_size=4096)
        return _sign_in(request, str(form.get("token", "")))

    def _sign_in(request: Request, token: str) -> Response:
        if not hmac.compare_digest(token.strip().encode(), settings.token.encode()):
            return service.page(
                request, "login.html.j2", 401, error="that is not the access token of this service"
            )
        response = RedirectResponse("/", 303)
        response.set_cookie(
            COOKIE,
            service.session,
            httponly=True,
            samesite="strict",
            secure=settings.secure_cookie,
            max_age=30 * 86400,
        )
        return response

    async def logout(request: Request) -> Response:
        response = RedirectResponse("/login", 303)
        response.delete_cookie(COOKIE)
        return response

    async def upload(request: Request) -> Response:
        job_id = new_job_id()
        folder = service.store.upload_folder(job_id)
        try:
            files = await receive(request, folder, settings.max_upload_bytes, settings.max_files)
        except UploadError as rejected:
            await run_in_threadpool(service.store.delete, job_id)
            return _error(request, service, str(rejected), rejected.status)
        except ClientDisconnect:  # the browser went away mid-upload: keep nothing of it
            await run_in_threadpool(service.store.delete, job_id)
            return PlainTextResponse("upload interrupted", 400, headers=_COMMON_HEADERS)
        job = await run_in_threadpool(service.store.create, job_id, files)
        service.runner.submit(job_id)
        if _wants_json(request) or request.headers.get("authorization"):
            return JSONResponse(
                job.public(), 201, headers={"Location": f"/analyses/{job_id}", **_COMMON_HEADERS}
            )
        return RedirectResponse(f"/analyses/{job_id}", 303)

    async def jobs(request: Request) -> Response:
        found = await run_in_threadpool(service.store.recent)
        return JSONResponse([job.public() for job in found], headers=_COMMON_HEADERS)

    async def job_page(request: Request) -> Response:
        job = service.find_job(request.path_params["job_id"])
        if job is None:
            return _error(request, service, "no such analysis (deleted?)", 404)
        return service.page(request, "job.html.j2", job=job)

    async def job_status(request: Request) -> Response:
        job = service.find_job(request.path_params["job_id"])
        if job is None:
            return JSONResponse({"error": "no such analysis"}, 404, headers=_COMMON_HEADERS)
        return JSONResponse(job.public(), headers=_COMMON_HEADERS)

    async def report(request: Request) -> Response:
        job = service.find_job(request.path_params["job_id"])
        name = request.path_params["report"]
        if job is None or name not in REPORTS:
            return PlainTextResponse("no such report", 404, headers=_COMMON_HEADERS)
        if job.status is not Status.done:
            return PlainTextResponse(
                f"the analysis is {job.status}; no report yet", 409, headers=_COMMON_HEADERS
            )
        file_name, media_type = REPORTS[name]
        path = service.store.folder(job.id) / file_name
        if not path.is_file():
            return PlainTextResponse(
                "the report file is missing from the data folder; delete "
                "this analysis and upload the logs again",
                404,
                headers=_COMMON_HEADERS,
            )
        headers = {"Content-Security-Policy": REPORT_CSP, **_COMMON_HEADERS}
        if request.query_params.get("download"):
            stamp = dt.datetime.fromtimestamp(job.created, dt.UTC).strftime("%Y%m%d-%H%M%S")
            headers["Content-Disposition"] = f'attachment; filename="evtxdoc-{stamp}-{name}"'
        return FileResponse(path, media_type=media_type, headers=headers)

    async def delete(request: Request) -> Response:
        job = service.find_job(request.path_params["job_id"])
        if job is None:
            return _error(request, service, "no such analysis (deleted already?)", 404)
        if job.status in (Status.queued, Status.running) and job.id in service.runner.running:
            return _error(
                request,
                service,
                "the analysis is still running; delete it when it has finished",
                409,
            )
        await run_in_threadpool(service.store.delete, job.id)
        if request.headers.get("authorization"):
            return JSONResponse({"deleted": job.id}, headers=_COMMON_HEADERS)
        return RedirectResponse("/", 303)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True, "version": __version__})

    async def favicon(request: Request) -> Response:  # browsers ask for it on every page
        return Response(status_code=204, headers={"Cache-Control": "max-age=86400"})

    async def prune_hourly() -> None:
        while True:
            await asyncio.sleep(PRUNE_EVERY_S)
            await run_in_threadpool(service.prune)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await run_in_threadpool(service.prune)  # before the first page is served
        service.runner.resume()
        pruning = asyncio.create_task(prune_hourly()) if settings.keep_days else None
        yield
        if pruning is not None:
            pruning.cancel()
        service.runner.shutdown()

    routes = [
        Route("/", guarded(index)),
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", guarded(logout), methods=["POST"]),
        Route("/analyses", guarded(upload), methods=["POST"]),
        Route("/analyses", guarded(jobs), methods=["GET"]),
        Route("/analyses/{job_id:str}", guarded(job_page)),
        Route("/analyses/{job_id:str}/status", guarded(job_status)),
        Route("/analyses/{job_id:str}/delete", guarded(delete), methods=["POST"]),
        Route("/analyses/{job_id:str}/{report:str}", guarded(report)),
        Route("/healthz", healthz),
        Route("/favicon.ico", favicon),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.service = service
    return app


def data_folder_default() -> Path:
    return Path.home() / ".evtxdoc"
