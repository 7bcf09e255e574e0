"""Deliberation fixtures: two villages in the registry, the WeCom simulator over real HTTP,
the chat harness through the real routers and the pages served by a real aiohttp server."""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from pytest_aiohttp import AiohttpServer

import deliberation.web
from bot import appkeys
from bot.audit import AuditLog
from bot.clock import Clock
from bot.context import Context
from bot.events import TextMessage
from bot.keys import Keys
from bot.router import Router, dispatch
from bot.settings import Settings
from bot.wecom.client import WeComClient
from bot.wecom.simulator import LatencyConfig, SimConfig, WeComSimulator
from collect.deps import CollectDeps
from deliberation.deps import DelibDeps
from handlers import cases as cases_handlers
from handlers import deliberation as delib_handlers
from handlers import fallback, help
from registry.models import DeliveryKind, Group, Level, Node, Person, Role
from registry.store import Registry

VILLAGE, OTHER = "141181001001", "141102001001"
G01, G02, OTHER_GRID = f"{VILLAGE}-G01", f"{VILLAGE}-G02", f"{OTHER}-G01"
TREE = (
    Node("141100", "吕梁市", Level.CITY),
    Node("141181", "孝义市", Level.COUNTY, "141100"),
    Node("141181001", "新义街道", Level.TOWNSHIP, "141181"),
    Node(VILLAGE, "东关村", Level.VILLAGE, "141181001"),
    Node(G01, "东关一网格", Level.GRID, VILLAGE),
    Node(G02, "东关二网格", Level.GRID, VILLAGE),
    Node("141102", "离石区", Level.COUNTY, "141100"),
    Node("141102001", "滨河街道", Level.TOWNSHIP, "141102"),
    Node(OTHER, "龙凤村", Level.VILLAGE, "141102001"),
    Node(OTHER_GRID, "龙凤一网格", Level.GRID, OTHER),
)
PEOPLE = (
    Person("w1", "网格员甲", Role.GRID_WORKER, (G01,)),
    Person("w2", "网格员乙", Role.GRID_WORKER, (G02,)),
    Person("w3", "网格员丙", Role.GRID_WORKER, (OTHER_GRID,)),
    Person("p1", "民警甲", Role.OFFICER, ("141181001",)),
    Person("p2", "民警乙", Role.OFFICER, ("141102",)),
)
GROUPS = (
    Group("wrA1", "东关一网格群", DeliveryKind.APPCHAT, G01, "w1", member_count=30),
    Group("wrA2", "东关二网格群", DeliveryKind.APPCHAT, G02, "w2", member_count=30),
    Group("wrB1", "龙凤一网格群", DeliveryKind.APPCHAT, OTHER_GRID, "w3", member_count=30),
)


@dataclass(frozen=True, slots=True)
class ShiftClock(Clock):
    """Real time moved by `shift[0]` simulated seconds (tests move it forward)."""

    shift: list[float] = field(default_factory=lambda: [0.0])

    def now(self) -> float:
        return time.time() + self.shift[0]


@pytest.fixture
def clock() -> ShiftClock:
    return ShiftClock()


@pytest.fixture
async def world(redis: aioredis.Redis, keys: Keys, clock: Clock) -> Registry:
    registry = Registry(redis, keys, clock)
    for node in TREE:
        await registry.upsert_node(node)
    for person in PEOPLE:
        await registry.upsert_person(person)
    for group in GROUPS:
        await registry.upsert_group(group)
    return registry


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
async def sim(aiohttp_server: AiohttpServer, settings: Settings
              ) -> AsyncIterator[tuple[WeComSimulator, str]]:
    config = SimConfig.from_settings(settings, Clock(), latency=LatencyConfig.none(),
                                     member_app_messages_per_minute=100_000,
                                     member_app_messages_per_hour=1_000_000)
    simulator = WeComSimulator(config)
    simulator.load_directory({p.userid: p.name for p in PEOPLE})
    for group in GROUPS:
        simulator.add_appchat(group.chat_id, group.name, [group.owner])
    server = await aiohttp_server(simulator.app)
    yield simulator, str(server.make_url("/cgi-bin/"))
    await simulator.close()


ROUTERS: tuple[Router, ...] = (delib_handlers.router, help.router, fallback.router)
KF_ROUTERS: tuple[Router, ...] = (delib_handlers.router, cases_handlers.router, fallback.router)


