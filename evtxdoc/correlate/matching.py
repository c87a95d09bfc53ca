"""Matching connector requests to attempts: computer name, then device id (EntDMID, the
Entra device id, the connector's own DeviceId), then an unambiguous time window; consistency
checks set aside what contradicts the device's story; each device's offset from its pairs."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict

from evtxdoc.correlate import clock as clocks
from evtxdoc.correlate.clock import Interval
from evtxdoc.correlate.device import Device, computer_name
from evtxdoc.models import (
    ConnectorRequest,
)
from evtxdoc.vocab import ASSUMED_SKEW_NS, SECOND, WINDOW_SLACK_NS

OPEN_WAIT_NS = 2 * 3600 * SECOND  # a wait with no end logged is searched this far


def match_by_identity(devices: dict[str, Device], requests: list[ConnectorRequest]) -> None:
    by_name: dict[str, list[ConnectorRequest]] = defaultdict(list)
    by_id: dict[str, list[ConnectorRequest]] = defaultdict(list)
    for request in requests:
        if request.device_name:
            by_name[request.device_name.lower()].append(request)
        if request.device_id:
            by_id[request.device_id].append(request)
    for device in devices.values():
        for index in (i for i, d in enumerate(device.drafts) if d.asked):
            name, domain = computer_name(device.drafts[index])
            if name:
                found = [
                    r
                    for r in by_name.get(name.lower(), ())
                    if not (domain and r.domain and r.domain.lower() != domain.lower())
                ]
                if found:
                    device.pairs[index] = found
                    device.basis[index] = "computer_name"
    learned = _connector_ids(devices)
    shared = shared_ids(devices)
    for device in devices.values():
        asked = [i for i, d in enumerate(device.drafts) if d.asked]
        ids = [
            (i, label)
            for i, label in (
                (device.facts.entdmid, "entdmid"),
                (device.facts.entra_device_id, "entra_device_id"),
            )
            if i and i not in shared
        ]
        ids += [
            (i, "connector_device_id")
            for i in sorted(learned.get(device.key, ()))
            if i not in {known for known, _ in ids}
        ]
        for device_id, label in ids:
            found = [
                r
                for r in by_id.get(device_id, ())
                if not any(r in pair for pair in device.pairs.values())
            ]
            if not found:
                continue
            open_drafts = [i for i in asked if i not in device.pairs]
            if not open_drafts:
                continue
            for request in found:
                index = _nearest_draft(device, open_drafts, request)
                device.pairs.setdefault(index, []).append(request)
                device.basis[index] = label
    for device in devices.values():
        _set_aside_contradictions(device)


def shared_ids(devices: dict[str, Device]) -> set[str]:
    """Device ids (EntDMID, Entra device id) that more than one machine holds: a cloned image
    or a reused registry dump. They cannot tell the machines apart, so no match uses them."""
    owners: dict[str, int] = defaultdict(int)
    for device in devices.values():
        for device_id in {device.facts.entdmid, device.facts.entra_device_id}:
            if device_id:
                owners[device_id] += 1
    return {device_id for device_id, count in owners.items() if count > 1}


CONTRADICTION_NS = ASSUMED_SKEW_NS + WINDOW_SLACK_NS


def _set_aside_contradictions(device: Device) -> None:
    """A blob created (success) well before the device began waiting cannot be the blob of an
    attempt that then timed out without one: it is another deployment's (the same name or
    id) or the device clock was far off. Such requests are not matched silently: they are set
    aside on the attempt and said so (connector_evidence `contradictory`)."""
    for index, found in list(device.pairs.items()):
        draft = device.drafts[index]
        if draft.blob_at is not None or draft.gave_up_at is None or draft.wait_start is None:
            continue
        odd = [r for r in found if r.succeeded and r.ts < draft.wait_start - CONTRADICTION_NS]
        if not odd:
            continue
        device.conflicts[index] = odd
        kept = [r for r in found if r not in odd]
        if kept:
            device.pairs[index] = kept
        else:
            del device.pairs[index]
            device.basis.pop(index, None)


def _connector_ids(devices: dict[str, Device]) -> dict[str, set[str]]:
    """Per device, the DeviceIds the connector logged in requests matched to it by name, kept
    only where no other device's requests carry the same id. Whatever id the connector logs
    (domain.md (d) leaves it open), its other requests for that device carry it too: a retry's
    failed request names a computer the device never became, but not another device."""
    found = {
        key: {r.device_id for pair in device.pairs.values() for r in pair if r.device_id}
        for key, device in devices.items()
    }
    owners: dict[str, int] = defaultdict(int)
    for ids in found.values():
        for device_id in ids:
            owners[device_id] += 1
    return {key: {i for i in ids if owners[i] == 1} for key, ids in found.items()}


def _nearest_draft(device: Device, candidates: list[int], request: ConnectorRequest) -> int:
    """The attempt whose wait window (device final clock) holds the request, else the nearest."""
    residual = device.residual.estimate[0] if device.residual else 0

    def distance(index: int) -> int:
        draft = device.drafts[index]
        start = (draft.wait_start or draft.events[0][0]) - residual
        end = (draft.blob_at or draft.gave_up_at or start + OPEN_WAIT_NS) - residual
        if start - WINDOW_SLACK_NS <= request.ts <= end + WINDOW_SLACK_NS:
            return 0
        return min(abs(request.ts - start), abs(request.ts - end))

    return min(candidates, key=lambda i: (distance(i), i))


def match_by_time(devices: dict[str, Device], requests: list[ConnectorRequest]) -> list[Device]:
    """Attempts with no identity match: the one unclaimed request inside their wait window.

    Two or more candidates are never guessed between: the attempt is marked ambiguous.
    Returns the devices that gained a pair.
    """
    changed: list[Device] = []
    claimed = {id(r) for d in devices.values() for rs in d.pairs.values() for r in rs}
    known_names: set[str] = set()
    known_ids: set[str] = set()
    for device in devices.values():
        for draft in device.drafts:
            name, _ = computer_name(draft)
            if name:
                known_names.add(name.lower())
        known_ids.update(i for i in (device.facts.entdmid, device.facts.entra_device_id) if i)
    known_ids -= shared_ids(devices)  # an id two machines hold names neither
    free = sorted(
        (
            r
            for r in requests
            if id(r) not in claimed
            and not (r.device_name and r.device_name.lower() in known_names)
            and not (r.device_id and r.device_id in known_ids)
        ),
        key=lambda r: r.ts,
    )
    times = [r.ts for r in free]
    taken: set[int] = set()
    for device in devices.values():
        own_ids = {i for i in (device.facts.entdmid, device.facts.entra_device_id) if i}
        if device.residual is None:
            shift, width = 0, ASSUMED_SKEW_NS
        else:
            shift, half = device.residual.estimate
            if half is None:
                continue
            width = half
        for index, draft in enumerate(device.drafts):
            if index in device.pairs or not draft.asked or draft.wait_start is None:
                continue
            name, domain = computer_name(draft)
            start = draft.wait_start - shift - width - WINDOW_SLACK_NS
            end = draft.blob_at or draft.gave_up_at or draft.wait_start + OPEN_WAIT_NS
            end = end - shift + width + WINDOW_SLACK_NS
            found = [
                free[p]
                for p in range(bisect_left(times, start), bisect_right(times, end))
                if id(free[p]) not in taken and _compatible(free[p], own_ids, name, domain)
            ]
            if len(found) == 1:
                device.pairs[index] = found
                device.basis[index] = (
                    "time_window" if device.residual is not None else "time_window_assumed"
                )
                taken.add(id(found[0]))
                if not changed or changed[-1] is not device:
                    changed.append(device)
            elif found:  # two or more candidates: no guess, and none is another device's
                device.ambiguous.add(index)
                device.candidates.update(id(r) for r in found)
    return changed


def _compatible(
    request: ConnectorRequest, own_ids: set[str], name: str | None, domain: str | None
) -> bool:
    """No identity in the request contradicts the attempt's."""
    if own_ids and request.device_id and request.device_id not in own_ids:
        return False
    if name and request.device_name and request.device_name.lower() != name.lower():
        return False
    return not (domain and request.domain and request.domain.lower() != domain.lower())


def estimate(device: Device) -> None:
    """The device's final-clock offset against its connector, from every matched pair."""
    intervals: list[Interval] = []
    references: dict[str, int] = defaultdict(int)
    for index, found in device.pairs.items():
        draft = device.drafts[index]
        if draft.wait_start is None:
            continue
        for request in found:
            references[request.connector] += 1
            intervals.append(
                clocks.causal_interval(
                    draft.wait_start, request.ts, draft.blob_at, draft.gave_up_at
                )
            )
    synced = None
    if device.clock.jumps:
        synced = Interval(
            -clocks.JUMP_PRECISION_NS,
            clocks.JUMP_PRECISION_NS,
            ["clock set to its time source during the attempt"],
        )
    causal, _ = clocks.combine(intervals)  # an inconsistent hull says so in its basis
    device.reference = max(references, key=lambda k: references[k]) if references else None
    if causal is None:
        device.residual = synced
        return
    if synced is not None:
        device.residual = causal.intersect(synced) or causal
        return
    device.residual = causal
