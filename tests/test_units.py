"""Unit tests for modules the end-to-end tests reach only through analyze (issue 17): the
clock arithmetic, the attempt splitter and judge, machine grouping, the swimlane's words and
the web job runner."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from evtxdoc.correlate import clock, machines
from evtxdoc.correlate.attempts import judge, split
from evtxdoc.correlate.evidence import DMEDP, ClockJump, DeviceEvent, Record
from evtxdoc.models import Attempt, ClockOffset, DeviceIdentity, Outcome
from evtxdoc.report import swimlane
from evtxdoc.vocab import MINUTE, SECOND
from evtxdoc.web.jobs import run_job
from evtxdoc.web.store import JobStore, Status
from tests.conftest import ROOT

T0 = 1_760_000_000 * SECOND


def _record(
    ts: int, event_id: int, host: str = "DESKTOP-1", record_id: int = 1, channel: str = DMEDP
) -> Record:
    return Record(ts, host, channel, "p", event_id, record_id, "f.evtx", None, {})


# --- correlate.clock ---------------------------------------------------------------------------


def test_intervals_intersect_or_refuse_and_estimate_their_middle() -> None:
    a, b = clock.Interval(-10, 50, ["a"]), clock.Interval(0, 100, ["b"])
    both = a.intersect(b)
    assert (both.low, both.high, both.basis) == (0, 50, ["a", "b"])
    assert both.estimate == (25, 25)
    assert a.intersect(clock.Interval(60, 70)) is None
    assert clock.Interval(5, None).estimate == (5, None)


def test_the_latency_bound_caps_a_timed_out_pair_and_tight_needs_both_sides() -> None:
    wait, request, gave_up = T0, T0 + 30 * SECOND, T0 + 60 * MINUTE
    loose = clock.causal_interval(wait, request, None, gave_up)
    assert loose.high - loose.low == clock.CONNECTOR_LATENCY_NS  # not the hour to the give-up
    assert clock.LATENCY_BASIS in loose.basis
    blob = clock.causal_interval(wait, request, request + 60 * SECOND, None)
    assert (blob.low, blob.high) == (-30 * SECOND, 60 * SECOND)
    assert clock.tight(blob) and not clock.tight(clock.Interval(0, None))
    assert clock.applied_shift(blob) == 0  # holds zero: nothing to correct
    ahead = clock.Interval(2 * 3600 * SECOND, 2 * 3600 * SECOND + 4 * MINUTE)
    assert clock.applied_shift(ahead) == 2 * 3600 * SECOND + 2 * MINUTE
    assert clock.applied_shift(clock.Interval(MINUTE, 12 * MINUTE)) == 0  # too loose


def test_a_clock_set_corrects_the_events_before_it_only() -> None:
    jump_at = T0 + 10 * MINUTE
    record = _record(jump_at, 1, record_id=5)
    jump = ClockJump(record, old=jump_at + 3600 * SECOND, new=jump_at)  # 1 h ahead until then
    before = _record(T0 + 3600 * SECOND, 111, record_id=2)  # written 1 h ahead
    after = _record(jump_at + MINUTE, 107, record_id=9)
    rows = pd.DataFrame(
        {  # write order (record ids) tells before from after, not the times
            "source_file": ["f.evtx"] * 3,
            "channel": [DMEDP] * 3,
            "record_id": [2, 5, 9],
            "ts": pd.to_datetime([before.ts, jump_at, after.ts], utc=True),
        }
    )
    local = clock.LocalClock([jump], rows)
    assert local.local(before) == T0  # its time on the final (synchronized) clock
    assert local.local(after) == jump_at + MINUTE
    offsets = clock.offsets_for(
        "DESKTOP-1", "CONN01", clock.Interval(-2 * SECOND, 2 * SECOND), local, None
    )
    assert [o.offset_ns for o in offsets] == [3600 * SECOND, 0]
    assert offsets[0].until_ns == jump_at


# --- correlate.attempts ------------------------------------------------------------------------


def _events(*steps: tuple[int, str, str]) -> list[tuple[int, DeviceEvent]]:
    return [
        (ts, DeviceEvent(_record(ts, 0, record_id=i), step, status, ""))
        for i, (ts, step, status) in enumerate(steps)
    ]


def test_a_new_wait_after_a_timeout_is_a_second_attempt_judged_on_its_own() -> None:
    drafts = split(
        _events(
            (T0, "enrollment", "ok"),
            (T0 + MINUTE, "odj_request", "waiting"),
            (T0 + 61 * MINUTE, "odj_blob", "timed_out"),
            (T0 + 90 * MINUTE, "odj_request", "waiting"),
            (T0 + 92 * MINUTE, "odj_blob", "ok"),
            (T0 + 93 * MINUTE, "offline_join", "ok"),
            (T0 + 99 * MINUTE, "hybrid_registration", "ok"),
        )
    )
    assert len(drafts) == 2
    first, second = (judge(d, "hybrid", {"system", DMEDP}) for d in drafts)
    assert (first.outcome, first.failed_step) == (Outcome.TIMED_OUT, "odj_blob")
    assert second.outcome == Outcome.SUCCEEDED


def test_a_blob_then_a_give_up_without_the_system_log_cannot_tell_why() -> None:
    (draft,) = split(
        _events(
            (T0, "odj_request", "waiting"),
            (T0 + MINUTE, "odj_blob", "ok"),
            (T0 + 61 * MINUTE, "odj_blob", "timed_out"),
        )
    )
    without = judge(draft, "hybrid", {DMEDP})
    assert (without.outcome, without.failed_step) == (Outcome.FAILED, "offline_join")
    assert "cannot tell" in without.reason
    assert judge(draft, "hybrid", {DMEDP, "system"}).failed_step == "dc_connectivity"


# --- correlate.machines ------------------------------------------------------------------------


def test_containers_and_hosts_sharing_a_small_file_are_one_machine() -> None:
    assert machines.container("a.zip!/b.cab!/x.evtx") == "a.zip!/b.cab"
    assert machines.container("bundle/CONN01/System.evtx") == "bundle/CONN01"
    frame = pd.DataFrame(
        {
            "host": pd.Categorical(["DESKTOP-1", "AP-1.contoso.local", "CONN01"]),
            "source_file": pd.Categorical(["d/dmedp.evtx", "d/dmedp.evtx", "c/system.evtx"]),
            "channel": pd.Categorical([DMEDP, DMEDP, "System"]),
        }
    )
    machine_of, sources = machines.group_hosts(frame, [])
    assert machine_of["desktop-1"] == machine_of["ap-1.contoso.local"] != machine_of["conn01"]
    assert sources[machine_of["conn01"]] == {"c/system.evtx"}


# --- report.swimlane ---------------------------------------------------------------------------


def _attempt(offset: ClockOffset | None) -> Attempt:
    identity = DeviceIdentity("m", (), ("AP-1",), computer_name="AP-1")
    return Attempt(
        "AP-1#1",
        identity,
        1,
        (),
        (),
        None,
        None,
        "matched",
        Outcome.UNKNOWN,
        None,
        "",
        offset,
        T0,
        T0,
    )


def test_the_clock_note_says_unknown_agreed_or_shifted() -> None:
    unknown = ClockOffset("d", "CONN01.contoso.local", 0, None, ("too loose",))
    agreed = ClockOffset("d", "CONN01.contoso.local", 0, 40 * SECOND, ("pairs",))
    shifted = ClockOffset("d", "CONN01.contoso.local", 3600 * SECOND, 4 * SECOND, ("set",))
    assert "offset is unknown (too loose)" in swimlane.clock_note(_attempt(unknown))
    assert "agrees with CONN01's within ±40s" in swimlane.clock_note(_attempt(agreed))
    assert swimlane.clock_note(_attempt(shifted)).startswith("Device times shifted by -1h")
    assert "no clock offset" in swimlane.clock_note(_attempt(None))


# --- web.jobs ----------------------------------------------------------------------------------


def test_a_job_runs_in_place_without_moving_the_working_directory(tmp_path: Path) -> None:
    """run_job used to chdir into the upload (issue 17); the names stay the upload's."""
    store = JobStore(tmp_path / "data")
    job = store.create("job1", [{"name": "bundle", "size": 1}])
    sample = ROOT / "sample_logs" / "no-connector-timeout" / "bundle"
    shutil.copytree(sample, store.upload_folder(job.id) / "bundle")
    here = Path.cwd()
    run_job(str(tmp_path / "data"), job.id, 1)
    assert Path.cwd() == here
    done = store.get(job.id)
    assert done.status == Status.done, done.error
    report = (store.folder(job.id) / "report.json").read_text()
    assert '"bundle/' in report and str(tmp_path) not in report


