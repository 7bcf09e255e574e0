"""Fault injection: -1, HTTP 5xx and timeouts, at a configured rate, deterministic by seed."""

from __future__ import annotations

import asyncio
from collections import Counter

import aiohttp
import pytest

from bot.wecom.simulator import FaultConfig
from bot.wecom.simulator.chaos import Latency
from bot.wecom.simulator.config import LatencyConfig
from tests.simulator.conftest import AGENT_ID, Harness, SimFactory

CALLS = 600
SEND = frozenset({"message/send"})


async def _send(h: Harness, userid: str, timeout: float = 5.0) -> str:
    """Outcome of one message/send: "ok", "-1", "502"/"503" or "timeout"."""
    body = {"touser": userid, "msgtype": "text", "agentid": AGENT_ID, "text": {"content": "通知"}}
    try:
        async with h.session.post(
            f"{h.base}/cgi-bin/message/send",
            params={"access_token": h.token},
            json=body,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as resp:
            if resp.status != 200:
                return str(resp.status)
            data = await resp.json()
    except TimeoutError:
        return "timeout"
    return "ok" if data["errcode"] == 0 else str(data["errcode"])


def _users(h: Harness, n: int) -> list[str]:
    users = [f"u{i:04d}" for i in range(n)]
    h.sim.load_directory(dict.fromkeys(users, "成员"))
    return users


async def test_fault_rate_and_kinds_and_nothing_processed(make_sim: SimFactory) -> None:
    h = await make_sim(
        seed=3, faults=(FaultConfig(rate=0.3, weights={"-1": 1, "5xx": 1}, apis=SEND),)
    )
    users = _users(h, CALLS)
    await h.gettoken()
    outcomes = Counter([await _send(h, u) for u in users])
    faults = CALLS - outcomes["ok"]
    assert abs(faults / CALLS - 0.3) < 0.05
    assert abs(outcomes["-1"] / max(faults, 1) - 0.5) < 0.1
    assert outcomes["502"] + outcomes["503"] + outcomes["-1"] == faults
    assert len(h.sim.records.deliveries) == outcomes["ok"]  # faults were never processed
    assert h.sim.records.fault_counts["5xx"] == outcomes["502"] + outcomes["503"]
    assert h.sim.errors_answered(-1, "message/send") == outcomes["-1"]


@pytest.mark.parametrize(("mode", "processed"), [("after_commit", 1), ("before_commit", 0)])
async def test_timeout_holds_the_answer_until_the_client_gives_up(
    make_sim: SimFactory, mode: str, processed: int
) -> None:
    fault = FaultConfig(rate=1.0, weights={"timeout": 1}, timeout_mode=mode, apis=SEND)  # type: ignore[arg-type]
    h = await make_sim(faults=(fault,))
    [user] = _users(h, 1)
    await h.gettoken()
    started = asyncio.get_running_loop().time()
    assert await _send(h, user, timeout=0.3) == "timeout"
    assert asyncio.get_running_loop().time() - started >= 0.3
    assert len(h.sim.app_messages_to(user)) == processed
    assert h.sim.records.fault_counts["timeout"] == 1


async def test_same_seed_same_faults(make_sim: SimFactory) -> None:
    config = FaultConfig(rate=0.5, weights={"-1": 1, "5xx": 1}, apis=SEND)
    runs = []
    for _ in range(2):
        h = await make_sim(seed=11, faults=(config,))
        users = _users(h, 80)
        await h.gettoken()
        runs.append([await _send(h, u) for u in users])
    assert runs[0] == runs[1]
    assert len(set(runs[0])) > 2


async def test_faults_per_endpoint(make_sim: SimFactory) -> None:
    h = await make_sim()
    [user] = _users(h, 1)
    await h.gettoken()
    h.sim.set_faults(FaultConfig(rate=1.0, weights={"-1": 1}, apis=SEND))
    assert await _send(h, user) == "-1"
    assert (await h.call("externalcontact/groupchat/list", {"limit": 5}))["errcode"] == 0
    h.sim.set_faults()
    assert await _send(h, user) == "ok"


def test_latency_is_lognormal_with_the_configured_median_and_p99() -> None:
    latency = Latency(LatencyConfig(median=0.060, p99=0.400), seed=5)
    samples = sorted(latency.sample() for _ in range(20_000))
    assert 0.055 < samples[10_000] < 0.065
    assert 0.34 < samples[19_800] < 0.46
    assert Latency(LatencyConfig.none(), seed=5).sample() == 0.0


async def test_latency_delays_answers(make_sim: SimFactory) -> None:
    h = await make_sim(latency=LatencyConfig(median=0.05, p99=0.051))
    loop = asyncio.get_running_loop()
    started = loop.time()
    await h.gettoken()
    assert loop.time() - started >= 0.045
