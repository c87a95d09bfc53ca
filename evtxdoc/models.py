"""Frozen dataclasses shared by the pipeline stages (see docs/internals.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Any, NamedTuple

from evtxdoc.exchange_model import ExchangeState, SyncRun
from evtxdoc.refs import EventRef as EventRef  # re-exported: most stages import it from here


class Severity(StrEnum):
    """How much a data problem matters to the analysis."""

    INFO = "info"  # worth knowing, nothing lost (e.g. dirty flag on a live copy)
    WARNING = "warning"  # some data lost or suspect (e.g. a torn record)
    ERROR = "error"  # a whole file or archive could not be used


@dataclass(frozen=True, slots=True)
class Location:
    """Where a problem lies: a file as the user knows it, and in it a line (YAML texts) or a
    place in words (an EVTX chunk and offset, an archive member)."""

    source: str
    line: int | None = None
    where: str | None = None

    def __str__(self) -> str:
        text = f"{self.source}:{self.line}" if self.line is not None else self.source
        return f"{text} ({self.where})" if self.where else text


@dataclass(frozen=True, slots=True)
class Problem:
    """The one shape of a located problem: in the input data (a torn record, a zip-slip entry)
    and in a rule, fixture or catalog file (kind "rule": `source:line`)."""

    source: str  # display path, archive members as `outer.zip!/inner.cab!/file.evtx`
    kind: str  # stable machine name, e.g. "torn_record", "zip_slip", "rule"
    message: str  # what happened, in words
    severity: Severity = Severity.WARNING
    where: str | None = None  # e.g. "chunk 3, offset 0x1f00"
    hint: str | None = None  # what the user can do
    line: int | None = None  # 1-based, in a text file (a rule, a fixture)

    @property
    def location(self) -> Location:
        return Location(self.source, self.line, self.where)

    def __str__(self) -> str:
        hint = f" — {self.hint}" if self.hint else ""
        return f"{self.location}: {self.message}{hint}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "source": self.source,
            "kind": self.kind,
            "severity": str(self.severity),
            "where": self.where,
            "message": self.message,
            "hint": self.hint,
        }
        if self.line is not None:
            out["line"] = self.line
        return out


class FileKind(StrEnum):
    """What a discovered file was identified as (by content, not name)."""

    EVTX = "evtx"
    TRACE = "trace"  # an E2E trace (.svclog): the Intune Exchange connector's own log
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
class DamageSpan:
    """A time span of one file whose records may be lost or corrupt (from its damage)."""

    kind: str  # the problem kind: torn_record, truncated_file, bad_chunk, …
    after_ns: int | None  # the last intact record before the damage (None: the file's start)
    before_ns: int | None  # the first intact record after it (None: to the end, open)

    def overlaps(self, start: int, end: int) -> bool:
        """Could records written in [start, end] be inside the damage?"""
        return (self.after_ns is None or self.after_ns <= end) and (
            self.before_ns is None or self.before_ns >= start
        )


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
    damage: tuple[DamageSpan, ...] = ()  # where its records may be lost, in time


@dataclass(frozen=True, slots=True)
class ChannelCoverage:
    """What one host's logs cover for one channel."""

    host: str
    channel: str
    records: int
    first: int  # ns UTC
    last: int  # ns UTC
    sources: tuple[str, ...]
    damaged: tuple[DamageSpan, ...] = ()  # spans of its files where records may be lost


