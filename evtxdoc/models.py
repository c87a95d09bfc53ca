"""Frozen dataclasses shared by the pipeline stages (see docs/internals.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    """How much a data problem matters to the analysis."""

    INFO = "info"  # worth knowing, nothing lost (e.g. dirty flag on a live copy)
    WARNING = "warning"  # some data lost or suspect (e.g. a torn record)
    ERROR = "error"  # a whole file or archive could not be used


@dataclass(frozen=True, slots=True)
class Problem:
    """Something wrong with the input data, located as precisely as we can."""

    source: str  # display path, archive members as `outer.zip!/inner.cab!/file.evtx`
    kind: str  # stable machine name, e.g. "torn_record", "zip_slip"
    message: str  # what happened, in words
    severity: Severity = Severity.WARNING
    where: str | None = None  # e.g. "chunk 3, offset 0x1f00"
    hint: str | None = None  # what the user can do

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "kind": self.kind,
            "severity": str(self.severity),
            "where": self.where,
            "message": self.message,
            "hint": self.hint,
        }


class FileKind(StrEnum):
    """What a discovered file was identified as (by content, not name)."""

    EVTX = "evtx"
    SUPPORTING = "supporting"  # AutopilotDDSZTDFile.json, registry dump, dsregcmd output …
    ARCHIVE = "archive"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class DiscoveredFile:
    """One file found in the inputs, before parsing."""

    display: str  # path as the user knows it (archive chain with `!/`)
    path: str  # where it lies on disk now (may be inside a temporary extraction folder)
    kind: FileKind
    size: int
    sha256: str
    subkind: str | None = None  # for SUPPORTING: "autopilot_ztd_json", "registry_dump", …
    reason: str | None = None  # for SKIPPED: why
    duplicate_of: str | None = None  # display path of the first copy with the same content


@dataclass(frozen=True, slots=True)
class SupportingFile:
    """A non-EVTX file later stages use (profile JSON, registry dump, dsregcmd output)."""

    display: str
    subkind: str
    sha256: str
    content: bytes  # bounded by bundle.SUPPORTING_MAX_BYTES


@dataclass(frozen=True, slots=True)
class Event:
    """One normalized event: the row contract of the timeline (design.md §3)."""

    ts: int  # UTC, nanoseconds since the Unix epoch, from System/TimeCreated
    ts_raw: str  # TimeCreated as the backend rendered it
    host: str  # System/Computer
    channel: str
    provider: str
    event_id: int  # as Event Viewer shows it (qualifiers separate)
    qualifiers: int
    level: int
    task: int
    opcode: int
    record_id: int  # EventRecordID from the XML, not the record header
    activity_id: str | None  # "{GUID}" upper case
    user_sid: str | None
    source_file: str  # display path
    fields: dict[str, Any] = field(default_factory=dict)
    message: str | None = None


@dataclass(frozen=True, slots=True)
class FileReport:
    """What reading one EVTX file gave: counts, backends used, problems."""

    display: str
    sha256: str
    size: int
    records: int  # events delivered after de-duplication by EventRecordID
    backends: tuple[str, ...]
    format_version: str | None
    dirty: bool
    problems: tuple[Problem, ...]
    duplicate_events: int = 0  # events also present in an earlier file (dropped)


@dataclass(frozen=True, slots=True)
class ChannelCoverage:
    """What one host's logs cover for one channel."""

    host: str
    channel: str
    records: int
    first: int  # ns UTC
    last: int  # ns UTC
    sources: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AnalyzeOptions:
    """Options for pipeline.analyze; the CLI and the web service fill these."""

    strict: bool = False
    workers: int | None = None  # None: one per core when there are several files
    use_fallback: bool = True  # python-evtx for records the main backend missed, if installed
    max_total_bytes: int = 8 * 1024**3
    max_entries: int = 20_000
    max_ratio: float = 1_100.0
    max_depth: int = 4


@dataclass(frozen=True)
class Analysis:
    """Everything one `pipeline.analyze` run produced; renderers read only this."""

    inputs: tuple[str, ...]
    files: tuple[DiscoveredFile, ...]  # everything discovered, skipped ones included
    file_reports: tuple[FileReport, ...]  # one per distinct EVTX file read
    supporting: tuple[SupportingFile, ...]
    problems: tuple[Problem, ...]  # discovery problems, then each file's
    timeline: Any  # pandas.DataFrame with timeline.COLUMNS (kept untyped: no pandas here)
    coverage: tuple[ChannelCoverage, ...]
    started: float  # Unix seconds
    seconds: float  # wall time of the run
    version: str

    @property
    def readable(self) -> bool:
        """At least one EVTX file was read (even if it held no events)."""
        return any(r.format_version for r in self.file_reports)
