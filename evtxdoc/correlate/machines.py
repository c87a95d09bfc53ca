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

import numpy as np
import pandas as pd

from evtxdoc.correlate.evidence import (
    CONNECTOR_LEGACY,
    CONNECTOR_UPDATED,
    DEVICE_CHANNELS,
    Record,
    category_codes,
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


def folder_of(display: str) -> str:
    """The folder a file was collected in: its own, or the one holding the (outermost) archive
    it lies in (`EXCH01/Logs.zip!/Logs/Connector0.svclog` → `EXCH01`)."""
    place = container(display).split("!/", 1)[0]
    return posixpath.dirname(place) if "!/" in display else place


def display_name(hosts: Sequence[str], fallback: str = "") -> str:
    """A machine's name for people: its longest host name, a full (dotted) one first."""
    return max(hosts or (fallback,), key=lambda h: ("." in h, len(h), h))


def _pairs(a: np.ndarray, b: np.ndarray, size_b: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (a, b) code pairs, vectorized."""
    if not len(a):
        return a, b
    keys = np.unique(a * (size_b + 1) + b)
    return keys // (size_b + 1), keys % (size_b + 1)


def group_hosts(
    frame: pd.DataFrame, joins: Iterable[Record]
) -> tuple[dict[str, str], dict[str, set[str]]]:
    """host (lower case) → machine key, and machine key → source files."""
    union = _Union()
    host_codes, host_names = category_codes(frame["host"])
    file_codes, file_names = category_codes(frame["source_file"])
    channel_codes, channel_names = category_codes(frame["channel"])
    forwarded = [i for i, c in enumerate(channel_names) if c.lower() == FORWARDED]
    keep = ~np.isin(channel_codes, forwarded) & (host_codes >= 0) & (file_codes >= 0)
    files, hosts = _pairs(file_codes[keep], host_codes[keep], len(host_names))
    lowered = [h.lower() for h in host_names]
    known = {
        lowered[i]: host_names[i]
        for i in np.unique(host_codes[host_codes >= 0]).tolist()
        if lowered[i]
    }
    for lower in known:
        union.find(lower)
    counts = np.bincount(files, minlength=len(file_names)) if len(files) else np.zeros(0, int)
    small = (counts > 1) & (counts <= FILE_HOSTS_MAX)
    if small.any():
        shared: dict[int, list[str]] = defaultdict(list)
        for file, host in zip(
            files[small[files]].tolist(), hosts[small[files]].tolist(), strict=True
        ):
            shared[file].append(lowered[host])
        for names in shared.values():
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
    _join_short_names(union, short, files, hosts, file_names, lowered)
    machine_of = {lower: union.find(lower) for lower in known}
    sources: dict[str, set[str]] = defaultdict(set)
    for file, host in zip(files.tolist(), hosts.tolist(), strict=True):
        machine = machine_of.get(lowered[host])
        if machine is not None:
            sources[machine].add(file_names[file])
    return machine_of, sources


def _join_short_names(
    union: _Union,
    short: dict[str, list[str]],
    files: np.ndarray,
    hosts: np.ndarray,
    file_names: list[str],
    lowered: list[str],
) -> None:
    """A NetBIOS name (`EXCH01`, as .NET's Environment.MachineName writes a trace's Computer)
    and the one full name with that first label (`EXCH01.contoso.local`, the event logs'),
    when their files lie in one place (a folder, or an archive inside it): one machine."""
    places: dict[str, set[str]] = defaultdict(set)
    for file, host in zip(files.tolist(), hosts.tolist(), strict=True):
        places[lowered[host]].add(folder_of(file_names[file]))
    for label, names in short.items():
        full = [n for n in names if "." in n]
        if label in names and len(full) == 1 and places[label] & places[full[0]]:
            union.join(label, full[0])


def roles(frame: pd.DataFrame, machine_of: dict[str, str]) -> dict[str, str]:
    """machine key → device | connector | other, from the channels its hosts wrote."""
    host_codes, host_names = category_codes(frame["host"])
    channel_codes, channel_names = category_codes(frame["channel"])
    kind_of_channel = np.array(
        [
            2
            if c.lower() in CONNECTOR_UPDATED or c.lower() in CONNECTOR_LEGACY
            else 1
            if c.lower() in DEVICE_CHANNELS
            else 0
            for c in channel_names
        ]
        or [0]
    )
    kinds = kind_of_channel[np.maximum(channel_codes, 0)]
    mark = (kinds > 0) & (host_codes >= 0) & (channel_codes >= 0)
    hosts, marked = _pairs(host_codes[mark], kinds[mark], 2)
    found: dict[str, set[str]] = defaultdict(set)
    for host, kind in zip(hosts.tolist(), marked.tolist(), strict=True):
        machine = machine_of.get(host_names[host].lower())
        if machine is not None:
            found[machine].add("connector" if kind == 2 else "device")
    out = {}
    for machine in set(machine_of.values()):
        kinds_seen = found.get(machine, set())
        out[machine] = (
            "connector"
            if "connector" in kinds_seen
            else ("device" if "device" in kinds_seen else "other")
        )
    return out


def channels_by_machine(frame: pd.DataFrame, machine_of: dict[str, str]) -> dict[str, set[str]]:
    """machine key → the channels (lower case) its hosts wrote."""
    host_codes, host_names = category_codes(frame["host"])
    channel_codes, channel_names = category_codes(frame["channel"])
    valid = (host_codes >= 0) & (channel_codes >= 0)
    hosts, channels = _pairs(host_codes[valid], channel_codes[valid], len(channel_names))
    machine_by_code = [machine_of.get(h.lower()) for h in host_names]
    lowered = [c.lower() for c in channel_names]
    out: dict[str, set[str]] = defaultdict(set)
    for host, channel in zip(hosts.tolist(), channels.tolist(), strict=True):
        machine = machine_by_code[host]
        if machine is not None:
            out[machine].add(lowered[channel])
    return out


def machines(
    machine_of: dict[str, str],
    role_of: dict[str, str],
    names: dict[str, str],
    sources: dict[str, set[str]],
) -> list[Machine]:
    """The Machine records, hosts spelled as written."""
    members: dict[str, list[str]] = defaultdict(list)
    for lower, machine in machine_of.items():
        members[machine].append(names.get(lower, lower))
    return [
        Machine(
            key,
            role_of.get(key, "other"),
            tuple(sorted(hosts)),
            tuple(sorted(sources.get(key, ()))),
        )
        for key, hosts in sorted(members.items())
    ]


def attach_facts(
    supporting: Sequence[SupportingFile], sources: dict[str, set[str]]
) -> dict[str, DeviceFacts]:
    """machine key → the facts of the supporting files beside its logs."""
    if not supporting:
        return {}
    places: dict[str, str] = {}
    by_container: dict[str, set[str]] = defaultdict(set)
    for machine, files in sources.items():
        for source in files:
            place = places.get(source) or places.setdefault(source, container(source))
            by_container[place].add(machine)
    out: dict[str, DeviceFacts] = {}
    for item in supporting:
        place = container(item.display)
        owners = by_container.get(place, set())
        if not owners:  # e.g. dsregcmd in the outer zip, logs in the nested cab
            owners = {
                m
                for c, ms in by_container.items()
                if c.startswith((place + "!/", place + "/"))
                for m in ms
            }
        if len(owners) != 1:
            continue  # no machine, or several: the file cannot be attributed
        facts = read(item.subkind, item.content, item.display)
        machine = next(iter(owners))
        if machine in out:
            out[machine].merge(facts)
        else:
            out[machine] = facts
    return out
