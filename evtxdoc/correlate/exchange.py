"""The Intune Exchange connector's syncs: its attempts, and what they add up to per connector.

A sync is told by the trace's own words (parse/trace_text.py, S45): "Handling command: … (full
sync) / (quick sync) …" starts one, "… completed successfully. Details: … Devices synced: N"
ends it, a sentence saying the command "failed" ends it failed. Events are grouped per host in
time order; the trace's activity id, when set, ties an exception to its sync. A sync with an
exception and no end failed; one with neither never finished. A completion without its start
(the trace rolled over in between) is a sync whose start is unknown.

Per connector: the last completed full and quick sync, whether it is failing now (its latest
sync failed) and since when, whether it stopped (its trace ends while the machine's other logs
go on for over a day, `STOPPED_AFTER_S`: the daily full sync did not run, so neither did the
service), or never synced — unless its tracing level writes no sync lines (below Information:
"not_traced", and no claim either way). Its settings
(OnPremisesExchangeConnectorServiceConfiguration.xml, TracingConfiguration.xml) are read from
the files beside its logs. Two connectors that talk to one Exchange organization are named:
only one connector can serve an organization (S25).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

from evtxdoc.correlate.evidence import category_codes
from evtxdoc.correlate.machines import folder_of
from evtxdoc.event_summary import last_by_host, summarize
from evtxdoc.exchange_model import ExchangeState, SyncRun
from evtxdoc.models import EventRef, Machine, SupportingFile
from evtxdoc.parse.payload import decode_fields
from evtxdoc.parse.svclog import CHANNEL

PROVIDERS = ("onpremisesexchangeconnectorservice",)  # the TraceSource (TracingConfiguration)
# A full sync runs once a day (S25): a trace that ends over a day (and some slack) before the
# machine's other logs do belongs to a service that no longer ran.
STOPPED_AFTER_S = 26 * 3600
SETTINGS = {  # settings file kind → the elements read from it (S25, S26, S45)
    "exchange_connector_config": (
        "ExchangeWebServiceURL",
        "IsCasFailoverEnabled",
        "EnableParallelCommandSupport",
    ),
    "exchange_tracing_config": ("SourceLevel", "FileSizeQuotaInBytes", "FileQuota"),
}
MAX_SETTING = 300


def read_settings(kind: str, content: bytes) -> dict[str, str]:
    """The settings a connector file states; a file with a DTD or broken XML states `Error`."""
    wanted = SETTINGS.get(kind)
    if not wanted:
        return {}
    text = content.decode("utf-8-sig", errors="replace")
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        return {"Error": "the file declares a DTD; not read (settings files never do)"}
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        return {"Error": f"not well-formed XML ({exc})"}
    found: dict[str, str] = {}
    for element in root.iter():
        name = element.tag.rsplit("}", 1)[-1] if isinstance(element.tag, str) else ""
        # first of each, but the last SourceLevel: the listener's, after the TraceSource's own
        if name in wanted and (name not in found or name == "SourceLevel"):
            found[name] = (element.text or "").strip()[:MAX_SETTING]
    if kind == "exchange_tracing_config" and "SourceLevel" in found:
        found["VerboseTracing"] = str("verbose" in found["SourceLevel"].lower()).lower()
    return found


def syncs(
    frame: pd.DataFrame,
    machines: Sequence[Machine],
    supporting: Sequence[SupportingFile],
    summary: pd.DataFrame | None = None,
) -> tuple[tuple[SyncRun, ...], tuple[ExchangeState, ...]]:
    """Every sync the connectors' traces show (per host in time order), and each connector's
    verdict (see the module docstring); `summary` (of every event, event_summary.py) gives
    each host's last event when `frame` holds only some."""
    rows = trace_rows(frame)
    if rows.empty:
        return (), ()
    runs = _runs(rows)
    every = summarize(frame if summary is None else summary)
    return runs, _states(every, rows, runs, machines, supporting)


