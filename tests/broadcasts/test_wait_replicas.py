"""A claim no replica acknowledged (WAIT returned 0) holds the send: the pair or unit goes
back to planned and its job is deferred, nothing reaches WeCom. Here `redis.wait_replicas = 1`
on a Redis without replicas, so WAIT always answers 0 (after the 50 ms timeout)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot.replicas import replicas_for
from bot.wecom.simulator import OwnerProfile
from broadcasts import content
from broadcasts.customer import create_task
from broadcasts.models import PairState
from broadcasts.queue import Job
from broadcasts.sending import send_group
from broadcasts.state import Item, StateStore
from registry.models import DeliveryKind
from tests.broadcasts.conftest import Env
from tests.broadcasts.test_idempotency import first, released

MakeEnv = Callable[..., Awaitable[Env]]
HELD = {"GRIDBOT_REDIS__WAIT_REPLICAS": "1", "GRIDBOT_REDIS__WAIT_TIMEOUT_MS": "50"}


async def test_a_claim_no_replica_has_is_not_sent_and_is_retried(make_env: MakeEnv) -> None:
    env = await make_env(env=HELD)
    nid = await released(env)
    for kind in (DeliveryKind.APPCHAT, DeliveryKind.WEBHOOK):
        chat = first(env, kind)
        await send_group(env.rt, Job("send", nid, chat), "w1")
        assert not [d for d in env.sim.deliveries_to(chat) if content.has_marker(d.content, nid)]
        record = await env.rt.state.pair(nid, chat)
        assert record is not None and record.state is PairState.PLANNED
        assert record.attempts == 0  # held, not a failed attempt
    # once a replica acknowledges (here: waiting switched off), the retry sends it once
    env.rt.state = StateStore(env.redis, env.rt.keys, wait_replicas=0)
    for kind in (DeliveryKind.APPCHAT, DeliveryKind.WEBHOOK):
        chat = first(env, kind)
        await send_group(env.rt, Job("send", nid, chat), "w1")
        got = [d for d in env.sim.deliveries_to(chat) if content.has_marker(d.content, nid)]
        assert len(got) == 1


async def test_a_unit_claim_no_replica_has_creates_no_task(make_env: MakeEnv) -> None:
    env = await make_env(env=HELD, profile=OwnerProfile.always((5.0, 5.0)))
    nid = await released(env)
    unit = (await env.rt.state.units(nid))[0]
    await create_task(env.rt, Job("task", nid, unit.name), "w1")
    assert [t.sender for t in env.sim.tasks()].count(unit.owner) == 0
    held = await env.rt.state.unit(nid, unit.name)
    assert held is not None and held.state == "planned"
    pairs = await env.rt.state.pairs_of(nid, list(unit.chats))
    assert {p.state for p in pairs.values()} == {PairState.PLANNED}


async def test_without_replicas_nothing_waits(make_env: MakeEnv) -> None:
    """Automatic on one Redis: no WAIT (the slot map of a cluster without replicas too)."""
    env = await make_env()
    nid = await released(env)
    chat = first(env, DeliveryKind.APPCHAT)
    assert await replicas_for(env.redis, env.rt.keys.pairs(nid), None) == 0
    assert await replicas_for(env.redis, env.rt.keys.pairs(nid), 2) == 2
    done = await env.rt.state.transition(nid, [Item(chat)], [PairState.PLANNED],
                                         PairState.SUBMITTED, now=env.clock.now(),
                                         worker="w1", durable=True)
    assert done.moved == [chat] and done.replicated
