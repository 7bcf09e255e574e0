"""The 微信客服 intake over real HTTP and Redis: the same kf_msg_or_event callback delivered
three times, and sync_msg pages read twice after a worker was killed between reading a page
and storing its cursor, still hand every resident message to the routers exactly once."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web

from bot import appkeys
from bot import kf as kf_intake
from bot.app import create_app, make_context
from bot.clock import REAL_TIME
from bot.context import Context
from bot.events import KfMessage, KfNotice
from bot.inbox import handled_records
from bot.keys import Keys
from bot.redis import free_port
from bot.router import Router
from bot.settings import Settings
from bot.wecom.parse import parse_event
from bot.wecom.simulator import FaultConfig, SimConfig, WeComSimulator
from tests.bot.support import wait_until

SEEN = "test:kf:seen"  # msgids only: what a resident said never goes to Redis in clear

ServerFactory = Callable[..., Any]


def recorder(*, slow: float = 0.0) -> Router:
    """Records each KfMessage's msgid (and nothing the resident said)."""
    router = Router("test-kf-recorder")

    @router.on(KfMessage)
    async def record(event: KfMessage, ctx: Context) -> None:
        if slow:
            await asyncio.sleep(slow)
        await ctx.redis.rpush(SEEN, event.msgid)  # type: ignore[misc]

    return router


async def seen(redis: aioredis.Redis) -> list[str]:
    return list(await redis.lrange(SEEN, 0, -1))  # type: ignore[misc]


class World:
    """The simulator with one kf account and a link, and the bot wired to it on loopback."""

    def __init__(self, aiohttp_server: ServerFactory, make_settings: Callable[..., Settings],
                 **env: str):
        self._server = aiohttp_server
        sim_port, self.bot_port = free_port(), free_port()
        self.sim_port = sim_port
        self.settings = make_settings({
            "GRIDBOT_WECOM__API_BASE_URL": f"http://127.0.0.1:{sim_port}/cgi-bin/",
            "GRIDBOT_SERVER__PORT": str(self.bot_port),
            "GRIDBOT_KF__LEASE_SECONDS": "1.0",
            "GRIDBOT_CALLBACK__CLAIM_IDLE_SECONDS": "0.3", **env})
        self.sim = WeComSimulator(SimConfig.from_settings(
            self.settings, REAL_TIME,
            callback_url=f"http://127.0.0.1:{self.bot_port}{self.settings.callback.path}"))
        self.open_kfid = self.sim.add_kf_account("平安社区")
        self.link = self.sim.state.kf.add_link(self.open_kfid, "n-3301-01")

    async def start(self, routers: Sequence[Router]) -> web.Application:
        await self._server(self.sim.app, port=self.sim_port)
        app = create_app(self.settings, routers, run_scheduler=False)
        await self._server(app, port=self.bot_port)
        return app


async def test_callback_three_times_and_a_page_read_twice_dispatch_each_message_once(
    aiohttp_server: ServerFactory, make_settings: Callable[..., Settings],
    redis: aioredis.Redis, keys: Keys,
) -> None:
    world = World(aiohttp_server, make_settings)
    app = await world.start([kf_intake.router, recorder()])
    sim = world.sim
    # residents wrote; nothing announced yet
    said = [await sim.kf_resident_enter(world.link, "wmA", deliver=False)]
    said.append(await sim.kf_resident_says("wmA", "楼道消防门坏了", deliver=False))
    said.append(await sim.kf_resident_enter(world.link, "wmB", deliver=False))
    said.append(await sim.kf_resident_says("wmB", b"\xff\xd8\xffphoto", deliver=False))
    first_page = [p.msgid for p in said]

    # worker A reads the page, dispatches every message, and dies before storing the cursor
    at_cursor = asyncio.Event()

    class KilledBeforeCursor(kf_intake.KfIntake):
        """Stops dead (no heartbeat, no clean-up, nothing more) before storing the cursor,
        as a process killed with SIGKILL there would."""

        @contextlib.asynccontextmanager
        async def _renewing(self, lease: str) -> AsyncIterator[None]:
            yield  # a killed process renews nothing: its lease runs out

        async def _store_cursor(self, open_kfid: str, cursor: str) -> None:
            at_cursor.set()
            await asyncio.Event().wait()  # never returns: the process is gone

    ctx = make_context(app)
    worker = KilledBeforeCursor(ctx.redis, ctx.keys, ctx.wecom, world.settings.kf,
                                [recorder()], ctx, name="worker-a")
    token = kf_intake_token(said[-1])
    killed = asyncio.create_task(worker.on_notice(world.open_kfid, token))
    await asyncio.wait_for(at_cursor.wait(), 10)
    assert await redis.get(keys.kf_account(world.open_kfid, "lease")) == "worker-a"
    assert sorted(await seen(redis)) == sorted(first_page)
    assert await redis.get(keys.kf_account(world.open_kfid, "cursor")) is None

    # WeCom now delivers the callback, three times; worker A's lease is still held
    callback = said[-1].callback
    results = [await sim.deliver(callback, retries=0) for _ in range(3)]
    assert all(r.ok for r in results)
    later = await sim.kf_resident_says("wmA", "门在三楼", deliver=False)
    await sim.deliver(later.callback)  # a second callback (new Token) for the new message

    async def all_seen() -> bool:
        return len(await seen(redis)) >= len(first_page) + 1

    await wait_until(all_seen, timeout=15, what="the new message after the take-over")
    await app_quiet(app)
    assert Counter(await seen(redis)) == Counter([*first_page, later.msgid])  # each once
    # the page was read again (after the lease ran out) and the cursor now stands past it
    assert sim.calls("kf/sync_msg") >= 2
    assert await redis.get(keys.kf_account(world.open_kfid, "cursor"))
    records = await handled_records(redis, keys)
    kf_done = Counter(r.key for r in records if r.kind == "kf")
    assert kf_done == Counter(f"kf:{m}" for m in [*first_page, later.msgid])
    notices = [r for r in records if r.kind == "kf_msg_or_event"]
    assert len(notices) == 2  # three deliveries of one callback are one inbox entry
    killed.cancel()  # the frozen stand-in for the dead process
    await asyncio.gather(killed, return_exceptions=True)


