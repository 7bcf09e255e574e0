"""Follow-ups (更新 / 撤回 / 已破案) reach exactly the groups the original reached, through
the same channels; 撤回 stops what has not gone out yet."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from bot.wecom.client import WeComClient
from bot.wecom.models import MsgTemplateResult
from bot.wecom.simulator import ConfirmClass, OwnerProfile
from broadcasts.content import has_marker
from broadcasts.models import NoticeKind, PairState
from registry.models import DeliveryKind
from tests.broadcasts.conftest import COUNTY_OFFICER, Env
from tests.broadcasts.test_engine import issue

MakeEnv = Callable[..., Awaitable[Env]]
# most owners confirm soon, some only late, a few never
MIXED = OwnerProfile(classes=(ConfirmClass("soon", 0.7, "created", (20.0, 40.0)),
                              ConfirmClass("late", 0.2, "created", (90.0, 120.0)),
                              ConfirmClass("never", 0.1, "never")))
SHORT = {"GRIDBOT_BROADCAST__DEADLINE_SECONDS": "60"}


def reached(env: Env, nid: int) -> dict[str, str]:
    """chat -> channel of every group the simulator delivered notice `nid` to."""
    out: dict[str, str] = {}
    for d in env.sim.records.deliveries:
        if d.channel != "app_message" and has_marker(d.content, nid):
            assert d.target not in out, f"{d.target} got #{nid} twice"
            out[d.target] = d.channel
    return out


async def test_update_reaches_exactly_the_original_recipients(make_env: MakeEnv) -> None:
    env = await make_env(speed=30, profile=MIXED, env=SHORT)
    gone = next(g for g in env.city.groups if g.kind is DeliveryKind.APPCHAT)
    del env.sim.state.groups.appchats[gone.chat_id]  # dismissed in WeCom, not yet in the registry
    original = await issue(env, "通知 协查 范围：交口县 内容：寻找走失老人，身穿蓝色外套")
    assert (await env.service.confirm(COUNTY_OFFICER, original)).ok
    env.start_workers(2)

    async def half() -> bool:
        counts = await env.rt.state.counts(original)
        return counts.get(PairState.DELIVERED, 0) >= 40
    await env.wait(half, 20, "half delivered")
    reply = await env.service.follow_up_text(COUNTY_OFFICER, "更新", f"{original} 已有新线索")
    assert reply.ok, reply.text
    update = reply.notice_id
    assert update is not None
    await env.settled(original, 60)
    await env.settled(update, 60)

    got_original, got_update = reached(env, original), reached(env, update)
    assert got_update == got_original  # same groups, same channels
    assert gone.chat_id not in got_original
    never = {g.chat_id for g in env.city.groups if g.kind is DeliveryKind.CUSTOMER_GROUP
             and env.sim.owner_class(g.owner) == "never"}
    assert never and not never & set(got_update)
    late = {g.chat_id for g in env.city.groups if g.kind is DeliveryKind.CUSTOMER_GROUP
            and env.sim.owner_class(g.owner) == "late"}
    assert late & set(got_update)  # confirmed after the update was issued: gated, then sent
    pairs = await env.rt.state.pairs(update)
    assert {c for c, r in pairs.items() if r.state is PairState.SKIPPED} == never - {
        c for c, v in env.city.quota_used.items() if v >= 31}


async def test_retract_cancels_what_has_not_gone_out(make_env: MakeEnv) -> None:
    slow = OwnerProfile.always((200.0, 300.0))
    env = await make_env(speed=30, profile=slow, env=SHORT)
    original = await issue(env, "通知 普通 范围：交口县 内容：明日停水")
    assert (await env.service.confirm(COUNTY_OFFICER, original)).ok
    env.start_workers(2)
    instant = {g.chat_id for g in env.city.groups if g.kind is not DeliveryKind.CUSTOMER_GROUP}

    async def machine_done() -> bool:
        return instant <= set(reached(env, original)) and len(
            [u for u in await env.rt.state.units(original) if u.state == "awaiting_owner"]) > 50
    await env.wait(machine_done, 20, "appchat/webhook sent, tasks waiting")
    reply = await env.service.follow_up_text(COUNTY_OFFICER, "撤回", f"#{original} 发布有误")
    assert reply.ok, reply.text
    retract = reply.notice_id
    assert retract is not None
    await env.settled(retract, 60)
    await env.settled(original, 60)
    assert set(reached(env, original)) == instant  # no customer group ever got it
    assert set(reached(env, retract)) == instant
    assert all(t.cancelled for t in env.sim.tasks() if has_marker(t.text, original))
    notice = await env.rt.notices.get(retract)
    assert notice is not None and notice.kind is NoticeKind.RETRACT
    assert "已撤回" in "".join(d.content for d in env.sim.records.deliveries
                              if has_marker(d.content, retract))


async def test_retract_cancels_a_task_wecom_was_creating_when_it_came(
        make_env: MakeEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    """撤回 while one owner task is claimed and its request not yet answered: the unit is
    `submitted`, so the withdrawal cannot cancel it; the task is cancelled once it exists."""
    env = await make_env(speed=30, profile=OwnerProfile.always((200.0, 300.0)), env=SHORT)
    original = await issue(env, "通知 普通 范围：交口县 内容：明日停水")
    held, release = asyncio.Event(), asyncio.Event()
    real = WeComClient.add_msg_template

    async def slow_first(self: WeComClient, sender: str, chats: Any, *args: Any,
                         before_send: Any = None, **kwargs: Any) -> MsgTemplateResult:
        async def claim_then_hold() -> None:
            await before_send()
            if not held.is_set():  # the first task: claimed, its request held back
                held.set()
                await release.wait()
        return await real(self, sender, chats, *args, before_send=claim_then_hold, **kwargs)

    monkeypatch.setattr(WeComClient, "add_msg_template", slow_first)
    assert (await env.service.confirm(COUNTY_OFFICER, original)).ok
    env.start_workers(2)
    await env.wait(lambda: _true(held.is_set()), 20, "a task request in flight")
    reply = await env.service.follow_up_text(COUNTY_OFFICER, "撤回", f"#{original} 发布有误")
    assert reply.ok, reply.text
    assert reply.notice_id is not None

    async def withdrawn() -> bool:  # the 撤回 has run; the held task is still submitted
        units = await env.rt.state.units(original)
        return await env.rt.redis.hexists(env.rt.keys.marks(original), "withdrawn") and any(
            u.state == "submitted" for u in units) and not any(u.state == "planned"
                                                               for u in units)
    await env.wait(withdrawn, 20, "the 撤回 run while one task is still being created")
    release.set()
    await env.settled(original, 60)
    ours = [t for t in env.sim.tasks() if has_marker(t.text, original)]
    assert ours and all(t.cancelled for t in ours)
    customer = {g.chat_id for g in env.city.groups if g.kind is DeliveryKind.CUSTOMER_GROUP}
    assert not customer & set(reached(env, original))
    units = await env.rt.state.units(original)
    assert {u.state for u in units} <= {"failed", "cancelled"}


async def _true(value: bool) -> bool:
    return value
