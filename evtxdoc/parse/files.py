"""Reading many files: each under the watchdog (parse/watchdog.py), several at once when the
bundle is large enough for processes to pay; results in input order."""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool

from evtxdoc.models import DiscoveredFile
from evtxdoc.parse.reader import FileResult, Progress, failed_read, read_file
from evtxdoc.parse.watchdog import Arrive, Finish, batches, guarded, read_watched_batch

PARALLEL_MIN_BYTES = 4 * 1024 * 1024  # below this, starting processes costs more than it saves


def _worker_count(files: Sequence[DiscoveredFile], workers: int | None) -> int:
    if len(files) < 2 or sum(f.size for f in files) < PARALLEL_MIN_BYTES:
        return 1
    return max(1, min(workers or os.cpu_count() or 1, len(files)))


def read_files(
    files: Sequence[DiscoveredFile],
    *,
    strict: bool = False,
    use_fallback: bool = True,
    workers: int | None = None,
    progress: Progress | None = None,
    keep: Finish | None = None,
    arrive: Arrive | None = None,
) -> list[FileResult]:
    """Read every file, in parallel processes when it pays; results in input order; `keep`
    cuts each result down where it was read (evtxdoc/partition.py), and `arrive(index,
    result)` takes each as it comes back (event_store.py), returning what is kept of it."""
    results: list[FileResult | None] = [None] * len(files)
    count = _worker_count(files, workers)
    done = 0

    def finished(index: int, result: FileResult) -> None:
        nonlocal done
        results[index] = arrive(index, result) if arrive else result
        done += 1
        if progress:
            progress("read", done, len(files), files[index].display)

    indexed = {id(f): i for i, f in enumerate(files)}
    if count == 1:
        for group in batches(list(files)):
            read = read_watched_batch(group, strict, use_fallback, keep=keep)
            for file, result in zip(group, read, strict=True):
                finished(indexed[id(file)], result)
        return [r for r in results if r is not None]
    order = sorted(range(len(files)), key=lambda i: -files[i].size)  # largest first
    # Under the watchdog each group of files is read in its own child process already: threads
    # only wait for them. Without it (no fork), a process pool gives the parallelism.
    guard = guarded()
    if not guard:
        with ProcessPoolExecutor(count) as pool:
            futures = {
                pool.submit(_read_kept, files[i], strict, use_fallback, keep): i for i in order
            }
            for future in as_completed(futures):
                index = futures[future]
                try:
                    result = future.result()
                except BrokenProcessPool as exc:
                    result = failed_read(files[index], f"worker process died ({exc})")
                finished(index, result)
        return [r for r in results if r is not None]
    groups = batches([files[i] for i in order])
    with ThreadPoolExecutor(count) as threads:
        waiting = {threads.submit(read_watched_batch, group, strict, use_fallback, keep=keep):
                   group for group in groups}  # fmt: skip
        for batch in as_completed(waiting):
            for file, result in zip(waiting[batch], batch.result(), strict=True):
                finished(indexed[id(file)], result)
    return [r for r in results if r is not None]


def _read_kept(
    file: DiscoveredFile, strict: bool, use_fallback: bool, keep: Finish | None
) -> FileResult:
    result = read_file(file, strict, use_fallback)
    return keep(result) if keep else result