def _runs(rows: pd.DataFrame) -> tuple[SyncRun, ...]:
    payloads = rows["payload"].tolist()
    levels = rows["level"].tolist()
    columns = (
        payloads,
        rows["ts"].array.asi8,
        levels,
        rows["event_id"].tolist(),
        rows["record_id"].tolist(),
        rows["source_file"].astype(str).tolist(),
    )
    by_host: dict[str, list[int]] = defaultdict(list)
    for index, host in enumerate(rows["host"].astype(str).tolist()):
        # only what can open, close or fail a sync is decoded: a sync line, or an error
        if levels[index] <= 2 or b'"SyncKind"' in payloads[index]:
            by_host[host].append(index)
    runs: list[SyncRun] = []
    for host, indices in sorted(by_host.items()):
        runs.extend(_host_runs(host, indices, columns))
    return tuple(runs)


def trace_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The connector's trace events, in time order."""
    if frame.empty:
        return frame
    channel_codes, channels = category_codes(frame["channel"])
    provider_codes, providers = category_codes(frame["provider"])
    wanted_channel = [i for i, c in enumerate(channels) if c == CHANNEL]
    wanted_provider = [i for i, p in enumerate(providers) if p.lower() in PROVIDERS]
    mask = np.isin(channel_codes, wanted_channel) & np.isin(provider_codes, wanted_provider)
    return frame.loc[mask].sort_values("ts", kind="stable")


def _host_runs(host: str, indices: list[int], columns: tuple[Any, ...]) -> list[SyncRun]:
    payloads, ts, levels, event_ids, record_ids, sources = columns
    open_runs: dict[str, dict[str, Any]] = {}  # kind → the sync under way
    done: list[SyncRun] = []
    for index in indices:
        fields = decode_fields(payloads[index], CHANNEL, bodies=False)
        ref = EventRef(host, CHANNEL, int(event_ids[index]), int(record_ids[index]), sources[index])
        kind, phase = fields.get("SyncKind"), fields.get("SyncPhase")
        when = int(ts[index])
        if kind and phase == "start":
            if kind in open_runs:
                done.append(_close(host, open_runs.pop(kind), None, "unfinished"))
            open_runs[kind] = {"kind": kind, "start": when, "users": fields.get("Users"),
                               "refs": [ref], "error": None}  # fmt: skip
            continue
        if kind and phase in ("completed", "failed"):
            begun = {"kind": kind, "start": None, "refs": [], "users": fields.get("Users"),
                     "error": None}  # fmt: skip  # a sync whose start the trace lost
            run = open_runs.pop(kind, None) or begun
            run["refs"].append(ref)
            run["devices"] = fields.get("DevicesSynced")
            run["server"] = fields.get("ExchangeServer")
            done.append(_close(host, run, when, phase))
            continue
        if int(levels[index]) <= 2 and fields.get("ExceptionType") and open_runs:
            run = max(open_runs.values(), key=lambda r: r["start"] or 0)
            if run["error"] is None:
                run["error"] = f"{fields['ExceptionType']}: {fields.get('ExceptionMessage', '')}"
                run["refs"].append(ref)
    for run in open_runs.values():
        done.append(_close(host, run, None, "failed" if run["error"] else "unfinished"))
    return sorted(done, key=lambda r: r.started_ns or r.ended_ns or 0)


def _close(host: str, run: dict[str, Any], ended: int | None, outcome: str) -> SyncRun:
    return SyncRun(
        host=host,
        kind=run["kind"],
        started_ns=run["start"],
        ended_ns=ended,
        outcome=outcome,
        users=_int(run.get("users")),
        devices=_int(run.get("devices")),
        exchange_server=run.get("server"),
        error=run.get("error"),
        evidence=tuple(run["refs"][:10]),
    )


def tally(runs: Sequence[SyncRun], host: str) -> tuple[int, int, float | None]:
    """One connector's syncs, failed syncs, and its longest completed full sync (seconds)."""
    mine = [r for r in runs if r.host == host]
    full = [
        (r.ended_ns - r.started_ns) / 1e9
        for r in mine
        if r.kind == "full" and r.outcome == "completed" and r.started_ns and r.ended_ns
    ]
    return len(mine), sum(r.outcome == "failed" for r in mine), max(full) if full else None


