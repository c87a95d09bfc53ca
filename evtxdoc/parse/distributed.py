"""Reading on a Dask cluster (`--scheduler local:N` or `tcp://HOST:8786`): the heavy stage —
scanning, parsing and normalizing every log — runs on the cluster's workers, one task per group
of files (parse/watchdog.py `batches`: small files together, a large one alone); the results come
back in input order and the rest of the analysis runs here, so the report is the one the plain
run writes. A task is pure (it reads files by path), so a worker that dies mid-run costs only a
retry of its tasks elsewhere.

Workers read the files by path: on a real cluster the inputs must lie on a path every worker
sees the same way (a shared or network file system), as must archives' extraction folder
(`--workdir`, or the system temporary folder when it is shared). Each worker reads its files
under the watchdog (a forked child per group), so workers must be allowed children:
`dask worker --no-nanny`, or the environment variable `DASK_DISTRIBUTED__WORKER__DAEMON=False`
(LocalCluster gets it from here).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from evtxdoc.errors import InputError
from evtxdoc.models import DiscoveredFile
from evtxdoc.parse.reader import FileResult, Progress
from evtxdoc.parse.watchdog import Arrive, Finish, batches, read_watched_batch

RETRIES = 3  # a task whose worker died is run again elsewhere this many times


def parse_scheduler(text: str) -> tuple[str, int | str]:
    """`local:N` → ("local", N); `tcp://host:port` (or tls://) → ("address", text)."""
    if text.startswith("local"):
        _, _, count = text.partition(":")
        try:
            workers = int(count) if count else (os.cpu_count() or 1)
        except ValueError:
            workers = 0
        if workers < 1:
            raise InputError(
                f"--scheduler {text!r}: the number of local workers must be a whole number ≥ 1",
                hint="e.g. --scheduler local:2",
            )
        return "local", workers
    if text.startswith(("tcp://", "tls://", "ucx://", "inproc://")):
        return "address", text
    raise InputError(
        f"--scheduler {text!r} is neither local:N nor a scheduler address",
        hint="--scheduler local:2 (a cluster of 2 worker processes here) or "
        "--scheduler tcp://HOST:8786 (a running `dask scheduler`)",
    )


@contextmanager
def client_for(scheduler: str) -> Iterator[Any]:
    """A Dask client for `scheduler`, with its LocalCluster when it is local (closed after)."""
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise InputError(
            "--scheduler needs Dask's distributed scheduler, which is not installed",
            hint="pip install 'evtxdoc[dask]' (or pip install 'dask[distributed]')",
        ) from exc
    kind, value = parse_scheduler(scheduler)
    if kind == "address":
        with Client(str(value), timeout="30s") as client:  # type: ignore[no-untyped-call]
            yield client
        return
    with (
        dask.config.set({"distributed.worker.daemon": False}),  # the watchdog forks children
        LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=int(value),
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",  # any free port: never a clash with another cluster
            silence_logs=40,  # logging.ERROR: a killed worker's restart is not news
        ) as cluster,
        Client(cluster) as client,  # type: ignore[no-untyped-call]
    ):
        yield client


def read_on_cluster(
    files: Sequence[DiscoveredFile],
    client: Any,
    *,
    strict: bool = False,
    use_fallback: bool = True,
    progress: Progress | None = None,
    keep: Finish | None = None,
    arrive: Arrive | None = None,
) -> list[FileResult]:
    """Every file read on the cluster's workers, cut down there by `keep` (picklable);
    results in input order, each given to `arrive(index, result)` as it comes back."""
    from distributed import as_completed

    groups = batches(list(files))
    futures = [
        client.submit(
            read_watched_batch, group, strict, use_fallback, keep=keep, retries=RETRIES, pure=False
        )
        for group in groups
    ]
    index = {future.key: number for number, future in enumerate(futures)}
    position = {id(file): number for number, file in enumerate(files)}
    results: list[list[FileResult] | None] = [None] * len(groups)
    done = 0
    for future in as_completed(futures):  # type: ignore[no-untyped-call]
        number = index[future.key]
        results[number] = [
            arrive(position[id(file)], result) if arrive else result
            for file, result in zip(groups[number], future.result(), strict=True)
        ]
        done += len(groups[number])
        if progress:
            progress("read", done, len(files), groups[number][-1].display)
    return [result for group in results if group is not None for result in group]