@dataclass(frozen=True, slots=True)
class AnalyzeOptions:
    """Options for pipeline.analyze; the CLI and the web service fill these."""

    strict: bool = False
    workers: int | None = None  # None: one per core when there are several files
    scheduler: str | None = None  # local:N or tcp://HOST:PORT: read on a Dask cluster
    use_fallback: bool = True  # python-evtx for records the main backend missed, if installed
    max_total_bytes: int = 8 * 1024**3
    max_entries: int = 20_000
    max_ratio: float = 1_100.0
    max_depth: int = 4
    rule_folders: tuple[str, ...] = ()  # extra rule folders beside the built-in knowledge base
    evaluate: bool = True  # run the rules (off: inventory and attempts only)
    # every event's row kept (True: event exports), or only what is read (False), or (None)
    # that above `partition_bytes` of logs (evtxdoc/partition.py)
    all_events: bool | None = None
    partition_bytes: int = 256 * 1024**2
    redaction: bool = True  # a redacted report may be written: keep what redaction learns from
    events_to: str | None = None  # a folder: every event also written there as Parquet
    sample_events: int = 5000  # rows of each kind kept for the event table, shared by the files
    display_root: str | None = None  # files under it are named relative to it (web uploads)
    zip_passwords: tuple[str, ...] = field(default=(), repr=False)  # tried on encrypted entries


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
    correlation: Correlation | None = None  # join attempts (None when not run)
    evaluation: Evaluation | None = None  # rule findings (None when not run)
    summary: Any = None  # every event in summary (event_summary.py); None: from the timeline
    partial: bool = False  # the timeline holds only the rows something reads (partition.py)

    @property
    def every_event(self) -> Any:
        """Every event in summary: one row per file, host, channel and provider, with its
        first (`ts`) and last time and its count (event_summary.SUMMARY_COLUMNS)."""
        if self.summary is not None:
            return self.summary
        from evtxdoc.event_summary import summarize  # pandas: not imported by models

        return summarize(self.timeline)

    @property
    def events(self) -> int:
        """How many events the logs hold (the timeline may keep only some rows)."""
        summary = self.every_event
        return int(summary["events"].sum()) if len(summary) else 0

    @property
    def readable(self) -> bool:
        """A log (EVTX, trace) was read, if empty, or a supporting file stated something."""
        providers = self.timeline["provider"]  # categorical: a look at its categories
        stated = len(providers) > 0 and "evtxdoc" in providers.cat.categories
        return any(r.format_version for r in self.file_reports) or stated


# --- correlation (evtxdoc/correlate/) -------------------------------------------------------


class Outcome(StrEnum):
    """How one join attempt ended, judged from the device's own logs."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    INCOMPLETE = "incomplete"  # the logs end mid-attempt
    NOT_HYBRID = "not_hybrid"  # Entra join: the connector is not involved
    UNKNOWN = "unknown"


class Step(NamedTuple):
    """One device-side step of a join attempt (domain.md (d))."""

    name: str  # profile, enrollment, odj_request, odj_blob, offline_join, dc_connectivity, …
    status: str  # ok | failed | waiting | timed_out | not_configured | info
    ts: int  # ns UTC as the device's clock wrote it
    ts_corrected: int  # ns UTC on the reference clock (see ClockOffset)
    ref: EventRef
    detail: str = ""  # e.g. "state 3: timed out waiting for the blob", "NetStatusCode 2710"


@dataclass(frozen=True, slots=True)
class ConnectorRequest:
    """One offline-domain-join request as a connector logged it."""

    connector: str  # the connector server (event Computer)
    kind: str  # updated | legacy
    ts: int  # ns UTC, connector clock (the reference)
    ref: EventRef
    device_name: str | None
    device_id: str | None
    domain: str | None
    succeeded: bool
    error_code: str | None = None  # legacy ErrorCode
    diagnostic_code: str | None = None
    diagnostic_text: str | None = None
    elapsed_ms: int | None = None
    user_sid: str | None = None  # the account that created the object (MSA on updated)


@dataclass(frozen=True, slots=True)
class ConnectorNotice:
    """A connector event about the connector itself (configuration, proxy), not a request."""

    connector: str
    kind: str
    ts: int
    ref: EventRef
    diagnostic_code: str | None
    diagnostic_text: str | None


@dataclass(frozen=True, slots=True)
class ClockOffset:
    """A host's clock against the reference (offset = host clock − reference clock)."""

    host: str
    reference: str  # a connector server, or "time source" (the domain time it synced to)
    offset_ns: int  # the shift applied to the host's times in this analysis
    uncertainty_ns: int | None  # half-width of a tight estimate; None: the offset is unknown
    basis: tuple[str, ...]  # how it was estimated, in words
    until_ns: int | None = None  # applies to the host's events before this raw time (a jump)
    low_ns: int | None = None  # what the evidence bounds the offset to (even when too loose
    high_ns: int | None = None  # to apply); None: unbounded on that side

    @property
    def known(self) -> bool:
        """A tight estimate (see correlate.clock.TIGHT_NS), applied to the host's times."""
        return self.uncertainty_ns is not None


