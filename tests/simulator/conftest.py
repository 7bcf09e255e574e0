"""Simulator fixtures: a WeComSimulator served over real HTTP and a thin aiohttp caller."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from pytest_aiohttp import AiohttpServer

from bot.clock import Clock
from bot.wecom.simulator import LatencyConfig, SimConfig, WeComSimulator

CORP_ID = "wwsimtest0001"
SECRET = "sim-test-secret"
AGENT_ID = 1000002


def fast_clock(speed: float) -> Clock:
    return Clock(speed=speed, origin=time.time())


@dataclass
class Harness:
    """The simulator, its base URL and a client that speaks WeCom's wire format."""

    sim: WeComSimulator
    base: str
    session: aiohttp.ClientSession
    token: str = ""
    answers: list[dict[str, Any]] = field(default_factory=list)

    async def gettoken(self, corpid: str = CORP_ID, secret: str = SECRET) -> dict[str, Any]:
        params = {"corpid": corpid, "corpsecret": secret}
        async with self.session.get(f"{self.base}/cgi-bin/gettoken", params=params) as resp:
            data: dict[str, Any] = await resp.json()
        if data.get("errcode") == 0:
            self.token = data["access_token"]
        return data

    async def call(self, api: str, payload: dict[str, Any], **params: str) -> dict[str, Any]:
        """POST /cgi-bin/<api> with the current token (fetched on first use)."""
        if not self.token and api != "webhook/send":
            await self.gettoken()
        query = {"access_token": self.token, **params} if api != "webhook/send" else params
        async with self.session.post(
            f"{self.base}/cgi-bin/{api}", params=query, json=payload
        ) as resp:
            data: dict[str, Any] = await resp.json()
        return data

    async def send_text(self, touser: str, content: str, **extra: Any) -> dict[str, Any]:
        return await self.call(
            "message/send",
            {
                "touser": touser,
                "msgtype": "text",
                "agentid": AGENT_ID,
                "text": {"content": content},
                **extra,
            },
        )

    async def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        async with self.session.request(method, f"{self.base}/sim/{path}", **kwargs) as resp:
            return await resp.json()


SimFactory = Callable[..., Awaitable[Harness]]


@pytest.fixture
async def make_sim(aiohttp_server: AiohttpServer) -> AsyncIterator[SimFactory]:
    """make_sim(speed=…, **SimConfig fields) -> Harness on a started test server."""
    sessions: list[aiohttp.ClientSession] = []

    async def build(speed: float = 1.0, **overrides: Any) -> Harness:
        config = SimConfig(
            corp_id=CORP_ID,
            secret=SECRET,
            agent_id=AGENT_ID,
            clock=fast_clock(speed) if speed != 1.0 else Clock(),
            **{"latency": LatencyConfig.none(), **overrides},
        )
        sim = WeComSimulator(config)
        server = await aiohttp_server(sim.app)
        session = aiohttp.ClientSession()
        sessions.append(session)
        return Harness(sim, str(server.make_url("")).rstrip("/"), session)

    yield build
    for session in sessions:
        await session.close()


async def sleep_sim(harness: Harness, sim_seconds: float) -> None:
    await harness.sim.clock.sleep(sim_seconds)
