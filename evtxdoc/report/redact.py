"""`--redact`: stable pseudonyms for the identifiers in a report, so it can leave the company.

One `Redactor` per analysis. Identifiers the analysis knows (host and computer names, domains,
serial numbers, device/tenant ids, SIDs) are seeded in a fixed order, so the same input always
gives the same pseudonyms; patterns then catch the rest wherever they appear in text: SIDs,
GUIDs, UPNs and e-mail addresses, DOMAIN\\user names, IPv4 and IPv6 addresses. One regular
expression does one pass, so a pseudonym is never redacted again.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from evtxdoc import supporting, timeline
from evtxdoc.models import Analysis

SID = r"S-1-5-21(?:-\d+){3,4}|S-1-12-1(?:-\d+){4}"
GUID = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
EMAIL = r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
IPV4 = (
    r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)"
    r"(?![\d.])"
)
IPV6 = r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])"
EDGE_BEFORE, EDGE_AFTER = r"(?<![A-Za-z0-9])", r"(?![A-Za-z0-9])"
TEST_NETS = ("192.0.2", "198.51.100", "203.0.113")  # RFC 5737 documentation ranges


def trie_pattern(words: Iterable[str]) -> str:
    """One regular expression matching any of `words` (longest first), built as a trie."""
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for char in word.lower():
            node = node.setdefault(char, {})
        node[""] = {}

    def build(node: dict[str, Any]) -> str:
        ends = "" in node
        branches = [re.escape(c) + build(child) for c, child in sorted(node.items()) if c]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if ends else body

    return build(trie)


PUBLIC_LABELS = {"onmicrosoft", "local", "corp", "internal", "windows", "microsoft"}

# Event fields that name an account, a domain or a machine (Security 4624/4625/4720/4799…,
# Sysmon's User and hostnames, the connector's DeviceName/MachineName): their values are seeded
# as pseudonyms, so they are replaced wherever else they appear too ("by field and by value").
USER_FIELDS = re.compile(
    r"(?:Subject|Target|OldTarget|NewTarget|Client|Member|Caller|Logon)?"
    r"(?:UserName|User|AccountName|SamAccountName|DisplayName|Principal|Upn)",
    re.IGNORECASE,
)
DOMAIN_FIELDS = re.compile(r"(?:Subject|Target|SubjectUser|Client)?DomainName|Domain", re.I)
HOST_FIELDS = re.compile(
    r"Workstation(?:Name)?|Computer(?:Name)?|MachineName|(?:Source|Destination|Client)?HostName"
    r"|DeviceName|ClientMachine|(?:Target)?ServerName",
    re.IGNORECASE,
)
# Values of those fields that name no one: built-in accounts, groups and domains, placeholders.
WELL_KNOWN = {
    "", "-", ".", "none", "n/a", "null", "localhost", "system", "local service",
    "network service", "nt authority", "anonymous logon", "builtin", "workgroup",
    "nt service", "window manager", "font driver host", "administrator", "guest",
    "defaultaccount", "wdagutilityaccount", "administrators", "users", "guests", "power users",
    "backup operators", "replicator", "remote desktop users", "network configuration operators",
    "performance monitor users", "performance log users", "distributed com users", "iis_iusrs",
    "cryptographic operators", "event log readers", "certificate service dcom access",
    "rds remote access servers", "rds endpoint servers", "rds management servers",
    "hyper-v administrators", "access control assistance operators", "remote management users",
    "device owners", "system managed accounts group", "storage replica administrators",
    "ie_user", "everyone", "authenticated users", "interactive",
}  # fmt: skip
MAX_NAME = 256  # longer field values are text, not names (and would deepen the trie past use)
_SERVICE_SESSIONS = re.compile(r"(?:dwm|umfd)-\d+|%%\d+", re.IGNORECASE)
PROFILE = r"(?<=\\users\\)(?!public\\|default\\|default user\\|all users\\)[^\\\s\"'<>]+"


class Redactor:
    """Replaces identifiers with pseudonyms; `text()` for strings, `data()` for JSON data."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}  # lower-case original → pseudonym, every kind
        self.counters: dict[str, int] = {}
        self._pattern: re.Pattern[str] | None = None
        self._done: dict[str, str] = {}  # text → redacted text (reports repeat values a lot)
        # Once redaction has begun, names found in text (an e-mail's domain) get pseudonyms
        # but do not rebuild the pattern: a rebuild per discovery cost minutes on real logs,
        # and what came before is written already. Seeding finds them first.
        self._redacting = False

    # --- seeding --------------------------------------------------------------------------
    def _next(self, kind: str) -> int:
        self.counters[kind] = self.counters.get(kind, 0) + 1
        return self.counters[kind]

    def name(self, original: str, pseudonym: str) -> None:
        self.names.setdefault(original.lower(), pseudonym)
        if not self._redacting:  # seeding: the pattern is built once, when redaction starts
            self._pattern = None
            self._done.clear()

    def host(self, original: str, base: str) -> None:
        """A computer name (short, or FQDN: its domain is seeded too)."""
        short, _, domain = original.partition(".")
        if short:
            self.name(short, base)
        if domain:
            self.domain(domain)

    def domain(self, original: str) -> str:
        original = original.strip(".").lower()
        if original not in self.names:
            number = self._next("domain")
            self.name(original, f"domain{number:02d}.test")
            labels = original.split(".")
            if labels[0] not in self.names:  # the NetBIOS-like first label: CONTOSO\user
                self.name(labels[0], f"domain{number:02d}")
            for index, label in enumerate(labels[1:-1], start=1):  # corp.CONTOSO.local
                if len(label) > 3 and label not in PUBLIC_LABELS and label not in self.names:
                    self.name(label, f"domain{number:02d}-{index}")
        return self.names[original]

    def seed(self, kind: str, original: str) -> str:
        """The pseudonym of `original` as a `kind` (guid, sid, user, ipv4, ipv6, serial)."""
        key = original.lower()
        if key not in self.names:
            number = self._next(kind)
            self.names[key] = {
                "guid": lambda n: f"00000000-0000-0000-0000-{n:012x}",
                "sid": lambda n: f"S-1-5-21-0-0-0-{1000 + n}",
                "user": lambda n: f"user{n:02d}",
                "ipv4": lambda n: (
                    f"{TEST_NETS[(n - 1) // 254]}.{(n - 1) % 254 + 1}"
                    if n <= 3 * 254
                    else f"ipv4-{n}"
                ),
                "ipv6": lambda n: f"2001:db8::{n:x}",
                "serial": lambda n: f"SERIAL{n:04d}",
            }[kind](number)
        return self.names[key]

    # --- redaction ------------------------------------------------------------------------
    def _compiled(self) -> re.Pattern[str]:
        if self._pattern is None:
            known = [k for k in self.names if len(k) >= 2]
            domain_labels = self._labels()
            labels = [k for k in known if "." not in k and k in domain_labels]
            parts = [f"(?P<sid>{SID})", f"(?P<guid>{GUID})", f"(?P<email>{EMAIL})"]
            if labels:
                parts.append(
                    rf"(?<![\w\\])(?P<netbios>{trie_pattern(labels)})"
                    r"\\(?P<account>[A-Za-z0-9._$-]+)"
                )
            parts += [f"(?P<ipv4>{IPV4})", f"(?P<ipv6>{IPV6})", f"(?P<profile>{PROFILE})"]
            if known:
                parts.append(f"{EDGE_BEFORE}(?P<known>{trie_pattern(known)}){EDGE_AFTER}")
            self._pattern = re.compile("|".join(parts), re.IGNORECASE)
        return self._pattern

    def _labels(self) -> set[str]:
        return {k for k, v in self.names.items() if v.startswith("domain") and "." not in v}

    def _replace(self, match: re.Match[str]) -> str:
        kind = match.lastgroup
        value = match.group(0)
        if kind == "account":  # DOMAIN\user: lastgroup is the inner one
            return (
                f"{self.names[match.group('netbios').lower()]}\\"
                f"{self.seed('user', match.group('account'))}"
            )
        if kind == "email":
            local, _, domain = value.partition("@")
            return f"{self.seed('user', local)}@{self.domain(domain)}"
        if kind == "guid":
            pseudonym = self.seed("guid", value)
            return pseudonym.upper() if value.isupper() else pseudonym
        if kind == "ipv6":
            try:
                ipaddress.IPv6Address(value)
            except ValueError:
                return value
            if "::" not in value and value.count(":") != 7:
                return value
        if kind in ("sid", "ipv4", "ipv6"):
            return self.seed(kind, value)
        if kind == "profile":  # C:\Users\<name>\…: the profile folder names its user
            return self.names.get(value.lower()) or self.seed("user", value)
        return self.names.get(value.lower(), value)

    def text(self, value: str) -> str:
        self._redacting = True
        done = self._done.get(value)
        if done is None:
            done = self._compiled().sub(self._replace, value)
            if len(value) < 512:
                self._done[value] = done
        return done

    def data(self, value: Any) -> Any:
        """The same JSON data with every string (keys too) redacted."""
        done, text = self._done, self.text  # a report's view data is ~1M values: keep it tight

        def walk(item: Any) -> Any:
            kind = type(item)
            if kind is str:
                found = done.get(item)
                return found if found is not None else text(item)
            if kind is dict:
                return {
                    (text(key) if type(key) is str or isinstance(key, str) else key): walk(child)
                    for key, child in item.items()
                }
            if kind is list or kind is tuple:
                return [walk(child) for child in item]
            if isinstance(item, str):
                return text(item)
            if isinstance(item, dict):
                return walk(dict(item))
            if isinstance(item, list | tuple):
                return [walk(child) for child in item]
            return item

        return walk(value)


