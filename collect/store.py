"""Redis persistence of 一标三实 records: the record hash, its history, dedupe keys and indexes.

The record hash is the source of truth. It and its history are written together under a WATCH
on the record (optimistic concurrency: a concurrent writer makes `save` return False and the
caller re-reads). Indexes are idempotent derived data written afterwards and re-checked on read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import WatchError

from bot.rtypes import hmapping, smap, text
from collect.keys import CollectKeys
from collect.models import HistoryEntry, Record, RecordKind, ReviewState

_PENDING = "~"  # a claim whose record is being written; expires if the writer dies
_PENDING_MS = 10_000


class ClaimBusyError(Exception):
    """Another writer is creating the record for this key right now; retry shortly."""


class RecordStore:
    """Typed access to records; knows keys and indexes, not validation or permissions."""

    def __init__(self, redis: aioredis.Redis, keys: CollectKeys) -> None:
        self._redis = redis
        self._keys = keys

    async def next_id(self, kind: RecordKind) -> str:
        number = await self._redis.incr(self._keys.seq(kind.value))
        return f"{kind.prefix}{number}"

    async def get(self, record_id: str) -> Record | None:
        raw = smap(await self._redis.hgetall(self._keys.record(record_id)))
        return Record.from_redis(raw) if raw else None

    async def get_many(self, record_ids: Sequence[str]) -> list[Record]:
        """Records in the order given, skipping ids whose record is gone (one round trip)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for record_id in record_ids:
                pipe.hgetall(self._keys.record(record_id))
            rows = await pipe.execute()
        return [Record.from_redis(smap(raw)) for raw in rows if raw]

    async def history(self, record_id: str) -> list[HistoryEntry]:
        rows = await self._redis.lrange(self._keys.history(record_id), 0, -1)
        return [HistoryEntry.from_json(text(row)) for row in rows]

    async def lookup(self, key: str) -> str | None:
        """The record id a dedupe key (blind index, address key, USCC) points to."""
        value = await self._redis.get(key)
        return str(value) if value and not str(value).startswith(_PENDING) else None

    async def claim(self, key: str, record_id: str) -> str | None:
        """Reserve `key` for a new record; returns the id of the live record holding it instead.

        The reservation is a short-lived marker (it expires if the writer dies before
        `confirm`), so two simultaneous first submissions of one person create one record.
        """
        marker = _PENDING + record_id
        if await self._redis.set(key, marker, nx=True, px=_PENDING_MS):
            return None
        current = await self._redis.get(key)
        if current is None:
            return await self.claim(key, record_id)
        if str(current).startswith(_PENDING):
            raise ClaimBusyError(key)
        return str(current)

    async def confirm(self, key: str, record_id: str) -> None:
        """Make a reservation permanent once the record is saved (or point a key at a record)."""
        await self._redis.set(key, record_id)

    async def release(self, key: str, record_id: str) -> None:
        """Drop `key` if it still points at `record_id` (a corrected number frees the old one)."""
        if await self._redis.get(key) == record_id:
            await self._redis.delete(key)

    async def save(self, record: Record, entry: HistoryEntry, *, expect_version: int) -> bool:
        """Write `record` (its version must be expect_version + 1) and append `entry`."""
        key = self._keys.record(record.id)
        async with self._redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(key)
                current = text(await pipe.hget(key, "version"))
                if int(current or 0) != expect_version:
                    return False
                pipe.multi()  # type: ignore[no-untyped-call]
                pipe.hset(key, mapping=hmapping(record.to_redis()))
                pipe.rpush(self._keys.history(record.id), entry.to_json())
                await pipe.execute()
            except WatchError:
                return False
        return True

    async def reindex(self, record: Record, ancestors: Sequence[str],
                      old: Record | None = None, old_ancestors: Sequence[str] = ()) -> None:
        """Make the per-node indexes list `record` under every ancestor, in its current state."""
        kind, score = record.kind.value, record.updated_at
        async with self._redis.pipeline(transaction=False) as pipe:
            if old is not None:
                for node in old_ancestors:
                    if node not in ancestors:
                        pipe.zrem(self._keys.under(node, kind), record.id)
                    pipe.zrem(self._keys.under(node, kind, old.state.value), record.id)
            for node in ancestors:
                pipe.zadd(self._keys.under(node, kind), {record.id: score})
                pipe.zadd(self._keys.under(node, kind, record.state.value), {record.id: score})
            await pipe.execute()

    async def count(self, node: str, kind: RecordKind, state: ReviewState | None = None) -> int:
        key = self._keys.under(node, kind.value, state.value if state else "")
        return int(await self._redis.zcard(key))

    async def newest(self, node: str, kind: RecordKind, state: ReviewState,
                     limit: int) -> list[str]:
        rows = await self._redis.zrevrange(self._keys.under(node, kind.value, state.value),
                                           0, limit - 1)
        return [str(r) for r in rows]

    async def scan(self, node: str, kind: RecordKind, *, state: ReviewState | None = None,
                   since: float | None = None, until: float | None = None,
                   batch: int = 1000) -> AsyncIterator[list[Record]]:
        """Batches of records under `node` changed in [since, until], oldest first.

        Walks the index by rank (ZRANGE start..stop is O(log N + batch)), so memory stays one
        batch whatever the count, and re-checks each record's state against the filter.
        """
        key = self._keys.under(node, kind.value, state.value if state else "")
        start = int(await self._redis.zcount(key, "-inf", f"({since}")) if since else 0
        limit = float("inf") if until is None else until
        while True:
            rows = cast("list[tuple[Any, float]]", await self._redis.zrange(
                key, start, start + batch - 1, withscores=True))
            ids = [text(member) for member, score in rows if score <= limit]
            records = await self.get_many(ids) if ids else []
            yield [r for r in records if state is None or r.state is state]
            if len(rows) < batch or len(ids) < len(rows):
                return
            start += batch
