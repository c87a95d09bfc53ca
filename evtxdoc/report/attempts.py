"""Join attempts as plain JSON data and as one terminal line each."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from evtxdoc.models import (
    Attempt,
    ClockOffset,
    ConnectorNotice,
    ConnectorRequest,
    Correlation,
    EventRef,
    Step,
)
from evtxdoc.normalize import format_time_ns

SECOND = 1_000_000_000
MATCH_WORDS = {"computer_name": "by name", "entdmid": "by EntDMID",
               "entra_device_id": "by Entra device id", "time_window": "by time",
               "time_window_assumed": "by time, clocks assumed"}
OUTCOME_STYLE = {"succeeded": "green", "failed": "bold red", "timed_out": "bold red",
                 "incomplete": "yellow", "not_hybrid": "cyan", "unknown": "dim"}


def _ref(ref: EventRef) -> dict[str, Any]:
    return {"host": ref.host, "channel": ref.channel, "event_id": ref.event_id,
            "record_id": ref.record_id, "source": ref.source_file}


def offset_dict(offset: ClockOffset | None) -> dict[str, Any] | None:
    if offset is None:
        return None
    return {
        "host": offset.host, "reference": offset.reference,
        "offset_s": offset.offset_ns / SECOND,
        "uncertainty_s": None if offset.uncertainty_ns is None
        else offset.uncertainty_ns / SECOND,
        "basis": list(offset.basis),
        "until": None if offset.until_ns is None else format_time_ns(offset.until_ns),
    }


def request_dict(request: ConnectorRequest) -> dict[str, Any]:
    return {
        "connector": request.connector, "kind": request.kind, "time": format_time_ns(request.ts),
        "device_name": request.device_name, "device_id": request.device_id,
        "domain": request.domain, "succeeded": request.succeeded,
        "error_code": request.error_code, "diagnostic_code": request.diagnostic_code,
        "diagnostic_text": request.diagnostic_text, "elapsed_ms": request.elapsed_ms,
        "user_sid": request.user_sid, "event": _ref(request.ref),
    }


def notice_dict(notice: ConnectorNotice) -> dict[str, Any]:
    return {"connector": notice.connector, "kind": notice.kind, "time": format_time_ns(notice.ts),
            "diagnostic_code": notice.diagnostic_code,
            "diagnostic_text": notice.diagnostic_text, "event": _ref(notice.ref)}


def _step(step: Step) -> dict[str, Any]:
    return {"step": step.name, "status": step.status, "time": format_time_ns(step.ts_corrected),
            "time_raw": format_time_ns(step.ts), "detail": step.detail, "event": _ref(step.ref)}


def attempt_dict(attempt: Attempt) -> dict[str, Any]:
    device = attempt.device
    return {
        "id": attempt.id, "number": attempt.number,
        "device": {
            "oobe_names": list(device.oobe_names), "hosts": list(device.hosts),
            "computer_name": device.computer_name, "domain": device.domain,
            "serial": device.serial, "ztdid": device.ztdid, "entdmid": device.entdmid,
            "tenant_id": device.tenant_id, "join_method": device.join_method,
            "skip_dc_check": device.skip_dc_check, "sources": list(device.sources),
        },
        "outcome": str(attempt.outcome), "failed_step": attempt.failed_step,
        "reason": attempt.reason,
        "connector": attempt.connector, "match_basis": attempt.match_basis,
        "connector_evidence": attempt.connector_evidence,
        "clock_offset": offset_dict(attempt.offset),
        "started": format_time_ns(attempt.started), "ended": format_time_ns(attempt.ended),
        "durations_s": attempt.durations,
        "steps": [_step(s) for s in attempt.steps],
        "requests": [request_dict(r) for r in attempt.requests],
        "missing": list(attempt.missing),
    }


def correlation_dict(correlation: Correlation | None) -> dict[str, Any]:
    """The `attempts` part of the JSON document (docs/json-inventory.md)."""
    if correlation is None:
        return {"attempts": [], "unmatched_requests": [], "connector_notices": [],
                "clock_offsets": [], "machines": [], "correlation_notes": []}
    return {
        "attempts": [attempt_dict(a) for a in correlation.attempts],
        "unmatched_requests": [request_dict(r) for r in correlation.unmatched_requests],
        "connector_notices": [notice_dict(n) for n in correlation.connector_notices],
        "clock_offsets": [offset_dict(o) for o in correlation.offsets],
        "machines": [{"key": m.key, "role": m.role, "hosts": list(m.hosts),
                      "sources": list(m.sources)} for m in correlation.machines],
        "correlation_notes": list(correlation.notes),
    }


def format_offset(offset: ClockOffset | None) -> str:
    """`+5h00m00s ±4s`, `≥ +12s`, or `?` (no evidence)."""
    if offset is None or (offset.uncertainty_ns is None and offset.offset_ns == 0):
        return "?"
    text = _duration(offset.offset_ns)
    if offset.uncertainty_ns is None:
        return f"≥ {text}"
    return f"{text} ±{_duration(offset.uncertainty_ns, signed=False)}"


def _duration(ns: int, signed: bool = True) -> str:
    sign = "-" if ns < 0 else ("+" if signed else "")
    seconds = round(abs(ns) / SECOND)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{sign}{minutes}m{secs:02d}s"
    return f"{sign}{secs}s"


def render(correlation: Correlation | None, console: Console, limit: int = 200) -> None:
    """One line per attempt: device, outcome, failing step, connector matched, offset."""
    if correlation is None:
        return
    if correlation.attempts:
        table = Table(title="Join attempts")
        for column in ("device", "outcome", "failed at", "connector", "clock offset"):
            table.add_column(column, overflow="fold")
        for attempt in correlation.attempts[:limit]:
            device = attempt.device
            name = (device.oobe_names or device.hosts or ("?",))[0]
            if device.computer_name and device.computer_name.lower() != name.lower():
                name += f" → {device.computer_name}"
            style = OUTCOME_STYLE.get(str(attempt.outcome), "")
            basis = MATCH_WORDS.get(attempt.match_basis or "", attempt.match_basis)
            connector = (f"{attempt.connector} ({basis})" if attempt.connector
                         else attempt.connector_evidence.replace("_", " "))
            table.add_row(name, f"[{style}]{attempt.outcome}[/]", attempt.failed_step or "",
                          connector, format_offset(attempt.offset))
        console.print(table)
        if len(correlation.attempts) > limit:
            console.print(f"… {len(correlation.attempts) - limit} more attempts: use "
                          "--format json for all of them")
    for note in correlation.notes:
        console.print(f"[yellow]note:[/] {note}")
