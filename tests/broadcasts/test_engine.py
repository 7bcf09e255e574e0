"""The delivery engine end to end: simulator over HTTP, real Redis, in-process workers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable

from bot.wecom.simulator import OwnerProfile
from broadcasts.grammar import parse_notice
from broadcasts.models import NoticeStatus, PairState
from registry.models import DeliveryKind
from tests.broadcasts.conftest import COUNTY_OFFICER, Env

MakeEnv = Callable[..., Awaitable[Env]]


async def issue(env: Env, text: str, actor: str = COUNTY_OFFICER) -> int:
    draft = parse_notice(text, env.clock.now())
    reply = await env.service.issue(actor, draft)
    assert reply.ok, reply.text
    assert reply.notice_id is not None
    return reply.notice_id


async def test_every_group_gets_the_notice_exactly_once(make_env: MakeEnv) -> None:
    env = await make_env(speed=20, profile=OwnerProfile.always((60.0, 60.0)))
    nid = await issue(env, "通知 紧急预警 范围：交口县 内容：请注意防范电信诈骗")
    notice = await env.rt.notices.get(nid)
    assert notice is not None and notice.status is NoticeStatus.PENDING_CONFIRM
    assert (await env.service.confirm(COUNTY_OFFICER, nid)).ok
    env.start_workers(2)
    await env.settled(nid, 40)
    pairs = await env.rt.state.pairs(nid)
    spent = set(env.city.quota_used) & {c for c, v in env.city.quota_used.items() if v >= 31}
    counts = Counter(r.state for r in pairs.values())
    assert counts[PairState.DELIVERED] == len(env.city.groups) - len(spent)
    assert {c for c, r in pairs.items() if r.state is PairState.FAILED} == spent
    for g in env.city.groups:
        got = [d for d in env.sim.deliveries_to(g.chat_id) if f"#{nid}" in d.content]
        assert len(got) == (0 if g.chat_id in spent else 1), g
    kinds = Counter(g.kind for g in env.city.groups)
    assert env.sim.calls("externalcontact/add_msg_template") == len(
        {g.owner for g in env.city.groups if g.kind is DeliveryKind.CUSTOMER_GROUP
         and g.chat_id not in spent})
    assert kinds[DeliveryKind.APPCHAT] == env.sim.calls("appchat/send")


async def test_progress_rolls_up_the_tree_and_quota_counts_deliveries(make_env: MakeEnv) -> None:
    env = await make_env(speed=20, profile=OwnerProfile.always((60.0, 60.0)))
    nid = await issue(env, "通知 普通 范围：交口县 内容：燃气安全提示")
    assert (await env.service.confirm(COUNTY_OFFICER, nid)).ok
    env.start_workers(1)
    await env.settled(nid, 40)
    reply = await env.service.progress(COUNTY_OFFICER, nid)
    print(reply.text)
    lines = reply.text.splitlines()
    total = len(env.city.groups)
    spent = sum(1 for v in env.city.quota_used.values() if v >= 31)
    assert f"已送达 {total - spent}/{total}" in lines[1]
    assert lines[2].startswith(f"交口县 {total - spent}/{total}")
    townships = [ln for ln in lines[3:] if ln.startswith("  ")]
    assert townships and all("/" in ln for ln in townships)
    done = [ln for ln in townships if "分" in ln or "秒" in ln]  # complete ones show their time
    assert done
    used = await env.rt.quota.used([g.chat_id for g in env.city.groups
                                    if g.kind is DeliveryKind.CUSTOMER_GROUP])
    for g in env.city.groups:
        if g.kind is DeliveryKind.CUSTOMER_GROUP:
            before = env.city.quota_used.get(g.chat_id, 0)
            assert used[g.chat_id] == (31 if before >= 31 else before + 1)
