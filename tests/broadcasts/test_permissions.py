"""Who may: residents, grid workers and officers outside the target are refused politely and
audited; 辅警 may watch progress; a city-wide 协查通报 needs a second officer's 批准."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot.audit import AuditLog
from bot.context import Context
from bot.events import TextMessage
from bot.router import dispatch
from broadcasts.escalation import by_chief
from handlers import ROUTERS
from registry.models import Role
from tests.broadcasts.conftest import CITY_OFFICER, CITY_OFFICER_2, COUNTY_OFFICER, Env

MakeEnv = Callable[..., Awaitable[Env]]
NOTICE = "通知 紧急预警 范围：交口县 内容：大风预警"


def context(env: Env, source: str) -> Context:
    rt = env.rt
    return Context(settings=env.settings, redis=env.redis, keys=env.keys, clock=env.clock,
                   wecom=rt.wecom, audit=rt.audit, registry=rt.registry, routers=ROUTERS,
                   source=source)


async def say(env: Env, sender: str, text: str) -> str:
    """Dispatch a text through the real routers; return the bot's 1:1 reply."""
    before = len(env.sim.app_messages_to(sender))
    event = TextMessage(sender=sender, create_time=int(env.clock.now()), content=text,
                        msg_id=f"m{before}{sender}")
    assert await dispatch(ROUTERS, event, context(env, event.dedupe_key))
    replies = env.sim.app_messages_to(sender)
    assert len(replies) == before + 1
    return replies[-1].content


def person(env: Env, role: Role) -> str:
    return next(p.userid for p in env.city.people if p.role is role)


async def test_resident_grid_worker_and_outside_officer_are_refused(make_env: MakeEnv) -> None:
    env = await make_env()
    resident = "wmResidentX01"
    env.sim.load_directory({**env.city.users(), resident: "居民甲"})
    worker = person(env, Role.GRID_WORKER)
    village_officer = next(p for p in env.city.people if p.role is Role.OFFICER and p.nodes
                           and len(p.nodes[0]) == 12)
    cases = {resident: "不在网格警务人员名单", worker: "只有民警",
             village_officer.userid: "不在您负责的辖区"}
    for who, why in cases.items():
        answer = await say(env, who, NOTICE)
        assert why in answer, answer
    audit = AuditLog(env.redis, env.keys, env.clock)
    for who, why in cases.items():
        entries = await audit.entries(actor=who, action="broadcast.issue")
        assert [e.outcome for e in entries] == ["refused"]
        assert why in entries[0].detail and entries[0].source.startswith("msg:")
    assert await env.rt.notices.latest_of(village_officer.userid) == []
    assert env.sim.records.call_counts["externalcontact/add_msg_template"] == 0


async def test_other_commands_check_role_area_and_issuer(make_env: MakeEnv) -> None:
    env = await make_env()
    preview = await say(env, COUNTY_OFFICER, NOTICE)
    assert "预览" in preview and "确认" in preview
    nid = (await env.rt.notices.latest_of(COUNTY_OFFICER))[0]
    village_officer = next(p.userid for p in env.city.people if p.role is Role.OFFICER)
    assert "不是您发布的" in await say(env, village_officer, f"确认 {nid}")
    aux = next(p for p in env.city.people if p.role is Role.AUXILIARY)
    assert "只有民警" in await say(env, aux.userid, NOTICE)
    assert "不在您负责的辖区" in await say(env, aux.userid, f"进度 {nid}")  # only their village
    assert "通知" in await say(env, COUNTY_OFFICER, f"进度 {nid}")
    worker = person(env, Role.GRID_WORKER)
    assert "只有" in await say(env, worker, f"更新 {nid} 新线索")
    audit = AuditLog(env.redis, env.keys, env.clock)
    assert (await audit.entries(actor=village_officer, action="broadcast.confirm"))[0].outcome \
        == "refused"
    assert (await audit.entries(actor=aux.userid, action="broadcast.progress"))[0].outcome \
        == "refused"


async def test_city_wide_assist_notice_needs_a_second_officer(make_env: MakeEnv) -> None:
    env = await make_env(profile=None)
    answer = await say(env, CITY_OFFICER, "协查通报 范围：吕梁市 内容：协查嫌疑人，男，约30岁")
    nid = (await env.rt.notices.latest_of(CITY_OFFICER))[0]
    assert "预览" in answer
    assert "批准" in await say(env, CITY_OFFICER, f"确认 {nid}")
    assert "不能批准自己" in await say(env, CITY_OFFICER, f"批准 {nid}")
    assert "不在您负责的辖区" in await say(env, COUNTY_OFFICER, f"批准 {nid}")
    assert env.sim.records.call_counts["appchat/send"] == 0  # nothing left yet
    approved = await say(env, CITY_OFFICER_2, f"批准 {nid}")
    assert "已开始发送" in approved, approved
    notice = await env.rt.notices.get(nid)
    assert notice is not None and notice.approver == CITY_OFFICER_2
    audit = AuditLog(env.redis, env.keys, env.clock)
    outcomes = [e.outcome for e in await audit.entries(action="broadcast.approve")]
    assert sorted(outcomes) == ["ok", "refused", "refused"]


async def test_unrelated_confirm_passes_to_other_features(make_env: MakeEnv) -> None:
    env = await make_env()
    answer = await say(env, COUNTY_OFFICER, "确认")  # no number: not a broadcast command
    assert "#" not in answer


async def test_grid_worker_acknowledges_and_is_not_escalated(make_env: MakeEnv) -> None:
    env = await make_env()
    await say(env, COUNTY_OFFICER, NOTICE)
    nid = (await env.rt.notices.latest_of(COUNTY_OFFICER))[0]
    owner = next(g.owner for g in env.city.groups if g.kind.value == "customer_group")
    assert "已记录" in await say(env, owner, f"已转达 {nid}")
    assert "只有" in await say(env, COUNTY_OFFICER, f"已转达 {nid}")
    audit = AuditLog(env.redis, env.keys, env.clock)
    assert [e.outcome for e in await audit.entries(action="broadcast.ack")] == ["refused", "ok"]
    groups = await env.rt.plans.groups(nid)
    units = await env.rt.state.units(nid)
    acked = set(await env.redis.hkeys(env.rt.keys.acks(nid)))
    assert acked == {owner}
    chiefs = by_chief(units, groups, acked, supervisor=False)
    named = {u.owner for waiting in chiefs.values() for u in waiting}
    assert owner not in named and named == {u.owner for u in units} - {owner}
