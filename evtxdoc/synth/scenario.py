"""Scenario files (YAML) → the events and supporting files of every host, deterministically.

A scenario names the hosts (devices with their Autopilot profile, connector servers) and the
story of each join attempt with an injected `fault`; `build()` expands it into the event
sequence of reference/domain.md (d), with each host's clock offset applied to what it writes,
plus background noise drawn from the shapes real MDM/Autopilot logs contain. The format is
documented in docs/scenarios.md.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from evtxdoc.synth.connector_story import connector_background, connector_log, connector_success
from evtxdoc.synth.device_story import device_log
from evtxdoc.synth.exchange_story import exchange_log
from evtxdoc.synth.expect import expected
from evtxdoc.synth.hostlog import HostClock, HostLog, HostWriter
from evtxdoc.synth.spec import LAYOUTS, Device, Scenario, load, parse, seconds
from evtxdoc.vocab import SECOND

Progress = Callable[[str, int, int], None]  # (stage, done, total)

__all__ = ["LAYOUTS", "HostLog", "Scenario", "build", "expected", "load", "parse"]


def build(scenario: Scenario, progress: Progress | None = None) -> list[HostLog]:
    """Every host's log, ready for the writer and the bundle layouts. Its random stream is not
    parse()'s (same seed, other stream), so no id drawn here repeats a device's EntDMID.
    `progress(stage, done, total)` hears of each device written."""
    rng = random.Random(f"build:{scenario.seed}")
    connectors = {c.name: connector_log(c) for c in scenario.connectors}
    writers = {
        c.name: HostWriter(connectors[c.name], HostClock(c.clock_offset), rng)
        for c in scenario.connectors
    }
    for connector in scenario.connectors:
        connector_background(scenario, connector, writers[connector.name], rng)
    logs = list(connectors.values())
    for number, device in enumerate(scenario.devices, 1):
        logs.append(device_log(scenario, device, writers, rng))
        if device.earlier_success:
            _earlier_success(scenario, device, writers, rng)
        if progress:
            progress("devices", number, len(scenario.devices))
    logs += [exchange_log(scenario, spec, rng) for spec in scenario.exchange]
    for log in logs:
        for events in log.events.values():
            # write order is true time order: a clock set backwards makes TimeCreated go back
            events.sort(key=lambda e: e.time_ns if e.written_ns is None else e.written_ns)
    return logs


def _earlier_success(
    scenario: Scenario, device: Device, writers: dict[str, HostWriter], rng: random.Random
) -> None:
    """The connector served this device (its EntDMID) in an earlier deployment."""
    spec = device.earlier_success
    first = device.attempts[0]
    connector = scenario.connector(first.connector) or scenario.connectors[0]
    when = scenario.start_ns + int(
        (first.at + 180 - seconds(spec.get("before", "150m"), scenario.source)) * SECOND
    )
    connector_success(
        writers[connector.name],
        connector,
        when,
        str(spec.get("computer_name", "AP-EARLIER")),
        device.entdmid,
        rng,
    )
