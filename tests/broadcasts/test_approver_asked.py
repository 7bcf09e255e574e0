"""The approver is asked (issue 11 §5): a city-wide 协查通报 waiting for 批准 is sent to the
officers who may approve it, and the issuing officer is told who was asked.

Seen in a trial: nobody was told that a city-wide 协查通报 waited for their 批准.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from broadcasts.grammar import parse_notice
from broadcasts.models import NoticeStatus
from registry.models import Role
from tests.broadcasts.conftest import CITY_OFFICER, CITY_OFFICER_2, COUNTY_OFFICER, Env

MakeEnv = Callable[..., Awaitable[Env]]


async def test_officers_who_may_approve_are_asked_and_the_issuer_told(make_env: MakeEnv) -> None:
    env = await make_env(speed=20)
    env.start_workers(1)
    draft = parse_notice("协查通报 范围：吕梁市 内容：协查嫌疑人，男，约30岁", env.clock.now())
    issued = await env.service.issue(CITY_OFFICER, draft)
    assert issued.ok and issued.notice_id is not None
    nid = issued.notice_id
    reply = await env.service.confirm(CITY_OFFICER, nid)
    assert reply.ok and "需另一位民警发送「批准" in reply.text
    assert f"已请以下民警批准：赵警官（{CITY_OFFICER_2}）" in reply.text
    assert CITY_OFFICER not in reply.text.split("已请以下民警批准：")[1]

    async def asked() -> bool:
        return any(d.content.startswith("【待批准】")
                   for d in env.sim.app_messages_to(CITY_OFFICER_2))
    await env.wait(asked, 20, "the approver's request")
    [request] = [d.content for d in env.sim.app_messages_to(CITY_OFFICER_2)
                 if d.content.startswith("【待批准】")]
    assert f"批准 {nid}" in request and "王警官" in request and "协查嫌疑人" in request
    may_not = [p.userid for p in env.city.people if p.role is Role.OFFICER
               and p.userid not in (CITY_OFFICER, CITY_OFFICER_2)]
    assert COUNTY_OFFICER in may_not
    assert not any(d.content.startswith("【待批准】")
                   for o in may_not for d in env.sim.app_messages_to(o))
    assert not any(d.content.startswith("【待批准】")
                   for d in env.sim.app_messages_to(CITY_OFFICER))

    approved = await env.service.approve(CITY_OFFICER_2, nid)
    assert approved.ok and "已开始发送" in approved.text
    notice = await env.rt.notices.get(nid)
    assert notice is not None and notice.status is NoticeStatus.SENDING
