"""Join attempts as plain JSON data (the `attempts` part of the report document)."""

from __future__ import annotations

from typing import Any

from evtxdoc.models import (
    Attempt,
    ClockOffset,
    ConnectorNotice,
    ConnectorRequest,
    Correlation,
    EventRef,
    Step,
)
from evtxdoc.parse.times import format_time_ns
from evtxdoc.vocab import SECOND


def _ref(ref: EventRef) -> dict[str, Any]:
    return {
        "host": ref.host,
        "channel": ref.channel,
        "event_id": ref.event_id,
        "record_id": ref.record_id,
        "source": ref.source_file,
    }


def offset_dict(offset: ClockOffset | None) -> dict[str, Any] | None:
    if offset is None:
        return None
    return {
        "host": offset.host,
        "reference": offset.reference,
        "offset_s": offset.offset_ns / SECOND,
        "uncertainty_s": None if offset.uncertainty_ns is None else offset.uncertainty_ns / SECOND,
        "basis": list(offset.basis),
        "until": None if offset.until_ns is None else format_time_ns(offset.until_ns),
        "known": offset.known,
        "low_s": None if offset.low_ns is None else offset.low_ns / SECOND,
        "high_s": None if offset.high_ns is None else offset.high_ns / SECOND,
    }


def request_dict(request: ConnectorRequest) -> dict[str, Any]:
    return {
        "connector": request.connector,
        "kind": request.kind,
        "time": format_time_ns(request.ts),
        "device_name": request.device_name,
        "device_id": request.device_id,
        "domain": request.domain,
        "succeeded": request.succeeded,
        "error_code": request.error_code,
        "diagnostic_code": request.diagnostic_code,
        "diagnostic_text": request.diagnostic_text,
        "elapsed_ms": request.elapsed_ms,
        "user_sid": request.user_sid,
        "event": _ref(request.ref),
    }


def notice_dict(notice: ConnectorNotice) -> dict[str, Any]:
    return {
        "connector": notice.connector,
        "kind": notice.kind,
        "time": format_time_ns(notice.ts),
        "diagnostic_code": notice.diagnostic_code,
        "diagnostic_text": notice.diagnostic_text,
        "event": _ref(notice.ref),
    }


def _step(step: Step) -> dict[str, Any]:
    return {
        "step": step.name,
        "status": step.status,
        "time": format_time_ns(step.ts_corrected),
        "time_raw": format_time_ns(step.ts),
        "detail": step.detail,
        "event": _ref(step.ref),
    }


def attempt_dict(attempt: Attempt) -> dict[str, Any]:
    device = attempt.device
    return {
        "id": attempt.id,
        "number": attempt.number,
        "device": {
            "oobe_names": list(device.oobe_names),
            "hosts": list(device.hosts),
            "computer_name": device.computer_name,
            "domain": device.domain,
            "serial": device.serial,
            "ztdid": device.ztdid,
            "entdmid": device.entdmid,
            "tenant_id": device.tenant_id,
            "join_method": device.join_method,
            "skip_dc_check": device.skip_dc_check,
            "sources": list(device.sources),
        },
        "outcome": str(attempt.outcome),
        "failed_step": attempt.failed_step,
        "reason": attempt.reason,
        "connector": attempt.connector,
        "match_basis": attempt.match_basis,
        "connector_evidence": attempt.connector_evidence,
        "clock_offset": offset_dict(attempt.offset),
        "started": format_time_ns(attempt.started),
        "ended": format_time_ns(attempt.ended),
        "durations_s": attempt.durations,
        "steps": [_step(s) for s in attempt.steps],
        "requests": [request_dict(r) for r in attempt.requests],
        "missing": list(attempt.missing),
        "missing_logs": list(attempt.missing_logs),
        "conflicting_requests": [request_dict(r) for r in attempt.conflicts],
    }


def correlation_dict(correlation: Correlation | None, lazy: bool = False) -> dict[str, Any]:
    """The `attempts` part of the JSON document (docs/json-inventory.md); `lazy`: the attempts
    as an iterator, each made as it is written (report/stream.py)."""
    if correlation is None:
        return {
            "attempts": [],
            "unmatched_requests": [],
            "connector_notices": [],
            "clock_offsets": [],
            "machines": [],
            "correlation_notes": [],
        }
    return {
        "attempts": (
            map(attempt_dict, correlation.attempts)
            if lazy
            else [attempt_dict(a) for a in correlation.attempts]
        ),
        "unmatched_requests": [request_dict(r) for r in correlation.unmatched_requests],
        "connector_notices": [notice_dict(n) for n in correlation.connector_notices],
        "clock_offsets": [offset_dict(o) for o in correlation.offsets],
        "machines": [
            {"key": m.key, "role": m.role, "hosts": list(m.hosts), "sources": list(m.sources)}
            for m in correlation.machines
        ],
        "correlation_notes": list(correlation.notes),
    }
