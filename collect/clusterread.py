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
from collections.abc import Sequence

from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.exceptions import RedisError, ResponseError


class _Stale(Exception):
    """A node answered for a slot it does not own, or the connection failed."""


async def get_direct(cluster: RedisCluster, keys: Sequence[str]) -> list[object] | None:
    """The values of `keys` in order (None where absent, the error where WRONGTYPE), or None
    when the slot cache is out of date (the caller falls back to the cluster client)."""
    try:
        shares = _by_node(cluster, keys)
        parts = await asyncio.gather(*(_gets(node, [keys[i] for i in where])
                                       for node, where in shares))
    except (_Stale, RedisError, OSError):
        return None
    values: list[object] = [None] * len(keys)
    for (_, where), answers in zip(shares, parts, strict=True):
        for i, value in zip(where, answers, strict=True):
            values[i] = value
    return values


def _by_node(cluster: RedisCluster, keys: Sequence[str]) -> list[tuple[ClusterNode, list[int]]]:
    """The positions of `keys` grouped by the primary that owns each key's slot."""
    nodes = cluster.nodes_manager
    groups: dict[str, tuple[ClusterNode, list[int]]] = {}
    for i, key in enumerate(keys):
        node = nodes.get_node_from_slot(cluster.keyslot(key))
        group = groups.get(node.name)
        if group is None:
            group = groups[node.name] = (node, [])
        group[1].append(i)
    return list(groups.values())


async def _gets(node: ClusterNode, keys: list[str]) -> list[object]:
    """One node's GETs written at once on one of its connections, the replies read in order.
    A connection left with replies unread (an error, a cancelled export) is closed."""
    connection = node.acquire_connection()
    try:
        await connection.send_packed_command(
            connection.pack_commands([("GET", key) for key in keys]), check_health=False)
        answers: list[object] = []
        for _ in keys:
            try:
                answers.append(await connection.read_response())
            except ResponseError as error:
                if not str(error).startswith("WRONGTYPE"):
                    raise _Stale(str(error)) from error  # MOVED, ASK, CLUSTERDOWN, …
                answers.append(error)
    except BaseException:
        await asyncio.shield(connection.disconnect())
        raise
    finally:
        node.release(connection)
    return answers
