"""An honest forecast (issue 11 §4): the share of owners who confirmed in time among ALL those
asked, per owner where there is history; the groups likely to be late named in the preview;
a warning for groups whose township has no supervisor.

Seen in a trial: 「按历史约 100.0% 的群主能在时限内确认」 when 98.2 % did — the history held
only the delays of owners who confirmed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot.wecom.simulator import ConfirmClass, OwnerProfile
from broadcasts.grammar import parse_notice
from registry.models import DeliveryKind, Role
from tests.broadcasts.conftest import COUNTY_OFFICER, Env
from tests.broadcasts.test_engine import issue

MakeEnv = Callable[..., Awaitable[Env]]
SHORT = {"GRIDBOT_BROADCAST__DEADLINE_SECONDS": "120",
         "GRIDBOT_BROADCAST__REMIND_AFTER_SECONDS": "2000",
         "GRIDBOT_BROADCAST__ESCALATE_OFFICER_AFTER_SECONDS": "2000",
         "GRIDBOT_BROADCAST__ESCALATE_SUPERVISOR_AFTER_SECONDS": "2100"}
SOME_NEVER = OwnerProfile(classes=(ConfirmClass("prompt", 0.7, "created", (10.0, 20.0)),
                                   ConfirmClass("never", 0.3, "never")))
NOTICE = "通知 紧急预警 范围：交口县 内容：请注意防范电信诈骗"


async def test_forecast_counts_owners_who_never_confirmed(make_env: MakeEnv) -> None:
    env = await make_env(speed=25, env=SHORT, profile=SOME_NEVER)
    customer = [g for g in env.city.groups if g.kind is DeliveryKind.CUSTOMER_GROUP]
    never = {g.owner for g in customer if env.sim.owner_class(g.owner) == "never"}
    owners = {g.owner for g in customer}
    assert 0.15 < len(never) / len(owners) < 0.45

    nid = await issue(env, NOTICE)
    assert (await env.service.confirm(COUNTY_OFFICER, nid)).ok
    env.start_workers(1)

    async def past_deadline() -> bool:
        return bool((await env.rt.notices.marks(nid)).get("report:deadline")) or \
            str(nid) in await env.redis.smembers(env.rt.keys.owner_record_notices())
    await env.wait(past_deadline, 40, "the deadline of the first notice")

    draft = parse_notice(NOTICE.replace("电信诈骗", "冒充客服"), env.clock.now())
    preview = (await env.service.issue(COUNTY_OFFICER, draft)).text
    share = float(preview.split("按历史约 ")[1].split("%")[0]) / 100
    asked = [g.owner for g in customer if g.owner]  # history per owner: what they did
    expected = 1 - len(never) / len(set(asked))
    assert abs(share - expected) < 0.08, (share, expected)
    assert share < 0.95  # never 100 % while owners never confirmed
    people = {p.userid: p.name for p in env.city.people}
    for owner in never:  # each never-confirming owner and their groups are named
        assert f"{people[owner]}（{owner}）（以往 0/1 次按时）" in preview or "另有" in preview
    named = [o for o in never if f"（{o}）（以往 0/1 次按时）" in preview]
    assert len(named) >= min(len(never), 10)
    assert not any(f"（{o}）（以往" in preview for o in owners - never)


async def test_preview_warns_when_a_township_has_no_supervisor(make_env: MakeEnv) -> None:
    env = await make_env(speed=25, env=SHORT)
    supervisors = [p for p in env.city.people if p.role is Role.SUPERVISOR]
    assert supervisors
    await env.rt.registry.upsert_people(
        [p.__class__(p.userid, p.name, p.role, ()) for p in supervisors[:1]])
    draft = parse_notice(NOTICE, env.clock.now())
    preview = (await env.service.issue(COUNTY_OFFICER, draft)).text
    assert "没有登记督办人员" in preview
