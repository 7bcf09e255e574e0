"""Each (notice, group) pair is sent at most once: the record written before the send, the
fences on settling it, and what happens to a send whose worker died in the middle of it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from bot.wecom.simulator import OwnerProfile
from broadcasts import content, customer
from broadcasts.customer import RECONCILE_LOOKS, create_task, in_flight_until, reconcile
from broadcasts.engine import release
from broadcasts.models import PairState
from broadcasts.queue import SHARDS, Job, shard_of
from broadcasts.sending import send_group
from broadcasts.state import Item, Unit, UnitChange
from registry.models import DeliveryKind
from tests.broadcasts.conftest import COUNTY_OFFICER, Env
from tests.broadcasts.test_engine import issue

MakeEnv = Callable[..., Awaitable[Env]]
GHOST = "ghost-worker"  # a worker that claimed records and died (no liveness key)


async def released(env: Env) -> int:
    nid = await issue(env, "通知 紧急预警 范围：交口县 内容：测试幂等")
    notice = await env.rt.notices.get(nid)
    assert notice is not None
    assert await release(env.rt, notice, env.clock.now())
    for shard in range(SHARDS):  # no workers: the test drives the jobs
        await env.redis.delete(env.rt.keys.stream(shard))
    return nid


def first(env: Env, kind: DeliveryKind) -> str:
    return next(g.chat_id for g in env.city.groups if g.kind is kind)


async def test_concurrent_claims_of_one_pair_only_one_wins(make_env: MakeEnv) -> None:
    env = await make_env()
    nid = await released(env)
    chat = first(env, DeliveryKind.APPCHAT)
    outcomes = await asyncio.gather(*(
        env.rt.state.transition(nid, [Item(chat)], [PairState.PLANNED], PairState.SUBMITTED,
                                now=env.clock.now(), worker=f"w{i}") for i in range(20)))
    winners = [i for i, o in enumerate(outcomes) if o.moved]
    assert len(winners) == 1
    loser = next(o for o in outcomes if not o.moved)
    assert loser.kept[chat] is not None and loser.kept[chat].worker == f"w{winners[0]}"
    # only the holder may settle it
    wrong = await env.rt.state.transition(nid, [Item(chat)], [PairState.SUBMITTED],
                                          PairState.DELIVERED, now=env.clock.now(), fence="other")
    assert not wrong.moved
    counts = await env.rt.state.counts(nid)
    assert counts[PairState.SUBMITTED] == 1


async def test_the_same_send_job_run_many_times_at_once_sends_once(make_env: MakeEnv) -> None:
    env = await make_env()
    nid = await released(env)
    for i in range(8):  # live workers (their liveness keys are fresh)
        await env.redis.set(env.rt.keys.worker_alive(f"w{i}"), "1", px=60_000)
    for kind in (DeliveryKind.APPCHAT, DeliveryKind.WEBHOOK):
        chat = first(env, kind)
        job = Job("send", nid, chat)
        await asyncio.gather(*(send_group(env.runtime(), job, f"w{i}") for i in range(8)))
        await send_group(env.rt, job, "late-comer")
        got = [d for d in env.sim.deliveries_to(chat) if content.has_marker(d.content, nid)]
        assert len(got) == 1
        record = await env.rt.state.pair(nid, chat)
        assert record is not None and record.state is PairState.DELIVERED


async def test_send_in_flight_when_its_worker_died_is_uncertain_never_resent(
        make_env: MakeEnv) -> None:
    env = await make_env(profile=OwnerProfile.always((5.0, 5.0)))
    nid = await released(env)
    chat = first(env, DeliveryKind.WEBHOOK)
    await env.rt.state.transition(nid, [Item(chat)], [PairState.PLANNED], PairState.SUBMITTED,
                                  now=env.clock.now(), worker=GHOST)
    await send_group(env.rt, Job("send", nid, chat), "w1")
    record = await env.rt.state.pair(nid, chat)
    assert record is not None and record.state is PairState.UNCERTAIN
    assert env.sim.deliveries_to(chat) == []
    # the rest of the notice goes out; the final report names the uncertain group
    notice = await env.rt.notices.get(nid)
    assert notice is not None
    await env.rt.queue.enqueue([Job("start", nid)])
    env.start_workers(1)
    await env.settled(nid, 30)
    report = "\n".join(d.content for d in env.sim.app_messages_to(COUNTY_OFFICER))
    name = next(g.name for g in env.city.groups if g.chat_id == chat)
    assert "状态不明" in report and name in report
    assert env.sim.deliveries_to(chat) == []


async def ghost_claims(env: Env, nid: int) -> Unit:
    """GHOST claims the first unit now and has no liveness key: a worker that died, or a
    live one whose key expired during a Redis failover."""
    unit = (await env.rt.state.units(nid))[0]
    await env.rt.state.transition(
        nid, [Item(c) for c in unit.chats], [PairState.PLANNED], PairState.SUBMITTED,
        now=env.clock.now(), worker=GHOST,
        unit=UnitChange(unit.name, ["planned"], "submitted",
                        set={"w": GHOST, "st": env.clock.now()}))
    return unit


async def test_task_created_by_a_worker_that_died_is_found_not_recreated(
        make_env: MakeEnv) -> None:
    env = await make_env(profile=OwnerProfile.always((5.0, 5.0)))
    nid = await released(env)
    notice = await env.rt.notices.get(nid)
    assert notice is not None
    # the ghost claimed the unit, WeCom created the task, then the ghost died
    unit = await ghost_claims(env, nid)
    made = await env.rt.wecom.add_msg_template(unit.owner, list(unit.chats),
                                               content.resident_text(notice, for_task=True))
    await create_task(env.rt, Job("task", nid, unit.name), "w1")
    found = await env.rt.state.unit(nid, unit.name)
    assert found is not None and found.state == "awaiting_owner" and found.msgid == made.msgid
    assert [t.sender for t in env.sim.tasks()].count(unit.owner) == 1


# short client timeouts: a claim's request can no longer come 6 real seconds after it
QUICK_TIMEOUTS = {"GRIDBOT_WECOM__REQUEST_TIMEOUT": "2", "GRIDBOT_WECOM__CONNECT_TIMEOUT": "1"}


async def test_task_the_dead_worker_never_sent_is_created_once(make_env: MakeEnv) -> None:
    env = await make_env(profile=OwnerProfile.always((5.0, 5.0)), env=QUICK_TIMEOUTS)
    nid = await released(env)
    unit = await ghost_claims(env, nid)
    await env.rt.queue.enqueue([Job("task", nid, unit.name)])
    env.start_workers(2)

    async def created() -> bool:
        u = await env.rt.state.unit(nid, unit.name)
        return u is not None and u.state in ("awaiting_owner", "done")
    await env.wait(created, 20, "unit created after reconciling")
    assert [t.sender for t in env.sim.tasks()].count(unit.owner) == 1
    assert int(await env.redis.hget(env.rt.keys.stats(), "reconcile_misses") or 0) >= 2


async def test_a_claim_whose_request_may_still_come_is_not_created_again(
        make_env: MakeEnv) -> None:
    env = await make_env(profile=OwnerProfile.always((5.0, 5.0)))
    nid = await released(env)
    name = (await ghost_claims(env, nid)).name
    job = Job("reconcile", nid, name)
    for _ in range(RECONCILE_LOOKS + 1):  # looks enough to call it "never created" at once
        await reconcile(env.rt, job, "w1")
    unit = await env.rt.state.unit(nid, name)
    assert unit is not None and unit.state == "submitted"
    assert not env.sim.tasks()
    due = await env.redis.zscore(env.rt.keys.due(shard_of(job)), job.to_json())
    assert due is not None and due >= int(in_flight_until(env.rt, unit) * 1000)  # later


async def test_a_claim_that_outlasted_its_lease_is_given_up_unsent(
        make_env: MakeEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    env = await make_env(profile=OwnerProfile.always((5.0, 5.0)))
    nid = await released(env)
    monkeypatch.setattr(customer, "CLAIM_LEASE_REAL", -1.0)  # every claim is too slow
    unit = (await env.rt.state.units(nid))[0]
    job = Job("task", nid, unit.name)
    await create_task(env.rt, job, "w1")
    after = await env.rt.state.unit(nid, unit.name)
    assert after is not None and after.state == "planned"
    assert not env.sim.tasks()
    assert await env.redis.zscore(env.rt.keys.due(shard_of(job)), job.to_json()) is not None
