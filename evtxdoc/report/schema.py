"""The JSON Schema of the report document (`--format json`), shipped as docs/report.schema.json.

Written here once; `python -m evtxdoc.report.schema > docs/report.schema.json` regenerates the
file and a test keeps the two equal, and another validates every sample's report against it.
"""

from __future__ import annotations

import json
from typing import Any

STR = {"type": "string"}
INT = {"type": "integer"}
NUM = {"type": "number"}
BOOL = {"type": "boolean"}
TIME = {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$"}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


def enum(*values: str) -> dict[str, Any]:
    return {"enum": list(values)}


def obj(
    required: dict[str, Any], optional: dict[str, Any] | None = None, closed: bool = True
) -> dict[str, Any]:
    """An object with these keys (always present) and optional ones."""
    schema: dict[str, Any] = {
        "type": "object",
        "required": sorted(required),
        "properties": {**required, **(optional or {})},
    }
    if closed:
        schema["additionalProperties"] = False
    return schema


SEVERITY = enum("critical", "error", "warning", "info")
CONFIDENCE = enum("documented", "community", "inferred")
OUTCOME = enum("succeeded", "failed", "timed_out", "incomplete", "not_hybrid", "unknown")
EVENT_REF = obj({"host": STR, "channel": STR, "event_id": INT, "record_id": INT, "source": STR})
FINDING_REF = obj(
    {"host": STR, "channel": STR, "event_id": INT, "record_id": INT, "source_file": STR}
)
OFFSET = obj(
    {
        "host": STR,
        "reference": STR,
        "offset_s": NUM,
        "uncertainty_s": nullable(NUM),
        "basis": array(STR),
        "until": nullable(TIME),
        "known": BOOL,
        "low_s": nullable(NUM),
        "high_s": nullable(NUM),
    }
)
REQUEST = obj(
    {
        "connector": STR,
        "kind": enum("updated", "legacy"),
        "time": TIME,
        "device_name": nullable(STR),
        "device_id": nullable(STR),
        "domain": nullable(STR),
        "succeeded": BOOL,
        "error_code": nullable(STR),
        "diagnostic_code": nullable(STR),
        "diagnostic_text": nullable(STR),
        "elapsed_ms": nullable(INT),
        "user_sid": nullable(STR),
        "event": EVENT_REF,
    }
)
CHANNEL = obj({"channel": STR, "records": INT, "first": TIME, "last": TIME, "sources": array(STR)})
COUNTS = {
    "type": "object",
    "additionalProperties": INT,
    "propertyNames": {"enum": ["critical", "error", "warning", "info"]},
}

EXCHANGE = array(  # report/exchange.py: one entry per Intune Exchange connector
    obj(
        {
            "connector": STR,
            "hosts": array(STR),
            "status": enum("healthy", "failing", "stopped", "no_syncs", "not_traced", "unfinished"),
            "verdict": STR,
            "syncs_total": INT,
            "failed": INT,
            "last_full_sync": nullable(TIME),
            "last_quick_sync": nullable(TIME),
            "failing_since": nullable(TIME),
            "trace_ends": nullable(TIME),
            "logs_end": nullable(TIME),
            "max_devices": nullable(INT),
            "longest_full_sync_s": nullable(NUM),
            "organization": nullable(STR),
            "same_organization_as": array(STR),
            "settings": {"type": "object", "additionalProperties": STR},
            "notes": array(STR),
            "syncs": array(
                obj(
                    {
                        "kind": enum("full", "quick"),
                        "started": nullable(TIME),
                        "ended": nullable(TIME),
                        "outcome": enum("completed", "failed", "unfinished"),
                        "users": nullable(INT),
                        "devices": nullable(INT),
                        "exchange_server": nullable(STR),
                        "error": nullable(STR),
                        "evidence": array(FINDING_REF),
                    }
                )
            ),
            "syncs_truncated": BOOL,
        }
    )
)

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://evtxdoc.invalid/report.schema.json",
    "title": "evtxdoc report document",
    "description": "evtxdoc analyze --format json. Fields are only added within a "
    "schema_version; see docs/json-inventory.md.",
    **obj(
        {
            "schema_version": {"const": "1"},
            "tool": obj({"name": {"const": "evtxdoc"}, "version": STR}),
            "inputs": array(STR),
            "summary": obj(
                {
                    k: INT
                    for k in (
                        "events",
                        "hosts",
                        "evtx_files",
                        "skipped_files",
                        "problems",
                        "attempts",
                        "findings",
                    )
                }
                | {"seconds": NUM}
            ),
            "fleet": nullable(
                obj(
                    {
                        "devices": INT,
                        "healthy": INT,
                        "not_hybrid": INT,
                        "failing": INT,
                        "causes": array(
                            obj(
                                {
                                    "rule": STR,
                                    "title": STR,
                                    "severity": STR,
                                    "devices": INT,
                                    "attempts": INT,
                                    "connectors": array(STR),
                                    "first": nullable(TIME),
                                    "last": nullable(TIME),
                                    "per_hour": array(obj({"hour": TIME, "attempts": INT})),
                                    "device_list": array(obj({"name": STR, "attempt": STR})),
                                }
                            )
                        ),
                        "not_judged": array(
                            obj(
                                {
                                    "reason": STR,
                                    "devices": INT,
                                    "device_list": array(obj({"name": STR, "attempt": STR})),
                                }
                            )
                        ),
                    }
                )
            ),
            "exchange": EXCHANGE,
            "verdicts": array(
                obj(
                    {
                        "device": STR,
                        "name": STR,
                        "status": enum(
                            "succeeded",
                            "failed",
                            "timed_out",
                            "incomplete",
                            "not_hybrid",
                            "unknown",
                            "no_attempt",
                        ),
                        "verdict": STR,
                        "reason": STR,
                        "attempts": array(STR),
                        "last_attempt": nullable(STR),
                        "connector": nullable(STR),
                        "root_cause": nullable(
                            obj(
                                {
                                    "rule": STR,
                                    "title": STR,
                                    "severity": SEVERITY,
                                    "confidence": CONFIDENCE,
                                    "attempt": nullable(STR),
                                }
                            )
                        ),
                        "findings": COUNTS,
                    }
                )
            ),
            "hosts": array(obj({"host": STR, "channels": array(CHANNEL)})),
            "coverage": array(
                obj(
                    {
                        "machine": STR,
                        "hosts": array(STR),
                        "role": enum(
                            "device", "connector", "legacy connector", "exchange", "other"
                        ),
                        "role_words": STR,
                        "records": INT,
                        "first": TIME,
                        "last": TIME,
                        "channels": array(
                            obj(
                                {
                                    "host": STR,
                                    "channel": STR,
                                    "records": INT,
                                    "first": TIME,
                                    "last": TIME,
                                    "sources": array(STR),
                                    "damaged": array(
                                        obj(
                                            {
                                                "kind": STR,
                                                "after": nullable(TIME),
                                                "before": nullable(TIME),
                                            }
                                        )
                                    ),
                                }
                            )
                        ),
                        "no_events_from": array(obj({"channel": STR, "why": STR})),
                        "time_zone": nullable(
                            obj(
                                {
                                    "name": STR,
                                    "bias_minutes": INT,
                                    "utc_offset": STR,
                                    "seen": TIME,
                                }
                            )
                        ),
                    }
                )
            ),
            "files": array(
                obj(
                    {
                        "path": STR,
                        "kind": enum("evtx", "trace", "supporting", "archive", "skipped"),
                        "size": INT,
                        "sha256": STR,
                        "status": enum(
                            "read", "damaged", "skipped", "duplicate", "kept", "unpacked"
                        ),
                    },
                    {
                        "subkind": STR,
                        "reason": nullable(STR),
                        "records": INT,
                        "duplicate_events": INT,
                        "backends": array(STR),
                        "format_version": nullable(STR),
                        "dirty": BOOL,
                    },
                )
            ),
            "supporting_files": array(obj({"path": STR, "subkind": STR, "sha256": STR})),
            "problems": array(
                obj(
                    {
                        "source": STR,
                        "kind": STR,
                        "severity": enum("info", "warning", "error"),
                        "where": nullable(STR),
                        "message": STR,
                        "hint": nullable(STR),
                    },
                    {"line": INT},
                )
            ),
            "attempts": array(
                obj(
                    {
                        "id": STR,
                        "number": INT,
                        "device": obj(
                            {
                                "oobe_names": array(STR),
                                "hosts": array(STR),
                                "computer_name": nullable(STR),
                                "domain": nullable(STR),
                                "serial": nullable(STR),
                                "ztdid": nullable(STR),
                                "entdmid": nullable(STR),
                                "tenant_id": nullable(STR),
                                "join_method": nullable(enum("hybrid", "entra")),
                                "skip_dc_check": nullable(BOOL),
                                "sources": array(STR),
                            }
                        ),
                        "outcome": OUTCOME,
                        "failed_step": nullable(STR),
                        "reason": STR,
                        "connector": nullable(STR),
                        "match_basis": nullable(STR),
                        "connector_evidence": STR,
                        "clock_offset": nullable(OFFSET),
                        "started": TIME,
                        "ended": TIME,
                        "durations_s": {"type": "object", "additionalProperties": NUM},
                        "steps": array(
                            obj(
                                {
                                    "step": STR,
                                    "status": enum(
                                        "ok",
                                        "failed",
                                        "waiting",
                                        "timed_out",
                                        "not_configured",
                                        "info",
                                    ),
                                    "time": TIME,
                                    "time_raw": TIME,
                                    "detail": STR,
                                    "event": EVENT_REF,
                                }
                            )
                        ),
                        "requests": array(REQUEST),
                        "missing": array(STR),
                        "missing_logs": array(enum("system", "user_device_registration")),
                        "conflicting_requests": array(REQUEST),
                    }
                )
            ),
            "unmatched_requests": array(REQUEST),
            "connector_notices": array(
                obj(
                    {
                        "connector": STR,
                        "kind": STR,
                        "time": TIME,
                        "diagnostic_code": nullable(STR),
                        "diagnostic_text": nullable(STR),
                        "event": EVENT_REF,
                    }
                )
            ),
            "clock_offsets": array(OFFSET),
            "machines": array(
                obj(
                    {
                        "key": STR,
                        "role": enum("device", "connector", "other"),
                        "hosts": array(STR),
                        "sources": array(STR),
                    }
                )
            ),
            "correlation_notes": array(STR),
            "findings": array(
                obj(
                    {
                        "rule": STR,
                        "title": STR,
                        "severity": SEVERITY,
                        "confidence": CONFIDENCE,
                        "scope": enum("event", "host", "attempt", "bundle"),
                        "attempt": nullable(STR),
                        "host": nullable(STR),
                        "root_cause": BOOL,
                        "cause": STR,
                        "fix": STR,
                        "references": array(STR),
                        "count": INT,
                        "evidence": array(FINDING_REF),
                        "superseded": array(STR),
                        "unconfirmed": array(STR),
                    }
                )
            ),
            "rules": nullable(
                obj(
                    {
                        "evaluated": INT,
                        "folders": array(STR),
                        "not_evaluated": array(obj({"rule": STR, "reason": STR})),
                        "findings_by_severity": COUNTS,
                    }
                )
            ),
        }
    ),
}


def schema_text() -> str:
    return json.dumps(SCHEMA, indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    print(schema_text(), end="")
