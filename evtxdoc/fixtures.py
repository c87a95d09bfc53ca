"""Rule fixtures (`evtxdoc rules test`): `<id>.test.yaml` beside each rule, compact events.

A case's events become a real timeline (the same columns ingest builds), go through the real
correlation (so attempts, matching and clock offsets are what analysis would produce) and
then through the engine with the one rule under test. Compact event keys:

    t         seconds after the case start, or a duration such as 90s, 30m, 2h
    host      the event's Computer
    channel   a full channel name or an alias (CHANNELS: dmedp, autopilot, udr, system, …)
    id        the event id;  provider: optional (a default per channel / System event id)
    level     1 critical, 2 error, 3 warning, 4 information (default 4)
    data      EventData: a mapping (named Data) or a list (anonymous Data0, Data1, …)
    body      connector message body as a mapping: `Key: Value` lines on the updated
              connector (EventType first), the JSON metric of event 30132 on the legacy one
    user_sid, file (which .evtx the event was read from; default one per role)

Supporting files beside the device logs: `ztd:` (AutopilotDDSZTDFile.json values) and
`dsregcmd:` (text). Damage the ingest would have found: `damaged:` a list of `{host, channel,
kind, after, before}` (times as `t`; `before` omitted: to the end of the log).
`expect: match | no_match`; `cause_contains:` checks the rendered cause.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from evtxdoc import pipeline, timeline, yamlpos
from evtxdoc.models import (
    ChannelCoverage,
    DamageSpan,
    Evaluation,
    Finding,
    Problem,
    SupportingFile,
)
from evtxdoc.parse.batch import ColumnBatch
from evtxdoc.parse.payload import encode_payload
from evtxdoc.parse.times import parse_time_ns
from evtxdoc.parse.trace_text import read_text
from evtxdoc.rules.loader import fixture_path, read_yaml, rule_problem
from evtxdoc.rules.model import Rule, seconds
from evtxdoc.rules.schema import did_you_mean
from evtxdoc.vocab import SECOND

DEFAULT_START = "2025-09-01T08:00:00Z"
CHANNELS = {  # alias → (channel, default provider)
    "trace": ("WCF trace", "OnPremisesExchangeConnectorService"),  # Connector*.svclog
    "syncs": ("Summary/Exchange connector syncs", "evtxdoc"),  # correlate/exchange.py
    "dmedp": (
        "Microsoft-Windows-DeviceManagement-Enterprise-Diagnostics-Provider/Admin",
        "Microsoft-Windows-DeviceManagement-Enterprise-Diagnostics-Provider",
    ),
    "autopilot": (
        "Microsoft-Windows-ModernDeployment-Diagnostics-Provider/Autopilot",
        "Microsoft-Windows-ModernDeployment-Diagnostics-Provider",
    ),
    "managementservice": (
        "Microsoft-Windows-ModernDeployment-Diagnostics-Provider/ManagementService",
        "Microsoft-Windows-ModernDeployment-Diagnostics-Provider",
    ),
    "udr": (
        "Microsoft-Windows-User Device Registration/Admin",
        "Microsoft-Windows-User Device Registration",
    ),
    "aad": ("Microsoft-Windows-AAD/Operational", "Microsoft-Windows-AAD"),
    "shell": ("Microsoft-Windows-Shell-Core/Operational", "Microsoft-Windows-Shell-Core"),
    "provisioning": (
        "Microsoft-Windows-Provisioning-Diagnostics-Provider/Admin",
        "Microsoft-Windows-Provisioning-Diagnostics-Provider",
    ),
    "time": ("Microsoft-Windows-Time-Service/Operational", "Microsoft-Windows-Time-Service"),
    "system": ("System", ""),
    "application": ("Application", ""),
    "odj": (
        "Microsoft-Intune-ODJConnectorService/Operational",
        "Microsoft-Intune-ODJConnectorService",
    ),
    "odj-admin": (
        "Microsoft-Intune-ODJConnectorService/Admin",
        "Microsoft-Intune-ODJConnectorService",
    ),
    "odj-legacy": ("ODJ Connector Service", "ODJ Connector Service Source"),
}
SYSTEM_PROVIDERS = {  # System event id → provider (reference/domain.md a.8, a.11)
    **dict.fromkeys((4098, 4099), "Microsoft-Windows-CoreSystem-NetProvision-JoinProviderOnline"),
    **dict.fromkeys((4096, 4097, 4100, 4101), "NetJoin"),
    5719: "NETLOGON",
    **dict.fromkeys((1129, 1058, 1030), "Microsoft-Windows-GroupPolicy"),
    **dict.fromkeys((11, 12, 13, 14, 15, 16, 17, 29, 36, 47, 48), "Microsoft-Windows-Time-Service"),
    **dict.fromkeys((7000, 7041, 7036, 7031, 7034), "Service Control Manager"),
    1: "Microsoft-Windows-Kernel-General",
}
EVENT_KEYS = ("t", "host", "channel", "id", "provider", "level", "data", "body", "user_sid", "file")
CASE_KEYS = ("name", "expect", "events", "ztd", "dsregcmd", "cause_contains", "start", "damaged")
CONNECTOR_ALIASES = ("odj", "odj-admin", "odj-legacy")


@dataclass(frozen=True)
class CaseResult:
    rule: str
    file: str
    line: int
    name: str
    passed: bool
    why: str = ""

    def __str__(self) -> str:
        mark = "ok  " if self.passed else "FAIL"
        why = f"\n      {self.why}" if self.why and not self.passed else ""
        return f"{mark} {self.rule} · {self.name} ({self.file}:{self.line}){why}"


def run_rule_tests(rule: Rule) -> tuple[list[CaseResult], list[Problem]]:
    """Every case of the rule's fixture file; problems for a missing or malformed file."""
    path = fixture_path(rule)
    if not path.exists():
        return [], [
            rule_problem(
                rule.path,
                1,
                f"no test file {path.name}",
                "add positive and negative cases (evtxdoc rules new writes a template)",
            )
        ]
    data, lines, problems = read_yaml(path)
    if problems:
        return [], problems
    cases = data.get("cases") if isinstance(data, dict) else None
    if not isinstance(cases, list) or not cases:
        return [], [rule_problem(str(path), 1, "a test file holds `cases:`, a list of cases")]
    found: list[Problem] = []
    results = []
    for index, case in enumerate(cases):
        place = ("cases", index)
        line = lines.at(place)
        errors = _check_case(case, place, lines, str(path))
        if errors:
            found += errors
            continue
        results.append(_run_case(rule, case, str(path), line))
    expects = {str(c.get("expect")) for c in cases if isinstance(c, dict)}
    for wanted in ("match", "no_match"):
        if wanted not in expects:
            found.append(
                rule_problem(
                    str(path),
                    1,
                    f"no case with expect: {wanted}",
                    "every rule needs a positive and a negative case",
                )
            )
    return results, found


