"""--scheduler: the logs read on a real Dask LocalCluster of two worker processes give the report
the plain run gives, even when a worker is killed while it reads."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from evtxdoc import pipeline
from evtxdoc.cli import app
from evtxdoc.errors import InputError
from evtxdoc.models import AnalyzeOptions
from evtxdoc.parse.distributed import client_for, parse_scheduler, read_on_cluster
from evtxdoc.report.formats import document
from tests.conftest import ROOT

distributed = pytest.importorskip("distributed")
SAMPLES = ROOT / "sample_logs"


def comparable(data: dict[str, Any]) -> str:
    """The document without its timings."""
    data = json.loads(json.dumps(data, default=str))
    data["summary"].pop("seconds", None)
    return json.dumps(data, sort_keys=True)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """100 devices, each its own Collect-diagnostics zip (700 logs), and two connectors."""
    out = tmp_path_factory.mktemp("fleet")
    made = CliRunner().invoke(
        app,
        ["synth", str(SAMPLES / "healthy-hybrid" / "scenario.yaml"), "--scale", "5500",
         "--layout", "intune", "-o", str(out)],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    return out / "bundle"


@pytest.fixture(scope="module")
def client() -> Any:
    with client_for("local:2") as client:
        yield client


@pytest.fixture
def asked(client: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every --scheduler the pipeline asks for gets the module's cluster; the list says which
    were asked (one cluster for the module instead of one per analysis)."""
    names: list[str] = []

    @contextmanager
    def the_module_s_cluster(scheduler: str) -> Iterator[Any]:
        names.append(scheduler)
        yield client

    monkeypatch.setattr("evtxdoc.parse.distributed.client_for", the_module_s_cluster)
    return names


def test_scheduler_names_are_checked() -> None:
    assert parse_scheduler("local:3") == ("local", 3)
    assert parse_scheduler("tcp://10.0.0.5:8786") == ("address", "tcp://10.0.0.5:8786")
    for bad in ("local:0", "local:two", "10.0.0.5:8786"):
        with pytest.raises(InputError):
            parse_scheduler(bad)


@pytest.mark.parametrize("name", ["multi-device-two-connectors", "exchange-cas-no-failover"])
def test_the_cli_on_local_2_writes_the_plain_run_s_json(tmp_path: Path, name: str) -> None:
    bundle = str(SAMPLES / name / "bundle")
    plain, cluster = tmp_path / "plain.json", tmp_path / "cluster.json"
    runner = CliRunner()
    assert runner.invoke(app, ["analyze", bundle, "-o", str(plain)]).exit_code == 0
    result = runner.invoke(app, ["analyze", bundle, "--scheduler", "local:2", "-o", str(cluster)])
    assert result.exit_code == 0, result.output
    assert comparable(json.loads(cluster.read_text())) == comparable(json.loads(plain.read_text()))


def test_a_generated_fleet_read_on_the_cluster_gives_the_same_document(
    fleet: Path, asked: list[str]
) -> None:
    plain = document(pipeline.analyze([fleet]))
    clustered = document(pipeline.analyze([fleet], AnalyzeOptions(scheduler="local:2")))
    assert asked == ["local:2"]
    assert comparable(clustered) == comparable(plain)
    assert plain["fleet"]["devices"] == 100


def test_a_fleet_cut_down_on_the_workers_gives_the_whole_timeline_s_document(
    fleet: Path, asked: list[str], tmp_path: Path
) -> None:
    """Partitioned: the workers keep only the rows something reads, plus the skeleton, and
    write every event as Parquet (--events-to) before they cut."""
    from tests.test_parquet import exported, written

    whole = pipeline.analyze([fleet], AnalyzeOptions(all_events=True))
    cut = pipeline.analyze(
        [fleet],
        AnalyzeOptions(
            scheduler="local:2", all_events=False, sample_events=10, events_to=str(tmp_path)
        ),
    )
    assert asked == ["local:2"]
    assert cut.partial and len(cut.timeline) < len(whole.timeline)
    assert comparable(document(cut)) == comparable(document(whole))
    assert written(tmp_path) == exported(whole)


def test_a_worker_killed_while_reading_is_retried_and_the_result_is_the_same(
    fleet: Path, client: Any
) -> None:
    from evtxdoc.bundle import discover

    options = AnalyzeOptions()
    with_workdir = Path(fleet.parent / "extracted")
    with_workdir.mkdir(exist_ok=True)
    bundle = discover([fleet], with_workdir, options)
    files = bundle.log_files
    plain = pipeline.read(files, options, None)
    pids = client.run(os.getpid)  # worker address → its process
    outcome: dict[str, Any] = {}

    def run() -> None:
        outcome["results"] = read_on_cluster(files, client)

    reader = threading.Thread(target=run)
    reader.start()
    victim = None
    deadline = time.monotonic() + 60
    while victim is None and time.monotonic() < deadline and reader.is_alive():
        busy = [w for w, keys in client.processing().items() if keys]
        if busy:
            victim = busy[0]
            os.kill(pids[victim], signal.SIGKILL)
        time.sleep(0.01)
    reader.join(300)
    assert victim is not None, "no worker was ever busy: nothing was killed"
    assert [r.report for r in outcome["results"]] == [r.report for r in plain]
    assert [len(r.batch) for r in outcome["results"]] == [len(r.batch) for r in plain]


def test_a_web_job_sent_to_the_cluster_writes_the_report_the_plain_job_writes(
    tmp_path: Path, asked: list[str]
) -> None:
    """`serve --scheduler`: the job process reads on the cluster the service names."""
    import shutil

    from evtxdoc.web.jobs import run_job
    from evtxdoc.web.store import JobStore, Status

    store = JobStore(tmp_path)
    bundle = SAMPLES / "multi-device-two-connectors" / "bundle"
    reports = []
    for job_id, scheduler in (("plain", None), ("cluster", "tcp://team-scheduler:8786")):
        store.create(job_id, [{"name": "bundle", "size": 1}])
        shutil.copytree(bundle, store.upload_folder(job_id) / "bundle")
        run_job(str(tmp_path), job_id, None, scheduler=scheduler)
        assert store.get(job_id).status is Status.done
        reports.append(json.loads((store.folder(job_id) / "report.json").read_text()))
    assert asked == ["tcp://team-scheduler:8786"]
    assert comparable(reports[1]) == comparable(reports[0])
