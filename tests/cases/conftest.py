"""Cases fixtures: a small tree with police, grid workers and supervisors; the WeCom simulator
over real HTTP; a chat harness dispatching members' messages through the routers."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace

import aiohttp
import pytest
import redis.asyncio as aioredis
from pytest_aiohttp import AiohttpServer

from bot.audit import AuditLog
from bot.clock import Clock
from bot.context import Context
from bot.events import Event, TextMessage
from bot.keys import Keys
from bot.router import Router, dispatch
from bot.settings import Settings
from bot.wecom.client import WeComClient
from bot.wecom.simulator import LatencyConfig, SimConfig, WeComSimulator
from cases.deps import CasesDeps
from cases.service import CaseService
from handlers import cases as cases_handlers
from handlers import fallback, help
from registry.models import Level, Node, Person, Role
from registry.store import Registry

G01, G02 = "141181001001-G01", "141181001001-G02"
OTHER_GRID = "141102001001-G01"
TOWNSHIP, COUNTY = "141181001", "141181"
TREE = (
    Node("141100", "吕梁市", Level.CITY),
    Node(COUNTY, "孝义市", Level.COUNTY, "141100"),
    Node(TOWNSHIP, "新义街道", Level.TOWNSHIP, COUNTY),
    Node("141181001001", "东关社区", Level.VILLAGE, TOWNSHIP, urban=True),
    Node(G01, "东关一网格", Level.GRID, "141181001001", urban=True),
    Node(G02, "东关二网格", Level.GRID, "141181001001", urban=True),
    Node("141102", "离石区", Level.COUNTY, "141100"),
    Node("141102001", "滨河街道", Level.TOWNSHIP, "141102"),
    Node("141102001001", "龙凤社区", Level.VILLAGE, "141102001", urban=True),
    Node(OTHER_GRID, "龙凤一网格", Level.GRID, "141102001001", urban=True),
)
PEOPLE = (
    Person("w1", "网格员甲", Role.GRID_WORKER, (G01,)),
    Person("w2", "网格员乙", Role.GRID_WORKER, (G02,)),
    Person("w3", "网格员丙", Role.GRID_WORKER, (OTHER_GRID,)),
    Person("p1", "民警甲", Role.OFFICER, (G01, G02)),
    Person("a1", "辅警甲", Role.AUXILIARY, ("141181001001",)),
    Person("p2", "民警乙", Role.OFFICER, ("141102",)),  # 离石区: outside 孝义市
    Person("s1", "街道负责人", Role.SUPERVISOR, (TOWNSHIP,)),
    Person("s2", "市局负责人", Role.SUPERVISOR, (COUNTY,)),
)
ROUTERS: tuple[Router, ...] = (cases_handlers.router, help.router, fallback.router)
FAST = 1000.0  # simulated seconds per real second in clock tests


async def build_world(redis: aioredis.Redis, keys: Keys, clock: Clock) -> Registry:
    registry = Registry(redis, keys, clock)
    for node in TREE:
        await registry.upsert_node(node)
    for person in PEOPLE:
        await registry.upsert_person(person)
    return registry


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
async def world(redis: aioredis.Redis, keys: Keys, clock: Clock) -> Registry:
    return await build_world(redis, keys, clock)


@pytest.fixture
async def sim(aiohttp_server: AiohttpServer, settings: Settings
              ) -> AsyncIterator[tuple[WeComSimulator, str]]:
    config = SimConfig.from_settings(settings, Clock(), latency=LatencyConfig.none(),
                                     member_app_messages_per_minute=100_000,
                                     member_app_messages_per_hour=1_000_000)
    simulator = WeComSimulator(config)
    simulator.load_directory({p.userid: p.name for p in PEOPLE} | {"stranger": "路人"})
    server = await aiohttp_server(simulator.app)
    yield simulator, str(server.make_url("/cgi-bin/"))
    await simulator.close()


@dataclass
class Chat:
    """Members' messages through the routers; what the bot answered, from the simulator."""

    ctx: Context
    sim: WeComSimulator
    routers: Sequence[Router] = ROUTERS
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def deps(self) -> CasesDeps:
        return CasesDeps.from_context(self.ctx)

    @property
    def service(self) -> CaseService:
        return CaseService(self.deps, source="test")

    async def redis_text(self, case_id: str) -> str:
        """Everything Redis holds about one case (record and timeline), for leak checks."""
        case = await self.deps.store.get(case_id)
        assert case is not None
        timeline = await self.deps.store.timeline(case)
        return case.to_json() + "".join(e.to_json() for e in timeline)

    def messages_to(self, userid: str) -> list[str]:
        return [d.content for d in self.sim.app_messages_to(userid)]

    def _seen(self, userid: str) -> list[str]:
        """Delivered, plus dropped by WeCom's duplicate check (identical replies within the
        same second in tests)."""
        dropped = [d.content for d in self.sim.drops("duplicate") if d.target == userid]
        return self.messages_to(userid) + dropped

    async def event(self, event: Event) -> str:
        userid = event.sender
        delivered = len(self.messages_to(userid))
        dropped = len(self._seen(userid)) - delivered
        handled = await dispatch(self.routers, event, replace(self.ctx, source=event.dedupe_key))
        assert handled, f"no route handled {event!r}"
        now = self._seen(userid)
        new_delivered = self.messages_to(userid)
        return "\n".join(new_delivered[delivered:] + now[len(new_delivered) + dropped:])

    async def send(self, userid: str, text: str) -> str:
        number = next(self.ids)
        return await self.event(TextMessage(sender=userid, create_time=int(self.ctx.clock.now()),
                                            content=text, msg_id=f"m{number}"))


def with_api_base(settings: Settings, base: str) -> Settings:
    wecom = settings.wecom.model_copy(update={"api_base_url": base})
    return settings.model_copy(update={"wecom": wecom})


@pytest.fixture
def chat_clock() -> Clock:
    return Clock()


@pytest.fixture
async def chat(sim: tuple[WeComSimulator, str], settings: Settings, redis: aioredis.Redis,
               keys: Keys, chat_clock: Clock, world: Registry) -> AsyncIterator[Chat]:
    simulator, base = sim
    settings = with_api_base(settings, base)
    async with aiohttp.ClientSession() as session:
        client = WeComClient(session, settings.wecom, redis, keys, chat_clock)
        ctx = Context(settings=settings, redis=redis, keys=keys, clock=chat_clock, wecom=client,
                      audit=AuditLog(redis, keys, chat_clock), registry=world, routers=ROUTERS)
        yield Chat(ctx, simulator)