@dataclass(frozen=True, slots=True)
class DeviceIdentity:
    """Every name and id one device was seen under."""

    machine: str  # stable key of the machine in this analysis
    oobe_names: tuple[str, ...]  # `Computer` before the ODJ reboot
    hosts: tuple[str, ...]  # every `Computer` value of the machine's events
    computer_name: str | None = None  # from 4098/4099, the connector, or the renamed host
    domain: str | None = None
    serial: str | None = None
    ztdid: str | None = None
    entdmid: str | None = None
    tenant_id: str | None = None
    join_method: str | None = None  # hybrid | entra, from AutopilotDDSZTDFile.json
    skip_dc_check: bool | None = None
    sources: tuple[str, ...] = ()  # supporting files the identity came from


@dataclass(frozen=True, slots=True)
class Attempt:
    """One domain-join attempt of one device, lined up with what the connector did."""

    id: str
    device: DeviceIdentity
    number: int  # 1-based, per device
    steps: tuple[Step, ...]
    requests: tuple[ConnectorRequest, ...]
    connector: str | None
    match_basis: str | None  # computer_name | device_id | time_window
    connector_evidence: str  # matched | no_connector_logs | not_covered | no_request | …
    outcome: Outcome
    failed_step: str | None
    reason: str  # the outcome in words
    offset: ClockOffset | None
    started: int  # ns, corrected
    ended: int  # ns, corrected
    durations: dict[str, float] = field(default_factory=dict)  # seconds between steps
    missing: tuple[str, ...] = ()  # what the bundle lacks to conclude
    missing_logs: tuple[str, ...] = ()  # device logs it lacks: system, user_device_registration
    conflicts: tuple[ConnectorRequest, ...] = ()  # requests for its name/id its story refutes


@dataclass(frozen=True, slots=True)
class Machine:
    """Hosts that are one computer (renamed by the join), with its role."""

    key: str
    role: str  # device | connector | other
    hosts: tuple[str, ...]
    sources: tuple[str, ...]


@dataclass(frozen=True)
class Correlation:
    """What correlate() found: attempts, and the evidence no attempt explains."""

    attempts: tuple[Attempt, ...]
    machines: tuple[Machine, ...]
    offsets: tuple[ClockOffset, ...]
    unmatched_requests: tuple[ConnectorRequest, ...]  # a connector acted for no device here
    connector_notices: tuple[ConnectorNotice, ...]
    notes: tuple[str, ...]  # e.g. "no join attempt found", what is missing to conclude
    syncs: tuple[SyncRun, ...] = ()  # the Exchange connector's syncs (correlate/exchange.py)
    exchange: tuple[ExchangeState, ...] = ()


# --- findings (evtxdoc/rules/engine.py) ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Finding:
    """What one rule concluded about one attempt, host or the bundle (design.md §3)."""

    rule: str
    title: str
    severity: str  # critical | error | warning | info
    confidence: str  # documented | community | inferred
    scope: str  # event | host | attempt | bundle
    cause: str  # rendered with the evidence values
    fix: str
    references: tuple[str, ...]
    evidence: tuple[EventRef, ...]
    attempt: str | None = None
    host: str | None = None  # the machine (device or connector) for host/event findings
    count: int = 0  # matching events
    root_cause: bool = False  # the most likely cause of its failed attempt
    superseded: tuple[str, ...] = ()  # rules this finding replaced (less specific)
    unconfirmed: tuple[str, ...] = ()  # evidence the bundle lacks to confirm this cause


@dataclass(frozen=True, slots=True)
class RuleGap:
    """A rule that could not be judged because the data it needs is absent."""

    rule: str
    reason: str  # e.g. "no host has channel Microsoft-Windows-User Device Registration/Admin"


@dataclass(frozen=True)
class Evaluation:
    """The findings of one engine run, most important first."""

    findings: tuple[Finding, ...]
    gaps: tuple[RuleGap, ...]
    rules: int  # rules evaluated
    rule_folders: tuple[str, ...] = ()

    @cached_property
    def _by_attempt(self) -> dict[str, list[Finding]]:
        index: dict[str, list[Finding]] = {}
        for finding in self.findings:
            if finding.attempt is not None:
                index.setdefault(finding.attempt, []).append(finding)
        return index

    def for_attempt(self, attempt_id: str) -> list[Finding]:
        return list(self._by_attempt.get(attempt_id, ()))

    def root_cause(self, attempt_id: str) -> Finding | None:
        return next((f for f in self._by_attempt.get(attempt_id, ()) if f.root_cause), None)
