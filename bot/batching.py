"""Coalesce concurrent calls of one Lua script into pipelined round trips.

Under a burst (hundreds of callbacks acknowledged at once) a round trip per call costs more in
redis-py's per-command overhead and connection churn than the script itself. `ScriptBatcher`
collects the calls made within one event-loop tick and sends them as one non-transactional
pipeline of EVALSHA: each caller still gets its own result (or exception) and waits for exactly
one round trip, but the burst shares them. The script is loaded once; after a SCRIPT FLUSH or a
Redis restart the batch is retried once with the script reloaded.
"""

from __future__ import annotations

import asyncio
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
        self._sha = ""
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
        if not self._sha:
            self._sha = str(await self._redis.script_load(self._script))
        try:
            return await self._pipeline(calls)
        except NoScriptError:
            self._sha = str(await self._redis.script_load(self._script))
            return await self._pipeline(calls)

    async def _pipeline(self, calls: list[Call]) -> list[Any]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                pipe.evalsha(self._sha, len(keys), *keys, *args)
            results: list[Any] = await pipe.execute(raise_on_error=False)
        if any(isinstance(r, NoScriptError) for r in results):
            raise NoScriptError("script not loaded")
        return results
