"""Shared fixtures: a real redis-server (the embedded one) and settings with test secrets.

Every test gets a flushed database on the one redis-server started for the session; tests
that start `gridbot` subprocesses pass them `redis_url`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bot.clock import Clock
from bot.cluster import EmbeddedCluster
from bot.keys import Keys
from bot.redis import EmbeddedRedis, connect
from bot.settings import Settings, load_settings
from tests.leakscan import (  # noqa: F401  (the guard is autouse, suite-wide)
    no_personal_number_leaks,
    scan_redis,
    track_redis_servers,
)

ROOT = Path(__file__).resolve().parent.parent
TEST_CORP_ID = "wwgridbottest0001"
track_redis_servers()  # their AOF/RDB files are scanned at the end (tests/zz)


def cluster_engine() -> bool:
    """GRIDBOT_TEST_REDIS=cluster runs the suite on a real three-master Redis Cluster."""
    return os.environ.get("GRIDBOT_TEST_REDIS", "embedded") == "cluster"


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a real redis-server (or, with GRIDBOT_TEST_REDIS=cluster, of a real
    three-master Redis Cluster) started for the whole test session."""
    server: EmbeddedRedis | EmbeddedCluster
    if cluster_engine():
        server = EmbeddedCluster(tmp_path_factory.mktemp("redis-cluster"))
    else:
        server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
async def redis(redis_url: str, request: pytest.FixtureRequest
                ) -> AsyncIterator[aioredis.Redis]:
    """A client on a flushed database; what the test left is scanned for personal numbers
    (tests/leakscan.py) before it is flushed."""
    client = connect(redis_url)
    await client.flushdb()
    try:
        yield client
    finally:
        if not request.node.get_closest_marker("leaks_expected"):
            with contextlib.suppress(RedisError):  # a test may leave its server stopped
                await asyncio.to_thread(scan_redis, redis_url)
        await client.flushdb()
        await client.aclose()


def test_secrets() -> dict[str, str]:
    """Fresh WeCom-style secrets: a 43-char EncodingAESKey, a token, an app secret."""
    aes = base64.b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    field_key = base64.b64encode(secrets.token_bytes(32)).decode()
    return {
        "GRIDBOT_WECOM__CORP_ID": TEST_CORP_ID,
        "GRIDBOT_WECOM__SECRET": secrets.token_urlsafe(24),
        "GRIDBOT_WECOM__AGENT_ID": "1000002",
        "GRIDBOT_WECOM__TOKEN": secrets.token_hex(8),
        "GRIDBOT_WECOM__ENCODING_AES_KEY": aes,
        "GRIDBOT_SECURITY__FIELD_KEYS": f"k1:{field_key}",
        "GRIDBOT_SECURITY__BLIND_INDEX_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
    }


test_secrets.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


@pytest.fixture
def make_settings(redis_url: str, tmp_path: Path) -> Callable[..., Settings]:
    """Build Settings from the repo's settings.toml plus test secrets and `env` overrides."""

    def build(env: dict[str, str] | None = None, **overrides: Any) -> Settings:
        environ = {**test_secrets(), "GRIDBOT_REDIS__URL": redis_url, **(env or {})}
        return load_settings(ROOT / "settings.toml", environ, **overrides)

    return build


@pytest.fixture
def keys() -> Keys:
    return Keys("gridbot")


@pytest.fixture
def clock() -> Clock:
    return Clock()


def browser_required() -> bool:
    """CI sets GRIDBOT_REQUIRE_BROWSER: there a missing chromium fails instead of skipping."""
    return bool(os.environ.get("GRIDBOT_REQUIRE_BROWSER"))
