"""An Intune Exchange connector server's story: its service, its quick and full syncs in the
WCF trace (Connector*.svclog), its settings files, and the fault it meets.

What is documented (S45, S25, S26) and written as documented: the full sync's start and end
lines ("Handling command: Getting the mobile device list without a time filter (full sync) for
N users" … "completed successfully. Details: Inventory command result - Devices synced: N
Command ID: …' Exchange health: …"), one full sync a day and quick syncs several times a day,
exceptions under "Get next command", the trace settings (TracingConfiguration.xml: key
OnPremisesExchangeConnectorService, CircularTraceListener, 10,000,000-byte files, 30 of them,
"Information ActivityTracing" or "Verbose ActivityTracing"), the three settings of
OnPremisesExchangeConnectorServiceConfiguration.xml, SCM 7000/7041 when the service account may
not log on as a service (S26's texts), "(400) Bad Request" when the signed-in account is not an
Intune service administrator, and the cmdlets the account must be allowed to run.

Inferred (marked so in docs/scenarios.md): the quick sync's line shape (as the full sync's, with
"with a time filter (quick sync)"), the "failed" line, a sync's Start/Stop activity events, the
exception texts (the .NET and PowerShell messages of a WinRM connection failure, an unknown
cmdlet and an HTTP 400), the quick-sync interval (4 h), sync durations, and the settings files'
root elements.
"""

from __future__ import annotations

import random
import uuid

from evtxdoc.synth.hostlog import HostClock, HostLog, HostWriter
from evtxdoc.synth.spec import ExchangeConnector, Scenario
from evtxdoc.synth.svclog_writer import TraceLine, render, rolling_files
from evtxdoc.vocab import SECOND

SOURCE = "OnPremisesExchangeConnectorService"  # the TraceSource key of TracingConfiguration.xml
PROCESS = "Microsoft.Management.Services.OnPremisesExchangeConnectorService"
SERVICE = "Microsoft Intune Exchange Connector Service"  # S26's 7000 text
QUICK_EVERY_S = 4 * 3600
FILE_QUOTA_BYTES, FILE_QUOTA = 10_000_000, 30  # TracingConfiguration.xml (S45)
CONFIG_NAME = "OnPremisesExchangeConnectorServiceConfiguration.xml"
TRACING_NAME = "TracingConfiguration.xml"
CMDLETS = ("Get-ActiveSyncDevice", "Get-CasMailbox", "Get-ActiveSyncDeviceStatistics")
WINRM_TEXT = (
    "Connecting to remote server {cas} failed with the following error message : WinRM cannot "
    "complete the operation. Verify that the specified computer name is valid, that the "
    "computer is accessible over the network, and that a firewall exception for the WinRM "
    "service is enabled and allows access from this computer."
)


def exchange_log(scenario: Scenario, spec: ExchangeConnector, rng: random.Random) -> HostLog:
    """The server's System log, its traces (as files) and its settings files."""
    log = HostLog(spec.name, "exchange", "export")
    writer = HostWriter(log, HostClock(0.0), rng)
    start = scenario.start_ns
    end = start + int(spec.days * 86400 * SECOND)
    fault_at = start + int(spec.fault_at * SECOND)
    writer.emit("scm_state_change", start, spec.name, {"param1": SERVICE, "param2": "running"})
    for hour in range(0, int(spec.days * 24), 3):  # the server's ordinary service changes
        writer.emit(
            "scm_state_change",
            start + (hour * 3600 + rng.randrange(60, 3000)) * SECOND,
            spec.name,
            {
                "param1": rng.choice(["Windows Update", "Windows Modules Installer"]),
                "param2": rng.choice(["running", "stopped"]),
            },
        )
    lines: list[TraceLine] = []
    if spec.fault == "logon_denied":
        end = fault_at
        _logon_denied(writer, spec, fault_at)
    if spec.fault == "bad_request":
        _bad_request(lines, start, end, rng)
    else:
        _syncs(lines, spec, start, end, fault_at, rng)
    pid = rng.randrange(1200, 9000)
    tid = rng.randrange(8, 40)
    rendered = [render(line, SOURCE, _short(spec.name), PROCESS, pid, tid) for line in lines]
    for name, content in rolling_files(rendered, FILE_QUOTA_BYTES, FILE_QUOTA).items():
        log.supporting[f"Logs/{name}"] = content
    log.supporting[CONFIG_NAME] = config_xml(spec).encode("utf-8")
    log.supporting[TRACING_NAME] = tracing_xml(spec.verbose).encode("utf-8")
    return log


