"""Per-API ceilings with block windows, robots, app-chat person-times, per-member limits."""

from __future__ import annotations

from typing import Any

from bot.wecom.simulator.windows import Ceiling, SlidingWindow
from tests.simulator.conftest import Harness, SimFactory, sleep_sim

LIST = "externalcontact/groupchat/list"


async def _list(h: Harness) -> int:
    data: dict[str, Any] = await h.call(LIST, {"limit": 10})
    return int(data["errcode"])


async def test_minute_ceiling_answers_45009_and_blocks_for_60_seconds(
    make_sim: SimFactory,
) -> None:
    h = await make_sim(speed=100.0, api_calls_per_minute=5)
    await h.gettoken()
    assert [await _list(h) for _ in range(5)] == [0] * 5
    assert await _list(h) == 45009
    await sleep_sim(h, 30.0)
    assert await _list(h) == 45009  # still inside the 60 s block
    await sleep_sim(h, 31.0)
    assert await _list(h) == 0
    assert h.sim.errors_answered(45009, LIST) == 2
    assert h.sim.calls(LIST) == 8


async def test_hour_ceiling_blocks_for_its_own_window(make_sim: SimFactory) -> None:
    h = await make_sim(
        speed=200.0, api_calls_per_minute=100, api_calls_per_hour=4, block_seconds_hour=300.0
    )
    await h.gettoken()
    assert [await _list(h) for _ in range(5)] == [0, 0, 0, 0, 45009]
    await sleep_sim(h, 61.0)
    assert await _list(h) == 45009  # a minute block would be over; the hour block is not
    await sleep_sim(h, 245.0)
    assert await _list(h) == 45009  # block over, but the sliding hour still holds 4 calls
    assert h.sim.errors_answered(45009) == 3


async def test_ceilings_are_per_api(make_sim: SimFactory) -> None:
    h = await make_sim(api_calls_per_minute=2)
    await h.gettoken()
    assert [await _list(h) for _ in range(3)] == [0, 0, 45009]
    data = await h.call(
        "externalcontact/get_groupmsg_list_v2",
        {"chat_type": "group", "start_time": 0, "end_time": 100},
    )
    assert data["errcode"] == 0


def test_window_slides_instead_of_resetting_each_minute() -> None:
    window = SlidingWindow(60.0, 3)
    for at in (0.0, 20.0, 40.0):
        assert window.fits(at)
        window.add(at)
    assert not window.fits(59.0)
    assert window.fits(60.5)  # the call at 0 has left the window, the others have not
    window.add(60.5)
    assert not window.fits(70.0)
    ceiling = Ceiling(((SlidingWindow(60.0, 1), 60.0),))
    assert ceiling.admit(0.0) and not ceiling.admit(1.0)
    assert not ceiling.admit(60.5)  # blocked until 61
    assert ceiling.admit(61.0)


async def test_app_messages_do_not_count_against_the_api_ceiling(make_sim: SimFactory) -> None:
    h = await make_sim(api_calls_per_minute=2)
    h.sim.load_directory({f"u{i}": f"成员{i}" for i in range(5)})
    answers = [await h.send_text(f"u{i}", "通知") for i in range(5)]
    assert [a["errcode"] for a in answers] == [0] * 5
    assert len(h.sim.records.deliveries) == 5


async def test_robot_takes_20_messages_a_minute(make_sim: SimFactory) -> None:
    h = await make_sim(speed=100.0)
    h.sim.add_robot("key-1", "chat-robot")
    h.sim.add_robot("key-2", "chat-other")
    body = {"msgtype": "text", "text": {"content": "警情通报"}}
    codes = [(await h.call("webhook/send", body, key="key-1"))["errcode"] for _ in range(21)]
    assert codes == [0] * 20 + [45009]
    assert (await h.call("webhook/send", body, key="key-2"))["errcode"] == 0  # per robot
    await sleep_sim(h, 61.0)
    assert (await h.call("webhook/send", body, key="key-1"))["errcode"] == 0
    assert len(h.sim.deliveries_to("chat-robot")) == 21
    assert (await h.call("webhook/send", body, key="nope"))["errcode"] == 93000


