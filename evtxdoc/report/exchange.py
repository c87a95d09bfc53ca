"""The Exchange connectors' syncs in the report: the JSON key `exchange` (one entry per
connector: its verdict, its settings and its syncs), its schema, and the HTML lane's bars."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from evtxdoc.correlate.exchange import tally
from evtxdoc.correlate.machines import display_name
from evtxdoc.exchange_model import ExchangeState, SyncRun
from evtxdoc.models import Analysis
from evtxdoc.parse.times import format_time_ns, parse_time_ns

MAX_SYNCS = 1000  # syncs listed per connector (the latest); the counts cover them all


def _time(ns: int | None) -> str | None:
    return format_time_ns(ns) if ns is not None else None


def verdict_words(state: ExchangeState, runs: Sequence[SyncRun] = ()) -> str:
    """The connector's state in one sentence (times in UTC)."""
    last_full = _time(state.last_full_ok_ns)
    since = (
        f"last successful full sync {last_full[:16].replace('T', ' ')} UTC"
        if last_full
        else ("no successful full sync in the trace")
    )
    if state.status == "failing":
        start = state.failing_since_ns
        if start is None:  # a tracing level that hides successes: when it began is unknown
            return f"its latest sync failed; {since}"
        when = (_time(start) or "")[:16].replace("T", " ")
        kinds = {r.kind for r in runs if r.outcome == "failed" and (r.started_ns or 0) >= start}
        what = f"{kinds.pop()} syncs" if len(kinds) == 1 else "syncs"
        return f"{what} failing since {when} UTC; {since}"
    if state.status == "stopped":
        end = (_time(state.trace_ends_ns) or "")[:16].replace("T", " ")
        return f"stopped: nothing traced after {end} UTC while the server's logs go on; {since}"
    if state.status == "not_traced":
        return "its tracing level writes no sync lines: the syncs cannot be judged from the trace"
    if state.status == "no_syncs":
        return "no sync in the trace (the connector never synced while it traced)"
    if state.status == "unfinished":
        return f"its latest sync never finished in the trace; {since}"
    return f"syncing; {since}"


def exchange_summary(analysis: Analysis) -> list[dict[str, Any]]:
    """The JSON key `exchange`: each connector's verdict, settings and syncs."""
    correlation = analysis.correlation
    if correlation is None or not correlation.exchange:
        return []
    machines = {h.lower(): m for m in correlation.machines for h in m.hosts}
    out = []
    for state in correlation.exchange:
        machine = machines.get(state.host.lower())
        hosts = list(machine.hosts) if machine else [state.host]
        runs = [r for r in correlation.syncs if r.host == state.host]
        syncs, failed, longest = tally(runs, state.host)
        out.append(
            {
                "connector": display_name(hosts),
                "hosts": hosts,
                "status": state.status,
                "verdict": verdict_words(state, runs),
                "syncs_total": syncs,
                "failed": failed,
                "last_full_sync": _time(state.last_full_ok_ns),
                "last_quick_sync": _time(state.last_quick_ok_ns),
                "failing_since": _time(state.failing_since_ns),
                "trace_ends": _time(state.trace_ends_ns),
                "logs_end": _time(state.host_ends_ns),
                "max_devices": state.max_devices,
                "longest_full_sync_s": longest,
                "organization": state.organization,
                "same_organization_as": list(state.same_organization_as),
                "settings": dict(state.settings),
                "notes": list(state.notes),
                "syncs": [_run(r) for r in runs[-MAX_SYNCS:]],
                "syncs_truncated": len(runs) > MAX_SYNCS,
            }
        )
    return out


def _run(run: SyncRun) -> dict[str, Any]:
    return {
        "kind": run.kind,
        "started": _time(run.started_ns),
        "ended": _time(run.ended_ns),
        "outcome": run.outcome,
        "users": run.users,
        "devices": run.devices,
        "exchange_server": run.exchange_server,
        "error": run.error,
        "evidence": [ref._asdict() for ref in run.evidence],
    }


def lane(entry: dict[str, Any], time_text: Any) -> dict[str, Any]:
    """The HTML lane of one connector: each sync a bar at its place in the trace's span (in
    % of the width), coloured by outcome; `time_text(ns)` writes a time in the report's zone."""
    stamps = [
        stamp
        for s in entry["syncs"]
        for t in (s["started"], s["ended"])
        if t is not None and (stamp := parse_time_ns(t)) is not None
    ]
    if not stamps:
        return {**entry, "bars": [], "span": ""}
    low, high = min(stamps), max(stamps)
    width = max(high - low, 1)
    bars = []
    for sync in entry["syncs"]:
        start = parse_time_ns(sync["started"]) if sync["started"] else None
        end = parse_time_ns(sync["ended"]) if sync["ended"] else None
        first = start if start is not None else end
        last = end if end is not None else first
        if first is None or last is None:
            continue
        x = 100 * (first - low) / width
        bars.append(
            {
                "x": round(x, 3),
                "w": round(max(0.4, 100 * (last - first) / width), 3),
                "y": 4 if sync["kind"] == "full" else 24,
                "outcome": sync["outcome"],
                "tip": f"{sync['kind']} sync {sync['outcome']}, {time_text(first)}"
                + (f" → {time_text(last)}" if last != first else "")
                + (f", {sync['devices']} devices" if sync["devices"] is not None else "")
                + (f": {sync['error']}" if sync["error"] else ""),
            }
        )
    return {**entry, "bars": bars, "span": f"{time_text(low)} → {time_text(high)}"}