def _short(name: str) -> str:
    """Environment.MachineName: the NetBIOS name, upper case."""
    return name.split(".", 1)[0].upper()


def _logon_denied(writer: HostWriter, spec: ExchangeConnector, when: int) -> None:
    """The service account loses "Log on as a service": each start attempt fails (S26)."""
    writer.emit("scm_state_change", when, spec.name, {"param1": SERVICE, "param2": "stopped"})
    for retry in range(3):
        at = when + (30 + retry * 3600) * SECOND
        writer.emit(
            "scm_logon_failed",
            at,
            spec.name,
            {
                "param1": "WIEC",
                "param2": ".\\WIEC_USER",
                "param3": "Logon failure: the user has not been granted the requested logon "
                "type at this computer.",
                "param4": "WIEC",
            },
        )
        writer.emit("scm_service_failed", at + SECOND, spec.name,
                    {"param1": SERVICE, "param2": "%%1069"})  # fmt: skip


def _bad_request(lines: list[TraceLine], start: int, end: int, rng: random.Random) -> None:
    """Signed in with an account that is not an Intune service administrator: the connection
    to Intune fails with (400) Bad Request at every retry, and no sync runs (S25)."""
    at = start + 60 * SECOND
    while at < end:
        lines.append(
            TraceLine(
                at,
                "Error",
                "Connecting to the Microsoft Intune service failed: System.Net.WebException: "
                "The remote server returned an error: (400) Bad Request.\r\n"
                "   at System.Net.HttpWebRequest.GetResponse()",
            )
        )
        at += (3600 + rng.randrange(0, 120)) * SECOND


def _syncs(
    lines: list[TraceLine],
    spec: ExchangeConnector,
    start: int,
    end: int,
    fault_at: int,
    rng: random.Random,
) -> None:
    """A full sync at start and then daily, quick syncs every 4 h in between."""
    at = start + 300 * SECOND
    next_full = at
    while at < end:
        full = at >= next_full
        if full:
            next_full = at + 86400 * SECOND
        failing = spec.fault == "missing_cmdlets" or (
            spec.fault == "cas_unreachable" and at >= fault_at
        )
        done = _sync(lines, spec, at, full, failing, rng)
        at = max(done, at + (QUICK_EVERY_S + rng.randrange(0, 120)) * SECOND)


