"""externalcontact/groupchat/list paging and filters, groupchat/get."""

from __future__ import annotations

from tests.simulator.conftest import Harness, SimFactory

LIST, GET = "externalcontact/groupchat/list", "externalcontact/groupchat/get"


def _load(h: Harness, groups: int, owners: int = 10) -> None:
    h.sim.load_directory({f"w{i}": f"网格员{i}" for i in range(owners)})
    for i in range(groups):
        h.sim.add_customer_group(f"wr{i:05d}", f"居民群{i}", f"w{i % owners}", 40)


async def test_list_pages_through_every_group_once(make_sim: SimFactory) -> None:
    h = await make_sim()
    _load(h, 2500)
    h.sim.dismiss_group("wr00007")
    seen, cursor, pages = [], "", 0
    while True:
        page = await h.call(LIST, {"limit": 1000, "cursor": cursor})
        assert page["errcode"] == 0
        seen += [c["chat_id"] for c in page["group_chat_list"]]
        pages, cursor = pages + 1, page["next_cursor"]
        if not cursor:
            break
    assert pages == 3 and len(seen) == 2499 and len(set(seen)) == 2499
    assert "wr00007" not in seen


async def test_owner_and_status_filters(make_sim: SimFactory) -> None:
    h = await make_sim()
    _load(h, 30)
    h.sim.add_customer_group("wr-handover", "交接中", "w3", 10, status=2)
    mine = await h.call(LIST, {"limit": 100, "owner_filter": {"userid_list": ["w3", "w4"]}})
    ids = [c["chat_id"] for c in mine["group_chat_list"]]
    assert len(ids) == 7 and ids[:3] == ["wr00003", "wr00013", "wr00023"]
    handover = await h.call(LIST, {"limit": 100, "status_filter": 2})
    assert handover["group_chat_list"] == [{"chat_id": "wr-handover", "status": 2}]


async def test_limit_bounds_and_bad_cursor(make_sim: SimFactory) -> None:
    h = await make_sim()
    _load(h, 3)
    assert (await h.call(LIST, {"limit": 0}))["errcode"] == 40058
    assert (await h.call(LIST, {"limit": 1001}))["errcode"] == 40058
    assert (await h.call(LIST, {}))["errcode"] == 40058
    assert (await h.call(LIST, {"limit": 10, "cursor": "garbage"}))["errcode"] == 40058


async def test_unfiltered_list_refused_over_1000_visible_members(make_sim: SimFactory) -> None:
    h = await make_sim()
    _load(h, 5, owners=1001)
    assert (await h.call(LIST, {"limit": 10}))["errcode"] == 81017
    filtered = await h.call(LIST, {"limit": 10, "owner_filter": {"userid_list": ["w1"]}})
    assert filtered["errcode"] == 0 and len(filtered["group_chat_list"]) == 1


async def test_get_returns_the_group_with_its_members(make_sim: SimFactory) -> None:
    h = await make_sim()
    h.sim.load_directory({"w1": "网格员甲"})
    h.sim.add_customer_group("wr1", "东关1号楼", "w1", 4, notice="群公告", create_time=1700000000)
    data = await h.call(GET, {"chat_id": "wr1", "need_name": 1})
    info = data["group_chat"]
    assert (info["chat_id"], info["name"], info["owner"]) == ("wr1", "东关1号楼", "w1")
    assert (info["create_time"], info["notice"]) == (1700000000, "群公告")
    members = info["member_list"]
    assert len(members) == 4 and members[0] == {
        "userid": "w1",
        "type": 1,
        "join_time": 1700000000,
        "join_scene": 1,
        "invitor": {"userid": "w1"},
        "group_nickname": "",
        "name": "网格员甲",
    }
    assert {m["type"] for m in members[1:]} == {2}
    again = await h.call(GET, {"chat_id": "wr1"})
    assert [m["userid"] for m in again["group_chat"]["member_list"]] == [
        m["userid"] for m in members
    ]
    assert "name" not in again["group_chat"]["member_list"][1]
    assert (await h.call(GET, {"chat_id": "nope"}))["errcode"] == 40050
