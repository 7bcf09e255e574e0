"""The bot's own WeComClient against the simulator: the wire formats agree end to end."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
import pytest
import redis.asyncio as aioredis
from pytest_aiohttp import AiohttpServer

from bot.clock import Clock
from bot.keys import Keys
from bot.settings import Settings
from bot.wecom.client import WeComClient
from bot.wecom.errors import WeComAPIError
from bot.wecom.simulator import LatencyConfig, OwnerProfile, SimConfig, WeComSimulator
from tests.simulator.conftest import fast_clock


async def test_client_round_trip(
    make_settings: Callable[..., Settings],
    aiohttp_server: AiohttpServer,
    redis: aioredis.Redis,
    keys: Keys,
) -> None:
    clock: Clock = fast_clock(100.0)
    sim = WeComSimulator(
        SimConfig.from_settings(
            make_settings(),
            clock,
            latency=LatencyConfig.none(),
            owner_profile=OwnerProfile.always((10.0, 10.0)),
        )
    )
    server = await aiohttp_server(sim.app)
    base = str(server.make_url("/cgi-bin/"))
    settings = make_settings(
        {
            "GRIDBOT_WECOM__API_BASE_URL": base,
            "GRIDBOT_WECOM__CORP_ID": sim.config.corp_id,
            "GRIDBOT_WECOM__SECRET": sim.config.secret,
        }
    )
    sim.load_directory({"w1": "网格员", "p1": "民警"}, {"w1": ["p1"]})
    for i in range(3):
        sim.add_customer_group(f"wr{i}", f"{i}号楼", "w1", 20 + i)
    async with aiohttp.ClientSession() as session:
        client = WeComClient(session, settings.wecom, redis, keys, clock)
        await client.send_text("p1", "请督促")
        assert [d.content for d in sim.app_messages_to("p1")] == ["请督促"]

        result = await client.add_msg_template("w1", ["wr0", "wr1", "wr-x"], "防诈骗提醒")
        assert result.fail_list == ["wr-x"]
        [task] = (await client.get_groupmsg_task(result.msgid)).items
        assert (task.userid, task.status, task.send_time) == ("w1", 0, 0)
        await clock.sleep(12.0)
        [task] = (await client.get_groupmsg_task(result.msgid)).items
        assert task.status == 2 and task.send_time > 0
        sent = (await client.get_groupmsg_send_result(result.msgid, "w1")).items
        assert {(r.chat_id, r.status) for r in sent} == {("wr0", 1), ("wr1", 1)}
        now = int(clock.now())
        listed = await client.get_groupmsg_list_v2(now - 600, now)
        assert [m.msgid for m in listed.items] == [result.msgid]

        first = await client.groupchat_list(limit=2)
        second = await client.groupchat_list(limit=2, cursor=first.next_cursor)
        assert [c.chat_id for c in first.items + second.items] == ["wr0", "wr1", "wr2"]
        assert second.next_cursor == ""
        info = await client.groupchat_get("wr2")
        assert (info.name, info.owner, info.member_count) == ("2号楼", "w1", 22)

        sim.invalidate_token()  # the client fetches a new token once and carries on
        await client.remind_groupmsg_send(result.msgid)
        assert sim.calls("gettoken") == 2
        with pytest.raises(WeComAPIError) as error:
            await client.groupchat_get("wr-missing")
        assert error.value.errcode == 40050
