"""Broadcast fixtures: the simulator over real HTTP, the real Redis, a synthetic county loaded
into both, a sped-up clock, and in-process or subprocess workers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import web

from bot.audit import AuditLog
from bot.clock import Clock
from bot.keys import Keys
from bot.settings import Settings
from bot.wecom.client import WeComClient, trace_configs
from bot.wecom.simulator import OwnerProfile, SimConfig, WeComSimulator
from broadcasts.deps import Runtime
from broadcasts.service import BroadcastService
from broadcasts.worker import Worker
from registry.city import City
from registry.models import Person, Role
from registry.store import Registry
from registry.synthetic import generate_city, load_into_simulator
from tests.stuck import bounded

ROOT = Path(__file__).resolve().parents[2]
CITY_CODE = "141100"
# 交口县 with 100 groups: 90 customer groups (83 owners), 6 appchats, 4 robots
SMALL = {"seed": 11, "counties": ("141130",), "total_groups": 100, "residents": 8_000}
CITY_OFFICER, CITY_OFFICER_2, COUNTY_OFFICER = "mj_city1", "mj_city2", "mj_county1"


def with_police(city: City, county: str) -> City:
    """Add officers covering the city (two, for 批准) and the county under test."""
    city.people += [Person(CITY_OFFICER, "王警官", Role.OFFICER, (CITY_CODE,)),
                    Person(CITY_OFFICER_2, "赵警官", Role.OFFICER, (CITY_CODE,)),
                    Person(COUNTY_OFFICER, "李警官", Role.OFFICER, (county,))]
    return city


@dataclass
class Env:
    settings: Settings
    clock: Clock
    sim: WeComSimulator
    redis: aioredis.Redis
    keys: Keys
    session: aiohttp.ClientSession
    city: City
    api_url: str
    rt: Runtime
    service: BroadcastService
    server: web.AppRunner
    workers: list[Worker] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def runtime(self) -> Runtime:
        """A fresh Runtime (as another process would build) on the same services."""
        wecom = WeComClient(self.session, self.settings.wecom, self.redis, self.keys, self.clock)
        return Runtime.build(self.settings, self.redis, self.keys, self.clock, wecom,
                             Registry(self.redis, self.keys, self.clock),
                             AuditLog(self.redis, self.keys, self.clock))

    def start_workers(self, n: int, concurrency: int = 32) -> None:
        for _ in range(n):
            worker = Worker(self.runtime(), concurrency=concurrency)
            self.workers.append(worker)
            self.tasks.append(asyncio.create_task(worker.run()))

    async def stop_workers(self) -> None:
        for worker in self.workers:
            worker.stop()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.workers.clear()
        self.tasks.clear()

    async def wait(self, check: Callable[[], Awaitable[bool]], real_timeout: float,
                   what: str = "") -> None:
        """Poll `check` until true (real seconds)."""
        deadline = time.monotonic() + real_timeout
        while time.monotonic() < deadline:
            if await check():
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what or check}")

    async def settled(self, notice_id: int, real_timeout: float = 60.0) -> None:
        async def done() -> bool:
            notice = await self.rt.notices.get(notice_id)
            return notice is not None and notice.settled_at > 0
        await self.wait(done, real_timeout, f"notice #{notice_id} settled")

    def subprocess_env(self) -> dict[str, str]:
        """Environment for `gridbot` subprocesses sharing this test's Redis, WeCom and clock."""
        w = self.settings.wecom
        return {
            **os.environ,
            "GRIDBOT_REDIS__URL": self.settings.redis.url,
            "GRIDBOT_WECOM__CORP_ID": w.corp_id,
            "GRIDBOT_WECOM__SECRET": w.secret.get_secret_value(),
            "GRIDBOT_WECOM__AGENT_ID": str(w.agent_id),
            "GRIDBOT_WECOM__TOKEN": w.token.get_secret_value(),
            "GRIDBOT_WECOM__ENCODING_AES_KEY": w.encoding_aes_key.get_secret_value(),
            "GRIDBOT_WECOM__API_BASE_URL": self.api_url,
            "GRIDBOT_CLOCK__SPEED": repr(self.clock.speed),
            "GRIDBOT_CLOCK__ORIGIN": repr(self.clock.origin),
            "GRIDBOT_BROADCAST__CLAIM_IDLE_SECONDS":
                repr(self.settings.broadcast.claim_idle_seconds),
            "GRIDBOT_LOG__LEVEL": "WARNING",
            # `gridbot serve` refuses to start without its field keys
            "GRIDBOT_SECURITY__FIELD_KEYS": self.settings.security.field_keys.get_secret_value(),
            "GRIDBOT_SECURITY__BLIND_INDEX_KEY":
                self.settings.security.blind_index_key.get_secret_value(),
        }


