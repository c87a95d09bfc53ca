"""What `evtxdoc serve` is configured with: where it keeps things, who may use it, limits."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

TOKEN_ENV = "EVTXDOC_TOKEN"
MIB = 1024 * 1024


@dataclass(frozen=True)
class WebSettings:
    """Settings of one service instance (the CLI fills them from its options)."""

    data_dir: Path  # evtxdoc.sqlite3 and jobs/<id>/{upload,report*}
    token: str  # the access token: a browser logs in with it, scripts send it as Bearer
    max_upload_bytes: int = 2048 * MIB  # one upload, all files together
    max_files: int = 500  # files in one upload
    concurrent_jobs: int = 1  # analyses at a time (each reads several files on every core)
    read_workers: int | None = None  # processes per analysis for reading (None: one per core)
    scheduler: str | None = None  # a Dask scheduler the analyses read on (tcp://HOST:8786)
    secure_cookie: bool = False  # set behind HTTPS (a reverse proxy): the cookie is Secure
    keep_days: float | None = None  # delete finished analyses older than this (None: keep)


def load_token(data_dir: Path, given: str | None = None) -> tuple[str, bool]:
    """(token, generated?): `given`, else $EVTXDOC_TOKEN, else the one kept in the data folder,
    else a new random one written there (mode 600) so it survives a restart."""
    token = given or os.environ.get(TOKEN_ENV)
    if token:
        return token, False
    path = data_dir / "token"
    if path.exists():
        kept = path.read_text(encoding="utf-8").strip()
        if kept:
            return kept, False
    token = secrets.token_urlsafe(24)
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.touch(mode=0o600)
    path.write_text(token + "\n", encoding="utf-8")
    return token, True
