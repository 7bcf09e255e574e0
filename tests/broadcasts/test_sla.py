"""The ten-minute promise under the simulator's default owner profile (issue 4): at least 99 %
of groups delivered within ten minutes of the officer's command, every other group named to
the officer at the deadline with its owner and officer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from broadcasts.content import has_marker
from registry.models import DeliveryKind
from tests.broadcasts.conftest import COUNTY_OFFICER, Env
from tests.broadcasts.test_engine import issue

MakeEnv = Callable[..., Awaitable[Env]]
# 临县 with 800 groups: 720 customer groups of 637 owners, 48 appchats, 32 robots; no group
# has spent its monthly quota (that is a different, reported failure)
COUNTY = {"seed": 3, "counties": ("141124",), "total_groups": 800, "residents": 64_000,
          "quota_full": 0}


async def test_99_percent_within_ten_minutes_and_the_rest_named(make_env: MakeEnv) -> None:
    env = await make_env(speed=15, city=COUNTY)
    owners = {g.owner for g in env.city.groups if g.kind is DeliveryKind.CUSTOMER_GROUP}
    assert len(owners) >= 500
    nid = await issue(env, "通知 紧急预警 范围：临县 内容：警惕冒充公检法诈骗，切勿转账")
    assert (await env.service.confirm(COUNTY_OFFICER, nid)).ok
    env.start_workers(2)
    notice = await env.rt.notices.get(nid)
    assert notice is not None

    async def reported() -> bool:  # the report itself reached the officer, not just its mark
        return any(d.content.startswith(("【时限报告】", "【结束报告】"))
                   for d in env.sim.app_messages_to(COUNTY_OFFICER))
    await env.wait(reported, 120, "deadline report")

    deadline = notice.started_at + env.settings.broadcast.deadline_seconds
    late = []
    for g in env.city.groups:
        times = [d.at for d in env.sim.deliveries_to(g.chat_id) if has_marker(d.content, nid)]
        if not times or min(times) > deadline:
            late.append(g)
    share = 1 - len(late) / len(env.city.groups)
    print(f"in time: {share:.2%}; late: {len(late)}; classes:",
          sorted(env.sim.owner_class(g.owner) for g in late))
    assert share >= 0.99
    report = "\n".join(d.content for d in env.sim.app_messages_to(COUNTY_OFFICER))
    people = {p.userid: p for p in env.city.people}
    plans = await env.rt.plans.groups(nid)
    for g in late:
        line = next((ln for ln in report.splitlines() if f"「{g.name}」" in ln), "")
        assert line, f"{g.name} not in the report"
        assert people[g.owner].name in line and g.owner in line
        assert all(people[o].name in line for o in plans[g.chat_id].officers)