async def load_city(registry: Registry, city: City) -> None:
    await registry.upsert_nodes(city.nodes)
    await registry.upsert_people(city.people)
    await registry.upsert_groups(city.groups)


@pytest.fixture
async def make_env(redis: aioredis.Redis, make_settings: Callable[..., Settings],
                   ) -> AsyncIterator[Callable[..., Awaitable[Env]]]:
    """Build an Env: `speed` of the clock, the city options, and simulator overrides."""
    made: list[Env] = []

    async def build(speed: float = 20.0, city: dict[str, Any] | None = None,
                    profile: OwnerProfile | None = None, env: dict[str, str] | None = None,
                    **sim: Any) -> Env:
        options = city or SMALL
        town = with_police(generate_city(**options), options["counties"][0])
        clock = Clock(speed=speed, origin=time.time())
        settings = make_settings(env or {})
        config = SimConfig.from_settings(settings, clock, seed=options["seed"],
                                         owner_profile=profile or OwnerProfile(), **sim)
        simulator = WeComSimulator(config)
        load_into_simulator(town, simulator)
        server = await serve_simulator(simulator)
        url = f"http://127.0.0.1:{server.addresses[0][1]}/cgi-bin/"
        settings = settings.model_copy(update={
            "wecom": settings.wecom.model_copy(update={"api_base_url": url}),
            "clock": settings.clock.model_copy(update={"speed": speed, "origin": clock.origin}),
        })
        keys = Keys(settings.redis.prefix)
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=128),
                                        trace_configs=trace_configs())
        registry = Registry(redis, keys, clock)
        await load_city(registry, town)
        wecom = WeComClient(session, settings.wecom, redis, keys, clock)
        rt = Runtime.build(settings, redis, keys, clock, wecom, registry,
                           AuditLog(redis, keys, clock))
        await rt.quota.set_known(town.quota_used)
        made.append(Env(settings, clock, simulator, redis, keys, session, town, url, rt,
                        BroadcastService(rt), server))
        return made[-1]

    yield build
    for made_env in made:
        await _close(made_env)


async def serve_simulator(simulator: WeComSimulator) -> web.AppRunner:
    """The simulator on a free loopback port; a handler left running when the test ends is
    cancelled after 5 s instead of aiohttp's default 60 s grace (twice)."""
    runner = web.AppRunner(simulator.app, shutdown_timeout=5.0, handler_cancellation=True)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


async def _close(env: Env) -> None:
    # Worker.run drains in-flight jobs for up to STOP_GRACE_REAL (30 s): a test whose jobs
    # are still busy after that has a stuck coroutine, named by bounded().
    await bounded(env.stop_workers(), 45, "stopping the workers")
    await env.session.close()
    await bounded(env.server.cleanup(), 20, "stopping the simulator")


@contextlib.contextmanager
def gridbot(args: list[str], environ: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """A `gridbot …` subprocess, stopped (SIGTERM, then SIGKILL) on exit."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "--settings", str(ROOT / "settings.toml"), *args],
        env=environ, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
