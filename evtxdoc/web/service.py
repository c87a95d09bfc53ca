"""The service a running web app holds: settings, the job store and runner, page rendering
with a fresh CSP nonce, the sign-in check and the headers every response carries."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import time
from collections import deque
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    Response,
)

from evtxdoc.web.jobs import JobRunner
from evtxdoc.web.settings import WebSettings
from evtxdoc.web.store import Job, JobStore

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


class SignInThrottle:
    """Wrong tokens per client: after `allowed` within `window_s`, the client waits until the
    oldest of them is `window_s` old (200 guesses took 0.7 s before; now 5 a minute)."""

    def __init__(self, allowed: int = 5, window_s: float = 60.0) -> None:
        self.allowed, self.window_s = allowed, window_s
        self.failures: dict[str, deque[float]] = {}

    def _recent(self, client: str) -> deque[float]:
        failures = self.failures.setdefault(client, deque())
        while failures and failures[0] < time.monotonic() - self.window_s:
            failures.popleft()
        if not failures:
            del self.failures[client]
        return failures

    def wait_s(self, client: str) -> float:
        """Seconds `client` must wait before trying again (0: it may try now)."""
        failures = self._recent(client)
        if len(failures) < self.allowed:
            return 0.0
        return max(0.0, failures[0] + self.window_s - time.monotonic())

    def failed(self, client: str) -> None:
        self._recent(client)
        self.failures.setdefault(client, deque()).append(time.monotonic())
        if len(self.failures) > 10_000:  # bounded: forget the quietest clients first
            for key in list(self.failures)[:1000]:
                del self.failures[key]


class Service:
    """The app's state: settings, store, runner, templates; one per app."""

    def __init__(self, settings: WebSettings):
        self.settings = settings
        self.store = JobStore(settings.data_dir)
        self.runner = JobRunner(
            self.store, settings.concurrent_jobs, settings.read_workers, settings.scheduler
        )
        self.templates = _templates()
        self.session = _session_value(settings.token)
        self.throttle = SignInThrottle()

    # --- access -------------------------------------------------------------------------

    def signed_in(self, request: Request) -> bool:
        cookie = request.cookies.get(COOKIE, "")
        if cookie and hmac.compare_digest(cookie, self.session):
            return True
        return self.bearer(request)

    def bearer(self, request: Request) -> bool:
        """Whether the request carries this service's token as `Authorization: Bearer`."""
        auth = request.headers.get("authorization", "")
        scheme, _, given = auth.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), self.settings.token.encode()
        )

    def same_origin(self, request: Request) -> bool:
        """A form POST must come from this service's own pages (or carry the valid Bearer
        token, which no other site can): the cookie is SameSite=Strict, and the Origin (or
        Referer) must be this host. A junk Authorization header proves nothing."""
        if self.bearer(request):
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
            headers={"Content-Security-Policy": PAGE_CSP.format(nonce), **COMMON_HEADERS},
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


COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
