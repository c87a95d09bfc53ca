"""Receiving uploads safely: the body is counted as it streams (a limit stops it early), file
names are made safe (no path escapes, no control characters), and files land in the job's
upload folder under the names the user chose."""

from __future__ import annotations

import asyncio
import re
import unicodedata
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from evtxdoc.errors import EvtxdocError

MAX_NAME = 120  # characters of one path component
IDLE_S = 60.0  # longest pause in an upload's body
MAX_DEPTH = 8  # folders kept from a folder upload (webkitdirectory sends relative paths)
_UNSAFE = re.compile(r"[^\w .,()+@#%=~-]")


MAX_CASE = 120  # characters of a case or ticket name
MAX_PASSWORD = 256


@dataclass(frozen=True)
class Received:
    """What an upload brought: the saved files, the case name, the zip passwords (held in
    memory for the one analysis, never written)."""

    files: list[dict[str, Any]]
    case_name: str = ""
    passwords: tuple[str, ...] = field(default=(), repr=False)


def clean_case_name(text: str) -> str:
    """A case or ticket name as typed: one line, no control characters, bounded."""
    text = "".join(
        c for c in unicodedata.normalize("NFC", text) if unicodedata.category(c)[0] != "C"
    )
    return " ".join(text.split())[:MAX_CASE]


class UploadError(EvtxdocError):
    """An upload the service refuses; `status` is the HTTP status, the message says why."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def safe_relative_name(name: str) -> Path:
    """A browser's file name (maybe `folder/sub/file.evtx`, maybe hostile) → a relative path
    with no `..`, no absolute part, no control characters, each part at most MAX_NAME long."""
    parts = []
    for part in re.split(r"[/\\]+", unicodedata.normalize("NFC", name or "")):
        part = "".join(c for c in part if unicodedata.category(c)[0] != "C")
        part = _UNSAFE.sub("_", part).strip(" .")
        if part and part not in (".", ".."):
            parts.append(part[:MAX_NAME])
    if not parts:
        parts = ["upload"]
    return Path(*parts[-MAX_DEPTH:])


def unique_path(folder: Path, relative: Path) -> Path:
    """`folder/relative`, with `name (2)`… for any part an earlier file of the upload took:
    the file itself, or a folder of its path that is a file there (`a`, then `a/b.evtx`), or
    a file of its name that is a folder there (`a/b.evtx`, then `a`)."""
    parent = folder
    for part in relative.parts[:-1]:
        candidate, number = parent / part, 2
        while candidate.exists() and not candidate.is_dir():
            candidate = parent / f"{part} ({number})"
            number += 1
        parent = candidate
    name = Path(relative.name)
    target, number = parent / name, 2
    while target.exists():
        target = parent / f"{name.stem} ({number}){name.suffix}"
        number += 1
    return target


async def _limited(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    """The body, counted (a limit stops it early) and timed (a client that sends nothing for
    `IDLE_S` is dropped: a slow-loris upload cannot hold a connection for ever)."""
    received = 0
    chunks = request.stream().__aiter__()
    while True:
        try:
            chunk = await asyncio.wait_for(chunks.__anext__(), IDLE_S)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise UploadError(
                f"the upload sent nothing for {IDLE_S:.0f} s; try again on a steadier connection",
                408,
            ) from None
        received += len(chunk)
        if received > limit:
            raise UploadError(_too_big(limit), 413)
        yield chunk


def _too_big(limit: int) -> str:
    return (
        f"the upload is larger than this service accepts ({limit / 2**20:,.0f} MiB in all); "
        "upload fewer files at once, or ask the operator to raise --max-upload-mb"
    )


async def receive(request: Request, folder: Path, max_bytes: int, max_files: int) -> Received:
    """Save every file of a multipart upload under `folder` ([{name, size}] in upload order),
    with the form's case name (`case`) and zip password (`zip_password`)."""
    if "multipart/form-data" not in request.headers.get("content-type", ""):
        raise UploadError("send the files as multipart/form-data (field name: files)", 415)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise UploadError(_too_big(max_bytes), 413)
    parser = MultiPartParser(
        request.headers, _limited(request, max_bytes), max_files=max_files, max_fields=20
    )
    try:
        form = await parser.parse()
    except MultiPartException as error:
        message = str(error)
        if "files" in message.lower():
            message = (
                f"too many files in one upload (at most {max_files}); zip them, or "
                "upload them in several analyses"
            )
        raise UploadError(message) from error
    saved: list[dict[str, Any]] = []
    case_name, passwords = "", []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for key, value in form.multi_items():
            if not isinstance(value, UploadFile):
                if key == "case":
                    case_name = clean_case_name(str(value))
                elif key == "zip_password" and value:
                    passwords.append(str(value)[:MAX_PASSWORD])
                continue
            target = unique_path(folder, safe_relative_name(value.filename or ""))
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("wb") as out:
                await _copy(value, out)
            saved.append(
                {"name": target.relative_to(folder).as_posix(), "size": target.stat().st_size}
            )
    finally:
        await form.close()
    if not saved:
        raise UploadError("no files in the upload: choose .evtx, .zip or .cab files")
    return Received(saved, case_name, tuple(passwords))


async def _copy(upload: UploadFile, out: Any) -> None:
    await upload.seek(0)
    while chunk := await upload.read(1024 * 1024):  # off the event loop once spooled to disk
        out.write(chunk)
