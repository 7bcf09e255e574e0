"""Liveness of a process's long-running loops, for /healthz and for giving up.

Every loop that must keep running (inbox consumer, broadcast worker, scheduler) holds a
`LoopHealth` from the process's `Health` registry and reports each pass: `ok()` after a
pass that reached Redis, `failing(error)` after one that did not. `/healthz` answers 200 only
while Redis answers and every registered loop runs and is not failing, so a health check that
says ok means the process is doing its work.

A loop that keeps failing for longer than `give_up_seconds` (real) raises `LoopGaveUp`: the
process then exits non-zero and its supervisor (systemd, see README) starts it again. Until
then the loop backs off (`Backoff`) and goes on: Redis restarting is a passing fault.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

BACKOFF_FIRST = 0.1  # real seconds
BACKOFF_MAX = 5.0


class LoopGaveUpError(RuntimeError):
    """A loop failed longer than it may: the process should exit non-zero."""


@dataclass
class LoopHealth:
    """One loop's state, as /healthz shows it."""

    name: str
    give_up_seconds: float
    owner: Health | None = field(default=None, repr=False)
    running: bool = False
    failing_since: float | None = None
    last_error: str = ""
    _backoff: float = field(default=BACKOFF_FIRST, repr=False)

    def started(self) -> None:
        self.running = True

    def stopped(self) -> None:
        self.running = False

    def ok(self) -> None:
        self.failing_since = None
        self.last_error = ""
        self._backoff = BACKOFF_FIRST

    def failing(self, error: BaseException) -> float:
        """Record a failed pass; the real seconds to wait before the next one.

        Raises LoopGaveUpError once the loop has failed for longer than give_up_seconds."""
        now = time.monotonic()
        if self.failing_since is None:
            self.failing_since = now
        self.last_error = type(error).__name__
        if now - self.failing_since > self.give_up_seconds:
            self.gave_up()
            raise LoopGaveUpError(f"{self.name} 连续 {self.give_up_seconds:.0f} 秒无法恢复："
                                  f"{self.last_error}") from error
        wait, self._backoff = self._backoff, min(self._backoff * 2, BACKOFF_MAX)
        return wait

    def gave_up(self) -> None:
        """This loop will not run again: the process must exit non-zero."""
        self.running = False
        if self.owner is not None:
            self.owner.gave_up.set()

    async def backoff(self, error: BaseException) -> None:
        """failing(error), then sleep its wait."""
        await asyncio.sleep(self.failing(error))

    @property
    def healthy(self) -> bool:
        return self.running and self.failing_since is None


class Health:
    """The loops of one process."""

    def __init__(self, give_up_seconds: float = 300.0) -> None:
        self.give_up_seconds = give_up_seconds
        self._loops: dict[str, LoopHealth] = {}
        self.gave_up = asyncio.Event()  # set when a loop gave up: exit non-zero

    def loop(self, name: str) -> LoopHealth:
        """The (new or existing) health record of the loop called `name`."""
        if name not in self._loops:
            self._loops[name] = LoopHealth(name, self.give_up_seconds, self)
        return self._loops[name]

    def ended(self, name: str, error: BaseException | None) -> None:
        """The loop's task ended: by stop() (error None) or by an error it could not handle."""
        state = self.loop(name)
        if error is None:
            state.stopped()
        else:
            state.last_error = type(error).__name__
            state.gave_up()

    def problems(self) -> dict[str, str]:
        """Loops that are not running or are failing, with the reason (Chinese)."""
        out = {}
        for name, state in self._loops.items():
            if not state.running:
                out[name] = "未运行"
            elif state.failing_since is not None:
                out[name] = f"重试中（{state.last_error}）"
        return out
