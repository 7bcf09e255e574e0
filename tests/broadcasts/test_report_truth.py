"""What the officer is told is a fact or says it is a guess (issue 11 §1).

Seen in a trial: owners confirmed at +507.8 s, the bot's last poll had been earlier and the
one look at WeCom before the deadline report failed, so the report named delivered groups as
「未按时送达 — 待群主确认」 and nobody ever corrected it.

The timings are shortened (deadline 120 s, polls every 200 s): the owners confirm at +60 s,
the one poll before the deadline is the last planned one (+115 s), and WeCom's
get_groupmsg_task answers HTTP 502 from +100 s until the test says.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable

from bot.wecom.simulator import FaultConfig, OwnerProfile
from broadcasts.content import has_marker
from broadcasts.models import PairState
from registry.models import DeliveryKind
from tests.broadcasts.conftest import COUNTY_OFFICER, Env
from tests.broadcasts.test_engine import issue

MakeEnv = Callable[..., Awaitable[Env]]
SHORT = {"GRIDBOT_BROADCAST__DEADLINE_SECONDS": "120",
         "GRIDBOT_BROADCAST__POLL_INTERVAL_SECONDS": "200",
         "GRIDBOT_BROADCAST__REMIND_AFTER_SECONDS": "2000",
         "GRIDBOT_BROADCAST__ESCALATE_OFFICER_AFTER_SECONDS": "2000",
         "GRIDBOT_BROADCAST__ESCALATE_SUPERVISOR_AFTER_SECONDS": "2100"}
CONFIRM_AFTER = 60.0
NOTICE = "通知 紧急预警 范围：交口县 内容：请注意防范电信诈骗"


@contextlib.asynccontextmanager
async def task_reads_fail(env: Env, start: float, until: Callable[[], bool]
                          ) -> AsyncIterator[None]:
    """get_groupmsg_task answers HTTP 502 from `start` (simulated time) until `until()`, also
    when the block ends first (the window is then waited out, never left open: WeCom that
    stayed unreadable for good would fail a later step for the wrong reason)."""
    async def window() -> None:
        while env.clock.now() < start:
            await asyncio.sleep(0.002)
        env.sim.set_faults(FaultConfig(rate=1.0, weights={"5xx": 1.0},
                                       apis=frozenset({"externalcontact/get_groupmsg_task"})))
        while not until():
            await asyncio.sleep(0.002)
        env.sim.set_faults(FaultConfig())

    task = asyncio.create_task(window())
    try:
        yield
        await task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        env.sim.set_faults(FaultConfig())


def faults(env: Env) -> int:
    return env.sim.records.fault_counts["5xx"]


def to_officer(env: Env, prefix: str) -> list[str]:
    """Messages to the officer starting with `prefix`, each with its continuations（续 n）."""
    whole: list[str] = []
    for d in env.sim.app_messages_to(COUNTY_OFFICER):
        if d.content.startswith("（续") and whole:
            whole[-1] += "\n" + d.content
        else:
            whole.append(d.content)
    return [m for m in whole if m.startswith(prefix)]


async def start(env: Env) -> tuple[int, float]:
    nid = await issue(env, NOTICE)
    assert (await env.service.confirm(COUNTY_OFFICER, nid)).ok
    notice = await env.rt.notices.get(nid)
    assert notice is not None
    env.start_workers(1)
    return nid, notice.started_at


async def test_deadline_report_reads_wecom_again_and_is_right(make_env: MakeEnv) -> None:
    env = await make_env(speed=20, env=SHORT,
                         profile=OwnerProfile.always((CONFIRM_AFTER, CONFIRM_AFTER)))
    nid, at = await start(env)
    seen: list[int] = []

    def a_read_failed_at_the_deadline() -> bool:  # a passing outage: over after that
        if env.clock.now() < at + 120:
            seen[:] = [faults(env)]
            return False
        return faults(env) > seen[0]

    async with task_reads_fail(env, at + 100, a_read_failed_at_the_deadline):
        await env.wait(lambda: _has(env, "【时限报告】", "【结束报告】"), 40, "deadline report")
    assert faults(env) > seen[0]  # the look at the deadline did fail at first
    await env.settled(nid)
    said = "\n".join(to_officer(env, "【时限报告】") + to_officer(env, "【结束报告】"))
    assert "待群主确认" not in said and "未能核实" not in said
    deadline = at + 120
    reached = delivered_by(env, nid, deadline)
    edge = delivered_by(env, nid, deadline + 1) - delivered_by(env, nid, deadline - 1)
    pairs = await env.rt.state.pairs(nid)
    customer = [g for g in env.city.groups if g.kind is DeliveryKind.CUSTOMER_GROUP]
    assert len([g for g in customer if g.chat_id in reached]) >= 20
    for g in env.city.groups:  # the report says what WeCom knows: in time, or named
        if g.chat_id in edge:
            continue  # WeCom's send_time is in whole seconds
        if g.chat_id in reached:
            assert pairs[g.chat_id].state is PairState.DELIVERED
            assert f"「{g.name}」" not in said
        else:
            assert f"「{g.name}」" in said


def delivered_by(env: Env, nid: int, at: float) -> set[str]:
    """Chats the simulator delivered the notice to by `at`."""
    return {g.chat_id for g in env.city.groups
            if any(has_marker(d.content, nid) and d.at <= at
                   for d in env.sim.deliveries_to(g.chat_id))}


async def test_a_report_that_had_to_guess_says_so_and_is_corrected(make_env: MakeEnv) -> None:
    env = await make_env(speed=20, env=SHORT,
                         profile=OwnerProfile.always((CONFIRM_AFTER, CONFIRM_AFTER)))
    nid, at = await start(env)
    # WeCom unreadable until after the report and past the look the deadline job plans 30 s
    # later: the correction then rests on a read retried after that failure too
    async with task_reads_fail(env, at + 100, lambda: env.clock.now() > at + 170 and bool(
            to_officer(env, "【时限报告】"))):
        await env.wait(lambda: _has(env, "【时限报告】"), 40, "deadline report")
        guesses = int(re.findall(r"其中 (\d+) 个群未能向企业微信核实，是推测",
                                 "".join(to_officer(env, "【时限报告】")))[0])

        async def whole_report() -> bool:  # every part (a long list ends in 「其余 n 条未列出」)
            text = "\n".join(to_officer(env, "【时限报告】"))
            return text.count("未能核实") == guesses or "条未列出" in text
        await env.wait(whole_report, 20, "every part of the deadline report")
        report = "\n".join(to_officer(env, "【时限报告】"))
        assert "待群主确认" not in report  # never stated as a fact
    guessed = [ln for ln in report.splitlines() if "未能核实" in ln]
    named = [g for g in env.city.groups if any(f"「{g.name}」" in ln for ln in guessed)]
    assert len(named) == len(guessed)
    reached = delivered_by(env, nid, at + 120)
    assert any(g.chat_id in reached for g in named)  # some of the guesses were wrong

    def corrected() -> str:
        return "\n".join(to_officer(env, "【更正】"))

    async def all_corrected() -> bool:
        return all(f"「{g.name}」" in corrected() for g in named)
    try:
        await env.wait(all_corrected, 60, "corrections naming every guessed group")
    except AssertionError:
        missing = [g.name for g in named if f"「{g.name}」" not in corrected()]
        pairs = await env.rt.state.pairs(nid)
        raise AssertionError((missing, [pairs[g.chat_id] for g in named
                                        if g.name in missing][:3])) from None
    await env.settled(nid)
    text = corrected()
    assert all(text.count(f"「{g.name}」") == 1 for g in named)  # each corrected once
    # the whole list, also past a truncated report (a guessed group may also have failed,
    # e.g. on its spent monthly quota: counted by its line, not by 已送达)
    assert len(re.findall(r"\d+\.「", text)) == guesses
    assert len(to_officer(env, "【更正】")) <= 2  # short: what was learnt together goes together


async def _has(env: Env, *prefixes: str) -> bool:
    return any(d.content.startswith(prefixes) for d in env.sim.app_messages_to(COUNTY_OFFICER))


async def test_report_during_sending_is_progress_not_the_end(make_env: MakeEnv) -> None:
    """`gridbot broadcast report` while the notice is sending: 【进度报告】, none called late."""
    from broadcasts.cli import _report

    env = await make_env(speed=20, env=SHORT,
                         profile=OwnerProfile.always((CONFIRM_AFTER, CONFIRM_AFTER)))
    nid, at = await start(env)
    while env.clock.now() < at + 30:
        await asyncio.sleep(0.01)
    early = await _report(env.rt, nid)
    assert early.ok and "【进度报告】" in early.text and "尚未结束" in early.text
    assert "【结束报告】" not in early.text and "未按时送达" not in early.text
    assert "群主始终未确认" not in early.text
    await env.settled(nid)
    done = await _report(env.rt, nid)
    assert "【结束报告】" in done.text and "【进度报告】" not in done.text
