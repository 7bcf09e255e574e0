"""WeComClient's retry classes and shared token, against real HTTP servers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from bot.clock import REAL_TIME, Clock
from bot.keys import Keys
from bot.redis import free_port
from bot.settings import Settings
from bot.wecom.client import WeComClient
from bot.wecom.errors import (
    AmbiguousError,
    RateLimitedError,
    TransientError,
    WeComAPIError,
)
from bot.wecom.simulator import SimConfig, WeComSimulator
from tests.wecom.fake import FakeWeCom

ServerFactory = Callable[..., Any]
FAST = Clock(speed=600.0, origin=time.time())  # 60 simulated seconds pass in 0.1 s


@pytest.fixture
async def fake(aiohttp_server: ServerFactory) -> AsyncIterator[tuple[FakeWeCom, str]]:
    wecom = FakeWeCom(prefix="/gov-wecom/cgi-bin/")
    server = await aiohttp_server(wecom.app())
    yield wecom, str(server.make_url("/gov-wecom/cgi-bin/"))


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


def client_for(base: str, session: aiohttp.ClientSession, make_settings: Callable[..., Settings],
               redis: aioredis.Redis, keys: Keys, clock: Clock = REAL_TIME,
               **env: str) -> WeComClient:
    settings = make_settings({"GRIDBOT_WECOM__API_BASE_URL": base,
                              "GRIDBOT_WECOM__CORP_ID": "wwfixedcorp",
                              "GRIDBOT_WECOM__SECRET": "fixed-secret",
                              **{f"GRIDBOT_WECOM__{k.upper()}": v for k, v in env.items()}})
    return WeComClient(session, settings.wecom, redis, keys, clock, busy_backoff=(0.01, 0.02))


async def test_gettoken_and_calls_go_to_the_configured_base_url(
    fake: tuple[FakeWeCom, str], session: aiohttp.ClientSession,
    make_settings: Callable[..., Settings], redis: aioredis.Redis, keys: Keys,
) -> None:
    wecom, base = fake
    client = client_for(base, session, make_settings, redis, keys)
    await client.send_text(["wangwu", "zhaoliu"], "你好")
    [token_call] = wecom.requests("gettoken")
    assert token_call.path == "/gov-wecom/cgi-bin/gettoken"
    assert token_call.query == {"corpid": "wwfixedcorp", "corpsecret": "fixed-secret"}
    [send] = wecom.requests("message/send")
    assert send.path == "/gov-wecom/cgi-bin/message/send"
    assert send.query["access_token"] == "TOKEN-1"
    assert send.body["touser"] == "wangwu|zhaoliu"
    assert send.body["enable_duplicate_check"] == 1


async def test_system_busy_is_retried_at_most_three_times(
    fake: tuple[FakeWeCom, str], session: aiohttp.ClientSession,
    make_settings: Callable[..., Settings], redis: aioredis.Redis, keys: Keys,
) -> None:
    wecom, base = fake
    client = client_for(base, session, make_settings, redis, keys)
    wecom.script("appchat/send", -1, -1)
    await client.appchat_send("chat1", "第三次成功")
    assert len(wecom.requests("appchat/send")) == 3
    wecom.script("appchat/send", -1, -1, -1, 0)
    with pytest.raises(TransientError):
        await client.appchat_send("chat1", "三次都忙")
    assert len(wecom.requests("appchat/send")) == 6  # 3 more, never a 4th


async def test_invalid_token_fetches_a_new_token_exactly_once(
    fake: tuple[FakeWeCom, str], session: aiohttp.ClientSession,
    make_settings: Callable[..., Settings], redis: aioredis.Redis, keys: Keys,
) -> None:
    wecom, base = fake
    client = client_for(base, session, make_settings, redis, keys)
    wecom.script("appchat/send", 40014)
    await client.appchat_send("chat1", "令牌失效后重试")
    assert [s.query["access_token"] for s in wecom.requests("appchat/send")] == [
        "TOKEN-1", "TOKEN-2"]
    assert len(wecom.requests("gettoken")) == 2
    wecom.script("appchat/send", 42001, 40014)
    with pytest.raises(WeComAPIError) as caught:
        await client.appchat_send("chat1", "一直失效")
    assert caught.value.errcode == 40014
    assert len(wecom.requests("gettoken")) == 3  # one refresh per call, never a loop


async def test_rate_limit_window_is_waited_out_and_shared_through_redis(
    fake: tuple[FakeWeCom, str], session: aiohttp.ClientSession,
    make_settings: Callable[..., Settings], redis: aioredis.Redis, keys: Keys,
) -> None:
    wecom, base = fake
    first = client_for(base, session, make_settings, redis, keys, FAST)
    other = client_for(base, session, make_settings, redis, keys, FAST)  # another process
    await first.tokens.get()
    wecom.script("externalcontact/remind_groupmsg_send", 45009)
    started = time.monotonic()
    task = asyncio.create_task(first.remind_groupmsg_send("msg1"))
    await asyncio.sleep(0.03)
    assert await redis.exists(keys.api_block("externalcontact/remind_groupmsg_send"))
    await other.remind_groupmsg_send("msg2")  # honours the window recorded by `first`
    await task
    calls = wecom.requests("externalcontact/remind_groupmsg_send")
    assert len(calls) == 3
    assert all(c.at - started >= FAST.real(60) * 0.9 for c in calls[1:])


async def test_rate_limit_longer_than_max_block_wait_raises_with_retry_after(
    fake: tuple[FakeWeCom, str], session: aiohttp.ClientSession,
    make_settings: Callable[..., Settings], redis: aioredis.Redis, keys: Keys,
) -> None:
    wecom, base = fake
    client = client_for(base, session, make_settings, redis, keys, max_block_wait="10")
    wecom.script("appchat/send", 45009)
    with pytest.raises(RateLimitedError) as caught:
        await client.appchat_send("chat1", "被限流")
    assert 50 < caught.value.retry_after <= 60.001  # the window end is stored to the ms
    assert len(wecom.requests("appchat/send")) == 1
    with pytest.raises(RateLimitedError):  # still blocked: no request reaches WeCom
        await client.appchat_send("chat1", "仍在限流窗口内")
    assert len(wecom.requests("appchat/send")) == 1


async def test_two_clients_share_one_token_through_redis(
    fake: tuple[FakeWeCom, str], make_settings: Callable[..., Settings], redis: aioredis.Redis,
    keys: Keys,
) -> None:
    wecom, base = fake
    async with aiohttp.ClientSession() as one, aiohttp.ClientSession() as two:
        a = client_for(base, one, make_settings, redis, keys)
        b = client_for(base, two, make_settings, redis, keys)
        await asyncio.gather(*(c.send_text(f"u{i}", "并发") for i in range(20) for c in (a, b)))
    assert len(wecom.requests("gettoken")) == 1
    assert {s.query["access_token"] for s in wecom.requests("message/send")} == {"TOKEN-1"}


async def test_read_timeout_is_ambiguous_for_sends_but_retried_for_idempotent_calls(
    fake: tuple[FakeWeCom, str], session: aiohttp.ClientSession,
    make_settings: Callable[..., Settings], redis: aioredis.Redis, keys: Keys,
) -> None:
    wecom, base = fake
    client = client_for(base, session, make_settings, redis, keys, request_timeout="0.3")
    await client.tokens.get()
    wecom.script("externalcontact/add_msg_template", "hang")
    with pytest.raises(AmbiguousError):
        await client.add_msg_template("owner1", ["chat1"], "群发")
    assert len(wecom.requests("externalcontact/add_msg_template")) == 1
    wecom.script("externalcontact/get_groupmsg_task", "hang")
    page = await client.get_groupmsg_task("m1")
    assert page.items == [] and len(wecom.requests("externalcontact/get_groupmsg_task")) == 2
    wecom.script("appchat/send", "close")
    with pytest.raises(AmbiguousError):
        await client.appchat_send("chat1", "连接被断开")


async def test_connect_failure_and_5xx_are_transient_and_other_errcodes_permanent(
    fake: tuple[FakeWeCom, str], session: aiohttp.ClientSession,
    make_settings: Callable[..., Settings], redis: aioredis.Redis, keys: Keys,
) -> None:
    wecom, base = fake
    client = client_for(base, session, make_settings, redis, keys)
    wecom.script("appchat/send", "http500", 60011)
    with pytest.raises(TransientError):
        await client.appchat_send("chat1", "5xx")
    with pytest.raises(WeComAPIError) as caught:
        await client.appchat_send("chat1", "无权限")
    assert caught.value.errcode == 60011 and not isinstance(caught.value, RateLimitedError)
    assert len(wecom.requests("appchat/send")) == 2
    nowhere = client_for(f"http://127.0.0.1:{free_port()}/cgi-bin/", session, make_settings,
                         redis, keys)
    await redis.flushdb()
    with pytest.raises(TransientError):
        await nowhere.appchat_send("chat1", "连不上")


async def test_webhook_uses_the_key_and_no_token(
    fake: tuple[FakeWeCom, str], session: aiohttp.ClientSession,
    make_settings: Callable[..., Settings], redis: aioredis.Redis, keys: Keys,
) -> None:
    wecom, base = fake
    client = client_for(base, session, make_settings, redis, keys)
    await client.webhook_send("robot-key-1", "**通知**", markdown=True)
    [call] = wecom.requests("webhook/send")
    assert call.query == {"key": "robot-key-1"}
    assert call.body == {"msgtype": "markdown", "markdown": {"content": "**通知**"}}
    assert wecom.requests("gettoken") == []


async def test_simulator_token_invalidation_is_recovered(
    aiohttp_server: ServerFactory, session: aiohttp.ClientSession,
    make_settings: Callable[..., Settings], redis: aioredis.Redis, keys: Keys,
) -> None:
    settings = make_settings()
    sim = WeComSimulator(SimConfig.from_settings(settings, REAL_TIME))
    sim.load_directory({"wangwu": "王五"})
    server = await aiohttp_server(sim.app)
    wecom = settings.wecom.model_copy(update={"api_base_url": str(server.make_url("/cgi-bin/"))})
    client = WeComClient(session, wecom, redis, keys, REAL_TIME)
    await client.send_text("wangwu", "第一条")
    sim.invalidate_token()
    await client.send_text("wangwu", "令牌作废后的第二条")
    assert [d.content for d in sim.app_messages_to("wangwu")] == ["第一条", "令牌作废后的第二条"]
    assert sim.calls("gettoken") == 2 and sim.errors_answered(40014) == 1
