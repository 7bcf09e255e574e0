"""The claim and its WAIT go to the primary of the key's slot over one connection: on a real
three-master cluster with a replica each, a write comes back acknowledged and is on the
replica; with that replica stopped (SIGSTOP) WAIT answers 0. (A WAIT sent on any other
connection, one that wrote nothing, would answer 1 at once: only the write's own connection
waits for the write.)"""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import redis as syncredis
import redis.asyncio as aioredis

from bot import replicas
from bot.cluster import EmbeddedCluster
from bot.keys import Keys
from bot.redis import EmbeddedRedis, connect
from bot.replicas import eval_replicated, replicas_for
from broadcasts.keys import BroadcastKeys
from broadcasts.models import PairState
from broadcasts.state import Item, StateStore, unit_json
from tests.bot.support import wait_until

_SET = "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) return 1"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedCluster]:
    server = EmbeddedCluster(tmp_path_factory.mktemp("replicated"), replicas=1)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def crc(cluster: EmbeddedCluster) -> AsyncIterator[aioredis.Redis]:
    client = connect(cluster.url)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.aclose()


def replica_of(cluster: EmbeddedCluster, primary_port: int) -> EmbeddedRedis:
    for node in cluster.nodes:
        info = syncredis.Redis.from_url(node.url).info("replication")
        if info.get("role") == "slave" and int(info["master_port"]) == primary_port:
            return node
    raise AssertionError(f"no replica of {primary_port}")


def read_on(node: EmbeddedRedis, key: str, field: str) -> bytes | None:
    client = syncredis.Redis.from_url(node.url)
    client.execute_command("READONLY")
    value: bytes | None = client.hget(key, field)
    return value


async def test_write_and_wait_on_the_keys_primary(cluster: EmbeddedCluster,
                                                   crc: aioredis.Redis) -> None:
    for key in ("{bc:1}:pairs", "{bc:2}:pairs", "{bc:7}:pairs"):  # spread over primaries
        node = crc.get_node_from_key(key)  # type: ignore[attr-defined]
        assert await replicas_for(crc, key, None) == 1
        sha = await crc.script_load(_SET)
        reply, acks = await eval_replicated(crc, _SET, sha, [key], ["chat", "submitted"],
                                            replicas=1, timeout_ms=2000)
        assert reply == 1 and acks == 1
        assert read_on(replica_of(cluster, node.port), key, "chat") == b"submitted"


async def test_wait_answers_zero_while_the_replica_is_stopped(cluster: EmbeddedCluster,
                                                              crc: aioredis.Redis) -> None:
    keys = BroadcastKeys(Keys("gridbot"))
    store = StateStore(crc, keys, wait_timeout_ms=200)
    notice, chat = 41, "wr-chat"
    await crc.hset(keys.pairs(notice), chat, '{"s": "planned", "a": 0}')
    await crc.hset(keys.units(notice), "u", unit_json("o", [chat]))
    node = crc.get_node_from_key(keys.pairs(notice))  # type: ignore[attr-defined]
    replica = replica_of(cluster, node.port)
    assert replica.process is not None
    os.kill(replica.process.pid, signal.SIGSTOP)
    try:
        held = await store.transition(notice, [Item(chat)], [PairState.PLANNED],
                                      PairState.SUBMITTED, now=1.0, worker="w1", durable=True)
    finally:
        os.kill(replica.process.pid, signal.SIGCONT)
    assert held.moved == [chat] and not held.replicated
    back = await store.transition(notice, [Item(chat)], [PairState.SUBMITTED],
                                  PairState.PLANNED, now=2.0, fence="w1")
    assert back.moved == [chat]
    again = await store.transition(notice, [Item(chat)], [PairState.PLANNED],
                                   PairState.SUBMITTED, now=3.0, worker="w1", durable=True)
    assert again.moved == [chat] and again.replicated


async def test_a_fresh_client_waits_from_its_first_write(cluster: EmbeddedCluster) -> None:
    """A client that has sent nothing yet has no slot map: it must not read that as "no
    replicas" and skip the WAIT of its very first claim."""
    client = connect(cluster.url)
    try:
        assert await replicas_for(client, "{bc:3}:pairs", None) == 1
    finally:
        await client.aclose()


async def test_a_primary_back_as_replica_is_waited_for_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a failover the client's map shows the new primary alone; when the old primary
    comes back as its replica, no MOVED says so. Claims must find the replica again (the
    map is re-read while a slot shows none), or they would skip their WAIT for good."""
    monkeypatch.setattr(replicas, "MAP_REREAD_S", 0.2)
    cluster = EmbeddedCluster(tmp_path, replicas=1)
    cluster.start()
    client = connect(cluster.url)
    try:
        key = "{bc:5}:pairs"
        assert await replicas_for(client, key, None) == 1
        old = next(n for n in cluster.primaries
                   if n.port == client.get_node_from_key(key).port)  # type: ignore[attr-defined]
        heir = replica_of(cluster, old.port)
        assert old.process is not None
        old.process.kill()
        old.process.wait()
        await wait_until(lambda: answered(lambda: promoted(cluster, heir, old)), 30.0,
                         "the replica to take over")
        await client.nodes_manager.initialize()  # type: ignore[attr-defined]
        assert await replicas_for(client, key, None) == 0  # the new primary alone
        old.start()
        await wait_until(lambda: answered(lambda: back_as_replica(old)), 30.0,
                         "the old primary to rejoin as a replica")
        await wait_until(lambda: sees_a_replica(client, key), 10.0, "the client to see it")
        sha = await client.script_load(_SET)
        reply, acks = await eval_replicated(client, _SET, sha, [key], ["chat", "sent"],
                                            replicas=1, timeout_ms=2000)
        assert reply == 1 and acks == 1
        assert read_on(old, key, "chat") == b"sent"
    finally:
        await client.aclose()
        cluster.stop()


def promoted(cluster: EmbeddedCluster, heir: EmbeddedRedis, old: EmbeddedRedis) -> bool:
    """`heir` is primary, and no live node's slot map lists `old` any more (a node drops a
    failed replica from CLUSTER SLOTS once it has flagged it FAIL itself)."""
    client = syncredis.Redis.from_url(heir.url, decode_responses=True)
    if client.info("replication").get("role") != "master":
        return False
    for node in cluster.nodes:
        if node is not old:
            ranges = syncredis.Redis.from_url(node.url).execute_command("CLUSTER", "SLOTS")
            if any(n[1] == old.port for r in ranges for n in r[2:]):
                return False
    return True


def back_as_replica(node: EmbeddedRedis) -> bool:
    info = syncredis.Redis.from_url(node.url, decode_responses=True).info("replication")
    return bool(info.get("role") == "slave" and info.get("master_link_status") == "up")


async def answered(check: Callable[[], bool]) -> bool:
    """`check` of a node that may not answer yet (killed, restarting): False until it does."""
    try:
        return check()
    except syncredis.RedisError:
        return False


async def sees_a_replica(client: aioredis.Redis, key: str) -> bool:
    return await replicas_for(client, key, None) == 1