# --- one strict YAML dialect ---------------------------------------------------------------------


def test_scenarios_and_the_catalog_refuse_duplicate_keys_at_their_line(tmp_path: Path) -> None:
    """yaml.safe_load kept the last of two keys silently (issue 17); both now say where."""
    import pytest

    from evtxdoc import catalog
    from evtxdoc.errors import InputError
    from evtxdoc.synth.scenario import load

    scenario = tmp_path / "s.yaml"
    scenario.write_text("name: a\nseed: 1\nseed: 2\n")
    with pytest.raises(InputError) as raised:
        load(scenario)
    assert raised.value.where == f"{scenario}:3" and "duplicate key 'seed'" in raised.value.message
    folder = tmp_path / "rules" / "catalog"
    folder.mkdir(parents=True)
    (folder / "sources.yaml").write_text("sources:\n  S1: {title: a}\n  S1: {title: b}\n")
    (folder / "error_codes.yaml").write_text("codes: []\n")
    with pytest.raises(InputError) as raised:
        catalog.load(tmp_path / "rules")
    assert raised.value.where.endswith("sources.yaml:3")


def test_a_scenario_key_typo_is_refused_with_its_neighbour() -> None:
    """Scenario keys were read with .get(): `sede: 3` silently kept the default seed."""
    import pytest

    from evtxdoc.errors import InputError
    from evtxdoc.synth.scenario import parse

    with pytest.raises(InputError) as raised:
        parse({"name": "x", "devices": [{"oobe_name": "D", "attempts": [{"falt": "quota"}]}]})
    assert raised.value.where == "<scenario>: devices[0].attempts[0]"
    assert raised.value.hint == "did you mean 'fault'?"


