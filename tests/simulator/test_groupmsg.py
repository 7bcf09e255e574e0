"""客户群群发: add_msg_template, owner confirmation, quota, tracking, remind, cancel."""

from __future__ import annotations

from typing import Any

from bot.wecom.simulator import OwnerProfile
from bot.wecom.simulator.groups import month_of
from tests.simulator.conftest import Harness, SimFactory, sleep_sim

TEMPLATE = "externalcontact/add_msg_template"


def _setup(h: Harness, groups: int = 3) -> None:
    h.sim.load_directory({"w1": "网格员甲", "w2": "网格员乙"})
    for i in range(groups):
        h.sim.add_customer_group(f"wr{i}", f"东关社区{i}号楼", "w1", 80)
    h.sim.add_customer_group("wr-other", "别人的群", "w2", 50)


async def _template(
    h: Harness, chats: list[str], text: str = "警情通报", **extra: Any
) -> dict[str, Any]:
    body = {
        "chat_type": "group",
        "sender": "w1",
        "chat_id_list": chats,
        "text": {"content": text},
        **extra,
    }
    return await h.call(TEMPLATE, body)


async def _task(h: Harness, msgid: str) -> dict[str, Any]:
    return await h.call("externalcontact/get_groupmsg_task", {"msgid": msgid})


async def _results(h: Harness, msgid: str, userid: str = "w1", **extra: Any) -> dict[str, Any]:
    body = {"msgid": msgid, "userid": userid, **extra}
    return await h.call("externalcontact/get_groupmsg_send_result", body)


async def test_template_creates_a_task_that_waits_for_the_owner(make_sim: SimFactory) -> None:
    h = await make_sim(speed=100.0, owner_profile=OwnerProfile.always((60.0, 60.0)))
    _setup(h)
    data = await _template(h, ["wr0", "wr1", "wr-other", "wr-missing"])
    assert data["errcode"] == 0 and data["msgid"].startswith("msg")
    assert data["fail_list"] == ["wr-other", "wr-missing"]
    task = (await _task(h, data["msgid"]))["task_list"]
    assert task == [{"userid": "w1", "status": 0}]  # no send_time before sending
    pending = (await _results(h, data["msgid"]))["send_list"]
    assert [(r["chat_id"], r["status"]) for r in pending] == [("wr0", 0), ("wr1", 0)]
    assert h.sim.deliveries_to("wr0") == []
    await sleep_sim(h, 62.0)
    task = (await _task(h, data["msgid"]))["task_list"][0]
    assert task["status"] == 2 and task["send_time"] > 0
    sent = (await _results(h, data["msgid"]))["send_list"]
    assert {r["status"] for r in sent} == {1} and all(r["send_time"] for r in sent)
    [delivery] = h.sim.deliveries_to("wr0")
    assert delivery.channel == "customer_group" and delivery.content == "警情通报"
    assert delivery.ref == data["msgid"]
    assert (await _results(h, data["msgid"], userid="w2"))["send_list"] == []


async def test_monthly_quota_spent_gives_status_3(make_sim: SimFactory) -> None:
    h = await make_sim(speed=100.0, owner_profile=OwnerProfile.always((5.0, 5.0)))
    h.sim.load_directory({"w1": "网格员"})
    _, days = month_of(h.sim.clock.now())
    h.sim.add_customer_group("wr-full", "已满", "w1", 30, quota_used=days)
    h.sim.add_customer_group("wr-last", "还剩一次", "w1", 30, quota_used=days - 1)
    h.sim.add_customer_group("wr-gone", "将解散", "w1", 30)
    first = (await _template(h, ["wr-full", "wr-last", "wr-gone"]))["msgid"]
    h.sim.dismiss_group("wr-gone")
    await sleep_sim(h, 6.0)
    second = (await _template(h, ["wr-last"], text="第二条"))["msgid"]
    await sleep_sim(h, 6.0)
    statuses = {r["chat_id"]: r["status"] for r in (await _results(h, first))["send_list"]}
    assert statuses == {"wr-full": 3, "wr-last": 1, "wr-gone": 2}
    assert [r["status"] for r in (await _results(h, second))["send_list"]] == [3]
    assert h.sim.deliveries_to("wr-full") == []
    assert [d.content for d in h.sim.deliveries_to("wr-last")] == ["警情通报"]
    assert {d.reason for d in h.sim.drops()} == {"quota", "dismissed"}