@dataclass
class World:
    """Chat through the routers, pages over HTTP, and the services underneath."""

    ctx: Context
    sim: WeComSimulator
    http: aiohttp.ClientSession
    base: str  # the pages' server
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    kf_cursor: str = ""

    @property
    def deps(self) -> DelibDeps:
        return DelibDeps.from_context(self.ctx)

    @property
    def collect(self) -> CollectDeps:
        return CollectDeps.from_context(self.ctx)

    async def send(self, userid: str, text: str) -> str:
        before = len(self.sim.app_messages_to(userid))
        event = TextMessage(sender=userid, create_time=int(self.ctx.clock.now()),
                            content=text, msg_id=f"m{next(self.ids)}")
        assert await dispatch(ROUTERS, event, replace(self.ctx, source=event.dedupe_key))
        return "\n".join(d.content for d in self.sim.app_messages_to(userid)[before:])

    async def kf(self, resident: str, said: str = "", *, enter: str = "") -> str:
        """A resident enters by a node's 客服 link or says `said`; the bot pulls sync_msg as
        the intake does, dispatches each message, and we return what it sent back."""
        before = len(self.sim.kf_messages_to(resident))
        if enter:
            await self.sim.kf_resident_enter(enter, resident, deliver=False)
        else:
            await self.sim.kf_resident_says(resident, said, deliver=False)
        page = await self.ctx.wecom.kf_sync_msg(cursor=self.kf_cursor)
        self.kf_cursor = page.next_cursor or self.kf_cursor
        for event in page.items:
            await dispatch(KF_ROUTERS, event, replace(self.ctx, source=event.dedupe_key))
        return "\n".join(m.content for m in self.sim.kf_messages_to(resident)[before:])

    def local(self, url: str) -> str:
        """A link as sent (public base URL) pointed at the test server."""
        return self.base + url[url.index("/", len("http://")):]

    async def vote_links(self, worker: str, matter: str) -> list[str]:
        """The links on the sheet the bot sent `worker` for `matter`."""
        sent = [d.content for d in self.sim.app_messages_to(worker) if matter in d.content]
        assert sent, f"no link sheet for {worker}"
        sheet = re.search(r"http\S+/vote/\S+", sent[-1])
        assert sheet
        async with self.http.get(self.local(sheet.group(0))) as page:
            assert page.status == 200
            body = await page.text()
        return [self.local(u) for u in re.findall(r"<code>(http[^<]+)</code>", body)]

    async def vote(self, link: str, option: int) -> tuple[int, str]:
        async with self.http.get(link) as page:
            body = await page.text()
            if page.status != 200:
                return page.status, body
        csrf = re.search(r'name="csrf" value="([^"]+)"', body)
        assert csrf, body
        return await self.post(link, {"option": str(option), "csrf": csrf.group(1)})

    async def post(self, link: str, form: dict[str, str]) -> tuple[int, str]:
        async with self.http.post(link, data=form) as answer:
            return answer.status, await answer.text()


def receipts(pages: Sequence[str]) -> list[str]:
    return [re.findall(r"<code>([^<]+)</code>", p)[0] for p in pages]


@pytest.fixture
async def w(sim: tuple[WeComSimulator, str], settings: Settings, redis: aioredis.Redis,
            keys: Keys, clock: ShiftClock, world: Registry,
            aiohttp_server: AiohttpServer) -> AsyncIterator[World]:
    simulator, api = sim
    settings = settings.model_copy(update={"wecom": settings.wecom.model_copy(
        update={"api_base_url": api})})
    async with aiohttp.ClientSession() as session:
        client = WeComClient(session, settings.wecom, redis, keys, clock)
        audit = AuditLog(redis, keys, clock)
        ctx = Context(settings=settings, redis=redis, keys=keys, clock=clock, wecom=client,
                      audit=audit, registry=world, routers=ROUTERS)
        app = web.Application()
        app[appkeys.redis], app[appkeys.keys], app[appkeys.clock] = redis, keys, clock
        app[appkeys.settings], app[appkeys.registry], app[appkeys.audit] = settings, world, audit
        app[appkeys.wecom] = client
        deliberation.web.setup_routes(app)
        server = await aiohttp_server(app)
        yield World(ctx, simulator, session, str(server.make_url("")).rstrip("/"))
