"""Redis Cluster mode: the URL forms, the health report, per-primary SCAN, scripts that a
primary never loaded, all against a real three-master cluster (the session's own one when
GRIDBOT_TEST_REDIS=cluster, else one started for this module)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as syncredis
import redis.asyncio as aioredis
from aiohttp import web

from bot import appkeys
from bot.batching import eval_many
from bot.callback import healthz
from bot.cluster import EmbeddedCluster, redis_health
from bot.health import Health
from bot.redis import cluster_of, connect, is_cluster_url, plain_url, scan_pages
from bot.settings import Settings, load_settings
from tests.conftest import ROOT, test_secrets

_INCR = "return redis.call('INCR', KEYS[1])"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedCluster]:
    server = EmbeddedCluster(tmp_path_factory.mktemp("own-cluster"))
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


def settings_with(env: dict[str, str]) -> Settings:
    return load_settings(ROOT / "settings.toml", {**test_secrets(), **env})


def test_cluster_mode_comes_from_the_url_or_from_redis_cluster() -> None:
    flag = settings_with({"GRIDBOT_REDIS__URL": "redis://10.0.0.5:7000/0",
                          "GRIDBOT_REDIS__CLUSTER": "true"})
    assert flag.redis.url == "redis+cluster://10.0.0.5:7000/0" and flag.redis.cluster
    scheme = settings_with({"GRIDBOT_REDIS__URL": "redis+cluster://10.0.0.5:7000"})
    assert scheme.redis.cluster
    query = settings_with({"GRIDBOT_REDIS__URL": "redis://h:7000/0?cluster=true"})
    assert query.redis.cluster and plain_url(query.redis.url) == "redis://h:7000/0"
    single = settings_with({"GRIDBOT_REDIS__URL": "redis://h:6379/0"})
    assert not single.redis.cluster and not is_cluster_url(single.redis.url)
    assert plain_url("rediss+cluster://h:7000") == "rediss://h:7000"


async def test_a_cluster_url_gives_a_cluster_client(crc: aioredis.Redis) -> None:
    assert cluster_of(crc) is not None
    # keys in all three primaries' slots are reachable through the one client
    await asyncio.gather(*(crc.set(f"k{i}", i) for i in range(30)))
    cl = cluster_of(crc)
    assert cl is not None
    holders = {cl.get_node_from_key(f"k{i}").name for i in range(30)}
    assert len(holders) == 3


async def test_health_reports_the_cluster_state(
    tmp_path: Path, crc: aioredis.Redis, aiohttp_client: Any
) -> None:
    healthy = await redis_health(crc)
    assert healthy["mode"] == "cluster" and healthy["ok"]
    assert healthy["primaries"] == 3 and healthy["slots_ok"] == 16384
    doomed = EmbeddedCluster(tmp_path / "doomed")  # no replicas: losing a primary loses slots
    doomed.start()
    client = connect(doomed.url)
    app = web.Application()
    app[appkeys.redis] = client
    app[appkeys.health] = Health()
    app.router.add_get("/healthz", healthz)
    http = await aiohttp_client(app)
    try:
        response = await http.get("/healthz")
        assert response.status == 200
        assert (await response.json())["cluster"]["slots_ok"] == 16384
        doomed.primaries[2].stop()
        deadline = time.monotonic() + 15
        report = await redis_health(client)
        while report.get("state") != "fail" and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            report = await redis_health(client)
        assert report["state"] == "fail" and not report["ok"]
        response = await http.get("/healthz")
        assert response.status == 503
        assert (await response.json())["cluster"]["state"] == "fail"
    finally:
        await client.aclose()
        doomed.stop()


async def test_single_server_health(redis: aioredis.Redis) -> None:
    report = await redis_health(redis)
    assert report["ok"] and report["mode"] in {"single", "cluster"}


async def test_scan_visits_every_primary_and_resumes_where_it_stopped(
    crc: aioredis.Redis,
) -> None:
    wanted = {f"scan:{i}" for i in range(300)}
    await asyncio.gather(*(crc.set(key, 1) for key in wanted))
    await crc.set("other", 1)
    seen: set[str] = set()
    saved = None
    async for cursors, keys in scan_pages(crc, "scan:*", 20):
        seen.update(keys)
        saved = cursors
        if len(seen) > 100:
            break  # the process stops; the cursors were stored
    assert saved is not None and len(saved) == 3 and any(c != -1 for c in saved.values())
    async for _, keys in scan_pages(crc, "scan:*", 20, saved):
        seen.update(keys)
    assert seen == wanted


async def test_pipelined_script_runs_once_per_call_when_a_primary_lost_it(
    cluster: EmbeddedCluster, crc: aioredis.Redis,
) -> None:
    keys = [f"counter:{i}" for i in range(60)]
    sha = str(await crc.script_load(_INCR))
    syncredis.Redis(port=cluster.primaries[1].port).script_flush()  # a restarted primary
    calls = [([key], []) for key in keys]
    results = await eval_many(crc, _INCR, sha, calls)
    assert results == [1] * len(keys)  # nothing ran twice, nothing was skipped
    assert [int(v) for v in await asyncio.gather(*(crc.get(k) for k in keys))] == [1] * 60
