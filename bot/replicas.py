"""A script write that a replica has too before the caller acts on it (WAIT).

Redis acknowledges a write once the primary has it; replication is asynchronous. A primary
killed right after such a write is replaced by a replica that may never have received it, so
a record written "before" a side effect (the `submitted` record before a WeCom send) can
vanish, and the side effect happen twice (bench/chaos.py saw it: 2 groups in 10,000).

`eval_replicated` runs the script and `WAIT n timeout` back to back over ONE connection to
the primary that owns the key's slot (WAIT counts the replicas that acknowledged every write
made on its own connection). The caller acts only if the count reached `n`.

Cost: one more command in the same round trip, and the time the replica takes to
acknowledge (sub-millisecond on a LAN); while no replica answers, the caller waits up to the
timeout and must hold its side effect. `replicas_for` says whether to wait at all: on a
single Redis (no replicas) the write goes as before, with no extra round trip.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
import redis.asyncio.cluster as aiocluster
from redis.exceptions import MovedError, NoScriptError, SlotNotCoveredError

Arg = str | bytes | int | float


async def replicas_for(redis: aioredis.Redis | aiocluster.RedisCluster, key: str,
                       setting: int | None) -> int:
    """How many replicas must acknowledge a write of `key` (0: do not wait).

    `setting` None is automatic: 1 on a cluster whose slot of `key` has a replica (read from
    the client's slot map, no round trip once the client has it), 0 on a single Redis."""
    if setting is not None:
        return setting
    if isinstance(redis, aiocluster.RedisCluster):
        await redis.initialize()  # a fresh client has no slot map yet: it would read as 0
        if not _has_replica(redis, key) and _map_due(redis):
            # a map read during a failover shows the new primary alone, and the old primary
            # rejoins as its replica with no MOVED to tell us: without a re-read, every
            # later claim on those slots would skip its WAIT for good
            await redis.nodes_manager.initialize()
        return 1 if _has_replica(redis, key) else 0
    return 0


MAP_REREAD_S = 5.0  # while a slot shows no replica, its map is read again at most this often
_map_read: weakref.WeakKeyDictionary[aiocluster.RedisCluster, float] = (
    weakref.WeakKeyDictionary())


def _has_replica(redis: aiocluster.RedisCluster, key: str) -> bool:
    return len(redis.nodes_manager.slots_cache.get(redis.keyslot(key)) or []) > 1


def _map_due(redis: aiocluster.RedisCluster) -> bool:
    now = time.monotonic()
    if now - _map_read.setdefault(redis, now) < MAP_REREAD_S:
        return False
    _map_read[redis] = now  # before the await: concurrent claims re-read it once
    return True


async def eval_replicated(redis: aioredis.Redis | aiocluster.RedisCluster, script: str,
                          sha: str, keys: Sequence[str], args: Sequence[Arg], *,
                          replicas: int, timeout_ms: int) -> tuple[Any, int]:
    """Run `script` (EVALSHA, EVAL if not loaded) then WAIT on the same connection.

    Returns the script's reply and how many replicas acknowledged within `timeout_ms`."""
    replies = await _pipeline(redis, keys[0], [("EVALSHA", sha, len(keys), *keys, *args),
                                               ("WAIT", replicas, timeout_ms)])
    if isinstance(replies[0], MovedError) and isinstance(redis, aiocluster.RedisCluster):
        # the slot moved (a failover): nothing ran; learn the new map and ask its primary
        await redis.nodes_manager.initialize()
        replies = await _pipeline(redis, keys[0], [("EVALSHA", sha, len(keys), *keys, *args),
                                                   ("WAIT", replicas, timeout_ms)])
    if isinstance(replies[0], NoScriptError):  # a new primary after a failover: load it here
        replies = await _pipeline(redis, keys[0], [("EVAL", script, len(keys), *keys, *args),
                                                   ("WAIT", replicas, timeout_ms)])
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies[0], int(replies[1])


async def _pipeline(redis: aioredis.Redis | aiocluster.RedisCluster, key: str,
                    commands: list[tuple[Arg, ...]]) -> list[Any]:
    """`commands` in order over one connection to the primary of `key`; errors returned."""
    if isinstance(redis, aiocluster.RedisCluster):
        node = redis.get_node_from_key(key)
        if node is None:
            raise SlotNotCoveredError(f"槽位无节点：{key}")
        cmds = [aiocluster.PipelineCommand(i, *c) for i, c in enumerate(commands)]
        await node.execute_pipeline(cmds)
        return [c.result for c in cmds]
    async with redis.pipeline(transaction=False) as pipe:
        for c in commands:
            pipe.execute_command(*c)
        return list(await pipe.execute(raise_on_error=False))
