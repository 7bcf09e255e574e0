"""A real Redis Cluster started from the embedded redis-server binary, and its health.

`EmbeddedCluster` starts `masters` primaries (and `replicas` replicas of each) with
`cluster-enabled yes`, assigns the 16384 slots evenly (CLUSTER ADDSLOTS), joins the nodes
(CLUSTER MEET), attaches replicas (CLUSTER REPLICATE) and waits until every node reports
`cluster_state:ok`. It needs no redis-cli. The tests (GRIDBOT_TEST_REDIS=cluster) and the
benches (bench/chaos.py, bench/province.py) use it; production points `redis.url` at its own
cluster.
"""

from __future__ import annotations

import random
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import redis.asyncio as aioredis

from bot.redis import EmbeddedRedis, RedisUnavailableError, cluster_of, cluster_url

SLOTS = 16384
BUS_OFFSET = 10000
NODE_TIMEOUT_MS = 1500  # a dead primary is replaced by its replica within ~2–3 s


def free_cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too."""
    for _ in range(200):
        port = random.randint(20000, 40000)
        if all(_port_free(p) for p in (port, port + BUS_OFFSET)):
            return port
    raise RedisUnavailableError("找不到空闲端口启动 Redis 集群")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _wait(what: str, ready: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.05)
    raise RedisUnavailableError(f"Redis 集群未能在时限内{what}")


def _client(node: EmbeddedRedis) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=node.port, socket_timeout=5,
                       decode_responses=True)


def _command(client: redis.Redis, *args: Any) -> Any:
    return client.execute_command(*args)  # type: ignore[no-untyped-call]


def _info(node: EmbeddedRedis) -> dict[str, str]:
    try:
        return _parse_info(_command(_client(node), "CLUSTER", "INFO"))
    except redis.RedisError:
        return {}


@dataclass
class EmbeddedCluster:
    """`masters` primaries with `replicas` replicas each, on loopback, data under `data_dir`."""

    data_dir: Path
    masters: int = 3
    replicas: int = 0
    appendfsync: str = "everysec"
    nodes: list[EmbeddedRedis] = field(default_factory=list, init=False)

    @property
    def url(self) -> str:
        return cluster_url(self.nodes[0].url)

    @property
    def primaries(self) -> list[EmbeddedRedis]:
        return self.nodes[: self.masters]

    def start(self, timeout: float = 30.0) -> str:
        """Start, form and wait for the cluster; returns its `redis+cluster://` URL."""
        for index in range(self.masters * (1 + self.replicas)):
            port = free_cluster_port()
            node = EmbeddedRedis(
                self.data_dir / f"node{index}", port=port, appendfsync=self.appendfsync,
                extra_args=("--cluster-enabled", "yes",
                            "--cluster-config-file", f"nodes-{port}.conf",
                            "--cluster-node-timeout", str(NODE_TIMEOUT_MS)),
            )
            self.nodes.append(node)
            node.start()
        try:
            self._form(timeout)
        except BaseException:
            self.stop()
            raise
        return self.url

    def _form(self, timeout: float) -> None:
        share = SLOTS // self.masters
        for index, node in enumerate(self.primaries):
            end = SLOTS if index == self.masters - 1 else (index + 1) * share
            _command(_client(node), "CLUSTER", "ADDSLOTS", *range(index * share, end))
        first = _client(self.nodes[0])
        for node in self.nodes[1:]:
            _command(first, "CLUSTER", "MEET", "127.0.0.1", node.port)
        _wait("连通", lambda: all(_info(n).get("cluster_known_nodes") == str(len(self.nodes))
                                  for n in self.nodes), timeout)
        for index, node in enumerate(self.nodes[self.masters:]):
            primary = self.primaries[index % self.masters]
            node_id = str(_command(_client(primary), "CLUSTER", "MYID"))
            _command(_client(node), "CLUSTER", "REPLICATE", node_id)
        _wait("就绪", lambda: all(_info(n).get("cluster_state") == "ok" for n in self.nodes),
              timeout)
        if self.replicas:
            # state ok comes before every node's slot map lists the new replicas and before
            # they sync: a client reading the map then sees a primary alone and skips WAIT
            _wait("完成副本同步", self._replicas_ready, timeout)

    def _replicas_ready(self) -> bool:
        for node in self.nodes[self.masters:]:
            try:
                info = _client(node).info("replication")
            except redis.RedisError:
                return False
            if info.get("master_link_status") != "up":
                return False
        return all(_serving(node) == 1 + self.replicas for node in self.nodes)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


async def redis_health(client: aioredis.Redis) -> dict[str, Any]:
    """What a health check reports about Redis: for one server `{"mode": "single", "ok"}`;
    for a cluster its state as a node sees it (slots assigned / ok / failing, nodes and
    primaries known); `ok` is False while any slot is unserved or Redis is unreachable."""
    if cluster_of(client) is None:
        try:
            return {"mode": "single", "ok": bool(await client.ping())}
        except (redis.RedisError, OSError) as error:
            return {"mode": "single", "ok": False, "error": type(error).__name__}
    try:
        raw = await client.execute_command("CLUSTER", "INFO")  # type: ignore[no-untyped-call]
    except (redis.RedisError, OSError) as error:
        return {"mode": "cluster", "ok": False, "error": type(error).__name__}
    info = _parse_info(raw)
    report: dict[str, Any] = {"mode": "cluster", "state": info.get("cluster_state", "unknown")}
    for name in ("slots_assigned", "slots_ok", "slots_pfail", "slots_fail", "known_nodes"):
        report[name] = int(info.get(f"cluster_{name}", 0))
    report["primaries"] = int(info.get("cluster_size", 0))
    report["ok"] = report["state"] == "ok" and report["slots_ok"] == SLOTS
    return report


def _serving(node: EmbeddedRedis) -> int:
    """The fewest nodes (primary and replicas) any slot range has in `node`'s CLUSTER SLOTS."""
    try:
        ranges = _command(_client(node), "CLUSTER", "SLOTS")
    except redis.RedisError:
        return 0
    return min((len(r) - 2 for r in ranges), default=0)


def _parse_info(raw: Any) -> dict[str, str]:
    """CLUSTER INFO's `key:value` lines (a cluster client may answer {node: text})."""
    if isinstance(raw, dict):
        raw = next(iter(raw.values()), "")
    if isinstance(raw, bytes):
        raw = raw.decode()
    return dict(line.split(":", 1) for line in str(raw).split() if ":" in line)