async def test_template_validation(make_sim: SimFactory) -> None:
    h = await make_sim()
    _setup(h)
    assert (
        await h.call(
            TEMPLATE, {"chat_type": "group", "chat_id_list": ["wr0"], "text": {"content": "x"}}
        )
    )["errcode"] == 41009
    ghost = {
        "chat_type": "group",
        "sender": "ghost",
        "chat_id_list": ["wr0"],
        "text": {"content": "x"},
    }
    assert (await h.call(TEMPLATE, ghost))["errcode"] == 60111
    assert (await _template(h, [f"wr{i}" for i in range(2001)]))["errcode"] == 40058
    assert (await _template(h, ["wr0"], text="字" * 1334))["errcode"] == 45002  # 4002 bytes
    assert (await _template(h, ["wr0"], text="字" * 1333))["errcode"] == 0
    assert (await _template(h, ["wr-other"]))["errcode"] == 41048
    assert (await _template(h, ["wr0"], text=""))["errcode"] == 44004
    async with h.session.post(
        f"{h.base}/cgi-bin/{TEMPLATE}", params={"access_token": h.token}, data=b"{not json"
    ) as resp:
        assert (await resp.json())["errcode"] == 47001


async def test_remind_at_most_three_times_a_day(make_sim: SimFactory) -> None:
    h = await make_sim(
        speed=100_000.0, token_ttl=1e7, owner_profile=OwnerProfile.always((9e6, 9e6))
    )
    _setup(h)
    msgid = (await _template(h, ["wr0"]))["msgid"]
    remind = "externalcontact/remind_groupmsg_send"
    codes = [(await h.call(remind, {"msgid": msgid}))["errcode"] for _ in range(4)]
    assert codes == [0, 0, 0, 45009]
    assert (await h.call(remind, {"msgid": "msg-unknown"}))["errcode"] == 40058
    task = h.sim.task(msgid)
    assert task is not None
    assert [e for e, _, _ in task.timeline].count("reminded") == 3
    await sleep_sim(h, 86401.0)
    assert (await h.call(remind, {"msgid": msgid}))["errcode"] == 0


async def test_cancel_stops_an_unconfirmed_task(make_sim: SimFactory) -> None:
    h = await make_sim(speed=100.0, owner_profile=OwnerProfile.always((30.0, 30.0)))
    _setup(h)
    msgid = (await _template(h, ["wr0", "wr1"]))["msgid"]
    cancel = await h.call("externalcontact/cancel_groupmsg_send", {"msgid": msgid})
    assert cancel["errcode"] == 0
    await sleep_sim(h, 31.0)
    assert (await _task(h, msgid))["task_list"][0]["status"] == 0
    assert h.sim.deliveries_to("wr0") == []
    task = h.sim.task(msgid)
    assert task is not None and task.first("cancelled") is not None


async def test_list_v2_pages_by_time_window_and_creator(make_sim: SimFactory) -> None:
    h = await make_sim(owner_profile=OwnerProfile.always((9e6, 9e6)))
    _setup(h, groups=1)
    ids = [(await _template(h, ["wr0"], text=f"第{i}条"))["msgid"] for i in range(5)]
    other = {
        "chat_type": "group",
        "sender": "w2",
        "chat_id_list": ["wr-other"],
        "text": {"content": "乙的"},
    }
    await h.call(TEMPLATE, other)
    now = int(h.sim.clock.now())
    api = "externalcontact/get_groupmsg_list_v2"
    window = {"chat_type": "group", "start_time": now - 60, "end_time": now + 1}
    seen, cursor = [], ""
    while True:
        page = await h.call(api, {**window, "creator": "w1", "limit": 2, "cursor": cursor})
        seen += [m["msgid"] for m in page["group_msg_list"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == ids
    everyone = await h.call(api, {**window, "limit": 100})
    assert len(everyone["group_msg_list"]) == 6
    first = everyone["group_msg_list"][0]
    assert first["creator"] == "w1" and first["text"] == {"content": "第0条"}
    assert first["create_type"] == 0
    personal = await h.call(api, {**window, "filter_type": 1})
    assert personal["group_msg_list"] == []
    too_wide = {"chat_type": "group", "start_time": now - 32 * 86400, "end_time": now}
    assert (await h.call(api, too_wide))["errcode"] == 40058
    assert (await h.call(api, {**window, "limit": 101}))["errcode"] == 40058
    past = {"chat_type": "group", "start_time": now - 3600, "end_time": now - 1800}
    assert (await h.call(api, past))["group_msg_list"] == []
