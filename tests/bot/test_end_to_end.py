"""End to end over real HTTP: the simulator posts encrypted callbacks, the bot answers
through the simulator's API, and every re-delivery — also across a restart — is handled once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot import appkeys
from bot.app import create_app
from bot.clock import REAL_TIME
from bot.inbox import handled_records
from bot.keys import Keys
from bot.redis import free_port
from bot.router import Router
from bot.settings import Settings
from bot.wecom.simulator import SimConfig, WeComSimulator
from handlers import ROUTERS, fallback
from handlers import help as help_handlers
from registry.models import Person, Role
from tests.bot.support import recording_router, seen_events, wait_until

ServerFactory = Callable[..., Any]


class Pair:
    """A simulator and a bot wired to each other on loopback."""

    def __init__(self, aiohttp_server: ServerFactory, make_settings: Callable[..., Settings]):
        self._server = aiohttp_server
        self.sim_port, self.bot_port = free_port(), free_port()
        self.settings = make_settings({
            "GRIDBOT_WECOM__API_BASE_URL": f"http://127.0.0.1:{self.sim_port}/cgi-bin/",
            "GRIDBOT_SERVER__PORT": str(self.bot_port)})
        config = SimConfig.from_settings(self.settings, REAL_TIME,
                                         callback_url=f"http://127.0.0.1:{self.bot_port}"
                                                      f"{self.settings.callback.path}")
        self.sim = WeComSimulator(config)
        self.sim.load_directory({"wangwu": "王五", "zhaoliu": "赵六"})
        self.bot: TestServer | None = None

    async def start_sim(self) -> None:
        await self._server(self.sim.app, port=self.sim_port)

    async def start_bot(self, routers: Sequence[Router]) -> web.Application:
        app = create_app(self.settings, routers, run_scheduler=False)
        self.bot = await self._server(app, port=self.bot_port)
        return app

    async def stop_bot(self) -> None:
        assert self.bot is not None
        await self.bot.close()
        self.bot = None


async def test_member_text_is_answered_through_the_wecom_api(
    aiohttp_server: ServerFactory, make_settings: Callable[..., Settings], redis: aioredis.Redis,
) -> None:
    pair = Pair(aiohttp_server, make_settings)
    await pair.start_sim()
    await pair.start_bot([recording_router(reply=True)])
    result = await pair.sim.post_text("wangwu", "今天的通知收到了")
    assert result.ok and result.reply == ""  # empty 200: no passive reply

    async def answered() -> bool:
        return bool(pair.sim.app_messages_to("wangwu"))

    await wait_until(answered, what="the reply in the simulator")
    [delivery] = pair.sim.app_messages_to("wangwu")
    assert delivery.content == "已收到：今天的通知收到了"
    assert pair.sim.calls("gettoken") == 1


async def test_help_and_fallback_handlers_answer_in_chinese(
    aiohttp_server: ServerFactory, make_settings: Callable[..., Settings], redis: aioredis.Redis,
) -> None:
    pair = Pair(aiohttp_server, make_settings)
    await pair.start_sim()
    await pair.start_bot(ROUTERS)
    await pair.sim.post_text("zhaoliu", "帮助")
    await pair.sim.post_text("zhaoliu", "随便说点什么")

    async def two_answers() -> bool:
        return len(pair.sim.app_messages_to("zhaoliu")) == 2

    await wait_until(two_answers, what="two answers")
    help_text, hint = (d.content for d in pair.sim.app_messages_to("zhaoliu"))
    assert help_text.startswith("您可以使用以下命令") and "帮助" in help_text
    assert "发送「帮助」" in hint


async def test_triple_delivery_is_handled_once_even_across_a_restart(
    aiohttp_server: ServerFactory, make_settings: Callable[..., Settings], redis: aioredis.Redis,
    keys: Keys,
) -> None:
    pair = Pair(aiohttp_server, make_settings)
    await pair.start_sim()
    callback = pair.sim.build_text("wangwu", "一条消息")
    await pair.start_bot([recording_router()])
    assert (await pair.sim.deliver(callback)).ok
    await pair.sim.deliver(callback)

    async def one_handled() -> bool:
        return len(await handled_records(redis, keys)) == 1

    await wait_until(one_handled, what="the first delivery to be handled")
    await pair.stop_bot()
    await pair.start_bot([recording_router()])  # a new app instance on the same Redis
    assert (await pair.sim.deliver(callback)).ok
    other = await pair.sim.post_text("wangwu", "另一条消息")  # proves the new instance consumes
    assert other.ok

    async def two_handled() -> bool:
        return len(await handled_records(redis, keys)) == 2

    await wait_until(two_handled, what="the second message")
    assert [e.text for e in await seen_events(redis)] == ["一条消息", "另一条消息"]  # type: ignore[attr-defined]
    assert [a.status for a in pair.sim.records.callback_attempts] == [200, 200, 200, 200]


async def test_help_lists_only_the_commands_open_to_the_senders_role(
    aiohttp_server: ServerFactory, make_settings: Callable[..., Settings], redis: aioredis.Redis,
) -> None:
    police = Router("police-only")
    police.describe("通报 <内容>：向辖区居民群发布警情通报", "officer", "auxiliary")
    public = Router("everyone")
    public.describe("我的待办：查看待办事项")
    pair = Pair(aiohttp_server, make_settings)
    await pair.start_sim()
    app = await pair.start_bot([police, public, help_handlers.router, fallback.router])
    await app[appkeys.registry].upsert_person(Person("wangwu", "王五", Role.OFFICER))
    await app[appkeys.registry].upsert_person(Person("zhaoliu", "赵六", Role.GRID_WORKER))
    for user in ("wangwu", "zhaoliu"):
        await pair.sim.post_text(user, "帮助")

    async def both_answered() -> bool:
        return all(pair.sim.app_messages_to(u) for u in ("wangwu", "zhaoliu"))

    await wait_until(both_answered, what="two help answers")
    [officer] = [d.content for d in pair.sim.app_messages_to("wangwu")]
    [worker] = [d.content for d in pair.sim.app_messages_to("zhaoliu")]
    assert officer.startswith("王五（民警）")
    assert "通报 <内容>" in officer and "我的待办" in officer
    assert worker.startswith("赵六（网格员）") and "通报" not in worker and "我的待办" in worker
