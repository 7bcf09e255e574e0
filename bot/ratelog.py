"""Logging that does not flood: one line per kind of repeated error per interval.

A user WeCom's directory rejects, or a handler bug hit by every message, used to write a
4 KB traceback per message (16 MB of log in one run). `RateLimitedLog.log(key, …)` writes
the first record of a `key` and then at most one per `every` real seconds, telling how many
of the same kind it left out in between.
"""

from __future__ import annotations

import logging
import time
from typing import Any

MAX_KEYS = 1024  # kinds remembered; beyond it the oldest are forgotten (and log again)


class RateLimitedLog:
    """At most one record per key and interval."""

    def __init__(self, logger: logging.Logger, every: float = 60.0) -> None:
        self._logger = logger
        self.every = every
        self._last: dict[str, float] = {}
        self._skipped: dict[str, int] = {}

    def log(self, level: int, key: str, message: str, *args: Any, exc_info: Any = None
            ) -> bool:
        """Write the record unless one of the same `key` was written within `every` s."""
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.every:
            self._skipped[key] = self._skipped.get(key, 0) + 1
            return False
        skipped = self._skipped.pop(key, 0)
        if skipped:
            message += "（此前 %d 秒内同类 %d 条已略去）"
            args = (*args, round(self.every), skipped)
        if len(self._last) >= MAX_KEYS and key not in self._last:
            self._last.pop(next(iter(self._last)))
        self._last[key] = now
        self._logger.log(level, message, *args, exc_info=exc_info)
        return True
