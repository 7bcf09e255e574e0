"""Durable intake of callbacks, and the consumer group that hands them to the handlers.

Intake (`Inbox.put`) is one Lua script, one round trip: `SET seen-key NX PX ttl` and, only if
the key is new, `XADD` the event to the inbox stream (concurrent puts share pipelined round
trips, bot.batching). WeCom re-delivers a callback it did not
see acknowledged within 5 s (3 tries, wecom.md §3.1), so the dedupe key (MsgId, or sender +
time + event for events) makes every re-delivery a no-op, across restarts and processes.

The inbox is SHARDS streams (bot.keys: each shard's stream, dedupe keys, handled log and
markers share one hash tag), so a Redis Cluster spreads intake over its primaries. An event's
shard follows its sender: a re-delivery meets its dedupe key, and one sender's messages stay
in order in one stream. Every consumer reads every shard (one blocking reader per shard).

`InboxConsumer` reads the streams in a consumer group (one consumer name per process), runs
`bot.router.dispatch` under a concurrency bound, and then — in one Lua script — writes the
handled marker, appends to the handled log and XACKs. Messages of one sender are handled in
stream order within a process. Entries left pending by a dead process are taken over with
XAUTOCLAIM once idle for callback.claim_idle_seconds; a live consumer re-claims its in-flight
entries periodically so a slow handler is not taken over. Delivery to handlers is therefore
at-least-once: a handler interrupted by a crash runs again after the take-over; a handler that
completed is never re-run (marker + ack are atomic).

Nothing in clear at rest: the event is sealed (bot.seal, bound to its dedupe key) before it
enters the stream, and the entry is deleted in the script that acknowledges it, so what the
inbox keeps is bounded to the entries not handled yet; the handled log has no content.
A handler's exception is logged (personal numbers scrubbed), recorded as outcome "error",
and never stops the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
import traceback
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from bot.batching import ScriptBatcher
from bot.clock import Clock
from bot.context import Context
from bot.events import Event, event_from_json
from bot.health import LoopHealth
from bot.keys import Keys
from bot.masking import scrub
from bot.ratelog import RateLimitedLog
from bot.router import Router, dispatch
from bot.seal import Sealer
from bot.settings import CallbackSettings, Settings
from bot.wecom.errors import WeComAPIError

log = logging.getLogger(__name__)

GROUP = "handlers"
SHARDS = 4  # fixed: a sender's shard must not change while its entries wait
STREAM_MAXLEN = 100_000  # approximate cap; far above any realistic backlog of callbacks
READ_BLOCK_MS = 1000
READ_COUNT = 64
IDLE_CONSUMER_PRUNE_MS = 3_600_000
PRUNE_EVERY_SECONDS = 300.0

_PUT = """
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then
  return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*',
                    'key', ARGV[2], 'sealed', ARGV[3])
end
return false
"""

_FINISH = """
if redis.call('SET', KEYS[1], ARGV[4], 'NX', 'PX', ARGV[1]) then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[7], '*',
             'key', ARGV[2], 'kind', ARGV[3], 'outcome', ARGV[4], 'consumer', ARGV[8])
end
local acked = redis.call('XACK', KEYS[3], ARGV[5], ARGV[6])
redis.call('XDEL', KEYS[3], ARGV[6])
return acked
"""

ContextFactory = Callable[[str], Context]
QUIET_SECONDS = 60.0  # repeated handler errors: one record a minute per kind


def _where(error: BaseException) -> str:
    """file:line where the error was raised: errors of one bug share it."""
    frames = traceback.extract_tb(error.__traceback__)
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else ""


def inbox_sealer(settings: Settings) -> Sealer:
    """The sealer of inbox entries (bot.seal): every process derives the same one."""
    return Sealer(settings.wecom.encoding_aes_key.get_secret_value(), "inbox")


class Inbox:
    """Puts parsed callback events into the durable inbox, once per dedupe key."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, clock: Clock,
                 settings: CallbackSettings, sealer: Sealer) -> None:
        self._keys = keys
        self._sealer = sealer
        self._ttl_ms = clock.real_ms(settings.dedupe_ttl)
        self._put = ScriptBatcher(redis, _PUT)  # concurrent callbacks share round trips

    async def put(self, event: Event) -> str | None:
        """The new entry's id ("<shard>/<stream id>"), or None when this event was already
        received (a re-delivery)."""
        key, shard = event.dedupe_key, shard_of(event.sender)
        entry = await self._put([self._keys.dedupe(key, shard), self._keys.inbox(shard)],
                                [self._ttl_ms, key, self._sealer.seal(event.to_json(), key),
                                 STREAM_MAXLEN])
        return f"{shard}/{entry}" if entry else None


def shard_of(sender: str) -> int:
    """The inbox shard of a sender's events."""
    return zlib.crc32(sender.encode()) % SHARDS


def _split(entry: str) -> tuple[int, str]:
    shard, _, stream_id = entry.partition("/")
    return int(shard), stream_id


