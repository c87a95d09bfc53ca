"""The web service's handlers: each takes the request and finds the service on the app
(`request.app.state.service`); SQLite calls run in the thread pool, never in the event loop;
a client that sends a token or asks for JSON gets its errors as JSON."""

from __future__ import annotations

import datetime as dt
import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route

from evtxdoc import __version__
from evtxdoc.web.service import COMMON_HEADERS, COOKIE, REPORT_CSP, Service
from evtxdoc.web.store import REPORTS, Job, Status, new_job_id
from evtxdoc.web.uploads import UploadError, receive

Handler = Callable[[Request], Awaitable[Response]]


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def _api(request: Request) -> bool:
    """A script (a token header, or JSON wanted) rather than a browser."""
    return _wants_json(request) or bool(request.headers.get("authorization"))


def _refuse(request: Request, message: str, status: int) -> Response:
    """An error for a script as JSON, for a browser as text."""
    if _api(request):
        return JSONResponse({"error": message}, status, headers=COMMON_HEADERS)
    return PlainTextResponse(message, status, headers=COMMON_HEADERS)


async def _find_job(request: Request) -> Job | None:
    return await run_in_threadpool(_service(request).find_job, request.path_params["job_id"])


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


async def _error(request: Request, service: Service, message: str, status: int) -> Response:
    """An error for a script as JSON, for a browser on the upload page."""
    if _api(request):
        return JSONResponse({"error": message}, status, headers=COMMON_HEADERS)
    jobs = await run_in_threadpool(service.store.recent)
    return service.page(
        request, "index.html.j2", status, error=message, jobs=jobs, query="", **_limits(service)
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
            headers={"WWW-Authenticate": "Bearer", **COMMON_HEADERS},
        )
    return RedirectResponse("/login", 303)


def guarded(handler: Handler) -> Handler:
    """Signed-in requests only; a POST must come from this origin."""

    async def wrapper(request: Request) -> Response:
        service = _service(request)
        client = _client(request)
        if request.headers.get("authorization") and not service.bearer(request):
            if wait := service.throttle.wait_s(client):
                return _throttled(request, wait)
            service.throttle.failed(client)
        if not service.signed_in(request):
            return _unauthorized(request)
        if request.method == "POST" and not service.same_origin(request):
            return _refuse(request, "cross-site request refused", 403)
        return await handler(request)

    return wrapper


async def index(request: Request) -> Response:
    service = _service(request)
    query = request.query_params.get("q", "")[:200]
    jobs = await run_in_threadpool(service.store.recent, 200, query)
    return service.page(
        request, "index.html.j2", jobs=jobs, error=None, query=query, **_limits(service)
    )


async def login_form(request: Request) -> Response:
    service = _service(request)
    token = request.query_params.get("token")
    if token is not None:
        return _sign_in(request, token)
    return service.page(request, "login.html.j2", error=None)


async def login(request: Request) -> Response:
    service = _service(request)
    if not service.same_origin(request):
        return _refuse(request, "cross-site request refused", 403)
    form = await request.form(max_files=0, max_fields=4, max_part_size=4096)
    return _sign_in(request, str(form.get("token", "")))


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


def _throttled(request: Request, wait: float) -> Response:
    seconds = max(1, int(wait + 0.999))
    response = _refuse(request, f"too many wrong tokens; try again in {seconds} s", 429)
    response.headers["Retry-After"] = str(seconds)
    return response


def _sign_in(request: Request, token: str) -> Response:
    service = _service(request)
    settings = service.settings
    client = _client(request)
    if wait := service.throttle.wait_s(client):
        return _throttled(request, wait)
    if not hmac.compare_digest(token.strip().encode(), settings.token.encode()):
        service.throttle.failed(client)
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
    service = _service(request)
    settings = service.settings
    job_id = new_job_id()
    folder = service.store.upload_folder(job_id)
    try:
        received = await receive(request, folder, settings.max_upload_bytes, settings.max_files)
    except UploadError as rejected:
        await run_in_threadpool(service.store.delete, job_id)
        return await _error(request, service, str(rejected), rejected.status)
    except ClientDisconnect:  # the browser went away mid-upload: keep nothing of it
        await run_in_threadpool(service.store.delete, job_id)
        return _refuse(request, "upload interrupted", 400)
    except BaseException:  # a bug or a full disk: no upload folder without its job
        await run_in_threadpool(service.store.delete, job_id)
        raise
    job = await run_in_threadpool(service.store.create, job_id, received.files, received.case_name)
    service.runner.submit(job_id, received.passwords)
    if _wants_json(request) or request.headers.get("authorization"):
        return JSONResponse(
            job.public(), 201, headers={"Location": f"/analyses/{job_id}", **COMMON_HEADERS}
        )
    return RedirectResponse(f"/analyses/{job_id}", 303)


async def jobs(request: Request) -> Response:
    service = _service(request)
    found = await run_in_threadpool(
        service.store.recent, 200, request.query_params.get("q", "")[:200]
    )
    return JSONResponse([job.public() for job in found], headers=COMMON_HEADERS)


async def job_page(request: Request) -> Response:
    service = _service(request)
    job = await _find_job(request)
    if job is None:
        return await _error(request, service, "no such analysis (deleted?)", 404)
    return service.page(request, "job.html.j2", job=job)


async def job_status(request: Request) -> Response:
    job = await _find_job(request)
    if job is None:
        return JSONResponse({"error": "no such analysis"}, 404, headers=COMMON_HEADERS)
    return JSONResponse(job.public(), headers=COMMON_HEADERS)


async def report(request: Request) -> Response:
    service = _service(request)
    job = await _find_job(request)
    name = request.path_params["report"]
    if job is None or name not in REPORTS:
        return _refuse(request, "no such report", 404)
    if job.status is not Status.done:
        return _refuse(request, f"the analysis is {job.status}; no report yet", 409)
    file_name, media_type = REPORTS[name]
    path = service.store.folder(job.id) / file_name
    if not path.is_file():
        return _refuse(
            request,
            "the report file is missing from the data folder; delete "
            "this analysis and upload the logs again",
            404,
        )
    headers = {"Content-Security-Policy": REPORT_CSP, **COMMON_HEADERS}
    if request.query_params.get("download"):
        stamp = dt.datetime.fromtimestamp(job.created, dt.UTC).strftime("%Y%m%d-%H%M%S")
        headers["Content-Disposition"] = f'attachment; filename="evtxdoc-{stamp}-{name}"'
    return FileResponse(path, media_type=media_type, headers=headers)


async def delete(request: Request) -> Response:
    service = _service(request)
    job = await _find_job(request)
    if job is None:
        return await _error(request, service, "no such analysis (deleted already?)", 404)
    if job.status in (Status.queued, Status.running) and job.id in service.runner.running:
        return await _error(
            request,
            service,
            "the analysis is still running; delete it when it has finished",
            409,
        )
    await run_in_threadpool(service.store.delete, job.id)
    if request.headers.get("authorization"):
        return JSONResponse({"deleted": job.id}, headers=COMMON_HEADERS)
    return RedirectResponse("/", 303)


async def healthz(request: Request) -> Response:
    return JSONResponse({"ok": True, "version": __version__})


async def favicon(request: Request) -> Response:  # browsers ask for it on every page
    return Response(status_code=204, headers={"Cache-Control": "max-age=86400"})


ROUTES = [
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
