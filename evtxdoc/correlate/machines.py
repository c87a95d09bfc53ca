"""Which `Computer` names are one machine, and what role each machine plays.

A device writes under its temporary OOBE name until the offline-join reboot and under its
new name after it (domain.md (d), caveat). Two kinds of evidence tie the names together:
- System 4098/4099 logged under one name with `ComputerName` + `DomainName` naming another;
- one log file holding both names: a file is written by one machine, unless it gathers many
  (ForwardedEvents, a collector's merged export), so files naming more than FILE_HOSTS_MAX
  hosts are not used as evidence.
Supporting files (AutopilotDDSZTDFile.json, registry dump, dsregcmd) are attached to the
machine whose event logs lie in the same folder or archive.
"""

from __future__ import annotations

import posixpath
from collections import defaultdict
from collections.abc import Iterable, Sequence

import pandas as pd

from evtxdoc.correlate.evidence import (
    CONNECTOR_LEGACY,
    CONNECTOR_UPDATED,
    DEVICE_CHANNELS,
    Record,
)
from evtxdoc.correlate.facts import DeviceFacts, read
from evtxdoc.models import Machine, SupportingFile

FILE_HOSTS_MAX = 4
FORWARDED = "forwardedevents"


class _Union:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, item: str) -> str:
        parent = self.parent.setdefault(item, item)
        while parent != self.parent[parent]:
            self.parent[parent] = self.parent[self.parent[parent]]
            parent = self.parent[parent]
        self.parent[item] = parent
        return parent

    def join(self, a: str, b: str) -> None:
        root_a, root_b = self.find(a), self.find(b)
        if root_a != root_b:
            self.parent[max(root_a, root_b)] = min(root_a, root_b)


def container(display: str) -> str:
    """The folder or archive a file lies in (`a.zip!/b.cab!/x.evtx` → `a.zip!/b.cab`)."""
    if "!/" in display:
        return display.rsplit("!/", 1)[0]
    return posixpath.dirname(display.replace("\\", "/"))


def group_hosts(frame: pd.DataFrame, joins: Iterable[Record]) -> tuple[dict[str, str],
                                                                       dict[str, set[str]]]:
    """host (lower case) → machine key, and machine key → source files."""
    union = _Union()
    hosts = frame[["host", "source_file", "channel"]].drop_duplicates()
    known: dict[str, str] = {}
    per_file: dict[str, set[str]] = defaultdict(set)
    for host, source, channel in hosts.itertuples(index=False, name=None):
        lower = str(host).lower()
        if not lower:
            continue
        known.setdefault(lower, str(host))
        union.find(lower)
        if str(channel).lower() != FORWARDED:
            per_file[str(source)].add(lower)
    for names in per_file.values():
        if 1 < len(names) <= FILE_HOSTS_MAX:
            first, *rest = sorted(names)
            for other in rest:
                union.join(first, other)
    short = defaultdict(list)  # first label → hosts, for NetBIOS-style `Computer` values
    for lower in known:
        short[lower.partition(".")[0]].append(lower)
    for record in joins:
        name = str(record.fields.get("ComputerName") or "").lower()
        domain = str(record.fields.get("DomainName") or "").lower()
        if not name:
            continue
        for candidate in (f"{name}.{domain}", *short.get(name, ())):
            if candidate in known and candidate != record.host.lower():
                union.join(record.host.lower(), candidate)
    machine_of = {lower: union.find(lower) for lower in known}
    sources: dict[str, set[str]] = defaultdict(set)
    for source, names in per_file.items():
        for lower in names:
            sources[machine_of[lower]].add(source)
    return machine_of, sources


def roles(frame: pd.DataFrame, machine_of: dict[str, str]) -> dict[str, str]:
    """machine key → device | connector | other, from the channels its hosts wrote."""
    pairs = frame[["host", "channel"]].drop_duplicates()
    found: dict[str, set[str]] = defaultdict(set)
    for host, channel in pairs.itertuples(index=False, name=None):
        lower = str(channel).lower()
        machine = machine_of.get(str(host).lower())
        if machine is None:
            continue
        if lower in CONNECTOR_UPDATED or lower in CONNECTOR_LEGACY:
            found[machine].add("connector")
        elif lower in DEVICE_CHANNELS:
            found[machine].add("device")
    out = {}
    for machine in set(machine_of.values()):
        kinds = found.get(machine, set())
        out[machine] = "connector" if "connector" in kinds else (
            "device" if "device" in kinds else "other")
    return out


def machines(machine_of: dict[str, str], role_of: dict[str, str], names: dict[str, str],
             sources: dict[str, set[str]]) -> list[Machine]:
    """The Machine records, hosts spelled as written."""
    members: dict[str, list[str]] = defaultdict(list)
    for lower, machine in machine_of.items():
        members[machine].append(names.get(lower, lower))
    return [Machine(key, role_of.get(key, "other"), tuple(sorted(hosts)),
                    tuple(sorted(sources.get(key, ()))))
            for key, hosts in sorted(members.items())]


def attach_facts(supporting: Sequence[SupportingFile],
                 sources: dict[str, set[str]]) -> dict[str, DeviceFacts]:
    """machine key → the facts of the supporting files beside its logs."""
    by_container: dict[str, set[str]] = defaultdict(set)
    for machine, files in sources.items():
        for source in files:
            by_container[container(source)].add(machine)
    out: dict[str, DeviceFacts] = {}
    for item in supporting:
        place = container(item.display)
        owners = by_container.get(place, set())
        if not owners:  # e.g. dsregcmd in the outer zip, logs in the nested cab
            owners = {m for c, ms in by_container.items()
                      if c.startswith((place + "!/", place + "/")) for m in ms}
        if len(owners) != 1:
            continue  # no machine, or several: the file cannot be attributed
        facts = read(item.subkind, item.content, item.display)
        machine = next(iter(owners))
        if machine in out:
            out[machine].merge(facts)
        else:
            out[machine] = facts
    return out