async def test_webhook_length_limits(make_sim: SimFactory) -> None:
    h = await make_sim()
    h.sim.add_robot("k", "chat")
    text = {"msgtype": "text", "text": {"content": "字" * 683}}  # 2049 bytes
    markdown = {"msgtype": "markdown", "markdown": {"content": "a" * 4096}}
    assert (await h.call("webhook/send", text, key="k"))["errcode"] == 40058
    assert (await h.call("webhook/send", markdown, key="k"))["errcode"] == 0


async def test_appchat_counts_person_times_per_minute_and_hour(make_sim: SimFactory) -> None:
    h = await make_sim(
        speed=100.0, appchat_person_times_per_minute=1000, appchat_person_times_per_hour=1500
    )
    h.sim.add_appchat("app-1", "内部群", [f"u{i}" for i in range(300)])
    body = {"chatid": "app-1", "msgtype": "text", "text": {"content": "通知"}}
    codes = [(await h.call("appchat/send", body))["errcode"] for _ in range(4)]
    assert codes == [0, 0, 0, 45009]  # 900 person-times fit, 1200 would not
    await sleep_sim(h, 61.0)
    codes = [(await h.call("appchat/send", body))["errcode"] for _ in range(3)]
    assert codes == [0, 0, 45009]  # the hour holds 1500: 900 + 600
    assert len(h.sim.deliveries_to("app-1")) == 5
    missing = {"chatid": "nope", "msgtype": "text", "text": {"content": "x"}}
    assert (await h.call("appchat/send", missing))["errcode"] == 86003
    too_long = {"chatid": "app-1", "msgtype": "text", "text": {"content": "a" * 2049}}
    assert (await h.call("appchat/send", too_long))["errcode"] == 45002


async def test_member_app_message_ceiling_drops_silently(make_sim: SimFactory) -> None:
    h = await make_sim()
    h.sim.load_directory({"w1": "网格员"})
    answers = [await h.send_text("w1", f"第{i}条") for i in range(32)]
    assert all(a["errcode"] == 0 for a in answers)  # WeCom does not report the excess
    assert len(h.sim.app_messages_to("w1")) == 30
    assert [d.content for d in h.sim.drops("member_rate")] == ["第30条", "第31条"]


async def test_duplicate_check_suppresses_an_identical_message(make_sim: SimFactory) -> None:
    h = await make_sim(speed=100.0)
    h.sim.load_directory({"w1": "网格员", "w2": "网格员2"})
    check = {"enable_duplicate_check": 1, "duplicate_check_interval": 60}
    await h.send_text("w1", "请确认群发", **check)
    await h.send_text("w1|w2", "请确认群发", **check)  # w2 never got it
    await h.send_text("w1", "请确认群发")  # no check asked: delivered
    assert len(h.sim.app_messages_to("w1")) == 2
    assert len(h.sim.app_messages_to("w2")) == 1
    assert len(h.sim.drops("duplicate")) == 1
    await sleep_sim(h, 61.0)
    await h.send_text("w1", "请确认群发", **check)
    assert len(h.sim.app_messages_to("w1")) == 3


async def test_message_send_recipients_and_agent(make_sim: SimFactory) -> None:
    h = await make_sim()
    h.sim.load_directory({"w1": "网格员"})
    data = await h.send_text("w1|ghost", "你好")
    assert data["errcode"] == 0 and data["invaliduser"] == "ghost" and data["msgid"]
    assert (await h.send_text("ghost", "你好"))["errcode"] == 81013
    wrong_agent = {"touser": "w1", "msgtype": "text", "agentid": 1, "text": {"content": "x"}}
    assert (await h.call("message/send", wrong_agent))["errcode"] == 40056
    empty = {"touser": "w1", "msgtype": "text", "agentid": 1000002, "text": {"content": ""}}
    assert (await h.call("message/send", empty))["errcode"] == 44004
    long_text = await h.send_text("w1", "字" * 1000)
    assert long_text["errcode"] == 0
    assert len(h.sim.app_messages_to("w1")[-1].content.encode()) <= 2048  # 超过将截断
