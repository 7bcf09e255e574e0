"""Simulated-or-real time, shared by every process.

At speed 1 this is wall-clock time. The demo, the tests and the benchmarks run the same code
faster (owners confirm "after 3 minutes" in a few real seconds): every process given the same
speed and origin agrees on `now()`, because it is derived from the shared real clock.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Clock:
    """`now()` in simulated epoch seconds; `sleep()` and `real()` convert durations."""

    speed: float = 1.0
    origin: float = 0.0

    def now(self) -> float:
        """Current simulated epoch time in seconds."""
        real = time.time()
        return self.origin + (real - self.origin) * self.speed

    def real(self, sim_seconds: float) -> float:
        """How many real seconds `sim_seconds` of simulated time take."""
        return sim_seconds / self.speed

    def real_ms(self, sim_seconds: float) -> int:
        """Real milliseconds for a Redis PX/PEXPIRE value (at least 1)."""
        return max(1, int(self.real(sim_seconds) * 1000))

    def real_epoch(self, sim_epoch: float) -> float:
        """The real epoch at which simulated time reaches `sim_epoch` (for real-time timers)."""
        return self.origin + (sim_epoch - self.origin) / self.speed

    async def sleep(self, sim_seconds: float) -> None:
        """Sleep for `sim_seconds` of simulated time."""
        await asyncio.sleep(max(0.0, self.real(sim_seconds)))


REAL_TIME = Clock()


def make_clock(speed: float, origin: float) -> Clock:
    """Build the clock from settings; a speed-up without an origin starts now."""
    if speed == 1.0:
        return REAL_TIME
    return Clock(speed=speed, origin=origin or time.time())
