"""Cases in Redis: one JSON record and one timeline per case, changed by optimistic
transactions on the case's own slot; indexes written after the record.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import redis.asyncio as aioredis
from redis.exceptions import WatchError

from bot.rtypes import opt, slist
from cases.keys import CaseKeys
from cases.models import Case, Entry

Change = Callable[[Case], Case]  # raises to refuse; returns the changed case


def number_of(case_id: str) -> int | None:
    """`E12`/`e12`/`12` -> 12; None when it is not a case number."""
    text = case_id.strip().upper().removeprefix("E")
    return int(text) if text.isdigit() and 0 < len(text) <= 9 else None


class CaseStore:
    """Create, read and change cases."""

    def __init__(self, redis: aioredis.Redis, keys: CaseKeys) -> None:
        self._redis = redis
        self._keys = keys

    async def next_id(self) -> str:
        return f"E{int(await self._redis.incr(self._keys.seq()))}"

    async def create(self, case: Case, entry: Entry) -> None:
        k, n = self._keys, case.number
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(k.case(n), case.to_json())
            pipe.rpush(k.timeline(n), entry.to_json())
            await pipe.execute()
        await self.index(case)

    async def index(self, case: Case) -> None:
        """Derived indexes: every node of the path below the root, the officers, the notice."""
        k, n = self._keys, str(case.number)
        async with self._redis.pipeline(transaction=False) as pipe:
            for code in case.path[1:] or case.path:
                pipe.zadd(k.under(code), {n: case.created_at})
                if case.status.open:
                    pipe.zadd(k.open_under(code), {n: case.respond_due})
                else:
                    pipe.zrem(k.open_under(code), n)
            for userid in {*case.officers, *case.escalated_to, case.handler} - {""}:
                pipe.zadd(k.mine(userid), {n: case.created_at})
            if case.notice:
                pipe.zadd(k.by_notice(case.notice), {n: case.created_at})
            await pipe.execute()

    async def get(self, case_id: str) -> Case | None:
        number = number_of(case_id)
        if number is None:
            return None
        raw = opt(await self._redis.get(self._keys.case(number)))
        return Case.from_json(raw) if raw else None

    async def many(self, numbers: Sequence[int]) -> list[Case]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for n in numbers:
                pipe.get(self._keys.case(n))
            raws = await pipe.execute()
        return [Case.from_json(raw) for raw in raws if raw]

    async def timeline(self, case: Case) -> list[Entry]:
        raws = slist(await self._redis.lrange(self._keys.timeline(case.number), 0, -1))
        return [Entry.from_json(raw) for raw in raws]

    async def update(self, case_id: str, change: Change, entry: Entry | None) -> Case | None:
        """Apply `change` atomically (retried on a concurrent write); None when no such case.
        Exceptions raised by `change` pass through and nothing is written."""
        number = number_of(case_id)
        if number is None:
            return None
        key, tl = self._keys.case(number), self._keys.timeline(number)
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    raw = opt(await pipe.get(key))
                    if not raw:
                        await pipe.unwatch()  # type: ignore[no-untyped-call]
                        return None
                    changed = change(Case.from_json(raw))
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.set(key, changed.to_json())
                    if entry is not None:
                        pipe.rpush(tl, entry.to_json())
                    await pipe.execute()
                    break
                except WatchError:
                    continue
        await self.index(changed)
        return changed

    async def add_entry(self, case: Case, entry: Entry) -> None:
        await self._redis.rpush(self._keys.timeline(case.number), entry.to_json())

    async def mark_once(self, case: Case, name: str) -> bool:
        return bool(await self._redis.hsetnx(self._keys.marks(case.number), name, "1"))

    async def numbers(self, key: str, start: float | str = "-inf", end: float | str = "+inf",
                      *, limit: int | None = None) -> list[int]:
        kwargs = {"start": 0, "num": limit} if limit else {}
        raws = await self._redis.zrangebyscore(key, start, end, **kwargs)  # type: ignore[arg-type]
        return [int(r) for r in slist(raws)]
