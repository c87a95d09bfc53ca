"""The report document as rich tables that fit 100 columns.

Renders the same JSON document as `--format json` (redacted first when asked), never the
Analysis objects: one document, several renderers.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from evtxdoc.report.clock import UTC, DisplayZone, duration
from evtxdoc.report.document import display_name
from evtxdoc.report.inline import render_inline
from evtxdoc.report.printable import markup as escape
from evtxdoc.vocab import SECOND

SEVERITY_STYLE = {"critical": "bold red", "error": "red", "warning": "yellow", "info": "dim"}
PROBLEM_STYLE = {"info": "dim", "warning": "yellow", "error": "bold red"}
OUTCOME_STYLE = {
    "succeeded": "green",
    "failed": "bold red",
    "timed_out": "bold red",
    "incomplete": "yellow",
    "not_hybrid": "cyan",
    "unknown": "dim",
    "no_attempt": "yellow",
}
MATCH_WORDS = {
    "computer_name": "by name",
    "entdmid": "by EntDMID",
    "entra_device_id": "by Entra device id",
    "time_window": "by time",
    "time_window_assumed": "by time, clocks assumed",
    "connector_device_id": "by the connector's DeviceId",
}
MAX_ROWS = 200
MAX_PROBLEMS_SHOWN = 40


def format_offset(offset: dict[str, Any] | None) -> str:
    """`+5h00m00s ±4s`, or `?` (unknown: no evidence, or too loose to apply)."""
    if offset is None or offset["uncertainty_s"] is None:
        return "?"
    text = duration(round(offset["offset_s"] * SECOND), signed=True)
    return f"{text} ±{duration(round(offset['uncertainty_s'] * SECOND))}"


def _when(iso: str, zone: DisplayZone) -> str:
    return zone.time(pd.Timestamp(iso).value, precise=False)


def _clock(iso: str, zone: DisplayZone) -> str:
    """`2025-09-26 08:05:00` in the zone the header names (a column says which)."""
    return _when(iso, zone).rsplit(" ", 1)[0]


def _fleet(doc: dict[str, Any], console: Console) -> None:
    """Many devices: what went wrong how often, each device once (report/fleet.py)."""
    fleet = doc.get("fleet")
    if not fleet:
        return
    table = Table(
        title=f"Fleet: {fleet['devices']} devices, {fleet['failing']} failing, "
        f"{fleet['healthy']} healthy"
    )
    for column in ("devices", "attempts", "root cause", "connectors", "first → last (UTC)"):
        table.add_column(column, justify="right" if column in ("devices", "attempts") else "left")
    for cause in fleet["causes"][:MAX_ROWS]:
        table.add_row(
            str(cause["devices"]),
            str(cause["attempts"]),
            f"{escape(cause['title'])}\n[dim]{escape(cause['rule'])} ({cause['severity']})[/]",
            escape(", ".join(short_host(c) for c in cause["connectors"]) or "—"),
            f"{(cause['first'] or '')[:16].replace('T', ' ')} →\n"
            f"{(cause['last'] or '')[:16].replace('T', ' ')}",
        )
    for group in fleet["not_judged"]:
        table.add_row(str(group["devices"]), "", f"[yellow]cannot be judged:[/] "
                      f"{escape(group['reason'])}", "", "")  # fmt: skip
    console.print(table)


def _exchange(doc: dict[str, Any], console: Console) -> None:
    """The Exchange connectors' syncs: each connector's verdict (report/exchange.py)."""
    entries = doc.get("exchange") or []
    if not entries:
        return
    table = Table(title="Exchange connector syncs")
    for column in ("connector", "status", "syncs (failed)", "verdict"):
        table.add_column(column)
    for entry in entries[:MAX_ROWS]:
        style = "green" if entry["status"] == "healthy" else "red"
        table.add_row(
            escape(entry["connector"]),
            f"[{style}]{entry['status'].replace('_', ' ')}[/]",
            f"{entry['syncs_total']} ({entry['failed']})",
            escape(entry["verdict"]),
        )
    console.print(table)


def short_host(host: str) -> str:
    return host.split(".")[0]


def render(doc: dict[str, Any], console: Console, zone: DisplayZone = UTC) -> None:
    """Verdicts, attempts and findings with their fixes, then hosts, files and problems."""
    summary = doc["summary"]
    machines, names = len(doc.get("machines") or ()), summary["hosts"]
    # one machine logs under its OOBE name and its joined name: count machines, as coverage does
    hosts = (
        f"{machines} machine(s) ({names} host names)"
        if machines and machines != names
        else f"{names} host(s)"
    )
    console.print(
        f"[bold]evtxdoc[/] {doc['tool']['version']}: {summary['events']} events "
        f"from {summary['evtx_files']} log file(s), {hosts}, "
        f"{summary['problems']} problem(s), {summary['seconds']} s; times in "
        f"{zone.describe()}",
        highlight=False,
    )
    _fleet(doc, console)
    _exchange(doc, console)
    _verdicts(doc, console)
    _attempts(doc, console)
    _findings(doc, console)
    _hosts(doc, console, zone)
    _files(doc, console)
    _problems(doc, console)


def _verdicts(doc: dict[str, Any], console: Console) -> None:
    if not doc["verdicts"]:
        return
    table = Table(title="Verdict per device")
    for column in ("device", "verdict", "most likely root cause"):
        table.add_column(column, overflow="fold")
    for verdict in doc["verdicts"][:MAX_ROWS]:
        style = OUTCOME_STYLE.get(verdict["status"], "")
        cause = verdict["root_cause"]
        table.add_row(
            escape(verdict["name"]),
            f"[{style}]{escape(verdict['verdict'])}[/]",
            escape(f"{cause['title']} ({cause['confidence']})") if cause else "",
        )
    console.print(table)
    _more(console, doc["verdicts"], "devices")


def _attempts(doc: dict[str, Any], console: Console) -> None:
    if doc["attempts"]:
        table = Table(title="Join attempts")
        for column in ("device", "outcome", "failed at", "connector", "clock offset"):
            table.add_column(column, overflow="fold")
        for attempt in doc["attempts"][:MAX_ROWS]:
            device = attempt["device"]
            name = display_name(device["oobe_names"], device["hosts"], device["computer_name"])
            style = OUTCOME_STYLE.get(attempt["outcome"], "")
            basis = MATCH_WORDS.get(attempt["match_basis"] or "", attempt["match_basis"])
            connector = (
                f"{attempt['connector']} ({basis})"
                if attempt["connector"]
                else attempt["connector_evidence"].replace("_", " ")
            )
            table.add_row(
                escape(name),
                f"[{style}]{attempt['outcome']}[/]",
                attempt["failed_step"] or "",
                escape(connector),
                format_offset(attempt["clock_offset"]),
            )
        console.print(table)
        _more(console, doc["attempts"], "attempts")
    for note in doc["correlation_notes"]:
        console.print(f"[yellow]note:[/] {escape(note)}")


def _findings(doc: dict[str, Any], console: Console) -> None:
    rules = doc["rules"]
    if rules is None:
        return
    found = doc["findings"]
    if not found:
        console.print(
            f"[green]No findings[/] from {rules['evaluated']} rules "
            f"({len(rules['not_evaluated'])} could not be evaluated: see "
            "--format json)."
        )
        return
    table = Table(title=f"Findings ({rules['evaluated']} rules)")
    for column in ("severity", "where", "finding", "confidence"):
        table.add_column(column, overflow="fold")
    for finding in found[:MAX_ROWS]:
        style = SEVERITY_STYLE[finding["severity"]]
        mark = " [bold](root cause)[/]" if finding["root_cause"] else ""
        table.add_row(
            f"[{style}]{finding['severity']}[/]",
            escape(finding["attempt"] or finding["host"] or "bundle"),
            f"{escape(finding['title'])}{mark}\n[dim]{finding['rule']}[/]",
            finding["confidence"],
        )
    console.print(table)
    _more(console, found, "findings")
    for finding in found[:MAX_ROWS]:
        if finding["severity"] not in ("critical", "error") and not finding["root_cause"]:
            continue
        console.print(
            f"\n[bold]{escape(finding['attempt'] or finding['host'] or 'bundle')}[/]: "
            f"{escape(finding['title'])} [dim]({finding['rule']}, "
            f"{finding['confidence']})[/]"
        )
        console.print(f"  {escape(finding['cause'])}", soft_wrap=False)
        if finding.get("unconfirmed"):
            console.print(
                f"  [yellow]Not confirmed: the bundle lacks "
                f"{escape('; '.join(finding['unconfirmed']))}[/]",
                soft_wrap=False,
            )
        for line in finding["fix"].splitlines():
            console.print(f"  {markdown_line(line)}")
        if finding["references"]:
            console.print(f"  [dim]sources: {escape(' '.join(finding['references'][:3]))}[/]")


def markdown_line(line: str) -> str:
    """One line of a rule's inline markup (report/inline.py) as rich markup, escaped first:
    the terminal shows the emphasis, not the asterisks."""
    return render_inline(
        escape(line),
        lambda text: f"[cyan]{text}[/cyan]",
        lambda text: f"[bold]{text}[/bold]",
        lambda text: f"[italic]{text}[/italic]",
    )


SHORT_PREFIXES = ("Microsoft-Windows-", "Microsoft-Intune-", "Microsoft-", "Supporting/")
SHORT_NAMES = {  # the channels' long middles, as support engineers say them
    "DeviceManagement-Enterprise-Diagnostics-Provider": "DM-EDP",
    "ModernDeployment-Diagnostics-Provider": "ModernDeployment",
}


def short_channel(channel: str) -> str:
    """`Microsoft-Windows-DeviceManagement-Enterprise-Diagnostics-Provider/Admin` →
    `DM-EDP/Admin`: a channel name a 100-column table can hold without breaking it mid-word
    (the HTML and JSON reports keep the full names)."""
    for prefix in SHORT_PREFIXES:
        if channel.startswith(prefix):
            channel = channel[len(prefix) :]
            break
    head, slash, tail = channel.partition("/")
    return SHORT_NAMES.get(head, head) + slash + tail


def _hosts(doc: dict[str, Any], console: Console, zone: DisplayZone) -> None:
    """One row per machine (a renamed device is one): its role, events, span and channels."""
    if not doc["hosts"]:
        console.print("[yellow]No events found in the inputs.[/]")
        return
    table = Table(title="Machines and their logs", expand=True)
    table.add_column("machine", overflow="fold", width=28)
    table.add_column("events", justify="right", width=6)
    table.add_column(f"from → to ({zone.name})", width=19)
    table.add_column("channels (events)", ratio=1, overflow="fold")
    coverage = doc["coverage"]
    for entry in coverage[:MAX_ROWS]:
        channels: dict[str, int] = {}
        for channel in entry["channels"]:
            name = short_channel(channel["channel"])
            channels[name] = channels.get(name, 0) + channel["records"]
        listed = ", ".join(f"{escape(name)} ({count})" for name, count in channels.items())
        missing = "".join(f"\n[yellow]no {escape(m['why'])}[/]" for m in entry["no_events_from"])
        zone_note = entry.get("time_zone")
        machine = escape(", ".join(entry["hosts"])) + f"\n[dim]{escape(entry['role_words'])}[/]"
        if zone_note:
            machine += f"\n[dim]time zone: {escape(zone_note['name'])}[/]"
        table.add_row(
            machine,
            str(entry["records"]),
            f"{_clock(entry['first'], zone)}\n{_clock(entry['last'], zone)}",
            listed + missing,
        )
    console.print(table)
    _more(console, coverage, "machines")


QUIET_STATUSES = {"read": "log file(s) read", "unpacked": "archive(s) unpacked",
                  "kept": "supporting file(s) kept",
                  "duplicate": "copies skipped (same content as another file)"}  # fmt: skip


def _files(doc: dict[str, Any], console: Console) -> None:
    """The files that need a look (skipped, read empty); the rest are counted —
    a bundle of hundreds of files listed one by one buried the verdicts (issue 19)."""
    worth = []
    counts = dict.fromkeys(QUIET_STATUSES, 0)
    for entry in doc["files"]:
        status = entry["status"]
        if status not in counts or (status == "read" and not entry.get("records")):
            worth.append(entry)
        else:
            counts[status] += 1
    said = ", ".join(f"{n} {QUIET_STATUSES[k]}" for k, n in counts.items() if n)
    if said:
        console.print(f"Files: {said} (each one is listed in the HTML and JSON reports)")
    if not worth:
        return
    table = Table(title="Files to look at")
    for column in ("file", "status", "events", "note"):
        table.add_column(column, overflow="fold")
    for entry in worth[:MAX_ROWS]:
        note = (
            entry.get("reason") or ", ".join(entry.get("backends", [])) or entry.get("subkind", "")
        )
        table.add_row(
            escape(entry["path"]),
            entry["status"],
            str(entry.get("records", "")),
            escape(note or ""),
        )
    console.print(table)
    _more(console, worth, "files")


def _problems(doc: dict[str, Any], console: Console) -> None:
    if not doc["problems"]:
        return
    table = Table(title="Problems")
    for column in ("severity", "source", "where", "what"):
        table.add_column(column, overflow="fold")
    for problem in doc["problems"][:MAX_PROBLEMS_SHOWN]:
        style = PROBLEM_STYLE.get(problem["severity"], "")
        table.add_row(
            f"[{style}]{problem['severity']}[/]",
            escape(problem["source"]),
            escape(problem["where"] or ""),
            escape(problem["message"]),
        )
    console.print(table)
    if len(doc["problems"]) > MAX_PROBLEMS_SHOWN:
        console.print(
            f"… {len(doc['problems']) - MAX_PROBLEMS_SHOWN} more problems: "
            "use --format json for all of them"
        )


def _more(console: Console, items: list[Any], what: str) -> None:
    if len(items) > MAX_ROWS:
        console.print(
            f"… {len(items) - MAX_ROWS} more {what}: use --format json or html for all of them"
        )
