"""Redis persistence of 一标三实 records: the record, its history, dedupe keys and indexes.

The record (one string, Record.pack) is the source of truth. It and its history are written
together under a WATCH on the record (optimistic concurrency: a concurrent writer makes `save`
return False and the caller re-reads). Indexes are idempotent derived data written afterwards
and re-checked on read. Records of the earlier layout (a hash per record) are still read and
are rewritten packed on their next save or by `upgrade` (collect/upgrade.py).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import AsyncIterator, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError, WatchError

from bot.redis import cluster_of
from bot.rtypes import smap, text
from collect.clusterread import get_direct
from collect.keys import CollectKeys
from collect.models import HistoryEntry, Record, RecordKind, ReviewState, packed_state

_PENDING = "~"  # a claim whose record is being written; expires if the writer dies
_PENDING_MS = 10_000
WINDOW = 5  # batches of ids per ZRANGE of a scan


class ClaimBusyError(Exception):
    """Another writer is creating the record for this key right now; retry shortly."""


async def read_any(client: Any, key: str) -> tuple[Record | None, bool]:
    """(the record at `key` in either layout, whether it is packed), through `client` (a
    watching pipeline too)."""
    try:
        packed = await client.get(key)
    except ResponseError:  # WRONGTYPE: the earlier layout, a hash
        raw = smap(await client.hgetall(key))
        return (Record.from_redis(raw) if raw else None), False
    return (Record.unpack(text(packed)) if packed else None), True


async def earlier_history(client: Any, history_key: str, packed: bool) -> list[str]:
    """The entries of an earlier-layout history (a list), to move with its record."""
    return [] if packed else [text(e) for e in await client.lrange(history_key, 0, -1)]


def queue_history(pipe: Any, history_key: str, entries: Sequence[str], *,
                  replace: bool = False) -> None:
    """Append `entries` to the history (one string, an entry a line: entries are JSON, so
    hold no raw newline); `replace` drops an earlier-layout list first. The record and its
    history change layout together (save, rotation, upgrade), so a packed record's history
    is a string."""
    if replace:
        pipe.delete(history_key)
    if entries:
        pipe.append(history_key, "".join(entry + "\n" for entry in entries))


class RecordStore:
    """Typed access to records; knows keys and indexes, not validation or permissions."""

    def __init__(self, redis: aioredis.Redis, keys: CollectKeys) -> None:
        self._redis = redis
        self._keys = keys

    async def next_id(self, kind: RecordKind) -> str:
        number = await self._redis.incr(self._keys.seq(kind.value))
        return f"{kind.prefix}{number}"

    async def get(self, record_id: str) -> Record | None:
        found = await self.get_many([record_id])
        return found[0] if found else None

    async def get_many(self, record_ids: Sequence[str]) -> list[Record]:
        """Records in the order given, skipping ids whose record is gone (one round trip, a
        second only for records still in the earlier layout)."""
        keys = self._keys.records(record_ids)
        packed = await self._packed(keys)
        old = [key for key, value in zip(keys, packed, strict=True) if not isinstance(value, str)]
        hashes = dict(zip(old, await self._hashes(old), strict=True)) if old else {}
        out = []
        for key, value in zip(keys, packed, strict=True):
            if isinstance(value, str):
                out.append(Record.unpack(value))
            elif hashes.get(key):
                out.append(Record.from_redis(hashes[key]))
        return out

    async def _packed(self, keys: list[str]) -> list[object]:
        """The packed values of `keys` (None, or an error, where a key is absent or a hash).

        One MGET on one server; on a cluster every record is its own slot, so each primary's
        GETs at once on its own connection (collect/clusterread.py), or, when the client's
        slot map is out of date, a pipeline of GETs through the cluster client."""
        if not keys:
            return []
        cluster = cluster_of(self._redis)
        if cluster is None:
            return list(await self._redis.mget(keys))  # MGET answers nil for a hash
        direct = await get_direct(cluster, keys)
        if direct is not None:
            return direct
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.get(key)
            return list(await pipe.execute(raise_on_error=False))

    async def _hashes(self, keys: list[str]) -> list[dict[str, str]]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hgetall(key)
            return [smap(raw) for raw in await pipe.execute()]

    async def history(self, record_id: str) -> list[HistoryEntry]:
        key = self._keys.history(record_id)
        try:
            rows = text(await self._redis.get(key)).split("\n")[:-1]
        except ResponseError:  # WRONGTYPE: the earlier layout, a list
            rows = [text(row) for row in await self._redis.lrange(key, 0, -1)]
        return [HistoryEntry.from_json(row) for row in rows]

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
                current, packed = await read_any(pipe, key)
                if (current.version if current else 0) != expect_version:
                    return False
                history = self._keys.history(record.id)
                earlier = await earlier_history(pipe, history, packed)
                pipe.multi()  # type: ignore[no-untyped-call]
                pipe.set(key, record.pack())  # replaces an earlier-layout hash too
                queue_history(pipe, history, [*earlier, entry.to_json()], replace=not packed)
                await pipe.execute()
            except WatchError:
                return False
        return True

    async def reindex(self, record: Record, ancestors: Sequence[str],
                      old: Record | None = None, old_ancestors: Sequence[str] = ()) -> None:
        """Make the per-node indexes list `record` under every ancestor, in its current state.

        One index per node, kind and review state; the three states together are every
        record (no index of all states: it would hold every record a second time)."""
        kind, score = record.kind.value, record.updated_at
        async with self._redis.pipeline(transaction=False) as pipe:
            if old is not None:
                for node in old_ancestors:
                    pipe.zrem(self._keys.under(node, kind, old.state.value), record.id)
            for node in ancestors:
                pipe.zadd(self._keys.under(node, kind, record.state.value), {record.id: score})
            await pipe.execute()

    async def count(self, node: str, kind: RecordKind, state: ReviewState | None = None) -> int:
        states = [state] if state else list(ReviewState)
        async with self._redis.pipeline(transaction=False) as pipe:
            for one in states:
                pipe.zcard(self._keys.under(node, kind.value, one.value))
            return sum(int(n) for n in await pipe.execute())

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
        async for ids in self._scan_ids(node, kind, state, since, until, batch):
            records = await self.get_many(ids) if ids else []
            yield [r for r in records if state is None or r.state is state]

    async def scan_packed(self, node: str, kind: RecordKind, *, state: ReviewState | None = None,
                          since: float | None = None, until: float | None = None,
                          batch: int = 1000) -> AsyncIterator[list[str]]:
        """`scan` as packed strings, undecoded: the export's fast path, whose workers decode.
        A record that left `state` between the index read and its own is left out."""
        async for ids in self._scan_ids(node, kind, state, since, until, batch):
            packed = await self.get_packed(ids) if ids else []
            if state is not None:
                packed = [p for p in packed if packed_state(p) == state.value]
            yield packed

    async def get_packed(self, record_ids: Sequence[str]) -> list[str]:
        """Like get_many, as packed strings (records of the earlier layout packed here)."""
        packed = await self._packed(self._keys.records(record_ids))
        if all(isinstance(value, str) for value in packed):
            return packed  # type: ignore[return-value]
        records = await self.get_many(record_ids)  # some gone or in the earlier layout
        return [record.pack() for record in records]

    async def _scan_ids(self, node: str, kind: RecordKind, state: ReviewState | None,
                        since: float | None, until: float | None,
                        batch: int) -> AsyncIterator[list[str]]:
        """Ids of the records under `node` in [since, until] in `batch`es, oldest first: one
        state's index walked by rank, or (no state) the three merged by score."""
        if state is not None:
            key = self._keys.under(node, kind.value, state.value)
            async for members, _ in self._walk(key, since, until, batch * WINDOW,
                                               scores=False):
                for first in range(0, len(members), batch):
                    yield members[first:first + batch]
            return
        keys = [self._keys.under(node, kind.value, s.value) for s in ReviewState]
        merged: list[str] = []
        async for chunk in _merge([self._walk(key, since, until, batch * WINDOW, scores=True)
                                   for key in keys]):
            merged += chunk
            while len(merged) >= batch:
                yield merged[:batch]
                del merged[:batch]
        if merged:
            yield merged

    async def _walk(self, key: str, since: float | None, until: float | None, window: int,
                    *, scores: bool) -> AsyncIterator[tuple[list[str], list[float]]]:
        """(members, scores) of `key` in [since, until], `window` at a time, by rank
        between the ranks of `since` and `until` (found once, O(log N) each). Ids are read
        several batches at a time: a reader that asks for its next batch early (the export)
        then has the batch's records on the way at once. Without `scores`, scores are 0."""
        start = int(await self._redis.zcount(key, "-inf", f"({since}")) if since else 0
        end = int(await (self._redis.zcount(key, "-inf", until) if until is not None
                         else self._redis.zcard(key)))
        while start < end:
            stop = min(start + window, end) - 1
            if scores:
                rows: list[Any] = await self._redis.zrange(key, start, stop, withscores=True)
                members, marks = [text(m) for m, _ in rows], [float(s) for _, s in rows]
            else:
                members = [text(m) for m in await self._redis.zrange(key, start, stop)]
                marks = [0.0] * len(members)
            short = len(members) < stop - start + 1  # the reader may consume the lists
            yield members, marks
            if short:
                return
            start = stop + 1


async def _merge(walks: list[AsyncIterator[tuple[list[str], list[float]]]]
                 ) -> AsyncIterator[list[str]]:
    """Members of several score-ordered walks in one score order, a window at a time: every
    buffered member up to the lowest last buffered score of the walks not yet done (nothing
    unread can come before it), sorted together. States interleave in time, so merging
    member by member would cost a step per record."""
    scores: list[list[float]] = [[] for _ in walks]
    members: list[list[str]] = [[] for _ in walks]
    done = [False] * len(walks)
    while True:
        for i, walk in enumerate(walks):
            if not members[i] and not done[i]:
                try:
                    members[i], scores[i] = await anext(walk)
                except StopAsyncIteration:
                    done[i] = True
        live = [i for i in range(len(walks)) if members[i]]
        if not live:
            return
        bound = min((scores[i][-1] for i in live if not done[i]), default=float("inf"))
        marks: list[float] = []
        ready: list[str] = []
        for i in live:
            stop = bisect_right(scores[i], bound)
            marks += scores[i][:stop]
            ready += members[i][:stop]
            del scores[i][:stop], members[i][:stop]
        yield [member for _, member in sorted(zip(marks, ready, strict=True))]
