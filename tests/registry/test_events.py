"""Live registry: the simulator posts change_external_chat callbacks to the running bot, and
handlers/groups.py keeps the registry current; 绑定 places a group by a staff command."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestServer

from bot.app import create_app
from bot.audit import AuditLog
from bot.clock import REAL_TIME
from bot.keys import Keys
from bot.redis import free_port
from bot.settings import Settings
from bot.wecom.simulator import LatencyConfig, SimConfig, WeComSimulator
from handlers import ROUTERS
from registry import cli as registry_cli
from registry import moves
from registry.models import DeliveryKind, GroupState, Person, Role
from registry.store import Registry
from tests.bot.support import wait_until

B1, B3 = "141181001001-G01-B001", "141181001001-G02-B003"
XIABAO = "141181101201"
NAME_B1 = "孝义市-新义街道-东关社区-1号楼"
NAME_B3 = "孝义市-新义街道-东关社区-3号楼"


@pytest.fixture
async def live(
    tree: Registry,
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    make_settings: Callable[..., Settings],
) -> AsyncIterator[WeComSimulator]:
    """A simulator and the bot (all of handlers.ROUTERS) posting to each other on loopback."""
    sim_port, bot_port = free_port(), free_port()
    settings = make_settings(
        {
            "GRIDBOT_WECOM__API_BASE_URL": f"http://127.0.0.1:{sim_port}/cgi-bin/",
            "GRIDBOT_SERVER__PORT": str(bot_port),
        }
    )
    url = f"http://127.0.0.1:{bot_port}{settings.callback.path}"
    sim = WeComSimulator(
        SimConfig.from_settings(
            settings, REAL_TIME, callback_url=url, latency=LatencyConfig.none()
        )
    )
    sim.load_directory({"gw1": "王芳", "gw2": "刘洋", "mj1": "李建国", "mj2": "赵刚"})
    await aiohttp_server(sim.app, port=sim_port)
    await aiohttp_server(create_app(settings, ROUTERS, run_scheduler=False), port=bot_port)
    yield sim


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    await wait_until(check, timeout=10.0, what=what)


async def group_is(registry: Registry, chat_id: str, **fields: Any) -> bool:
    group = await registry.group(chat_id)
    return group is not None and all(getattr(group, k) == v for k, v in fields.items())


async def test_a_created_group_appears_under_its_node(
    live: WeComSimulator, tree: Registry
) -> None:
    result = await live.post_chat_event(
        "wrLive01", "create", name=NAME_B1, owner="gw1", member_count=42
    )
    assert result.ok
    await eventually(lambda: group_is(tree, "wrLive01", node=B1), "the new group")
    [group] = await tree.groups_under("141181001001-G01")
    assert (group.owner, group.member_count, group.kind) == (
        "gw1",
        42,
        DeliveryKind.CUSTOMER_GROUP,
    )
    assert [h.actor for h in await tree.history("wrLive01")] == ["wecom"]


async def test_rename_owner_members_and_dismiss(live: WeComSimulator, tree: Registry) -> None:
    await live.post_chat_event("wrLive02", "create", name=NAME_B1, owner="gw1", member_count=10)
    await eventually(lambda: group_is(tree, "wrLive02", node=B1), "the new group")

    await live.post_chat_event("wrLive02", "update", "change_name", name=NAME_B3)
    await eventually(lambda: group_is(tree, "wrLive02", name=NAME_B3), "the rename")
    assert await group_is(tree, "wrLive02", node=B1)  # a request, not a move
    await tree.bind_group("wrLive02", B3, actor="mj1")

    await live.post_chat_event("wrLive02", "update", "change_owner", owner="gw2")
    await eventually(lambda: group_is(tree, "wrLive02", owner="gw2"), "the new owner")

    await live.post_chat_event("wrLive02", "update", "add_member", mem_change_cnt=5)
    await eventually(lambda: group_is(tree, "wrLive02", member_count=15), "the member count")
    assert (await tree.members_breakdown("141181"))[DeliveryKind.CUSTOMER_GROUP] == 15

    await live.post_chat_event("wrLive02", "dismiss")
    await eventually(lambda: group_is(tree, "wrLive02", state=GroupState.DISMISSED), "dismissal")
    assert await tree.target_groups(["141100"]) == []
    assert (await tree.breakdown("141100"))[DeliveryKind.CUSTOMER_GROUP] == 0
    assert [g.chat_id for g in await tree.groups_under("141181", include_dismissed=True)] == [
        "wrLive02"
    ]
    history = [(h.what, sorted(h.changes)) for h in await tree.history("wrLive02")]
    assert [what for what, _ in history] == ["created", "updated", "moved", "updated",
                                             "dismissed"]
    assert history[3][1] == ["owner"]


async def test_an_unplaceable_group_is_listed_not_guessed(
    live: WeComSimulator, tree: Registry
) -> None:
    await live.post_chat_event(
        "wrLive03", "create", name="东关社区老年活动群", owner="gw1", member_count=30
    )
    await eventually(lambda: group_is(tree, "wrLive03", node=""), "the unplaced group")
    [unplaced] = await tree.unplaced()
    assert unplaced.chat_id == "wrLive03" and "找不到" in unplaced.reason
    assert await tree.target_groups(["141100"]) == []


async def staff(tree: Registry) -> None:
    await tree.upsert_people(
        [
            Person("gw1", "王芳", Role.GRID_WORKER, ("141181001001-G01",)),
            Person("gw2", "刘洋", Role.GRID_WORKER, (XIABAO,)),
        ]
    )


async def test_bind_places_a_group_for_staff_covering_the_node(
    live: WeComSimulator,
    tree: Registry,
    redis: aioredis.Redis,
    keys: Keys,
) -> None:
    await staff(tree)
    await live.post_chat_event(
        "wrLive04", "create", name="东关社区老年活动群", owner="gw1", member_count=30
    )
    await eventually(lambda: group_is(tree, "wrLive04", node=""), "the unplaced group")

    await live.post_text("gw2", "绑定 东关社区老年活动群 孝义市/东关社区/1号楼")
    await eventually(lambda: _replied(live, "gw2"), "the refusal")
    assert "您不负责「1号楼」" in live.app_messages_to("gw2")[-1].content

    await live.post_text("gw1", "绑定 东关社区老年活动群 孝义市/东关社区/1号楼")
    await eventually(lambda: group_is(tree, "wrLive04", node=B1), "the binding")
    assert "已将「东关社区老年活动群」绑定到 吕梁市/孝义市/新义街道/东关社区/" in (
        live.app_messages_to("gw1")[-1].content
    )
    assert await tree.unplaced() == []
    entries = await AuditLog(redis, keys, REAL_TIME).entries(action="registry.bind")
    assert [(e.actor, e.outcome, e.target) for e in entries] == [
        ("gw1", "ok", "wrLive04"),
        ("gw2", "refused", "wrLive04"),
    ]

    # the binding holds against later events while the name stays; a rename only asks
    await live.post_chat_event("wrLive04", "update", "add_member", mem_change_cnt=2)
    await eventually(lambda: group_is(tree, "wrLive04", member_count=32), "the member count")
    assert await group_is(tree, "wrLive04", node=B1)
    await live.post_chat_event("wrLive04", "update", "change_name", name="孝义市-梧桐镇-下堡村")
    await eventually(lambda: group_is(tree, "wrLive04", name="孝义市-梧桐镇-下堡村"), "rename")
    assert await group_is(tree, "wrLive04", node=B1)


async def test_a_rename_across_villages_is_a_request_not_a_move(
    live: WeComSimulator, tree: Registry, redis: aioredis.Redis, keys: Keys,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 10: a group renamed to another village's name stays, its officer is told, and it
    moves only when someone covering both villages confirms; the audit shows each step."""
    await tree.upsert_people([
        Person("mj1", "李建国", Role.OFFICER, ("141181001001",)),  # 东关社区 only
        Person("gw2", "刘洋", Role.GRID_WORKER, (XIABAO,)),  # 下堡村 only
        Person("mj2", "赵刚", Role.OFFICER, ("141181",)),  # 孝义市: covers both
    ])
    await live.post_chat_event("wrLive05", "create", name=NAME_B1, owner="gw1", member_count=9)
    await eventually(lambda: group_is(tree, "wrLive05", node=B1), "the new group")

    await live.post_chat_event("wrLive05", "update", "change_name", name="孝义市-梧桐镇-下堡村")
    await eventually(lambda: _replied(live, "mj1"), "the officer told")
    assert await group_is(tree, "wrLive05", node=B1, name="孝义市-梧桐镇-下堡村")
    told = live.app_messages_to("mj1")[-1].content
    assert "下堡村" in told and "仍留在" in told and "确认迁移 wrLive05" in told
    assert await tree.target_groups([XIABAO]) == []  # 下堡村's notices do not reach it
    await registry_cli._unplaced(tree, None, None)  # type: ignore[arg-type]
    listing = capsys.readouterr().out
    assert "wrLive05" in listing and "待确认迁移的群：1 个" in listing

    for who, count in (("gw2", 1), ("mj1", 2)):  # each covers only one of the two
        await live.post_text(who, "确认迁移 wrLive05")
        await eventually(lambda w=who, c=count: _replied(live, w, c), f"{who} refused")
        assert "您不负责" in live.app_messages_to(who)[-1].content
    assert await group_is(tree, "wrLive05", node=B1)

    await live.post_text("mj2", "确认迁移 wrLive05")
    await eventually(lambda: group_is(tree, "wrLive05", node=XIABAO), "the confirmed move")
    assert "已将「孝义市-梧桐镇-下堡村」迁移到" in live.app_messages_to("mj2")[-1].content
    assert await moves.requests(tree) == []
    audit = AuditLog(redis, keys, REAL_TIME)
    steps = [(e.actor, e.action, e.outcome) for e in reversed(await audit.entries())
             if e.target == "wrLive05"]
    assert steps == [
        ("wecom", "registry.place", "ok"),
        ("wecom", "registry.move_request", "ok"),
        ("gw2", "registry.move", "refused"),
        ("mj1", "registry.move", "refused"),
        ("mj2", "registry.move", "ok"),
    ]


async def test_bind_reports_unknown_nodes_and_groups(live: WeComSimulator, tree: Registry) -> None:
    await staff(tree)
    await live.post_text("gw1", "绑定 没有这个群 孝义市/东关社区/1号楼")
    await eventually(lambda: _replied(live, "gw1"), "the answer")
    assert "找不到群「没有这个群」" in live.app_messages_to("gw1")[-1].content
    await live.post_text("gw1", "绑定 wrNope 火星/1号楼")
    await eventually(lambda: _replied(live, "gw1", 2), "the second answer")
    assert "找不到节点「火星/1号楼」" in live.app_messages_to("gw1")[-1].content


async def _replied(sim: WeComSimulator, userid: str, count: int = 1) -> bool:
    return len(sim.app_messages_to(userid)) >= count
