"""Each customer group's monthly mass-send quota (wecom.md §1.3): ≤ "days in the month".

WeCom does not tell us how much of a group's quota is left. We count our own sends per group
per month, add usage we learn of otherwise (sends by people, set by an admin import), and
remember the groups WeCom answered "已收到其他群发" (status 3) for, which are spent for sure.
Months are calendar months in Beijing time.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone

import redis.asyncio as aioredis

from bot.clock import Clock
from broadcasts.keys import BroadcastKeys

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
_KEEP_SECONDS = 40 * 86400


def month_of(at: float) -> tuple[str, int]:
    """("YYYYMM", days in that month) for simulated epoch `at`, in Beijing time."""
    moment = datetime.fromtimestamp(at, tz=BEIJING)
    days = calendar.monthrange(moment.year, moment.month)[1]
    return f"{moment.year:04d}{moment.month:02d}", days


class QuotaBook:
    """Per-group monthly send counts in Redis."""

    def __init__(self, redis: aioredis.Redis, keys: BroadcastKeys, clock: Clock) -> None:
        self._redis = redis
        self._keys = keys
        self._clock = clock

    def _month(self) -> tuple[str, int]:
        return month_of(self._clock.now())

    async def used(self, chat_ids: Sequence[str]) -> dict[str, int]:
        """Sends this month per group (ours plus known other usage; spent groups count full)."""
        if not chat_ids:
            return {}
        month, limit = self._month()
        pipe = self._redis.pipeline(transaction=False)
        pipe.hmget(self._keys.quota_sent(month), list(chat_ids))
        pipe.hmget(self._keys.quota_known(month), list(chat_ids))
        pipe.smismember(self._keys.quota_full(month), list(chat_ids))
        sent, known, full = await pipe.execute()
        return {
            chat: limit if is_full else int(s or 0) + int(k or 0)
            for chat, s, k, is_full in zip(chat_ids, sent, known, full, strict=True)
        }

    async def exhausted(self, chat_ids: Sequence[str], *, reserve: int = 0) -> list[str]:
        """Groups that cannot take one more send this month (keeping `reserve` sends back)."""
        _, limit = self._month()
        used = await self.used(chat_ids)
        return [chat for chat in chat_ids if used[chat] + 1 + reserve > limit]

    async def record_sends(self, chat_ids: Iterable[str]) -> None:
        """Count one send for each group (WeCom reported it sent: only a confirmed task
        spends a group's quota)."""
        month, _ = self._month()
        key = self._keys.quota_sent(month)
        pipe = self._redis.pipeline(transaction=False)
        for chat in chat_ids:
            pipe.hincrby(key, chat, 1)
        pipe.expire(key, self._clock.real_ms(_KEEP_SECONDS) // 1000 + 1)
        await pipe.execute()

    async def mark_full(self, chat_ids: Iterable[str]) -> None:
        """WeCom said these groups received their last allowed send this month."""
        chats = list(chat_ids)
        if not chats:
            return
        month, _ = self._month()
        await self._redis.sadd(self._keys.quota_full(month), *chats)
        await self._redis.expire(self._keys.quota_full(month),
                                 self._clock.real_ms(_KEEP_SECONDS) // 1000 + 1)

    async def set_known(self, usage: dict[str, int]) -> None:
        """Record sends made outside the bot this month (e.g. imported from 群发助手)."""
        if not usage:
            return
        month, _ = self._month()
        await self._redis.hset(self._keys.quota_known(month),
                               mapping={k: str(v) for k, v in usage.items()})
