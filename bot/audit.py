"""Append-only audit log of privileged actions, in a Redis stream.

Every broadcast command, approval, refusal, lookup and export is one entry with the fields
等保 2.0 asks for: time, user, event type, outcome, plus target, detail and source message.
Entries are never edited; the stream is trimmed only by age (retention ≥ 6 months).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

import redis.asyncio as aioredis

from bot.clock import Clock
from bot.keys import Keys
from bot.masking import scrub

Outcome = Literal["ok", "refused", "error"]

# CLI commands that act as a user (`--as USERID`) cannot prove who typed them: whoever can run
# `gridbot` on the server holds its secrets anyway. They are audited with this source, so the
# trail says "done at the server's console in the name of USERID", never as the user's own act.
CONSOLE_SOURCE = "cli:console"
CONSOLE_NOTE = ("--as USERID 不做身份验证：能在服务器上运行 gridbot 的人本就持有全部密钥。"
                "此类操作在审计中记为服务器控制台操作（来源 cli:console），与本人在企业微信中"
                "的操作区分。")


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: str
    at: float
    actor: str
    action: str
    outcome: str
    target: str
    detail: str
    source: str


def _entry(entry_id: str, f: dict[str, str]) -> AuditEntry:
    return AuditEntry(
        entry_id, float(f.get("at", 0)), f.get("actor", ""), f.get("action", ""),
        f.get("outcome", ""), f.get("target", ""), f.get("detail", ""), f.get("source", ""),
    )


class AuditLog:
    """Writes and reads audit entries."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, clock: Clock, retention_days: int = 190):
        self._redis = redis
        self._key = keys.audit()
        self._clock = clock
        self._retention_ms = retention_days * 86400 * 1000

    async def record(
        self,
        actor: str,
        action: str,
        outcome: Outcome,
        *,
        target: str = "",
        detail: str = "",
        source: str = "",
    ) -> str:
        """Append one entry; returns its stream id. Personal numbers in `detail` are masked."""
        now_ms = int(self._clock.now() * 1000)
        fields = {
            "at": f"{now_ms / 1000:.3f}", "actor": actor, "action": action, "outcome": outcome,
            "target": scrub(target), "detail": scrub(detail), "source": source,
        }
        # stream ids come from Redis' wall clock, so trim by real time even when simulated
        min_id = max(0, int(time.time() * 1000) - self._retention_ms)
        entry_id = await self._redis.xadd(
            self._key, fields, minid=str(min_id), approximate=True  # type: ignore[arg-type]
        )
        return str(entry_id)

    async def entries(
        self, *, actor: str = "", action: str = "", count: int = 10_000
    ) -> list[AuditEntry]:
        """Most recent entries first, optionally filtered by actor and/or action."""
        rows: Any = await self._redis.xrevrange(self._key, count=count)  # str pairs (decoded)
        out = []
        for entry_id, f in rows:
            if (actor and f.get("actor") != actor) or (action and f.get("action") != action):
                continue
            out.append(_entry(entry_id, f))
        return out
