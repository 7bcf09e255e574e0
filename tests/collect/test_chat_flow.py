"""The guided flow: re-asks (at most max_reasks), 取消, resuming after a restart, and its
interception of the worker's next messages before the fallback router."""

from __future__ import annotations

from dataclasses import replace

import redis.asyncio as aioredis

from bot.keys import Keys
from bot.redis import connect
from collect.models import RecordKind
from collect.sessions import FLOW
from handlers import ROUTERS
from handlers.fallback import UNKNOWN_TEXT
from tests.collect.conftest import Chat, chat_deps
from tests.collect.helpers import person_by_id

GOOD_ID = "142326198811110019"


async def test_guided_person_flow_with_reasks(chat: Chat) -> None:
    assert "请选择采集类型" in await chat.send("w1", "采集")
    assert "【采集人口 1/6】请发送姓名" in await chat.send("w1", "人口")
    assert "【采集人口 2/6】" in await chat.send("w1", "赵小红")
    bad = await chat.send("w1", "360426199101010072")
    assert "公民身份号码：校验位" in bad and "第 1/3 次重新询问" in bad
    assert "【采集人口 3/6】" in await chat.send("w1", GOOD_ID)
    assert "第 1/3 次重新询问" in await chat.send("w1", "12345")
    assert "【采集人口 4/6】" in await chat.send("w1", "+86 137-0000-1111")
    assert "【采集人口 5/6】" in await chat.send("w1", "振兴路18号3栋2单元502")
    assert "【采集人口 6/6】" in await chat.send("w1", "流动")
    done = await chat.send("w1", "跳过")
    assert done.startswith("已保存：人口记录 P") and "137****1111" in done
    record = await person_by_id(chat_deps(chat), GOOD_ID)
    assert record is not None and record.fields["population_type"] == "流动人口"
    assert await chat.send("w1", "赵小红") == UNKNOWN_TEXT, "the flow ended"


async def test_too_many_bad_answers_end_the_flow(chat: Chat) -> None:
    await chat.send("w1", "引导采集 人口")
    await chat.send("w1", "赵小红")
    limit = chat.ctx.settings.collect.max_reasks
    for attempt in range(1, limit + 1):
        assert f"第 {attempt}/{limit} 次重新询问" in await chat.send("w1", f"1234{attempt}")
    ended = await chat.send("w1", "12349")
    assert f"已连续 {limit + 1} 次未通过" in ended and "未保存" in ended
    assert await chat.send("w1", GOOD_ID) == UNKNOWN_TEXT


async def test_cancel_and_required_fields(chat: Chat) -> None:
    await chat.send("w1", "采集 人口")
    assert "此项必填" in await chat.send("w1", "跳过")
    assert "已取消引导采集" in await chat.send("w1", "取消")
    assert await chat.send("w1", "赵小红") == UNKNOWN_TEXT


async def test_flow_resumes_after_a_restart(chat: Chat, redis: aioredis.Redis, keys: Keys,
                                            redis_url: str) -> None:
    await chat.send("w1", "采集 人口")
    await chat.send("w1", "钱大")
    key = keys.session("w1", FLOW)
    stored = str(await redis.get(key))
    assert stored and "钱大" not in stored and stored.startswith("v1:"), "sealed at rest"
    assert 0 < await redis.pttl(key) <= chat.ctx.settings.collect.session_ttl_seconds * 1000
    # a restarted process: new connection, new context, nothing kept in memory
    fresh = connect(redis_url)
    try:
        restarted = Chat(replace(chat.ctx, redis=fresh), chat.sim, chat.leaks)
        assert "【采集人口 3/6】" in await restarted.send("w1", GOOD_ID)
        for answer in ("13700001111", "振兴路18号3栋2单元502", "常住", "户主"):
            reply = await restarted.send("w1", answer)
        assert reply.startswith("已保存：人口记录")
    finally:
        await fresh.aclose()
    record = await person_by_id(chat_deps(chat), GOOD_ID)
    assert record is not None and record.display("name") == "钱*"
    assert await redis.exists(key) == 0


async def test_flow_intercepts_before_the_fallback_in_the_full_router(chat: Chat) -> None:
    full = Chat(replace(chat.ctx, routers=ROUTERS), chat.sim, chat.leaks, routers=ROUTERS)
    assert await full.send("w1", "王五") == UNKNOWN_TEXT, "no flow: the fallback answers"
    await full.send("w1", "引导采集 单位")
    assert "【采集单位 2/6】" in await full.send("w1", "东关便民超市")
    assert "可以使用以下命令" in await full.send("w1", "帮助"), "帮助 still works"
    assert "已取消引导采集" in await full.send("w1", "取消")
    held = await full.send("w1", "采集 人口\n姓名：赵小红\n身份证：141102199503010018\n"
                                 "电话：13700001111\n地址：振兴路18号3栋2单元502\n人口类型：常住")
    assert "「确认保存」" in held
    assert (await full.send("w1", "确认 保存")).startswith("已保存"), \
        "broadcast's 确认 <编号> passes a 确认 without a number on to collect"


async def test_the_flow_keeps_one_session_per_worker(chat: Chat) -> None:
    await chat.send("w1", "采集 房屋")
    assert "请选择采集类型" in await chat.send("w2", "采集")
    assert "【采集房屋 2/7】" in await chat.send("w1", "振兴路18号3栋2单元502")
    assert "【采集单位 1/6】" in await chat.send("w2", "3")
    assert RecordKind.HOUSE.label in await chat.send("w1", "住宅")
