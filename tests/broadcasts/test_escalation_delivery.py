"""Escalations reach the officer: a lost one is retried, a restart neither delays nor repeats
it (issue 11 §2).

Seen in a trial: one HTTP 502 dropped an escalation (it was logged and forgotten), and after
`gridbot serve` was killed and restarted an escalation went out 128 s late.

Every owner here confirms only once their officer is told (the simulator's `escalation`
trigger); the officer escalation is due 60 s after the start.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

from bot.redis import free_port
from bot.wecom.simulator import ConfirmClass, FaultConfig, OwnerProfile
from broadcasts import outbox
from broadcasts.models import PairState
from broadcasts.progress import snapshot
from broadcasts.report import final_text
from tests.bot.test_serve import Bot
from tests.broadcasts.conftest import COUNTY_OFFICER, Env
from tests.broadcasts.test_engine import issue
from tests.conftest import test_secrets

MakeEnv = Callable[..., Awaitable[Env]]
ESCALATE_AT = 60.0
SHORT = {"GRIDBOT_BROADCAST__ESCALATE_OFFICER_AFTER_SECONDS": repr(ESCALATE_AT),
         "GRIDBOT_BROADCAST__ESCALATE_SUPERVISOR_AFTER_SECONDS": "2000",
         "GRIDBOT_BROADCAST__REMIND_AFTER_SECONDS": "2000"}
ONLY_WHEN_ESCALATED = OwnerProfile(classes=(ConfirmClass("escalated", 1.0, "escalation",
                                                         (5.0, 5.0)),))
NOTICE = "通知 紧急预警 范围：交口县 内容：请注意防范电信诈骗"


async def chiefs(env: Env, nid: int) -> set[str]:
    """The officers of the groups still waiting for their owner (an escalation's addressees)."""
    pairs = await env.rt.state.pairs(nid)
    plan = await env.rt.plans.groups(nid)
    return {o for c, g in plan.items() if pairs[c].state is PairState.AWAITING_OWNER
            for o in g.officers}


def escalations_to(env: Env, officer: str) -> list[float]:
    return [d.at for d in env.sim.app_messages_to(officer) if d.content.startswith("【催办")]


async def fault_when(env: Env, at: float, fault: FaultConfig) -> None:
    while env.clock.now() < at:
        await asyncio.sleep(0.005)
    env.sim.set_faults(fault)


async def test_an_escalation_whose_first_send_fails_is_sent_again(make_env: MakeEnv) -> None:
    env = await make_env(speed=20, env=SHORT, profile=ONLY_WHEN_ESCALATED)
    nid = await issue(env, NOTICE)
    assert (await env.service.confirm(COUNTY_OFFICER, nid)).ok
    notice = await env.rt.notices.get(nid)
    assert notice is not None
    env.start_workers(1)
    # from just before the escalation: every message/send answers HTTP 502, until one failed
    await fault_when(env, notice.started_at + ESCALATE_AT - 5, FaultConfig(
        rate=1.0, weights={"5xx": 1.0}, apis=frozenset({"message/send"})))
    officers = await chiefs(env, nid)
    assert len(officers) >= 3
    await env.wait(_faulted(env), 20, "an escalation send to fail")
    env.sim.set_faults(FaultConfig())

    async def everyone_told() -> bool:
        return all(escalations_to(env, o) for o in officers)
    await env.wait(everyone_told, 30, "every officer's escalation")
    await env.settled(nid)  # told, the owners confirmed
    assert all(len(escalations_to(env, o)) == 1 for o in officers)
    sent = [m for m in (await outbox.messages(env.rt, nid)).values()
            if m.purpose == "escalate_officer"]
    assert {m.to for m in sent} == officers and all(m.state == outbox.SENT for m in sent)
    retried = [m for m in sent if len(m.attempts) > 1]
    assert retried and all(m.attempts[0]["result"].endswith(("HTTP 502", "HTTP 503"))
                           and m.attempts[-1]["result"] == "ok" for m in retried)
    final = "\n".join(d.content for d in env.sim.app_messages_to(COUNTY_OFFICER))
    assert "多次发送失败" not in final


def _faulted(env: Env) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return env.sim.records.fault_counts["5xx"] + env.sim.records.fault_counts["timeout"] > 0
    return check


async def test_a_restart_across_the_escalation_sends_it_once_and_on_time(
    make_env: MakeEnv, tmp_path: Path,
) -> None:
    late = {**SHORT, "GRIDBOT_BROADCAST__ESCALATE_OFFICER_AFTER_SECONDS": "120"}
    env = await make_env(speed=10, env=late, profile=ONLY_WHEN_ESCALATED)
    nid = await issue(env, NOTICE)
    assert (await env.service.confirm(COUNTY_OFFICER, nid)).ok
    notice = await env.rt.notices.get(nid)
    assert notice is not None
    environ = {**test_secrets(), **env.subprocess_env(), **late}
    bots: list[Bot] = []
    try:
        async with aiohttp.ClientSession() as http:
            first = start_bot(environ, tmp_path / "first.log", bots)
            await first.ready(http)
            # the escalation's sends hang (WeCom never answers) and serve is killed meanwhile
            await fault_when(env, notice.started_at + 115, FaultConfig(
                rate=1.0, weights={"timeout": 1.0}, timeout_mode="before_commit",
                apis=frozenset({"message/send"})))
            officers = await chiefs(env, nid)
            assert len(officers) >= 3
            await env.wait(_faulted(env), 30, "an escalation send in flight")
            first.process.send_signal(signal.SIGKILL)
            assert await asyncio.to_thread(first.wait) == -signal.SIGKILL
            env.sim.set_faults(FaultConfig())
            assert not any(escalations_to(env, o) for o in officers)  # none got out

            second = start_bot(environ, tmp_path / "second.log", bots)
            await second.ready(http)
            restarted = env.clock.now()

            async def everyone_told() -> bool:
                return all(escalations_to(env, o) for o in officers)
            await env.wait(everyone_told, 30, "every officer's escalation after the restart")
            await asyncio.sleep(3)  # 30 s simulated: time enough for a repeat to show
    finally:
        for bot in bots:
            if bot.process.poll() is None:
                bot.process.send_signal(signal.SIGTERM)
                await asyncio.to_thread(bot.wait, 30)
    assert all(len(escalations_to(env, o)) == 1 for o in officers)  # once
    latest = max(at for o in officers for at in escalations_to(env, o))
    # at once (a few real seconds at 10× speed), not lost with the killed process's marker
    assert latest - restarted <= 40.0, latest - restarted


def start_bot(environ: dict[str, str], log: Path, bots: list[Bot]) -> Bot:
    port = free_port()
    bot = Bot({**environ, "GRIDBOT_SERVER__PORT": str(port)}, port, log)
    bots.append(bot)
    return bot


async def test_a_message_that_keeps_failing_is_named_in_the_final_report(
    make_env: MakeEnv,
) -> None:
    env = await make_env(speed=50, env={"GRIDBOT_BROADCAST__RETRY_DELAYS": "[1.0, 2.0]"})
    nid = await issue(env, NOTICE)
    env.sim.set_faults(FaultConfig(rate=1.0, weights={"5xx": 1.0},
                                   apis=frozenset({"message/send"})))
    await outbox.post(env.rt, nid, "esc:officer:fj00007", "fj00007", ["【催办】测试"],
                      "escalate_officer")
    env.start_workers(1)

    async def given_up() -> bool:
        return bool(await outbox.failed(env.rt, nid))
    await env.wait(given_up, 20, "the message to be given up")
    env.sim.set_faults(FaultConfig())
    [lost] = await outbox.failed(env.rt, nid)
    assert len(lost.attempts) == 3 and all("HTTP 50" in a["result"] for a in lost.attempts)
    snap = await snapshot(env.rt, nid)
    assert snap is not None
    _, lines = await final_text(env.rt, snap)
    text = "\n".join(lines)
    assert "以下消息多次发送失败" in text and "催办 → " in text and "（fj00007），3 次尝试" in text
