"""The inventory as a versioned JSON document (schema: docs/json-inventory.md)."""

from __future__ import annotations

from typing import Any

from evtxdoc.models import Analysis, FileKind
from evtxdoc.parse.times import format_time_ns
from evtxdoc.report.attempts import correlation_dict
from evtxdoc.report.document import coverage, verdicts
from evtxdoc.report.exchange import exchange_summary
from evtxdoc.report.findings import evaluation_dict
from evtxdoc.report.fleet import fleet_summary

SCHEMA_VERSION = "1"  # fields are only ever added within a version

LOG_KINDS = (FileKind.EVTX, FileKind.TRACE)  # files read into the timeline


def inventory(analysis: Analysis, lazy: bool = False) -> dict[str, Any]:
    """Hosts, channels per host, files read/skipped/damaged, problems: plain JSON data.
    `lazy`: the attempts and findings as iterators, made one by one as a stream writes them."""
    reports = {r.display: r for r in analysis.file_reports}
    files = []
    for found in analysis.files:
        entry: dict[str, Any] = {
            "path": found.display,
            "kind": str(found.kind),
            "size": found.size,
            "sha256": found.sha256,
        }
        if found.subkind:
            entry["subkind"] = found.subkind
        if found.duplicate_of:
            entry["status"], entry["reason"] = "duplicate", found.reason
        elif found.kind is FileKind.SKIPPED:
            entry["status"], entry["reason"] = "skipped", found.reason
        elif found.kind in LOG_KINDS and (report := reports.get(found.display)):
            damaged = any(p.severity != "info" for p in report.problems)
            entry.update(
                status="damaged" if damaged else "read",
                records=report.records,
                duplicate_events=report.duplicate_events,
                backends=list(report.backends),
                format_version=report.format_version,
                dirty=report.dirty,
            )
        else:
            entry["status"] = "kept" if found.kind is FileKind.SUPPORTING else "unpacked"
        files.append(entry)
    hosts: dict[str, list[dict[str, Any]]] = {}
    for cover in analysis.coverage:
        hosts.setdefault(cover.host, []).append(
            {
                "channel": cover.channel,
                "records": cover.records,
                "first": format_time_ns(cover.first),
                "last": format_time_ns(cover.last),
                "sources": list(cover.sources),
            }
        )
    device_verdicts = verdicts(analysis.correlation, analysis.evaluation)
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "evtxdoc", "version": analysis.version},
        "inputs": list(analysis.inputs),
        "summary": {
            "events": analysis.events,
            "hosts": len(hosts),
            "evtx_files": len(analysis.file_reports),
            "skipped_files": sum(1 for f in files if f["status"] in ("skipped", "duplicate")),
            "problems": len(analysis.problems),
            "attempts": len(analysis.correlation.attempts) if analysis.correlation else 0,
            "findings": len(analysis.evaluation.findings) if analysis.evaluation else 0,
            "seconds": round(analysis.seconds, 3),
        },
        "fleet": fleet_summary(analysis, device_verdicts),
        "exchange": exchange_summary(analysis),
        "verdicts": device_verdicts,
        "hosts": [{"host": h, "channels": c} for h, c in sorted(hosts.items())],
        "coverage": coverage(analysis),
        "files": files,
        "supporting_files": [
            {"path": s.display, "subkind": s.subkind, "sha256": s.sha256}
            for s in analysis.supporting
        ],
        "problems": [p.to_dict() for p in analysis.problems],
        **correlation_dict(analysis.correlation, lazy),
        **evaluation_dict(analysis.evaluation, lazy),
    }
