"""The fixed owner profile (issue 4) over 2,000 owners at a fast clock, through real HTTP."""

from __future__ import annotations

import asyncio
from collections import Counter

from bot.wecom.simulator.tasks import Task
from tests.simulator.conftest import AGENT_ID, Harness, SimFactory

OWNERS = 2000
SPEED = 300.0
MARGIN = 60.0  # simulated seconds of slack for the timer loop under load
EXPECTED = {
    "prompt": 0.60,
    "slow": 0.25,
    "needs_reminder": 0.10,
    "needs_escalation": 0.045,
    "never": 0.005,
}
TOLERANCE = {
    "prompt": 0.04,
    "slow": 0.035,
    "needs_reminder": 0.025,
    "needs_escalation": 0.018,
    "never": 0.006,
}


def _owner(i: int) -> str:
    return f"w{i:04d}"


def _officer(i: int) -> str:
    return f"officer{i // 20:03d}"


def _load(h: Harness) -> None:
    users = {_owner(i): f"网格员{i}" for i in range(OWNERS)}
    users.update({_officer(i): f"民警{i // 20}" for i in range(OWNERS)})
    h.sim.load_directory(users, {_owner(i): [_officer(i)] for i in range(OWNERS)})
    for i in range(OWNERS):
        h.sim.add_customer_group(f"wr{i:04d}", f"{i}号楼居民群", _owner(i), 60)


async def _create_all(h: Harness) -> list[Task]:
    gate = asyncio.Semaphore(50)

    async def create(i: int) -> str:
        async with gate:
            data = await h.call(
                "externalcontact/add_msg_template",
                {
                    "chat_type": "group",
                    "sender": _owner(i),
                    "chat_id_list": [f"wr{i:04d}"],
                    "text": {"content": "防诈骗提醒"},
                },
            )
        return str(data["msgid"])

    await h.gettoken()
    msgids = await asyncio.gather(*(create(i) for i in range(OWNERS)))
    return [t for t in (h.sim.task(m) for m in msgids) if t is not None]


async def _until(h: Harness, sim_time: float) -> None:
    await h.sim.clock.sleep(sim_time - h.sim.clock.now())


def _delay_after(task: Task, event: str) -> float:
    start, confirmed = task.first(event), task.first("confirmed")
    assert start is not None and confirmed is not None
    return confirmed - start


async def _remind(h: Harness, tasks: list[Task]) -> None:
    for n, task in enumerate(tasks):
        if n % 2:  # half through the API, half through a 1:1 app message
            await h.send_text(task.sender, "请尽快确认群发任务")
        else:
            await h.call("externalcontact/remind_groupmsg_send", {"msgid": task.msgid})


async def _escalate(h: Harness, tasks: list[Task]) -> None:
    officers = sorted({_officer(int(t.sender[1:])) for t in tasks})
    await h.call(
        "message/send",
        {
            "touser": "|".join(officers),
            "msgtype": "text",
            "agentid": AGENT_ID,
            "text": {"content": "请督促网格员"},
        },
    )


async def test_owner_profile_shares_and_triggers(make_sim: SimFactory) -> None:
    h = await make_sim(speed=SPEED, seed=7)
    _load(h)
    tasks = await _create_all(h)
    assert len(tasks) == OWNERS
    await _until(h, max(t.create_time for t in tasks) + 480 + MARGIN)

    prompt = [t for t in tasks if not t.open and _delay_after(t, "created") <= 180]
    slow = [t for t in tasks if not t.open and _delay_after(t, "created") > 180]
    assert all(60 <= _delay_after(t, "created") <= 180 for t in prompt)
    assert all(180 <= _delay_after(t, "created") <= 480 for t in slow)
    waiting = [t for t in tasks if t.open]
    assert {h.sim.owner_class(t.sender) for t in waiting} <= {
        "needs_reminder",
        "needs_escalation",
        "never",
    }

    await _remind(h, waiting)
    await _until(h, h.sim.clock.now() + 120 + MARGIN)
    reminded = [t for t in waiting if not t.open]
    assert all(30 <= _delay_after(t, "reminded") <= 120 for t in reminded)
    assert {h.sim.owner_class(t.sender) for t in reminded} == {"needs_reminder"}
    assert {d for t in reminded for e, _, d in t.timeline if e == "reminded"} == {
        "remind_groupmsg_send",
        "app_message",
    }

    still = [t for t in waiting if t.open]
    await _escalate(h, still)
    await _until(h, h.sim.clock.now() + 180 + MARGIN)
    escalated = [t for t in still if not t.open]
    assert all(60 <= _delay_after(t, "escalated") <= 180 for t in escalated)
    assert {h.sim.owner_class(t.sender) for t in escalated} == {"needs_escalation"}
    never = [t for t in still if t.open]
    assert {h.sim.owner_class(t.sender) for t in never} == {"never"}

    observed = {
        "prompt": len(prompt),
        "slow": len(slow),
        "needs_reminder": len(reminded),
        "needs_escalation": len(escalated),
        "never": len(never),
    }
    for name, share in EXPECTED.items():
        assert abs(observed[name] / OWNERS - share) <= TOLERANCE[name], (name, observed)
    assert observed["never"] >= 1
    assert sum(len(h.sim.deliveries_to(t.chat_ids[0])) for t in tasks) == OWNERS - len(never)


async def test_classes_are_fixed_per_owner_and_seed(make_sim: SimFactory) -> None:
    a, b, c = await make_sim(seed=1), await make_sim(seed=1), await make_sim(seed=2)
    names = [_owner(i) for i in range(300)]
    assert [a.sim.owner_class(n) for n in names] == [b.sim.owner_class(n) for n in names]
    assert [a.sim.owner_class(n) for n in names] != [c.sim.owner_class(n) for n in names]
    assert Counter(a.sim.owner_class(n) for n in names)["prompt"] > 120


async def test_early_app_message_is_not_a_reminder(make_sim: SimFactory) -> None:
    h = await make_sim(speed=SPEED, seed=7)
    _load(h)
    owner = next(
        _owner(i) for i in range(OWNERS) if h.sim.owner_class(_owner(i)) == "needs_reminder"
    )
    chat = f"wr{int(owner[1:]):04d}"
    data = await h.call(
        "externalcontact/add_msg_template",
        {
            "chat_type": "group",
            "sender": owner,
            "chat_id_list": [chat],
            "text": {"content": "通知"},
        },
    )
    task = h.sim.task(data["msgid"])
    assert task is not None
    await h.send_text(owner, "先提醒一句")  # under 60 s after creation: not a reminder
    await _until(h, task.create_time + 200)
    assert task.open and task.first("reminded") is None
    await h.send_text(owner, "请确认")
    await _until(h, h.sim.clock.now() + 120 + MARGIN)
    assert not task.open