CLASSIC_CHANNELS = ("System", "Application", "Security", "Setup", "ODJ Connector Service")


def _known_channel(channel: str) -> bool:
    """An alias of CHANNELS, a classic log's name, or a full `Provider/Channel` name."""
    return channel.lower() in CHANNELS or channel in CLASSIC_CHANNELS or "/" in channel


def _check_case(
    case: Any, place: tuple[str | int, ...], lines: yamlpos.Lines, file: str
) -> list[Problem]:
    out: list[Problem] = []

    def add(path: tuple[str | int, ...], message: str, hint: str | None = None) -> None:
        out.append(rule_problem(file, lines.at(path), message, hint))

    if not isinstance(case, dict):
        add(place, "a case is a mapping with name, expect and events")
        return out
    for key in case:
        if key not in CASE_KEYS:
            add(
                (*place, key),
                f"unknown key {key!r} in a case",
                did_you_mean(key, CASE_KEYS) or f"keys: {', '.join(CASE_KEYS)}",
            )
    if case.get("expect") not in ("match", "no_match"):
        add((*place, "expect"), "expect is `match` or `no_match`")
    if case.get("name") in (None, ""):
        add(place, "a case needs a name")
    events = case.get("events")
    if not isinstance(events, list) or not (events or case.get("ztd") or case.get("dsregcmd")):
        add(
            place,
            "a case needs events: a list of compact events (empty only beside a `ztd` "
            "or `dsregcmd` supporting file)",
        )
        return out
    for index, event in enumerate(events):
        where = (*place, "events", index)
        if not isinstance(event, dict):
            add(where, "an event is a mapping such as {t: 0, host: PC1, channel: dmedp, id: 111}")
            continue
        for key in event:
            if key not in EVENT_KEYS:
                add(
                    (*where, key),
                    f"unknown event key {key!r}",
                    did_you_mean(key, EVENT_KEYS) or f"keys: {', '.join(EVENT_KEYS)}",
                )
        for key in ("host", "channel", "id"):
            if key not in event:
                add(where, f"the event needs {key!r}")
        channel = str(event.get("channel", ""))
        if channel and not _known_channel(channel):
            add(
                (*where, "channel"),
                f"unknown channel {channel!r}: not an alias, nor a full channel name",
                did_you_mean(channel.lower(), CHANNELS)
                or f"aliases: {', '.join(CHANNELS)}; or a full name such as "
                "Microsoft-Windows-AAD/Operational",
            )
        try:
            seconds(event.get("t", 0))
        except ValueError as exc:
            add((*where, "t"), str(exc))
    return out


