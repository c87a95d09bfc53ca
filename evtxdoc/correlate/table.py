"""One row per attempt: the table the rules engine reads."""

from __future__ import annotations

import pandas as pd

from evtxdoc.models import (
    Correlation,
)
from evtxdoc.vocab import SECOND


def attempts_frame(correlation: Correlation | None) -> pd.DataFrame:
    """One row per attempt (the table the rules engine reads)."""
    columns = [
        "attempt",
        "device",
        "computer_name",
        "domain",
        "outcome",
        "failed_step",
        "connector",
        "match_basis",
        "connector_evidence",
        "offset_s",
        "offset_error_s",
        "started",
        "ended",
        "requests",
        "failed_requests",
        "diagnostic_code",
        "join_method",
        "skip_dc_check",
        "entdmid",
        "steps",
        "missing_logs",
        "missing",
    ]
    rows = []
    for attempt in correlation.attempts if correlation else ():
        offset = attempt.offset
        failures = [r for r in attempt.requests if not r.succeeded]
        rows.append(
            {
                "attempt": attempt.id,
                "device": (attempt.device.oobe_names or attempt.device.hosts or ("",))[0],
                "computer_name": attempt.device.computer_name,
                "domain": attempt.device.domain,
                "outcome": str(attempt.outcome),
                "failed_step": attempt.failed_step,
                "connector": attempt.connector,
                "match_basis": attempt.match_basis,
                "connector_evidence": attempt.connector_evidence,
                "offset_s": offset.offset_ns / SECOND if offset else None,
                "offset_error_s": (
                    offset.uncertainty_ns / SECOND
                    if offset and offset.uncertainty_ns is not None
                    else None
                ),
                "started": pd.Timestamp(attempt.started, unit="ns", tz="UTC"),
                "ended": pd.Timestamp(attempt.ended, unit="ns", tz="UTC"),
                "requests": len(attempt.requests),
                "failed_requests": len(failures),
                "diagnostic_code": failures[-1].diagnostic_code if failures else None,
                "join_method": attempt.device.join_method,
                "skip_dc_check": attempt.device.skip_dc_check,
                "entdmid": attempt.device.entdmid,
                "steps": ",".join(f"{s.name}:{s.status}" for s in attempt.steps),
                "missing_logs": ",".join(attempt.missing_logs),
                "missing": "; ".join(attempt.missing),
            }
        )
    return pd.DataFrame(rows, columns=columns)