def _sync(
    lines: list[TraceLine],
    spec: ExchangeConnector,
    at: int,
    full: bool,
    failing: bool,
    rng: random.Random,
) -> int:
    """One sync command's events; returns when it ended."""
    activity = str(uuid.UUID(int=rng.getrandbits(128)))
    kind = "without a time filter (full sync)" if full else "with a time filter (quick sync)"
    what = f"Getting the mobile device list {kind} for {spec.users} users"
    lines.append(TraceLine(at, "Start", "Get next command", activity))
    lines.append(TraceLine(at + SECOND, "Information", f"Handling command: {what}", activity))
    now = at + 2 * SECOND
    if spec.verbose:
        for cmdlet in CMDLETS:
            now += rng.randrange(1, 4) * SECOND
            lines.append(TraceLine(now, "Verbose", f"Invoking Exchange cmdlet {cmdlet}", activity))
    server = spec.cas.split(".", 1)[0]
    if failing:
        now += rng.randrange(20, 40) * SECOND
        if spec.fault == "cas_unreachable":
            error = "System.Management.Automation.Remoting.PSRemotingTransportException: " + (
                WINRM_TEXT.format(cas=spec.cas)
            )
        else:
            error = (
                "System.Management.Automation.CommandNotFoundException: The term "
                "'Get-ActiveSyncDeviceStatistics' is not recognized as the name of a cmdlet, "
                "function, script file, or operable program. Check the spelling of the name, "
                "or if a path was included, verify that the path is correct and try again."
            )
        lines.append(
            TraceLine(
                now,
                "Error",
                f"Get next command failed with exception: {error}\r\n"
                "   at System.Management.Automation.Runspaces.AsyncResult.EndInvoke()",
                activity,
            )
        )
        lines.append(
            TraceLine(
                now + SECOND,
                "Warning",
                f"{what} failed. Exchange health: 'Server health 'Name: "
                f"'PowerShellExchangeServer: <Name={server}>' Status: Disconnected','",
                activity,
            )
        )
        now += 2 * SECOND
    else:
        per_device = 1.2 if not spec.parallel else 0.3  # seconds per device (inferred)
        devices = spec.devices if full else rng.randrange(0, max(1, spec.devices // 20))
        now += int((devices * per_device if full else rng.randrange(10, 60)) * SECOND)
        lines.append(
            TraceLine(
                now,
                "Information",
                f"{what} completed successfully. Details: Inventory command result - Devices "
                f"synced: {devices} Command ID: {uuid.UUID(int=rng.getrandbits(128))}' Exchange "
                f"health: 'Server health 'Name: 'PowerShellExchangeServer: <Name={server}>' "
                "Status: Connected','",
                activity,
            )
        )
    lines.append(TraceLine(now + SECOND, "Stop", "Get next command", activity))
    return now + SECOND


def config_xml(spec: ExchangeConnector) -> str:
    """OnPremisesExchangeConnectorServiceConfiguration.xml with the three keys S25/S26 name."""
    flag = {True: "true", False: "false"}
    return (
        '<?xml version="1.0" encoding="utf-8"?>\r\n'
        "<OnPremisesExchangeConnectorServiceConfiguration "
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xmlns:xsd="http://www.w3.org/2001/XMLSchema">\r\n'
        f"  <ExchangeWebServiceURL>https://{spec.cas}/EWS/Exchange.asmx</ExchangeWebServiceURL>\r\n"
        f"  <IsCasFailoverEnabled>{flag[spec.failover]}</IsCasFailoverEnabled>\r\n"
        f"  <EnableParallelCommandSupport>{flag[spec.parallel]}</EnableParallelCommandSupport>\r\n"
        "</OnPremisesExchangeConnectorServiceConfiguration>\r\n"
    )


def tracing_xml(verbose: bool) -> str:
    """TracingConfiguration.xml's TraceSourceLine as S45 shows it."""
    level = "Verbose ActivityTracing" if verbose else "Information ActivityTracing"
    return (
        '<?xml version="1.0" encoding="utf-8"?>\r\n'
        '<TracingConfiguration xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xmlns:xsd="http://www.w3.org/2001/XMLSchema">\r\n'
        "  <TraceSourceLines>\r\n"
        "    <TraceSourceLine>\r\n"
        f'      <Key xsi:type="xsd:string">{SOURCE}</Key>\r\n'
        '      <Value xsi:type="TraceSource">\r\n'
        "        <SourceLevel>All</SourceLevel>\r\n"
        "        <Listeners>\r\n"
        "          <Listener>\r\n"
        "            <ListenerType>CircularTraceListener</ListenerType>\r\n"
        f"            <SourceLevel>{level}</SourceLevel>\r\n"
        f"            <FileSizeQuotaInBytes>{FILE_QUOTA_BYTES}</FileSizeQuotaInBytes>\r\n"
        "            <FileName>Microsoft\\Windows Intune Exchange Connector\\Logs\\"
        "Connector.svclog</FileName>\r\n"
        f"            <FileQuota>{FILE_QUOTA}</FileQuota>\r\n"
        "          </Listener>\r\n"
        "        </Listeners>\r\n"
        "      </Value>\r\n"
        "    </TraceSourceLine>\r\n"
        "  </TraceSourceLines>\r\n"
        "</TracingConfiguration>\r\n"
    )
