"""`evtxdoc serve`: the upload service (ASGI app, job store, pages). See docs/web-service.md."""

from evtxdoc.web.app import create_app
from evtxdoc.web.settings import WebSettings, load_token

__all__ = ["WebSettings", "create_app", "load_token"]