def _int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def _states(
    summary: pd.DataFrame,
    rows: pd.DataFrame,
    runs: Sequence[SyncRun],
    machines: Sequence[Machine],
    supporting: Sequence[SupportingFile],
) -> tuple[ExchangeState, ...]:
    machine_of = {h.lower(): m for m in machines for h in m.hosts}
    trace_end = rows.groupby(rows["host"].astype(str))["ts"].max()
    host_end = last_by_host(summary)
    by_host: dict[str, list[SyncRun]] = defaultdict(list)
    for run in runs:
        by_host[run.host].append(run)
    out = []
    for host, ends in trace_end.items():
        machine = machine_of.get(str(host).lower())
        names = machine.hosts if machine else (str(host),)
        last_any = max(host_end[h] for h in names if h in host_end)
        settings = _settings_for(machine, supporting)
        out.append(_state(str(host), by_host.get(str(host), []), int(ends.value), last_any,
                          settings))  # fmt: skip
    return tuple(_organizations(out))


def _settings_for(machine: Machine | None, supporting: Sequence[SupportingFile]) -> dict[str, str]:
    """The settings files lying with the machine's logs (its folder, or the folder above an
    archive of them)."""
    if machine is None:
        return {}
    places = {folder_of(source) for source in machine.sources}
    found: dict[str, str] = {}
    for item in supporting:
        if item.subkind in SETTINGS and folder_of(item.display) in places:
            found.update(read_settings(item.subkind, item.content))
    return found


def _state(
    host: str, runs: list[SyncRun], trace_end: int, host_end: int, settings: dict[str, str]
) -> ExchangeState:
    completed = [r for r in runs if r.outcome == "completed"]
    failed = [r for r in runs if r.outcome == "failed"]
    last_ok = {k: max((r.ended_ns or 0 for r in completed if r.kind == k), default=None)
               for k in ("full", "quick")}  # fmt: skip
    latest_ok = max((r.ended_ns or 0 for r in completed), default=0)
    failing = [r for r in failed if (r.started_ns or r.ended_ns or 0) > latest_ok]
    latest = runs[-1] if runs else None
    notes = []
    level = settings.get("SourceLevel", "").lower().split()
    quiet = bool(level) and level[0] in ("off", "critical", "error", "warning")
    if quiet:
        notes.append(
            f"tracing is set to {settings['SourceLevel']!r}: sync starts and completions are "
            "information events and are not written, so a missing success proves nothing"
        )
        failing = []  # its last success is unknown: no "since"
    if (host_end - trace_end) / 1e9 > STOPPED_AFTER_S:
        status = "stopped"
    elif not runs:
        status = "not_traced" if quiet else "no_syncs"
    elif latest is not None and latest.outcome == "failed":
        status = "failing"
    elif latest is not None and latest.outcome == "unfinished":
        status = "unfinished"
    else:
        status = "healthy"
    servers = [r.exchange_server for r in runs if r.exchange_server]
    url = settings.get("ExchangeWebServiceURL", "")
    organization = (urlsplit(url).hostname if url else None) or (servers[-1] if servers else None)
    return ExchangeState(
        host=host,
        status=status,
        last_full_ok_ns=last_ok["full"],
        last_quick_ok_ns=last_ok["quick"],
        failing_since_ns=(failing[0].started_ns or failing[0].ended_ns)
        if failing and status == "failing"
        else None,
        trace_ends_ns=trace_end,
        host_ends_ns=host_end,
        max_devices=max((r.devices for r in completed if r.devices is not None), default=None),
        organization=organization.lower() if organization else None,
        settings=tuple(sorted(settings.items())),
        notes=tuple(notes),
    )


def _organizations(found: list[ExchangeState]) -> list[ExchangeState]:
    """Name, on each connector, the others that talk to the same Exchange organization (the
    CAS's DNS domain, or the same Exchange server name: inferred)."""
    by_org: dict[str, list[str]] = defaultdict(list)
    for state in found:
        if state.organization:
            by_org[state.organization.split(".", 1)[-1]].append(state.host)
    return [
        replace(
            s,
            same_organization_as=tuple(
                h for h in by_org.get((s.organization or "").split(".", 1)[-1], ()) if h != s.host
            ),
        )
        for s in found
    ]
