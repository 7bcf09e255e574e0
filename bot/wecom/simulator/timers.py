"""One scheduler loop for every simulated-time timer (thousands of owner confirmations).

A heap and a single task instead of one asyncio task per timer: 3,000 pending confirmations
cost 3,000 heap entries, and a faster Clock only shortens the real sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
from collections.abc import Callable

from bot.clock import Clock

log = logging.getLogger(__name__)


class Timers:
    """call_at(sim_time, fn) runs fn(sim_time) once simulated time reaches sim_time."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._heap: list[tuple[float, int, Callable[[float], None]]] = []
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def call_at(self, due: float, fn: Callable[[float], None]) -> None:
        heapq.heappush(self._heap, (due, next(self._seq), fn))
        if self._heap[0][0] == due:
            self._wake.set()
        self._ensure_running()

    def __len__(self) -> int:
        return len(self._heap)

    def _ensure_running(self) -> None:
        if self._task is None or self._task.done():
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return  # started by the first call made inside the event loop
            self._wake = asyncio.Event()
            if self._heap:
                self._wake.set()
            self._task = loop.create_task(self._run(), name="wecom-sim-timers")

    def start(self) -> None:
        """Start the loop (timers added before the event loop ran are kept)."""
        self._ensure_running()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            self.run_due()
            self._wake.clear()
            timeout = (
                self._clock.real(self._heap[0][0] - self._clock.now()) if self._heap else None
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    def run_due(self) -> int:
        """Run every timer that is due now; returns how many ran."""
        now, ran = self._clock.now(), 0
        while self._heap and self._heap[0][0] <= now:
            due, _, fn = heapq.heappop(self._heap)
            ran += 1
            try:
                fn(due)
            except Exception:  # one broken timer must not stop the simulated corp
                log.exception("simulator timer failed")
        return ran
