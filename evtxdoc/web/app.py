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
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool

from evtxdoc.web import routes
from evtxdoc.web.service import PRUNE_EVERY_S, Service
from evtxdoc.web.settings import WebSettings


def create_app(settings: WebSettings) -> Starlette:
    """The ASGI app; jobs left unfinished by an earlier run are queued again at startup."""
    service = Service(settings)

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

    app = Starlette(routes=routes.ROUTES, lifespan=lifespan)
    app.state.service = service
    return app


def data_folder_default() -> Path:
    return Path.home() / ".evtxdoc"
