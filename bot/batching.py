"""Coalesce concurrent calls of one Lua script into pipelined round trips.

Under a burst (hundreds of callbacks acknowledged at once) a round trip per call costs more in
redis-py's per-command overhead and connection churn than the script itself. `ScriptBatcher`
collects the calls made within one event-loop tick and sends them as one non-transactional
pipeline of EVALSHA: each caller still gets its own result (or exception) and waits for exactly
one round trip, but the burst shares them. Calls refused with NOSCRIPT (first use, a SCRIPT
FLUSH, a Redis restart, a cluster primary that never saw the script) are retried once with the
script loaded on every primary (`eval_many`).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

Call = tuple[Sequence[str], Sequence[Any]]  # (keys, args)
MAX_BATCH = 256


class ScriptBatcher:
    """`await batcher(keys, args)` runs the script, batched with concurrent callers."""

    def __init__(self, redis: aioredis.Redis, script: str) -> None:
        self._redis = redis
        self._script = script
        self._sha = hashlib.sha1(script.encode()).hexdigest()  # the id Redis gives it
        self._pending: list[tuple[Call, asyncio.Future[Any]]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def __call__(self, keys: Sequence[str], args: Sequence[Any]) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append(((keys, args), future))
        if len(self._pending) == 1:  # first caller of this tick schedules the flush
            asyncio.get_running_loop().call_soon(self._flush_soon)
        elif len(self._pending) >= MAX_BATCH:
            self._flush_soon()
        return await future

    def _flush_soon(self) -> None:
        batch, self._pending = self._pending, []
        if batch:
            task = asyncio.create_task(self._flush(batch))
            self._tasks.add(task)  # strong reference until done
            task.add_done_callback(self._tasks.discard)

    async def _flush(self, batch: list[tuple[Call, asyncio.Future[Any]]]) -> None:
        try:
            results = await self._run([call for call, _ in batch])
        except Exception as error:  # every caller of the batch sees the failure
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():  # the caller went away (request cancelled)
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def _run(self, calls: list[Call]) -> list[Any]:
        return await eval_many(self._redis, self._script, self._sha, calls)


async def eval_many(redis: aioredis.Redis, script: str, sha: str, calls: Sequence[Call]
                    ) -> list[Any]:
    """EVALSHA `script` once per (keys, args) in one non-transactional pipeline; each result
    or the exception of that call, in order.

    A server that does not know the script (restarted, flushed, or a cluster primary the
    script was never loaded on: a cluster pipeline loads nothing itself) refuses just its
    calls, which therefore did not run: the script is loaded on every primary and only those
    calls are sent again, so none runs twice.
    """
    results: list[Any] = [None] * len(calls)
    todo = list(range(len(calls)))
    for _ in range(2):
        async with redis.pipeline(transaction=False) as pipe:
            for i in todo:
                keys, args = calls[i]
                pipe.evalsha(sha, len(keys), *keys, *args)
            replies: list[Any] = await pipe.execute(raise_on_error=False)
        refused = []
        for i, reply in zip(todo, replies, strict=True):
            if isinstance(reply, NoScriptError):
                refused.append(i)
            results[i] = reply
        if not refused:
            return results
        await redis.script_load(script)  # on a cluster: every primary
        todo = refused
    return results
