"""定时: a scheduled notice fires exactly once while two `gridbot serve` processes run."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime

import aiohttp

from bot.audit import AuditLog
from bot.redis import free_port
from bot.wecom.simulator import OwnerProfile
from broadcasts.content import has_marker
from broadcasts.models import NoticeStatus
from broadcasts.quota import BEIJING
from broadcasts.schedule import standalone_scheduling
from broadcasts.service import BroadcastService
from tests.broadcasts.conftest import COUNTY_OFFICER, Env, gridbot

MakeEnv = Callable[..., Awaitable[Env]]


async def healthy(port: int) -> bool:
    try:
        async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/healthz") as r:
            return r.status == 200
    except aiohttp.ClientError:
        return False


async def test_scheduled_notice_fires_once_with_two_serve_processes(make_env: MakeEnv) -> None:
    env = await make_env(speed=20, profile=OwnerProfile.always((5.0, 10.0)))
    environ = env.subprocess_env()
    ports = [free_port(), free_port()]
    with gridbot(["serve", "--port", str(ports[0])], environ), \
            gridbot(["serve", "--port", str(ports[1])], environ):
        for port in ports:
            await env.wait(lambda p=port: healthy(p), 30, f"serve on {port}")
        # two to three simulated minutes ahead (written to the minute): 6–9 real seconds
        when = datetime.fromtimestamp(env.clock.now() + 180, tz=BEIJING)
        text = f"定时 {when:%Y-%m-%d %H:%M} 通知 紧急预警 范围：交口县 内容：演练通知"
        with standalone_scheduling(env.settings, env.rt) as scheduling:
            service = BroadcastService(env.rt, scheduling)
            reply = await service.issue_text(COUNTY_OFFICER, text)
            assert reply.ok and reply.notice_id is not None, reply.text
            nid = reply.notice_id
            assert (await service.confirm(COUNTY_OFFICER, nid)).ok
            assert scheduling.next_run(nid) is not None
        notice = await env.rt.notices.get(nid)
        assert notice is not None and notice.status is NoticeStatus.SCHEDULED
        env.start_workers(1)
        await env.settled(nid, 60)
        await asyncio.sleep(2)  # a second firing, were there one, would show by now
    marks = await env.rt.notices.marks(nid)
    assert marks["fire_attempts"] == "1"
    fired = await AuditLog(env.redis, env.keys, env.clock).entries(action="broadcast.fire")
    assert len(fired) == 1
    notice = await env.rt.notices.get(nid)
    assert notice is not None and notice.started_at >= notice.scheduled_at
    spent = {c for c, v in env.city.quota_used.items() if v >= 31}
    for g in env.city.groups:
        got = [d for d in env.sim.deliveries_to(g.chat_id) if has_marker(d.content, nid)]
        assert len(got) == (0 if g.chat_id in spent else 1)
