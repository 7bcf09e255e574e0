"""Latency and fault injection, both deterministic from the simulator's seed; held calls."""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.wecom.simulator.config import (
    FAULT_KINDS,
    FaultConfig,
    FaultKind,
    LatencyConfig,
    TimeoutMode,
)

Fault = tuple[FaultKind, TimeoutMode]


@dataclass(frozen=True, slots=True)
class Hold:
    """One call held on its way in, before WeCom counts it: `arrived` is set when it reaches
    the simulator, and it goes on once `release` is set (a slow network or a loaded machine
    between the caller's rate grant and WeCom's count, made deterministic for tests)."""

    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)


class Holds:
    """Holds asked for per API, taken by its next calls in order."""

    def __init__(self) -> None:
        self._waiting: dict[str, deque[Hold]] = {}

    def add(self, api: str) -> Hold:
        hold = Hold()
        self._waiting.setdefault(api, deque()).append(hold)
        return hold

    async def pass_through(self, api: str) -> None:
        """Wait here if a hold is waiting for this API's next call."""
        queue = self._waiting.get(api)
        if not queue:
            return
        hold = queue.popleft()
        hold.arrived.set()
        await hold.release.wait()


class Latency:
    def __init__(self, config: LatencyConfig, seed: int) -> None:
        self.config = config
        self._rng = random.Random(f"{seed}:latency")

    def sample(self) -> float:
        """Simulated seconds this answer takes."""
        median, sigma = self.config.median, self.config.sigma
        if median <= 0:
            return 0.0
        value = median if sigma == 0 else self._rng.lognormvariate(0.0, sigma) * median
        return min(value, self.config.cap)


class Faults:
    """Draws at most one fault per call from the first config that covers the API."""

    def __init__(self, configs: Sequence[FaultConfig], seed: int) -> None:
        self.configs = tuple(configs)
        self._rngs = [
            random.Random(f"{c.seed if c.seed is not None else seed}:faults:{i}")
            for i, c in enumerate(self.configs)
        ]

    def draw(self, api: str) -> Fault | None:
        for config, rng in zip(self.configs, self._rngs, strict=True):
            if not config.applies_to(api):
                continue
            if config.rate <= 0 or rng.random() >= config.rate:
                return None
            weights = [config.weights.get(kind, 0.0) for kind in FAULT_KINDS]
            return rng.choices(FAULT_KINDS, weights)[0], config.timeout_mode
        return None