@dataclass(frozen=True, slots=True)
class HandledRecord:
    """One line of the handled log."""

    id: str
    key: str
    kind: str
    outcome: str  # ok | unhandled | error | invalid
    consumer: str


async def handled_records(redis: aioredis.Redis, keys: Keys, count: int = 10_000
                          ) -> list[HandledRecord]:
    """The handled-message record of every shard, oldest first (for tests, the demo and
    operators)."""
    pipe = redis.pipeline(transaction=False)
    for shard in range(SHARDS):
        pipe.xrange(keys.handled(shard), count=count)
    replies: list[Any] = await pipe.execute()
    records = [HandledRecord(str(i), f.get("key", ""), f.get("kind", ""), f.get("outcome", ""),
                             f.get("consumer", "")) for rows in replies for i, f in rows or []]
    records.sort(key=lambda r: tuple(int(part) for part in r.id.split("-")))
    return records[-count:] if len(records) > count else records


def consumer_name() -> str:
    """A consumer name unique to this process and instance."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class InboxConsumer:
    """Reads the inbox stream in a consumer group and dispatches each event once."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, clock: Clock,
                 settings: CallbackSettings, routers: Sequence[Router],
                 make_context: ContextFactory, *, sealer: Sealer, name: str = "",
                 health: LoopHealth | None = None) -> None:
        self._sealer = sealer
        self.name = name or consumer_name()
        self.health = health or LoopHealth("inbox", 300.0)
        self._redis = redis
        self._keys = keys
        self._routers = tuple(routers)
        self._make_context = make_context
        self._ttl_ms = clock.real_ms(settings.dedupe_ttl)
        self._idle_ms = clock.real_ms(settings.claim_idle_seconds)
        self._capacity = settings.handler_concurrency
        self._next_prune = 0.0
        self._finish = redis.register_script(_FINISH)
        self._senders = _KeyedLocks()
        self._quiet = RateLimitedLog(log, every=QUIET_SECONDS)
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._stopping = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None

    async def ensure_group(self) -> None:
        """Create the consumer group (and the stream) unless it exists."""
        for shard in range(SHARDS):
            with contextlib.suppress(ResponseError):  # BUSYGROUP: another process made it
                await self._redis.xgroup_create(self._keys.inbox(shard), GROUP, id="0",
                                                mkstream=True)

    def start(self) -> None:
        """Run the consume loop in a background task (stop() ends it)."""
        self._loop = asyncio.create_task(self.run(), name=f"inbox-consumer {self.name}")
        self._loop.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self._stopping.is_set():
            self.health.stopped()
            return
        error = task.exception()
        log.error("收件箱消费循环意外结束: %s", type(error).__name__ if error else "无错误")
        self.health.gave_up()

    async def run(self) -> None:
        """Consume until stop(): a reader and a keeper (heartbeat, take-over) side by side."""
        self.health.started()
        await self._guarded(self.ensure_group)
        await asyncio.gather(*(self._read_loop(shard) for shard in range(SHARDS)),
                             self._keep_loop())

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop reading, let in-flight handlers finish for up to `timeout` real seconds.

        Entries read but not yet started stay pending in Redis and are taken over later."""
        self._stopping.set()
        if self._loop is not None:
            self._loop.cancel()  # interrupts the blocking XREADGROUP at once
            await asyncio.gather(self._loop, return_exceptions=True)
        tasks = list(self._inflight.values())
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:  # left pending in Redis: another process takes them over
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait until no handler is running (tests and the demo)."""
        deadline = time.monotonic() + timeout
        while self._inflight and time.monotonic() < deadline:
            await asyncio.wait(list(self._inflight.values()), timeout=0.05)

    async def _read_loop(self, shard: int) -> None:
        while not self._stopping.is_set():
            if self._room() <= 0:  # every slot busy: back-pressure, the keeper keeps beating
                await asyncio.sleep(0.05)
                continue
            await self._guarded(lambda: self._read_new(shard))

    async def _keep_loop(self) -> None:
        interval = max(0.05, self._idle_ms / 3000)  # heartbeat well within claim_idle
        while not self._stopping.is_set():
            await self._guarded(self._keep)
            await asyncio.sleep(interval)

    async def _guarded(self, step: Callable[[], Awaitable[None]]) -> None:
        """Run one step; Redis errors are logged and retried with backoff (Redis restarting
        is a passing fault) until the loop has failed for give_up_seconds."""
        try:
            await step()
            self.health.ok()
        except RedisError as error:
            # NOGROUP: the stream was deleted (FLUSHDB, or a restart that lost it)
            with contextlib.suppress(RedisError):
                if "NOGROUP" in str(error):
                    await self.ensure_group()
                    return
            log.warning("收件箱读写失败，稍后重试: %s", type(error).__name__)
            await self.health.backoff(error)

    def _room(self) -> int:
        return self._capacity - len(self._inflight)

    async def _read_new(self, shard: int) -> None:
        """Blocking read of one shard; each shard's reader takes a share of the free room."""
        count = max(1, min(READ_COUNT, self._room()) // SHARDS)
        reply: Any = await self._redis.xreadgroup(
            GROUP, self.name, {self._keys.inbox(shard): ">"}, count=count, block=READ_BLOCK_MS)
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                self._start(f"{shard}/{entry_id}", fields)

    async def _keep(self) -> None:
        await self._heartbeat()
        await self._take_over()
        if time.monotonic() >= self._next_prune:
            await self._prune_consumers()
            self._next_prune = time.monotonic() + PRUNE_EVERY_SECONDS

    async def _take_over(self) -> None:
        """XAUTOCLAIM entries idle longer than claim_idle_seconds (their consumer died)."""
        for shard in range(SHARDS):
            start = "0-0"
            while self._room() > 0:
                reply: Any = await self._redis.xautoclaim(
                    self._keys.inbox(shard), GROUP, self.name, self._idle_ms, start_id=start,
                    count=min(READ_COUNT, self._room()))
                start, entries = str(reply[0]), reply[1]
                for entry_id, fields in entries:
                    log.info("接管超时未确认的消息 %s/%s", shard, entry_id)
                    self._start(f"{shard}/{entry_id}", fields)
                if start == "0-0" or not entries:
                    break

    async def _heartbeat(self) -> None:
        """Reset the idle time of our in-flight entries so nobody takes them over."""
        by_shard: dict[int, list[str]] = {}
        for entry in self._inflight:
            shard, stream_id = _split(entry)
            by_shard.setdefault(shard, []).append(stream_id)
        for shard, ids in by_shard.items():
            await self._redis.xclaim(self._keys.inbox(shard), GROUP, self.name, 0,
                                     list[Any](ids), justid=True)

    async def _prune_consumers(self) -> None:
        for shard in range(SHARDS):
            stream = self._keys.inbox(shard)
            consumers: Any = await self._redis.xinfo_consumers(stream, GROUP)
            for consumer in consumers:
                if (consumer["name"] != self.name and int(consumer["pending"]) == 0
                        and int(consumer["idle"]) > IDLE_CONSUMER_PRUNE_MS):
                    await self._redis.xgroup_delconsumer(stream, GROUP, consumer["name"])

    def _start(self, entry_id: str, fields: dict[str, str] | None) -> None:
        if entry_id in self._inflight:
            return
        task = asyncio.create_task(self._process(entry_id, fields or {}))
        self._inflight[entry_id] = task  # heart-beaten from now on
        task.add_done_callback(lambda _t: self._inflight.pop(entry_id, None))

    async def _process(self, entry_id: str, fields: dict[str, str]) -> None:
        try:
            await self._process_entry(entry_id, fields)
        except RedisError as error:  # stays pending: taken over after claim_idle_seconds
            log.warning("消息 %s 未能确认: %s", entry_id, type(error).__name__)

    async def _process_entry(self, entry_id: str, fields: dict[str, str]) -> None:
        key = fields.get("key", "")
        try:
            raw = (self._sealer.open(fields["sealed"], key) if "sealed" in fields
                   else fields["event"])  # an entry queued before sealing came in
            event = event_from_json(raw)
        except (KeyError, ValueError, TypeError):
            log.error("收件箱条目 %s 无法解析，已跳过", entry_id)
            await self._settle(entry_id, key or f"invalid:{entry_id}", "invalid", "invalid")
            return
        async with self._senders.hold(event.sender):
            if await self._redis.exists(self._keys.handled_marker(key, _split(entry_id)[0])):
                await self._settle(entry_id, key, event.kind, "duplicate")
                return
            outcome = await self._dispatch(event, key)
            await self._settle(entry_id, key, event.kind, outcome)

    async def _dispatch(self, event: Event, key: str) -> str:
        started = time.monotonic()
        try:
            handled = await dispatch(self._routers, event, self._make_context(key))
        except WeComAPIError as error:  # an expected refusal (e.g. a user outside the app's
            # visible range): one line, not a traceback, and not once per message
            self._quiet.log(logging.WARNING, f"wecom:{error.api}:{error.errcode}",
                       "处理消息 %s 时企业微信拒绝：%s", key, scrub(str(error)))
            return "error"
        except Exception as error:
            # scrubbed here, not only by bot.log's filter: handlers put personal data in errors
            trace = "".join(traceback.format_exception(error))
            self._quiet.log(logging.ERROR, f"{type(error).__name__}:{_where(error)}",
                       "处理消息 %s 出错\n%s", key, scrub(trace))
            return "error"
        outcome = "ok" if handled else "unhandled"
        log.info("✓ %s %s %s %.0fms", event.kind, key, outcome,
                 (time.monotonic() - started) * 1000)
        return outcome

    async def _settle(self, entry_id: str, key: str, kind: str, outcome: str) -> None:
        shard, stream_id = _split(entry_id)
        k = self._keys
        await self._finish(
            keys=[k.handled_marker(key, shard), k.handled(shard), k.inbox(shard)],
            args=[self._ttl_ms, key, kind, outcome, GROUP, stream_id, STREAM_MAXLEN, self.name],
        )



class _KeyedLocks:
    """One FIFO lock per key, forgotten when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)