def test_every_scenario_key_typo_is_reported_at_once_at_its_line(tmp_path: Path) -> None:
    import pytest

    from evtxdoc.errors import InputError
    from evtxdoc.synth.scenario import load

    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        "name: a\nsede: 3\ndevices:\n  - oobe_name: D\n    attempts:\n      - falt: quota\n"
    )
    with pytest.raises(InputError) as raised:
        load(scenario)
    text = raised.value.message
    assert text.startswith("2 problems")
    assert f"{scenario}:2: sede: unknown key 'sede' — did you mean 'seed'?" in text
    assert f"{scenario}:6: devices[0].attempts[0].falt: unknown key 'falt'" in text


def test_data_and_rule_problems_share_one_located_shape() -> None:
    from evtxdoc.models import Problem, Severity
    from evtxdoc.rules.loader import rule_problem

    torn = Problem("bundle.zip!/System.evtx", "torn_record", "cut short", where="chunk 3")
    rule = rule_problem("rules/x.yaml", 7, "unknown source 'S99'", "add it to sources.yaml")
    assert str(torn) == "bundle.zip!/System.evtx (chunk 3): cut short"
    assert str(rule) == "rules/x.yaml:7: unknown source 'S99' — add it to sources.yaml"
    assert (rule.kind, rule.severity, rule.location.line) == ("rule", Severity.ERROR, 7)
    assert "line" not in torn.to_dict() and rule.to_dict()["line"] == 7


def test_a_job_whose_process_cannot_start_fails_instead_of_respawning(tmp_path: Path) -> None:
    """A process dying before its claim (a broken install) was restarted for ever."""
    from evtxdoc.web.jobs import JobRunner

    store = JobStore(tmp_path / "data")
    job = store.create("job2", [{"name": "x", "size": 1}])
    runner = JobRunner(store)
    runner.submit = lambda job_id: None  # type: ignore[method-assign]  # no real process
    runner._after_death(job.id, "host:1:a", 1)
    assert store.get(job.id).status == Status.queued  # one more try
    runner._after_death(job.id, "host:2:b", 1)
    failed = store.get(job.id)
    assert failed.status == Status.failed and "could not start" in (failed.error or "")