def for_analysis(analysis: Analysis) -> Redactor:
    """A Redactor seeded with every identifier the analysis knows, in a fixed order."""
    redactor = Redactor()
    correlation = analysis.correlation
    roles = {"device": "device", "connector": "connector"}
    counters: dict[str, int] = {}
    machines = sorted(correlation.machines, key=lambda m: (m.role, m.key)) if correlation else []
    oobe = {
        n.lower()
        for a in (correlation.attempts if correlation else ())
        for n in a.device.oobe_names
    }
    for machine in machines:
        prefix = roles.get(machine.role, "host")
        counters[prefix] = counters.get(prefix, 0) + 1
        base = f"{prefix}-{counters[prefix]:02d}"
        shorts = sorted(
            {h.split(".")[0].lower() for h in machine.hosts}, key=lambda s: (s in oobe, s)
        )
        for index, short in enumerate(shorts):
            redactor.name(
                short,
                base if index == 0 else f"{base}-oobe" if short in oobe else f"{base}-{index + 1}",
            )
        for host in machine.hosts:
            redactor.host(host, base)
    whole = analysis.every_event
    hosts = sorted(map(str, whole["host"].cat.categories)) if len(whole) else []
    for host in hosts:
        if host.split(".")[0].lower() not in redactor.names:
            counters["host"] = counters.get("host", 0) + 1
            redactor.host(host, f"host-{counters['host']:02d}")
        elif "." in host:
            redactor.domain(host.partition(".")[2])
    frame = analysis.timeline  # the Entra tenant's domain (contoso.onmicrosoft.com), as the
    if len(frame):  # supporting-file events state it
        stated = frame.loc[(frame["provider"] == supporting.PROVIDER).to_numpy()]
        for fields in timeline.fields_of(stated):
            tenant = str(fields.get("TenantDomain") or "")
            if "." in tenant:
                redactor.domain(tenant)
    for attempt in correlation.attempts if correlation else ():
        device = attempt.device
        if device.domain:
            redactor.domain(device.domain)
        if device.serial:
            redactor.seed("serial", device.serial)
        for value in (device.tenant_id, device.ztdid, device.entdmid):
            if value and re.fullmatch(GUID, value.strip("{}")):
                redactor.seed("guid", value.strip("{}"))
        for request in attempt.requests:
            if request.domain:
                redactor.domain(request.domain)
            if request.device_name and request.device_name.lower() not in redactor.names:
                counters["device"] = counters.get("device", 0) + 1
                redactor.name(request.device_name, f"device-{counters['device']:02d}")
    runs = correlation.syncs if correlation else ()
    for state in correlation.exchange if correlation else ():  # the Exchange server it talks to
        for server in (state.organization, *(r.exchange_server for r in runs)):
            if server and server.split(".")[0].lower() not in redactor.names:
                counters["exchange"] = counters.get("exchange", 0) + 1
                redactor.name(server.split(".")[0], f"exchange-{counters['exchange']:02d}")
                if "." in server:
                    redactor.host(server, f"exchange-{counters['exchange']:02d}")
    _seed_from_fields(redactor, frame, counters)  # last: what correlation named keeps its name
    return redactor


