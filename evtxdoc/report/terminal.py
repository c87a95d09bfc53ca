"""The inventory as rich tables (fits 100 columns)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from evtxdoc.models import Analysis
from evtxdoc.report import attempts, findings
from evtxdoc.report.inventory import inventory

SEVERITY_STYLE = {"info": "dim", "warning": "yellow", "error": "bold red"}
MAX_PROBLEMS_SHOWN = 40


def render(analysis: Analysis, console: Console) -> None:
    """Print join attempts and findings, then hosts and channels, files and problems."""
    data = inventory(analysis)
    summary = data["summary"]
    console.print(f"[bold]evtxdoc[/] {data['tool']['version']}: {summary['events']} events "
                  f"from {summary['evtx_files']} log file(s), {summary['hosts']} host(s), "
                  f"{summary['problems']} problem(s), {summary['seconds']} s")
    attempts.render(analysis.correlation, console)
    findings.render(analysis.evaluation, console)
    hosts = Table(title="Hosts and channels")
    for column in ("host", "channel", "events", "first (UTC)", "last (UTC)"):
        hosts.add_column(column, overflow="fold", justify="right" if column == "events" else "left")
    for host in data["hosts"]:
        for channel in host["channels"]:
            hosts.add_row(host["host"], channel["channel"], str(channel["records"]),
                          channel["first"][:19], channel["last"][:19])
    console.print(hosts if data["hosts"] else "[yellow]No events found in the inputs.[/]")
    files = Table(title="Files")
    for column in ("file", "status", "events", "note"):
        files.add_column(column, overflow="fold")
    for entry in data["files"]:
        note = (entry.get("reason") or ", ".join(entry.get("backends", []))
                or entry.get("subkind", ""))
        files.add_row(entry["path"], entry["status"], str(entry.get("records", "")), note or "")
    console.print(files)
    if data["problems"]:
        problems = Table(title="Problems")
        for column in ("severity", "source", "where", "what"):
            problems.add_column(column, overflow="fold")
        for problem in data["problems"][:MAX_PROBLEMS_SHOWN]:
            style = SEVERITY_STYLE.get(problem["severity"], "")
            problems.add_row(f"[{style}]{problem['severity']}[/]", problem["source"],
                             problem["where"] or "", problem["message"])
        console.print(problems)
        if len(data["problems"]) > MAX_PROBLEMS_SHOWN:
            console.print(f"… {len(data['problems']) - MAX_PROBLEMS_SHOWN} more problems: "
                          "use --format json for all of them")
