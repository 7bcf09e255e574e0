"""Issue 10: pairs a restart left behind are found and settled, never left 「发送中」.

A notice whose queued jobs vanished (the stream lost after 确认) and one of whose groups is
left `submitted` by a worker that no longer exists: the sweep job re-queues what is stale, the
lost groups are sent once, the orphaned one is named 状态不明 (never resent), and the final
report's headings add up to the groups targeted.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable

import pytest

from bot.wecom.simulator import OwnerProfile
from broadcasts import engine
from broadcasts.content import has_marker
from broadcasts.models import PairState
from broadcasts.queue import SHARDS, Job
from broadcasts.state import Item
from broadcasts.sweep import sweep
from registry.models import DeliveryKind
from tests.broadcasts.conftest import COUNTY_OFFICER, Env
from tests.broadcasts.test_engine import issue

MakeEnv = Callable[..., Awaitable[Env]]


async def test_lost_jobs_and_an_orphaned_pair_are_swept_up(make_env: MakeEnv) -> None:
    env = await make_env(speed=20, profile=OwnerProfile.always((30.0, 60.0)))
    nid = await issue(env, "通知 紧急预警 范围：交口县 内容：今晚有大风，请关好门窗")
    assert (await env.service.confirm(COUNTY_OFFICER, nid)).ok
    await engine.start(env.rt, Job("start", nid), "test")  # queues every job and the timers
    streams = [env.rt.keys.stream(shard) for shard in range(SHARDS)]
    assert sum([await env.redis.xlen(s) for s in streams]) > 50
    await env.redis.delete(*streams)  # ... which a restart then lost (the timers stay)
    orphan = next(g.chat_id for g in env.city.groups if g.kind is DeliveryKind.APPCHAT)
    await env.rt.state.transition(nid, [Item(orphan)], [PairState.PLANNED],
                                  PairState.SUBMITTED, now=env.clock.now(), worker="gone-1")
    env.start_workers(2)
    await env.settled(nid, 60)

    pairs = await env.rt.state.pairs(nid)
    assert pairs[orphan].state is PairState.UNCERTAIN  # in flight once: named, not resent
    spent = {c for c, v in env.city.quota_used.items() if v >= 31}
    for group in env.city.groups:
        got = [d for d in env.sim.deliveries_to(group.chat_id) if has_marker(d.content, nid)]
        expected = 0 if group.chat_id in spent | {orphan} else 1
        assert len(got) == expected, (group.chat_id, pairs[group.chat_id])
    stats = await env.redis.hgetall(env.rt.keys.stats())
    assert int(stats.get("swept", 0)) > 0
    report = "\n".join(d.content for d in env.sim.app_messages_to(COUNTY_OFFICER))
    header = re.search(r"【结束报告】通知 #\d+（[^）]*）共 (\d+) 个群：(.*?)。", report)
    assert header, report[:300]
    figures = re.findall(r"(?:已送达|失败|状态不明|未确认|未发出|发送中) (\d+)", header.group(2))
    assert sum(map(int, figures)) == int(header.group(1)) == len(env.city.groups)
    assert "发送中" not in header.group(2)


async def test_a_stale_group_waiting_in_the_due_set_is_left_there(
        make_env: MakeEnv, caplog: pytest.LogCaptureFixture) -> None:
    """Of two stale groups, the one whose send waits for its time (a rate window, a retry)
    is left to it; only the one whose job vanished is queued again, and the log and the
    `swept` counter say one, not two."""
    caplog.set_level(logging.WARNING, logger="broadcasts")
    env = await make_env(speed=20)
    nid = await issue(env, "通知 紧急预警 范围：交口县 内容：今晚有大风，请关好门窗")
    assert (await env.service.confirm(COUNTY_OFFICER, nid)).ok
    await engine.start(env.rt, Job("start", nid), "test")
    streams = [env.rt.keys.stream(shard) for shard in range(SHARDS)]
    await env.redis.delete(*streams)
    lost, waiting = [g.chat_id for g in env.city.groups if g.kind is DeliveryKind.APPCHAT][:2]
    long_ago = env.clock.now() - 10_000
    moved = await env.rt.state.transition(nid, [Item(lost), Item(waiting)], [PairState.PLANNED],
                                          PairState.PLANNED, now=long_ago)
    assert sorted(moved.moved) == sorted([lost, waiting])
    await env.rt.queue.defer([Job("send", nid, waiting)], env.clock.now() + 3600)

    await sweep(env.rt, Job("sweep", nid), "test")

    queued = [Job.from_json(fields["j"]) for s in streams
              for _, fields in await env.redis.xrange(s)]
    assert Job("send", nid, lost) in queued and Job("send", nid, waiting) not in queued
    assert int((await env.redis.hgetall(env.rt.keys.stats()))["swept"]) == 1
    assert any("sweep: 1 stale groups, 0 owner tasks queued again" in r.getMessage()
               for r in caplog.records), [r.getMessage() for r in caplog.records]
