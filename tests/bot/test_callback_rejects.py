"""Bad callbacks get a 4xx, no stack trace, no personal data in logs, and change nothing."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot import appkeys
from bot.app import create_app
from bot.callback import healthz
from bot.health import Health
from bot.inbox import SHARDS
from bot.keys import Keys
from bot.redis import connect, free_port
from bot.settings import Settings
from bot.wecom.crypto import sign
from tests.bot.support import (
    crypto_for,
    recording_router,
    sealed_post,
    seen_events,
    text_xml,
    wait_until,
)

PHONE = "13812345678"
BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">'
    '<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>'
    "<xml><Encrypt>&lol4;</Encrypt></xml>"
)
EXTERNAL_ENTITY = (
    '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    "<xml><ToUserName>x</ToUserName><Encrypt>&xxe;</Encrypt></xml>"
)


@dataclass(frozen=True)
class Request:
    query: dict[str, str]
    body: bytes


Build = Callable[[Settings], Request]


def valid(settings: Settings, content: str = "帮助", at: int | None = None) -> Request:
    now = int(time.time()) if at is None else at
    xml = text_xml(settings.wecom.corp_id, "zhangsan", content, str(time.time_ns()), now)
    query, body = sealed_post(crypto_for(settings), xml, now)
    return Request(query, body)


def wrong_signature(s: Settings) -> Request:
    r = valid(s)
    return Request({**r.query, "msg_signature": "0" * 40}, r.body)


def wrong_corp_in_ciphertext(s: Settings) -> Request:
    now = int(time.time())
    xml = text_xml("wwsomeoneelse", "zhangsan", "帮助", "1", now)
    query, body = sealed_post(crypto_for(s, corp_id="wwsomeoneelse"), xml, now)
    return Request(query, body)


def wrong_corp_in_envelope(s: Settings) -> Request:
    r = valid(s)
    return Request(r.query, r.body.replace(s.wecom.corp_id.encode(), b"wwsomeoneelse"))


def stale_timestamp(s: Settings) -> Request:
    return valid(s, at=int(time.time()) - s.callback.timestamp_window - 60)


def future_timestamp(s: Settings) -> Request:
    return valid(s, at=int(time.time()) + s.callback.timestamp_window + 60)


def truncated_base64(s: Settings) -> Request:
    """Correctly signed, but the ciphertext lost its tail (as from a broken proxy)."""
    now, crypto = str(int(time.time())), crypto_for(s)
    sealed = crypto.encrypt(text_xml(s.wecom.corp_id, "u", "x", "1", int(now)), "1", now)
    cut = sealed.encrypt[:-7]
    token = s.wecom.token.get_secret_value()
    query = {"msg_signature": sign(token, now, "1", cut), "timestamp": now, "nonce": "1"}
    body = f"<xml><ToUserName>{s.wecom.corp_id}</ToUserName><Encrypt>{cut}</Encrypt></xml>"
    return Request(query, body.encode())


def non_xml(s: Settings) -> Request:
    return Request(valid(s).query, f"手机 {PHONE} 不是XML".encode())


def envelope_without_encrypt(s: Settings) -> Request:
    return Request(valid(s).query, b"<xml><ToUserName>x</ToUserName></xml>")


def billion_laughs(s: Settings) -> Request:
    return Request(valid(s).query, BILLION_LAUGHS.encode())


def external_entity(s: Settings) -> Request:
    return Request(valid(s).query, EXTERNAL_ENTITY.encode())


def billion_laughs_inside_ciphertext(s: Settings) -> Request:
    """Even an attacker holding our keys cannot make the plaintext parser expand entities."""
    now = int(time.time())
    query, body = sealed_post(crypto_for(s), BILLION_LAUGHS, now)
    return Request(query, body)


def ten_megabytes(s: Settings) -> Request:
    r = valid(s)
    return Request(r.query, r.body + b" " * (10 * 1024 * 1024))


def missing_parameters(s: Settings) -> Request:
    return Request({"timestamp": str(int(time.time()))}, valid(s).body)


BAD = {
    "wrong-signature": (wrong_signature, 403),
    "wrong-corp-id-in-ciphertext": (wrong_corp_in_ciphertext, 403),
    "wrong-corp-id-in-envelope": (wrong_corp_in_envelope, 403),
    "stale-timestamp": (stale_timestamp, 403),
    "future-timestamp": (future_timestamp, 403),
    "truncated-base64": (truncated_base64, 400),
    "non-xml": (non_xml, 400),
    "envelope-without-encrypt": (envelope_without_encrypt, 400),
    "billion-laughs": (billion_laughs, 400),
    "external-entity": (external_entity, 400),
    "billion-laughs-inside-ciphertext": (billion_laughs_inside_ciphertext, 400),
    "10-MB-body": (ten_megabytes, 413),
    "missing-parameters": (missing_parameters, 400),
}


async def footprint(redis: aioredis.Redis, keys: Keys) -> tuple[int, int, int, int]:
    """Inbox length, handled-log length, dedupe keys, handled markers."""
    counts = [0, 0, 0, 0]
    for shard in range(SHARDS):
        counts[0] += await redis.xlen(keys.inbox(shard))
        counts[1] += await redis.xlen(keys.handled(shard))
        counts[2] += len([k async for k in redis.scan_iter(match=keys.dedupe("*", shard))])
        counts[3] += len([k async for k in redis.scan_iter(match=keys.handled_marker("*", shard))])
    return counts[0], counts[1], counts[2], counts[3]


@pytest.fixture
async def bot(aiohttp_client: Any, make_settings: Callable[..., Settings],
              redis: aioredis.Redis) -> tuple[TestClient, Settings]:
    settings = make_settings()
    client = await aiohttp_client(create_app(settings, [recording_router()], run_scheduler=False))
    return client, settings


@pytest.mark.parametrize(("build", "status"), BAD.values(), ids=BAD.keys())
async def test_bad_callback_is_refused_and_changes_nothing(
    build: Build, status: int, bot: tuple[TestClient, Settings], redis: aioredis.Redis,
    keys: Keys, caplog: pytest.LogCaptureFixture,
) -> None:
    client, settings = bot
    request = build(settings)
    before = await footprint(redis, keys)
    with caplog.at_level(logging.INFO):
        response = await client.post(settings.callback.path, params=request.query,
                                     data=request.body)
        text = await response.text()
    assert response.status == status
    assert "Traceback" not in text and len(text) < 100
    assert await footprint(redis, keys) == before
    assert await seen_events(redis) == []
    assert PHONE not in caplog.text
    assert any("回调被拒绝" in r.getMessage() for r in caplog.records)


async def test_the_same_harness_accepts_a_good_callback(
    bot: tuple[TestClient, Settings], redis: aioredis.Redis, keys: Keys
) -> None:
    """Control for the table above: a valid request does change the footprint."""
    client, settings = bot
    before = await footprint(redis, keys)
    request = valid(settings, content=f"我的电话 {PHONE}")
    response = await client.post(settings.callback.path, params=request.query, data=request.body)
    assert (response.status, await response.read()) == (200, b"")

    async def handled() -> bool:
        return (await footprint(redis, keys))[1] == before[1] + 1

    await wait_until(handled, what="the handled record")
    after = await footprint(redis, keys)
    # the inbox entry is gone once handled (nothing kept in clear, or at all): issue 10
    assert after == (before[0], before[1] + 1, before[2] + 1, before[3] + 1)


async def test_verification_get_with_bad_signature_is_refused(
    bot: tuple[TestClient, Settings]
) -> None:
    client, settings = bot
    sealed = crypto_for(settings).encrypt("12345", timestamp=int(time.time()))
    query = {**sealed.verify_query(), "msg_signature": "f" * 40}
    response = await client.get(settings.callback.path, params=query)
    assert response.status == 403
    assert "12345" not in await response.text()


async def test_healthz_reports_redis(bot: tuple[TestClient, Settings]) -> None:
    client, _ = bot
    response = await client.get("/healthz")
    assert response.status == 200
    body = await response.json()
    assert body.pop("cluster", {"state": "ok"})["state"] == "ok"  # on a cluster: its state
    assert body == {"status": "ok", "redis": True, "loops": {}}


async def test_healthz_is_503_while_a_loop_fails_or_stopped(bot: tuple[TestClient, Settings]
                                                            ) -> None:
    """Redis answering is not enough: ok means the process is doing its work."""
    client, _ = bot
    health = client.app[appkeys.health]
    consumer = health.loop("inbox")
    assert consumer.running
    consumer.failing(ConnectionError("gone"))
    response = await client.get("/healthz")
    assert response.status == 503
    assert (await response.json())["loops"] == {"inbox": "重试中（ConnectionError）"}
    consumer.ok()
    assert (await client.get("/healthz")).status == 200
    consumer.stopped()
    response = await client.get("/healthz")
    assert response.status == 503
    assert (await response.json())["loops"] == {"inbox": "未运行"}
    consumer.started()


async def test_healthz_answers_503_when_redis_does_not(aiohttp_client: Any) -> None:
    app = web.Application()
    app[appkeys.redis] = connect(f"redis://127.0.0.1:{free_port()}/0")
    app[appkeys.health] = Health()
    app.router.add_get("/healthz", healthz)
    client = await aiohttp_client(app)
    response = await client.get("/healthz")
    assert response.status == 503
    assert (await response.json())["redis"] is False
    await app[appkeys.redis].aclose()
