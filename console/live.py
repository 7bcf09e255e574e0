"""Live notice progress for server-sent events, through Redis pub/sub.

broadcasts' StateStore publishes on `bc:live:<notice>` whenever a pair of the notice moves.
Each console process holds one pattern subscription; a notice someone in this process is
watching is re-rendered at most every DEBOUNCE seconds (once, whatever the number of viewers)
and pushed to each viewer's queue, so any `serve` process can answer any viewer. The
subscription reconnects with backoff when Redis goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bot.health import LoopHealth

log = logging.getLogger("gridbot.console.live")
DEBOUNCE = 0.25  # real seconds: deliveries come in bursts; one render and push per burst
Render = Callable[[int], Awaitable[dict[str, Any] | None]]


@dataclass
class _Feed:
    queues: set[asyncio.Queue[str]] = field(default_factory=set)
    since: float = 0.0  # real time of the earliest change not yet pushed
    pending: asyncio.Task[None] | None = None


class LiveHub:
    def __init__(self, redis: aioredis.Redis, pattern: str, render: Render,
                 shrink: Callable[[dict[str, Any]], dict[str, Any]] = dict,
                 health: LoopHealth | None = None) -> None:
        self._redis = redis
        self._health = health or LoopHealth("console-live", float("inf"))
        self._pattern = pattern  # e.g. gridbot:bc:live:*
        self._prefix = pattern.rstrip("*")
        self._render = render
        self._shrink = shrink  # what of a render goes down the stream
        self._feeds: dict[int, _Feed] = {}
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for feed in self._feeds.values():
            if feed.pending is not None:
                feed.pending.cancel()

    def watch(self, notice_id: int) -> asyncio.Queue[str]:
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=1)
        self._feeds.setdefault(notice_id, _Feed()).queues.add(queue)
        return queue

    def unwatch(self, notice_id: int, queue: asyncio.Queue[str]) -> None:
        feed = self._feeds.get(notice_id)
        if feed is None:
            return
        feed.queues.discard(queue)
        if not feed.queues:
            if feed.pending is not None:
                feed.pending.cancel()
            del self._feeds[notice_id]

    async def _listen(self) -> None:
        self._health.started()
        try:
            while True:
                await self._subscribe()
        finally:
            self._health.stopped()

    async def _subscribe(self) -> None:
        try:
            async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                await pubsub.psubscribe(self._pattern)
                self.ready.set()
                self._health.ok()
                async for message in pubsub.listen():
                    self._changed(message)
        except (RedisError, OSError) as error:
            self.ready.clear()
            wait = self._health.failing(error)  # raises LoopGaveUpError past give_up_seconds
            log.warning("实时进度订阅中断（%s），%.1f 秒后重连", type(error).__name__, wait)
            await asyncio.sleep(wait)

    def _changed(self, message: dict[str, Any]) -> None:
        channel = str(message.get("channel", ""))
        try:
            notice_id = int(channel.removeprefix(self._prefix))
        except ValueError:
            return
        feed = self._feeds.get(notice_id)
        if feed is None:
            return
        at = _published_at(str(message.get("data", "")))
        feed.since = min(feed.since, at) if feed.since else at
        if feed.pending is None or feed.pending.done():
            feed.pending = asyncio.create_task(self._flush(notice_id, feed))

    async def _flush(self, notice_id: int, feed: _Feed) -> None:
        await asyncio.sleep(DEBOUNCE)
        since, feed.since = feed.since, 0.0
        try:
            payload = await self._render(notice_id)
        except (RedisError, OSError):
            log.warning("实时进度渲染失败（通知 #%s）", notice_id)
            return
        if payload is None:
            return
        # `since` first: a client may read it without parsing the whole page fragment
        push(feed.queues, json.dumps({"since": since, **self._shrink(payload)},
                                     ensure_ascii=False))


def push(queues: set[asyncio.Queue[str]], data: str) -> None:
    """Each viewer keeps only the newest update (a slow viewer skips, never piles up)."""
    for queue in list(queues):
        if queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                queue.get_nowait()
        queue.put_nowait(data)


def _published_at(data: str) -> float:
    try:
        return float(data.split()[1])
    except (IndexError, ValueError):
        return time.time()