def build_case(case: dict[str, Any], name: str = "case") -> tuple[Any, list[SupportingFile]]:
    """A case's events → (timeline frame, supporting files), as ingest would produce them."""
    start = parse_time_ns(str(case.get("start") or DEFAULT_START)) or 0
    batches: dict[str, ColumnBatch] = {}
    records: dict[tuple[str, str], int] = {}
    for event in case["events"]:
        alias = str(event["channel"])
        channel, provider = CHANNELS.get(alias.lower(), (alias, ""))
        event_id = int(event["id"])
        if channel == "System" and not provider:
            provider = SYSTEM_PROVIDERS.get(event_id, "")
        provider = str(event.get("provider") or provider)
        host = str(event["host"])
        is_connector = alias in CONNECTOR_ALIASES or channel.startswith(
            ("Microsoft-Intune-ODJConnectorService", "ODJ Connector Service")
        )
        source = str(
            event.get("file")
            or (f"{name}/connector/{host}.evtx" if is_connector else f"{name}/device/logs.evtx")
        )
        key = (host, channel)
        records[key] = records.get(key, 0) + 1
        batch = batches.setdefault(source, ColumnBatch(source))
        payload = {"EventData": _event_data(event, channel)}
        ts = start + int(seconds(event.get("t", 0)) * SECOND)
        batch.append_row(
            (
                ts,
                event_id,
                0,
                int(event.get("level", 4)),
                0,
                0,
                records[key],
                host,
                channel,
                provider,
                None,
                event.get("user_sid"),
                None,
                encode_payload(payload),
                True,
                records[key],
            )
        )
    frame, _ = timeline.finish(timeline.build_frame(list(batches.values())))
    supporting = []
    if case.get("ztd"):
        supporting.append(
            SupportingFile(
                f"{name}/device/AutopilotDDSZTDFile.json",
                "autopilot_ztd_json",
                "",
                json.dumps(case["ztd"]).encode(),
            )
        )
    if case.get("dsregcmd"):
        supporting.append(
            SupportingFile(
                f"{name}/device/dsregcmd_status.txt",
                "dsregcmd_status",
                "",
                str(case["dsregcmd"]).encode(),
            )
        )
    return frame, supporting


