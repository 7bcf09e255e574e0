"""Where an export's rows are made: in the exporting process first, then in worker processes.

Making rows is the CPU part of an export (decoding, four seals opened per person, the row
and its text): in one process it holds one core, and in `serve` it takes the event loop's
time from WeCom's callbacks. Once settings.collect.export_inline_rows (50,000) rows have
been made in the exporting process (an export of less than half that starts no process),
batches go to a pool of worker processes, one per core unless settings.collect.export_workers
says otherwise, while the exporting process reads the next batches and writes the finished
ones in order.

Workers are spawned, not forked: the exporting process may hold threads and sockets that a
fork would copy in an unknown state (spawn re-imports the program's main module, so a
program that embeds export() guards its `__main__`, as `gridbot` does). They get the
cipher through their start-up pipe, memory to memory; rows with full numbers come back the
same way, to the file they were going to. Workers run without the cyclic GC: rows hold no
cycles, and its passes over the young rows cost a tenth of a worker's time. A worker that
dies fails the export (BrokenProcessPool), which export() audits as an error.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from types import TracebackType

from collect.exportrows import Renderer, RenderSpec

IN_FLIGHT_PER_WORKER = 2  # one being made, one queued: a worker never waits for the next

_render: Renderer | None = None  # a worker process's renderer, set by _start_worker
log = logging.getLogger(__name__)


def worker_count(setting: int | None) -> int:
    """settings.collect.export_workers, None meaning one per core; 0 makes rows in-process."""
    return setting if setting is not None else (os.cpu_count() or 1)


class RowPool:
    """Makes batches of rows, in this process for `inline_rows`, then in `workers` processes.

    `submit` returns at once with a future; the caller awaits them in submission order and
    keeps at most `depth` waiting, so memory stays flat at any export size."""

    def __init__(self, spec: RenderSpec, workers: int, inline_rows: int) -> None:
        self._spec = spec
        self._render = Renderer(spec)
        self._workers = workers
        self._inline_rows = inline_rows
        self._inline_done = 0
        self._executor: ProcessPoolExecutor | None = None

    @property
    def depth(self) -> int:
        """Batches the caller may leave waiting before it writes the oldest."""
        return self._workers * IN_FLIGHT_PER_WORKER if self._executor else 0

    def submit(self, packed: list[str], first_row: int) -> asyncio.Future[str]:
        loop = asyncio.get_running_loop()
        if self._workers and self._executor is None and \
                self._inline_done >= self._inline_rows // 2:
            self._executor = self._start()
        if self._executor is None or self._inline_done < self._inline_rows:
            self._inline_done += len(packed)
            done: asyncio.Future[str] = loop.create_future()
            done.set_result(self._render(packed, first_row))
            return done
        return loop.run_in_executor(self._executor, _render_in_worker, packed, first_row)

    def _start(self) -> ProcessPoolExecutor:
        """The workers, started halfway through the inline rows: a worker takes most of a
        second to start (an interpreter, its imports), which the rows made here meanwhile
        hide."""
        log.info("export: rows now made in %d worker processes", self._workers)
        executor = ProcessPoolExecutor(self._workers, initializer=_start_worker,
                                       initargs=(self._spec,),
                                       mp_context=multiprocessing.get_context("spawn"))
        for _ in range(self._workers):
            executor.submit(_ready)  # each submit starts one more process, up to the limit
        return executor

    async def __aenter__(self) -> RowPool:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        if self._executor is not None:
            # an export that failed or was cancelled leaves no batch queued; the processes
            # finish the batch in hand and exit, and are waited for off the event loop
            await asyncio.to_thread(self._executor.shutdown, wait=True, cancel_futures=True)


def _start_worker(spec: RenderSpec) -> None:
    global _render
    gc.disable()
    _render = Renderer(spec)


def _ready() -> None:
    """Nothing: submitted once per worker so that all start at once."""


def _render_in_worker(packed: list[str], first_row: int) -> str:
    assert _render is not None, "started by _start_worker"
    return _render(packed, first_row)
