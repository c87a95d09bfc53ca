"""What the Intune Exchange connector's trace adds up to: its syncs and each connector's verdict
(built by correlate/exchange.py, shown by report/exchange.py)."""

from __future__ import annotations

from dataclasses import dataclass

from evtxdoc.refs import EventRef


@dataclass(frozen=True, slots=True)
class SyncRun:
    """One quick or full sync of the Intune Exchange connector, from its trace (its attempt)."""

    host: str
    kind: str  # full | quick
    started_ns: int | None  # None: the trace begins after the sync began
    ended_ns: int | None  # None: never finished in the trace
    outcome: str  # completed | failed | unfinished
    users: int | None = None  # "for N users"; devices: "Devices synced: N"
    devices: int | None = None
    exchange_server: str | None = None
    error: str | None = None  # the first exception traced during the sync
    evidence: tuple[EventRef, ...] = ()


@dataclass(frozen=True, slots=True)
class ExchangeState:
    """What one Exchange connector's syncs add up to (its verdict)."""

    host: str
    status: str  # healthy | failing | stopped | no_syncs | unfinished
    last_full_ok_ns: int | None
    last_quick_ok_ns: int | None
    failing_since_ns: int | None  # the first failure after the last success, if still failing
    trace_ends_ns: int | None  # the connector's last trace event
    host_ends_ns: int | None  # the machine's last event in any log
    max_devices: int | None  # the most "Devices synced" of a completed sync
    organization: str | None  # the Exchange server / CAS it talks to
    settings: tuple[tuple[str, str], ...] = ()  # from its settings files
    same_organization_as: tuple[str, ...] = ()  # other connectors for that organization
    notes: tuple[str, ...] = ()  # what limits the verdict (e.g. tracing at Warning)