def kf_intake_token(posted: Any) -> str:
    notice = parse_event(posted.callback.plaintext)
    assert isinstance(notice, KfNotice)
    return notice.token


async def app_quiet(app: web.Application) -> None:
    await app[appkeys.consumer].drain(10.0)


async def test_notices_racing_for_one_account_lose_nothing_and_repeat_nothing(
    aiohttp_server: ServerFactory, make_settings: Callable[..., Settings],
    redis: aioredis.Redis, keys: Keys,
) -> None:
    world = World(aiohttp_server, make_settings)
    app = await world.start([kf_intake.router, recorder(slow=0.02)])
    sim = world.sim
    residents = [f"wm{i:02d}" for i in range(12)]
    for resident in residents:
        await sim.kf_resident_enter(world.link, resident, deliver=False)
    posts = await asyncio.gather(*(
        sim.kf_resident_says(resident, f"第{n}条", open_kfid=world.open_kfid)
        for n in range(3) for resident in residents))
    sim.kf_force_empty_pages(2)  # WeCom may answer empty pages with has_more = 1

    expected = len(residents) * 4  # enter_session + three messages each

    async def everything() -> bool:
        return len(await seen(redis)) >= expected

    await wait_until(everything, timeout=20, what="every message")
    await app_quiet(app)
    counts = Counter(await seen(redis))
    assert len(counts) == expected and set(counts.values()) == {1}
    assert {p.msgid for p in posts} <= set(counts)
    assert await redis.get(keys.kf_account(world.open_kfid, "lease")) is None


async def test_wecom_away_then_back_and_an_expired_token_lose_nothing(
    aiohttp_server: ServerFactory, make_settings: Callable[..., Settings],
    redis: aioredis.Redis, keys: Keys,
) -> None:
    world = World(aiohttp_server, make_settings, GRIDBOT_KF__RETRY_DELAYS="[0.1, 0.1]")
    app = await world.start([kf_intake.router, recorder()])
    sim = world.sim
    await sim.kf_resident_enter(world.link, "wmA", deliver=False)
    sim.set_faults(FaultConfig(rate=1.0, weights={"5xx": 1.0}, apis=frozenset({"kf/sync_msg"})))
    first = await sim.kf_resident_says("wmA", "有人在楼下吵架")
    assert first.result is not None and first.result.ok  # acknowledged; the pull fails

    async def retried() -> bool:
        records = await handled_records(redis, keys)
        return sum(":retry" in r.key for r in records) >= 2

    await wait_until(retried, timeout=10, what="the notice put back while WeCom is away")
    assert await seen(redis) == []
    sim.set_faults()  # WeCom is back

    async def both() -> bool:
        return len(await seen(redis)) == 2

    await wait_until(both, timeout=10, what="the messages once WeCom answers again")
    # a callback handled after its Token expired (10 minutes) pulls without it
    later = await sim.kf_resident_says("wmA", "已经打起来了", deliver=False)
    token = kf_intake_token(later)
    sim.state.kf.tokens[token] = (world.open_kfid, sim.clock.now() - 1)
    assert (await sim.deliver(later.callback)).ok

    async def three() -> bool:
        return len(await seen(redis)) == 3

    await wait_until(three, timeout=10, what="the message behind the expired Token")
    await app_quiet(app)
    assert Counter(await seen(redis)).most_common(1)[0][1] == 1
    assert sim.errors_answered(95007, "kf/sync_msg") == 1
