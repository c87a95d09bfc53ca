"""evtxdoc synth: Windows-faithful EVTX files and realistic scenario bundles.

`synthesize()` reads a scenario file, expands its story (`scenario.build`), writes each host's
bundle (`layout.write_bundle`) and the scenario's `expected.yaml`. See docs/scenarios.md.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import yaml

from evtxdoc.synth import layout
from evtxdoc.synth.scenario import LAYOUTS, Scenario, build, expected, load

__all__ = ["LAYOUTS", "synthesize"]


def synthesize(
    scenario_path: Path,
    out: Path,
    *,
    layout_name: str | None = None,
    seed: int | None = None,
    scenario: Scenario | None = None,
) -> list[Path]:
    """Write `out/bundle/…` and `out/expected.yaml` for a scenario; returns the files written."""
    scenario = scenario or load(scenario_path)
    if seed is not None:
        scenario = replace(scenario, seed=seed)
    if layout_name is not None:
        for device in scenario.devices:
            device.layout = layout_name
    logs = build(scenario)
    bundle = out / "bundle"
    written = layout.write_bundle(scenario, logs, bundle)
    expectation = out / "expected.yaml"
    expectation.write_text(yaml.safe_dump(expected(scenario), sort_keys=False, width=100), "utf-8")
    return [*written, expectation]