def _named(value: str) -> bool:
    """Whether a field value names someone or something (not a built-in or a placeholder)."""
    text = value.strip()
    return (
        2 <= len(text) <= MAX_NAME
        and text.lower() not in WELL_KNOWN
        and not _SERVICE_SESSIONS.fullmatch(text)
        and not text.startswith("S-1-")
    )


# A whole value that is an account, `DOMAIN\\user` or a local `.\\user` (any field: Service Control
# Manager writes it as param2 of 7041).
ACCOUNT_VALUE = re.compile(r"(\.|[A-Za-z][\w-]{0,14})\\([\w.$-]{2,64})")


# Whether an event's stored payload could name someone, from its bytes alone: every field name
# the tests below read holds one of these words (lower case), written verbatim in the bytes
# (MachineName may come from DiagnosticText), and a value with a backslash leaves one.
_NAMING_WORDS = (
    b"\\", b"user", b"accountname", b"displayname", b"principal", b"upn", b"domain",
    b"workstation", b"computer", b"machinename", b"hostname", b"devicename", b"clientmachine",
    b"servername", b"diagnostictext",
)  # fmt: skip


def could_name_someone(payload: bytes) -> bool:
    """A quick test on a payload's bytes: False when `names_someone` of its fields is False."""
    if not payload.isascii():  # a Unicode key can match a pattern case-blind (`ſ` is `s`)
        return True
    text = payload.lower()
    return any(word in text for word in _NAMING_WORDS)


