"""GETs of many single-key slots on a Redis Cluster, each primary's share sent at once.

redis-py's cluster pipeline costs about 15 µs of client CPU per command (a command object,
a slot and node lookup and a result check each), which capped the export at ~15k rows/s.
Here the keys are grouped by the primary that owns their slot in the client's slot cache,
and each primary's GETs go as one packed write on one of that node's own connections, its
replies read in order; the nodes are read in parallel.

The slot cache may be stale (a failover, a resharding): any reply but a value or WRONGTYPE
(the earlier layout's hashes, which the caller reads another way), or any connection error,
makes `get_direct` answer None, and the caller reads the batch through the cluster client,
which follows MOVED/ASK and refreshes its map.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import Any

from redis._parsers.hiredis import NOT_ENOUGH_DATA, _AsyncHiredisParser
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import Connection
from redis.crc import key_slot
from redis.exceptions import RedisError, ResponseError

DEFAULT_TIMEOUT = 10.0  # seconds for a node's replies when the client sets no socket timeout


class _Stale(Exception):
    """A node answered for a slot it does not own, or the connection failed."""


async def get_direct(cluster: RedisCluster, keys: Sequence[str]) -> list[object] | None:
    """The values of `keys` in order (None where absent, the error where WRONGTYPE), or None
    when the slot cache is out of date (the caller falls back to the cluster client)."""
    try:
        shares = _by_node(cluster, keys)
        parts = await asyncio.gather(*(_gets(node, raw) for node, _, raw in shares))
    except (_Stale, RedisError, OSError):
        return None
    values: list[object] = [None] * len(keys)
    for (_, where, _), answers in zip(shares, parts, strict=True):
        for i, value in zip(where, answers, strict=True):
            values[i] = value
    return values


Share = tuple[ClusterNode, list[int], list[bytes]]  # a primary, positions, the keys encoded


def _by_node(cluster: RedisCluster, keys: Sequence[str]) -> list[Share]:
    """`keys` grouped by the primary that owns each key's slot in the client's slot cache
    (read directly: get_node_from_slot's checks cost more than the lookup, per key)."""
    slots = cluster.nodes_manager.slots_cache
    groups: dict[str, Share] = {}
    for i, key in enumerate(keys):
        raw = key.encode()
        owners = slots.get(key_slot(raw))
        if not owners:
            raise _Stale(f"no node holds the slot of {key}")
        node = owners[0]
        group = groups.get(node.name)
        if group is None:
            group = groups[node.name] = (node, [], [])
        group[1].append(i)
        group[2].append(raw)
    return list(groups.values())


async def _gets(node: ClusterNode, keys: list[bytes]) -> list[object]:
    """One node's GETs written at once on one of its connections, the replies read in order
    under one time limit (redis-py's own per-reply limit costs more than the reply).
    A connection left with replies unread (an error, a cancelled export) is closed."""
    connection = node.acquire_connection()
    limit = node.connection_kwargs.get("socket_timeout") or DEFAULT_TIMEOUT
    try:
        await connection.send_packed_command(_pack_gets(keys), check_health=False)
        async with asyncio.timeout(limit):
            answers = await _answers(connection, len(keys))
    except BaseException:
        await asyncio.shield(connection.disconnect())
        raise
    finally:
        node.release(connection)
    return answers


async def _answers(connection: Connection, count: int) -> list[object]:
    """`count` replies: taken from the hiredis reader as they come, a socket read whenever it
    runs dry (a read_response per reply costs more than the reply), or one by one when the
    connection parses in Python."""
    parser = connection._parser
    reader: Any = getattr(parser, "_reader", None)
    if not isinstance(parser, _AsyncHiredisParser) or reader is None:
        return [await _answer(connection) for _ in range(count)]
    answers: list[object] = []
    while len(answers) < count:
        reply = reader.gets()
        if reply is NOT_ENOUGH_DATA:
            await parser.read_from_socket()  # type: ignore[no-untyped-call]
        elif isinstance(reply, Exception):  # hiredis hands errors back, not raised
            answers.append(_wrongtype(reply))
        else:
            answers.append(reply)
    return answers


def _wrongtype(error: Exception) -> ResponseError:
    if isinstance(error, ResponseError) and str(error).startswith("WRONGTYPE"):
        return error
    raise _Stale(str(error))  # MOVED, ASK, CLUSTERDOWN, …


async def _answer(connection: Connection) -> object:
    try:
        return await connection.read_response(timeout=math.inf)  # the caller's limit
    except ResponseError as error:
        if str(error).startswith("WRONGTYPE"):
            return error
        raise _Stale(str(error)) from error  # MOVED, ASK, CLUSTERDOWN, …


def _pack_gets(keys: list[bytes]) -> bytes:
    """GET commands in RESP (redis-py's packer costs a few µs a command)."""
    return b"".join([b"*2\r\n$3\r\nGET\r\n$%d\r\n%b\r\n" % (len(key), key)
                     for key in keys])
