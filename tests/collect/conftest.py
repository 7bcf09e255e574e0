"""Collect fixtures: a small registry, the WeCom simulator over real HTTP, a chat harness
that dispatches text messages through the routers, and the leak guard every test runs under.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace

import aiohttp
import pytest
import redis.asyncio as aioredis
from pytest_aiohttp import AiohttpServer

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
from handlers import collect as collect_handlers
from handlers import fallback, help
from registry.models import DeliveryKind, Group, Level, Node, Person, Role
from registry.store import Registry
from tests.collect.data import SECRETS
from tests.collect.leakscan import assert_no_leaks

G01, G02 = "141181001001-G01", "141181001001-G02"
B001 = "141181001001-G01-B001"
LISHI_GRID = "141102001001-G01"
TREE = (
    Node("141100", "吕梁市", Level.CITY),
    Node("141181", "孝义市", Level.COUNTY, "141100"),
    Node("141181001", "新义街道", Level.TOWNSHIP, "141181"),
    Node("141181001001", "东关社区", Level.VILLAGE, "141181001", urban=True),
    Node(G01, "东关一网格", Level.GRID, "141181001001", urban=True),
    Node(B001, "3号楼", Level.BUILDING, G01),
    Node(G02, "东关二网格", Level.GRID, "141181001001", urban=True),
    Node("141102", "离石区", Level.COUNTY, "141100"),
    Node("141102001", "滨河街道", Level.TOWNSHIP, "141102"),
    Node("141102001001", "龙凤社区", Level.VILLAGE, "141102001", urban=True),
    Node(LISHI_GRID, "龙凤一网格", Level.GRID, "141102001001", urban=True),
)
PEOPLE = (
    Person("w1", "网格员甲", Role.GRID_WORKER, (G01,)),
    Person("w2", "网格员乙", Role.GRID_WORKER, (G02,)),
    Person("w3", "网格员丙", Role.GRID_WORKER, (LISHI_GRID,)),
    Person("p1", "民警甲", Role.OFFICER, ("141181001",)),  # 新义街道: both 东关 grids
    Person("p2", "民警乙", Role.OFFICER, ("141102",)),  # 离石区: outside 孝义市
    Person("a1", "辅警甲", Role.AUXILIARY, ("141181001001",)),
)
GROUPS = (
    Group("wrG01a", "东关一网格1群", DeliveryKind.CUSTOMER_GROUP, G01, "w1", member_count=3),
    Group("wrG01b", "东关一网格2群", DeliveryKind.CUSTOMER_GROUP, G01, "w1", member_count=1),
    Group("wrG02a", "东关二网格群", DeliveryKind.CUSTOMER_GROUP, G02, "w2", member_count=2),
)


@dataclass
class LeakLog:
    """Everything a collect test showed: replies, error texts, audit details (scanned after)."""

    texts: list[tuple[str, str]] = field(default_factory=list)
    sims: list[WeComSimulator] = field(default_factory=list)

    def add(self, where: str, text: str) -> None:
        self.texts.append((where, text))


@pytest.fixture
def leaks() -> LeakLog:
    return LeakLog()


@pytest.fixture(autouse=True)
async def leak_guard(leaks: LeakLog, caplog: pytest.LogCaptureFixture,
                     redis: aioredis.Redis, keys: Keys) -> AsyncIterator[LeakLog]:
    """After each test: no test ID/phone number in any reply, log line, error or audit entry."""
    caplog.set_level(logging.DEBUG)
    yield leaks
    texts = list(leaks.texts)
    texts += [(f"log {r.name}", r.getMessage()) for r in caplog.records]
    texts += [(f"log exc {r.name}", r.exc_text or "") for r in caplog.records if r.exc_text]
    for sim in leaks.sims:
        texts += [(f"sim→{d.target}", d.content) for d in sim.records.deliveries]
        texts += [(f"sim drop→{d.target}", d.content) for d in sim.records.drops]
    for entry in await AuditLog(redis, keys, Clock()).entries():
        texts.append((f"audit {entry.action}", f"{entry.target} {entry.detail} {entry.source}"))
    assert_no_leaks(texts, SECRETS)


async def build_world(redis: aioredis.Redis, keys: Keys, clock: Clock) -> Registry:
    registry = Registry(redis, keys, clock)
    for node in TREE:
        await registry.upsert_node(node)
    for person in PEOPLE:
        await registry.upsert_person(person)
    for group in GROUPS:
        await registry.upsert_group(group)
    return registry


@pytest.fixture
async def world(redis: aioredis.Redis, keys: Keys, clock: Clock) -> Registry:
    return await build_world(redis, keys, clock)


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def deps(redis: aioredis.Redis, keys: Keys, clock: Clock, settings: Settings,
         world: Registry) -> CollectDeps:
    return CollectDeps.build(redis, keys, clock, settings, world, AuditLog(redis, keys, clock))


COLLECT_ROUTERS: tuple[Router, ...] = (collect_handlers.router, help.router, fallback.router)


@dataclass
class Chat:
    """Sends text as a WeCom user through the routers; returns what the bot answered."""

    ctx: Context
    sim: WeComSimulator
    leaks: LeakLog
    routers: Sequence[Router] = COLLECT_ROUTERS
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def _sent(self, userid: str) -> tuple[list[str], list[str]]:
        """What the bot sent `userid`: delivered, and dropped by WeCom's duplicate check (tests
        send identical messages within one second; see test_repeated_input_is_answered)."""
        delivered = [d.content for d in self.sim.app_messages_to(userid)]
        dropped = [d.content for d in self.sim.drops("duplicate") if d.target == userid]
        return delivered, dropped

    async def send(self, userid: str, text: str) -> str:
        delivered, dropped = self._sent(userid)
        number = next(self.ids)
        event = TextMessage(sender=userid, create_time=int(self.ctx.clock.now()),
                            content=text, msg_id=f"m{number}")
        ctx = replace(self.ctx, source=event.dedupe_key)
        handled = await dispatch(self.routers, event, ctx)
        assert handled, f"no route handled {text!r}"
        now_delivered, now_dropped = self._sent(userid)
        answer = "\n".join(now_delivered[len(delivered):] + now_dropped[len(dropped):])
        self.leaks.add(f"reply to {userid}", answer)
        return answer

    def messages_to(self, userid: str) -> list[str]:
        return [d.content for d in self.sim.app_messages_to(userid)]


@pytest.fixture
async def sim(aiohttp_server: AiohttpServer, settings: Settings,
              leaks: LeakLog) -> AsyncIterator[tuple[WeComSimulator, str]]:
    config = SimConfig.from_settings(settings, Clock(), latency=LatencyConfig.none(),
                                     member_app_messages_per_minute=100_000,
                                     member_app_messages_per_hour=1_000_000)
    simulator = WeComSimulator(config)
    simulator.load_directory({**{p.userid: p.name for p in PEOPLE}, "stranger": "路人"})
    leaks.sims.append(simulator)
    server = await aiohttp_server(simulator.app)
    yield simulator, str(server.make_url("/cgi-bin/"))
    await simulator.close()


def with_api_base(settings: Settings, base: str) -> Settings:
    wecom = settings.wecom.model_copy(update={"api_base_url": base})
    return settings.model_copy(update={"wecom": wecom})


@pytest.fixture
async def chat(sim: tuple[WeComSimulator, str], settings: Settings, redis: aioredis.Redis,
               keys: Keys, clock: Clock, world: Registry, leaks: LeakLog) -> AsyncIterator[Chat]:
    simulator, base = sim
    settings = with_api_base(settings, base)
    async with aiohttp.ClientSession() as session:
        client = WeComClient(session, settings.wecom, redis, keys, clock)
        ctx = Context(settings=settings, redis=redis, keys=keys, clock=clock, wecom=client,
                      audit=AuditLog(redis, keys, clock), registry=world,
                      routers=COLLECT_ROUTERS)
        yield Chat(ctx, simulator, leaks)


def chat_deps(chat: Chat) -> CollectDeps:
    return CollectDeps.from_context(chat.ctx)


def template(kind: str, **values: str) -> str:
    labels = {"name": "姓名", "id": "身份证", "phone": "电话", "address": "地址",
              "type": "人口类型", "relation": "与户主关系", "uscc": "统一社会信用代码",
              "unit_name": "名称", "legal_rep": "法定代表人", "staff": "从业人数",
              "usage": "用途", "occupancy": "居住类型", "owner": "房主", "owner_id": "房主身份证",
              "tenants": "承租人", "node": "网格"}
    return f"采集 {kind}\n" + "\n".join(f"{labels[k]}：{v}" for k, v in values.items())