@lru_cache(maxsize=4096)
def _field_kind(name: str) -> str | None:
    """user | domain | host: which names a field of this name holds (None: none)."""
    if USER_FIELDS.fullmatch(name):
        return "user"
    if DOMAIN_FIELDS.fullmatch(name) or HOST_FIELDS.fullmatch(name):
        return "other"
    return None


def names_someone(fields: dict[str, Any]) -> bool:
    """Whether `_seed_from_fields` would learn a name from these fields (the same tests)."""
    for key, value in fields.items():
        if not isinstance(value, str) or not value:
            continue
        kind = _field_kind(key.rsplit(".", 1)[-1])
        if "\\" in value and (kind == "user" or ACCOUNT_VALUE.fullmatch(value)):
            return True
        if kind and _named(value):
            return True
    return False


def _seed_from_fields(redactor: Redactor, frame: Any, counters: dict[str, int]) -> None:
    """Seed the accounts, domains and machines the events' fields name (Security, Sysmon, …)."""
    if not len(frame):
        return
    for fields in timeline.fields_of(frame):
        for key, value in fields.items():
            if not isinstance(value, str) or not value:
                continue
            name = key.rsplit(".", 1)[-1]
            if "\\" in value and USER_FIELDS.fullmatch(name):  # Sysmon's User: DOMAIN\user
                domain, _, user = value.partition("\\")
                if _named(domain) and domain.lower() not in redactor.names:
                    redactor.name(domain, f"domain{redactor._next('domain'):02d}")
                if _named(user):
                    redactor.seed("user", user)
            elif account := ACCOUNT_VALUE.fullmatch(value):  # SCM 7041's `.\\WIEC_USER`
                if account.group(1) != "." and account.group(1).lower() not in redactor.names:
                    redactor.name(account.group(1), f"domain{redactor._next('domain'):02d}")
                if _named(account.group(2)):
                    redactor.seed("user", account.group(2))
            elif USER_FIELDS.fullmatch(name) and _named(value):
                if value.endswith("$"):  # a machine account: HOST$
                    _seed_host(redactor, value[:-1], counters)
                elif value.lower() not in redactor.names:
                    redactor.seed("user", value.strip())
            elif DOMAIN_FIELDS.fullmatch(name) and _named(value):
                if "." in value:
                    redactor.domain(value)
                elif value.lower() not in redactor.names:
                    redactor.name(value, f"domain{redactor._next('domain'):02d}")
            elif HOST_FIELDS.fullmatch(name) and _named(value):
                _seed_host(redactor, value, counters)


def _seed_host(redactor: Redactor, value: str, counters: dict[str, int]) -> None:
    short = value.strip().split(".")[0].lower()
    if short and short not in redactor.names:
        counters["host"] = counters.get("host", 0) + 1
        redactor.host(value.strip(), f"host-{counters['host']:02d}")
    elif "." in value:
        redactor.domain(value.strip().partition(".")[2])
