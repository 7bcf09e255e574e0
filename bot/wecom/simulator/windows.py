"""Sliding-window counters, amortised O(1) per event, read against simulated time.

WeCom states its ceilings per minute and per hour (wecom.md §1.1, §2.1) without saying how a
window is cut; a sliding window is the strictest reading (a sender within every sliding
window is within any fixed one). A call is counted when WeCom handles it (after the held and
latency time of server.serve, before the answer), not when the caller's limiter granted it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass(slots=True)
class SlidingWindow:
    """Sum of event weights in the last `span` seconds."""

    span: float
    limit: int
    events: deque[tuple[float, int]] = field(default_factory=deque)
    total: int = 0

    def _evict(self, now: float) -> None:
        horizon = now - self.span
        while self.events and self.events[0][0] <= horizon:
            self.total -= self.events.popleft()[1]

    def fits(self, now: float, weight: int = 1) -> bool:
        """Would `weight` more stay within the limit?"""
        self._evict(now)
        return self.total + weight <= self.limit

    def add(self, now: float, weight: int = 1) -> None:
        self.events.append((now, weight))
        self.total += weight


@dataclass(slots=True)
class Ceiling:
    """WeCom's per-minute and per-hour ceilings: a breach blocks for that window's block time.

    Calls answered 45009 during a block do not count (WeCom did not serve them).
    """

    windows: tuple[tuple[SlidingWindow, float], ...]  # (window, block seconds)
    blocked_until: float = 0.0

    def admit(self, now: float, weight: int = 1) -> bool:
        """Count the call and say whether it is served."""
        if now < self.blocked_until:
            return False
        for window, block in self.windows:
            if not window.fits(now, weight):
                self.blocked_until = max(self.blocked_until, now + block)
                return False
        for window, _ in self.windows:
            window.add(now, weight)
        return True


@dataclass(slots=True)
class Limiter:
    """A ceiling per key (API name, robot key, member) created on first use."""

    minute: int
    hour: int = 0  # 0: no hourly ceiling
    block_minute: float = 0.0  # 0: no block, only the sliding window
    block_hour: float = 0.0
    ceilings: dict[str, Ceiling] = field(default_factory=dict)

    def admit(self, key: str, now: float, weight: int = 1) -> bool:
        ceiling = self.ceilings.get(key)
        if ceiling is None:
            ceiling = self.ceilings[key] = self._new()
        return ceiling.admit(now, weight)

    def _new(self) -> Ceiling:
        windows = [(SlidingWindow(60.0, self.minute), self.block_minute)]
        if self.hour:
            windows.append((SlidingWindow(3600.0, self.hour), self.block_hour))
        return Ceiling(tuple(windows))
