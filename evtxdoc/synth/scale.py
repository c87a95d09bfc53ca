"""Large synthetic bundles for performance work (`evtxdoc synth --scale N`).

A fleet of devices (three attempts in ten failing: access denied, no connector, blob
rejected; one device in six retrying) served by two updated connectors; the device logs of
the whole fleet are merged into one file per channel (as a collector would forward them), so
that the bundle stays a handful of large files.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import yaml

from evtxdoc.synth.layout import CONNECTOR_EXPORT_NAMES, live_name, write_host
from evtxdoc.synth.scenario import Progress, build, expected, parse
from evtxdoc.synth.writer import EvtxWriter

EVENTS_PER_DEVICE = 55  # about what one device attempt plus its noise writes (measured)
FAULT_CYCLE = (
    "none",
    "none",
    "none",
    "none",
    "access_denied",
    "none",
    "no_connector",
    "none",
    "blob_rejected",
    "none",
)


def scaled_scenario(
    events: int, seed: int, devices_wanted: int | None = None, retry_every: int = 6
) -> dict[str, Any]:
    """A scenario dict with enough devices for about `events` events (or `devices_wanted`
    devices, with more background events each when `events` asks for more); one device in
    `retry_every` retries after a reset."""
    rng = random.Random(seed)
    noise = 18  # background events per device
    if devices_wanted and events > devices_wanted * EVENTS_PER_DEVICE:  # more events each
        noise += events // devices_wanted - EVENTS_PER_DEVICE
    devices = []
    for index in range(devices_wanted or max(1, events // EVENTS_PER_DEVICE)):
        attempts: list[dict[str, Any]] = [
            {
                "at": f"{index * 7}s",
                "connector": f"CONN0{1 + index % 2}.contoso.local",
                "fault": FAULT_CYCLE[index % len(FAULT_CYCLE)],
                "computer_name": f"AP-{index:011d}",
            }
        ]
        if index % retry_every == retry_every - 1:  # a retry after a reset
            attempts.append(
                {
                    "at": f"{index * 7 + 7200}s",
                    "connector": "CONN01.contoso.local",
                    "computer_name": f"AP-{index:010d}R",
                }
            )
        for attempt in attempts:
            if attempt.get("fault") == "no_connector":
                attempt["connector"] = None
        devices.append(
            {
                "oobe_name": f"DESKTOP-{index:07d}",
                "layout": "live",
                "clock_offset": f"{rng.randrange(-300, 300)}s",
                "profile": {"join": "hybrid", "domain": "contoso.local"},
                "attempts": attempts,
            }
        )
    return {
        "name": f"scale-{events}",
        "seed": seed,
        "start": "2025-10-01T00:00:00Z",
        "noise": noise,
        "summary": "performance bundle",
        "root_cause": "mixed",
        "connectors": [
            {"name": "CONN01.contoso.local", "kind": "updated"},
            {"name": "CONN02.contoso.local", "kind": "updated", "clock_offset": "-20s"},
        ],
        "devices": devices,
    }


def write_scaled(
    out: Path,
    events: int,
    seed: int = 1,
    devices: int | None = None,
    retry_every: int = 6,
    progress: Progress | None = None,
    layout: str | None = None,
) -> list[Path]:
    """A fleet bundle of about `events` events; `progress(stage, done, total)` hears of each
    device built and each file written (a 200k-event bundle takes about a minute).

    `layout` (cab, zip, intune, live): each device's own bundle as support engineers get it
    from a fleet (its registry dump and Autopilot file beside its logs, so that a device that
    timed out is still tied to the connector's request by its EntDMID), under `devices/`;
    without it the devices' logs are merged into one file per channel under `fleet/`."""
    spec = scaled_scenario(events, seed, devices, retry_every)
    if layout:
        for device in spec["devices"]:
            device["layout"] = layout
    scenario = parse(spec, f"<scale {events}>")
    logs = build(scenario, progress)
    bundle = out / "bundle"
    written: list[Path] = []
    merged: dict[str, EvtxWriter] = {}
    for log in logs:
        if log.role == "connector":
            folder = bundle / log.name
            folder.mkdir(parents=True, exist_ok=True)
            for channel, channel_events in sorted(log.events.items()):
                writer = EvtxWriter()
                writer.extend(channel_events)
                path = folder / CONNECTOR_EXPORT_NAMES.get(channel, live_name(channel))
                writer.write(path)
                written.append(path)
            continue
        if layout:
            written += write_host(scenario, log, bundle / "devices")
            continue
        for channel, channel_events in log.events.items():
            merged.setdefault(channel, EvtxWriter()).extend(channel_events)
    fleet = bundle / "fleet"
    if merged:
        fleet.mkdir(parents=True, exist_ok=True)
    for number, (channel, writer) in enumerate(sorted(merged.items()), 1):
        path = fleet / live_name(channel)
        writer.write(path)
        written.append(path)
        if progress:
            progress("files", number, len(merged))
    (out / "expected.yaml").write_text(yaml.safe_dump(expected(scenario), sort_keys=False))
    return [*written, out / "expected.yaml"]