def _event_data(event: dict[str, Any], channel: str) -> dict[str, Any]:
    data = event.get("data")
    body = event.get("body")
    if body is not None:
        if channel == "ODJ Connector Service":  # legacy 30132: JSON metric (domain.md a.1, S7)
            dimensions = {k: v for k, v in body.items() if k not in ("Name", "Value")}
            text = json.dumps(
                {
                    "Metric": {
                        "Dimensions": dimensions,
                        "Name": body.get("Name", "RequestOfflineDomainJoinBlob_Failure"),
                        "Value": body.get("Value", 0),
                    }
                }
            )
            return {"Data": text}
        lines = [f"{body.get('EventType', 'OfflineDomainJoinRequest')}: offline domain join"]
        lines += [f"{k}: {v}" for k, v in body.items() if k != "EventType"]
        return {"Message": "\r\n".join(lines)}  # updated connector (domain.md a.1, S30)
    if isinstance(data, list):
        return {"Data": [str(v) for v in data]}
    fields = dict(data or {})
    if channel == "WCF trace" and isinstance(fields.get("ApplicationData"), str):
        return {**read_text(fields["ApplicationData"]), **fields}  # as the trace reader does
    return fields


def evaluate_case(rules: Sequence[Rule], case: dict[str, Any], name: str = "case") -> Evaluation:
    frame, files = build_case(case, name)
    coverage = _damaged(timeline.coverage(frame), case)
    evaluation = pipeline.explain(frame, files, coverage, rules)[4]
    assert evaluation is not None
    return evaluation


def _damaged(coverage: list[ChannelCoverage], case: dict[str, Any]) -> list[ChannelCoverage]:
    """The case's `damaged:` spans put on the coverage of their host and channel."""
    if not case.get("damaged"):
        return coverage
    start = parse_time_ns(str(case.get("start", DEFAULT_START)))
    if start is None:
        raise ValueError(f"start {case.get('start')!r} is not a time")
    out = []
    for item in coverage:
        spans = tuple(
            DamageSpan(
                str(d.get("kind", "torn_record")),
                start + int(seconds(d["after"]) * SECOND) if d.get("after") is not None else None,
                start + int(seconds(d["before"]) * SECOND) if d.get("before") is not None else None,
            )
            for d in case["damaged"]
            if str(d.get("host", "")).lower() == item.host.lower()
            and CHANNELS.get(d.get("channel"), (d.get("channel"),))[0] == item.channel
        )
        out.append(replace(item, damaged=spans) if spans else item)
    return out


def _run_case(rule: Rule, case: dict[str, Any], file: str, line: int) -> CaseResult:
    name = str(case["name"])
    try:
        evaluation = evaluate_case([rule], case)
    except Exception as exc:  # a broken case must not stop the others
        return CaseResult(rule.id, file, line, name, False, f"the case could not run: {exc!r}")
    mine = [f for f in evaluation.findings if f.rule == rule.id]
    wanted = case["expect"] == "match"
    if wanted and not mine:
        gaps = "; ".join(g.reason for g in evaluation.gaps)
        return CaseResult(
            rule.id,
            file,
            line,
            name,
            False,
            "expected a finding, got none" + (f" (not evaluated: {gaps})" if gaps else ""),
        )
    if not wanted and mine:
        return CaseResult(
            rule.id, file, line, name, False, f"expected no finding, got: {_short(mine[0])}"
        )
    text = case.get("cause_contains")
    if wanted and text and not any(str(text).lower() in f.cause.lower() for f in mine):
        return CaseResult(
            rule.id,
            file,
            line,
            name,
            False,
            f"the cause does not contain {text!r}: {mine[0].cause!r}",
        )
    return CaseResult(rule.id, file, line, name, True)


def _short(finding: Finding) -> str:
    where = finding.attempt or finding.host or "bundle"
    return f"{where}: {finding.cause[:160]}"
