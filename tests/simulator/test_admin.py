"""/sim/ admin endpoints: load, drive and inspect a simulator over HTTP."""

from __future__ import annotations

import base64
import secrets

from aiohttp import web
from pytest_aiohttp import AiohttpServer

from bot.events import ImageMessage, KfNotice, LocationMessage
from bot.wecom.crypto import WeComCrypto
from bot.wecom.parse import parse_envelope, parse_event
from bot.wecom.simulator import OwnerProfile
from tests.simulator.conftest import SimFactory


async def test_load_groups_and_directory_then_read_records(make_sim: SimFactory) -> None:
    h = await make_sim(owner_profile=OwnerProfile.always((0.0, 0.0)))
    loaded = await h.admin(
        "POST",
        "groups",
        json={
            "customer_groups": [
                {"chat_id": "wr1", "name": "1号楼", "owner": "w1", "member_count": 30}
            ],
            "appchats": [{"chat_id": "app1", "name": "内部群", "members": ["w1", "w2"]}],
            "robots": [{"key": "k1", "chat_id": "rb1"}],
        },
    )
    assert loaded == {"customer_groups": 1, "appchats": 1, "robots": 1}
    assert await h.admin(
        "POST",
        "directory",
        json={"users": {"w1": "网格员", "p1": "民警"}, "escalation": {"w1": ["p1"]}},
    ) == {"users": 2}
    await h.call(
        "appchat/send", {"chatid": "app1", "msgtype": "text", "text": {"content": "内部通知"}}
    )
    await h.call("webhook/send", {"msgtype": "text", "text": {"content": "机器人"}}, key="k1")
    template = await h.call(
        "externalcontact/add_msg_template",
        {
            "chat_type": "group",
            "sender": "w1",
            "chat_id_list": ["wr1"],
            "text": {"content": "客户群通知"},
        },
    )
    h.sim.state.timers.run_due()
    assert [d.channel for d in h.sim.records] == ["appchat", "webhook", "customer_group"]
    records = await h.admin("GET", "records", params={"chat_id": "wr1"})
    assert [(r["channel"], r["content"], r["ref"]) for r in records] == [
        ("customer_group", "客户群通知", template["msgid"])
    ]
    webhook = await h.admin("GET", "records", params={"channel": "webhook"})
    assert [r["target"] for r in webhook] == ["rb1"]
    stats = await h.admin("GET", "stats")
    assert stats["deliveries"] == {"appchat": 1, "webhook": 1, "customer_group": 1}
    assert stats["calls"]["externalcontact/add_msg_template"] == 1
    assert stats["tasks"]["confirmed"] == 1
    [task] = await h.admin("GET", "tasks", params={"msgid": template["msgid"]})
    assert [e["event"] for e in task["timeline"]] == ["created", "confirmed"]


async def test_faults_latency_and_token_over_http(make_sim: SimFactory) -> None:
    h = await make_sim()
    await h.gettoken()
    assert await h.admin(
        "POST",
        "faults",
        json={
            "faults": [
                {"rate": 1.0, "weights": {"-1": 1}, "apis": ["externalcontact/groupchat/list"]}
            ]
        },
    ) == {"faults": 1}
    assert (await h.call("externalcontact/groupchat/list", {"limit": 5}))["errcode"] == -1
    await h.admin("POST", "faults", json={"faults": []})
    assert (await h.call("externalcontact/groupchat/list", {"limit": 5}))["errcode"] == 0
    await h.admin("POST", "invalidate_token")
    assert (await h.call("externalcontact/groupchat/list", {"limit": 5}))["errcode"] == 40014
    assert await h.admin("POST", "latency", json={"median": 0}) == {"median": 0, "p99": 0.4}
    bad = await h.admin("POST", "faults", json={"faults": [{"rate": 2}]})
    assert "error" in bad


async def test_post_text_over_http_with_repeat(
    make_sim: SimFactory, aiohttp_server: AiohttpServer
) -> None:
    received: list[str] = []

    async def bot(request: web.Request) -> web.Response:
        received.append(await request.text())
        return web.Response()

    app = web.Application()
    app.router.add_post("/cb", bot)
    server = await aiohttp_server(app)
    key = base64.b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    h = await make_sim(token="tok", encoding_aes_key=key, callback_url=str(server.make_url("/cb")))
    results = await h.admin(
        "POST", "post_text", json={"from_user": "w1", "content": "上报", "repeat": 2}
    )
    assert [r["ok"] for r in results] == [True, True]
    assert len(received) == 2 and received[0] == received[1]
    attempts = await h.admin("GET", "callbacks")
    assert [a["status"] for a in attempts] == [200, 200]
    event = await h.admin(
        "POST",
        "chat_event",
        json={"chat_id": "wr5", "change_type": "create", "name": "新群", "owner": "w1"},
    )
    assert event["ok"] and h.sim.group("wr5") is not None


async def test_kf_residents_and_member_media_over_http(
    make_sim: SimFactory, aiohttp_server: AiohttpServer
) -> None:
    received: list[tuple[dict[str, str], str]] = []

    async def bot(request: web.Request) -> web.Response:
        received.append((dict(request.query), await request.text()))
        return web.Response()

    app = web.Application()
    app.router.add_post("/cb", bot)
    server = await aiohttp_server(app)
    key = base64.b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    h = await make_sim(token="tok", encoding_aes_key=key, callback_url=str(server.make_url("/cb")))
    crypto = WeComCrypto("tok", key, h.sim.config.corp_id)

    def opened(index: int) -> object:
        query, body = received[index]
        plain = crypto.decrypt(query["msg_signature"], query["timestamp"], query["nonce"],
                               parse_envelope(body.encode()).encrypt)
        return parse_event(plain)

    open_kfid = (await h.admin("POST", "kf_account", json={"name": "平安社区"}))["open_kfid"]
    url = (await h.admin("POST", "kf_link", json={"open_kfid": open_kfid, "scene": "n1"}))["url"]
    assert (await h.admin("POST", "kf_link", json={"open_kfid": open_kfid, "scene": "a/b"})
            )["error"].startswith("ValueError")
    assert await h.admin("POST", "kf_resident", json={
        "external_userid": "wmA", "kind": "never"}) == {"external_userid": "wmA", "kind": "never"}
    entered = await h.admin("POST", "kf_enter", json={"link": url, "external_userid": "wmA"})
    said = await h.admin("POST", "kf_says", json={"external_userid": "wmA", "text": "你好",
                                                 "repeat": 3})
    assert [r["ok"] for r in said["results"]] == [True, True, True]
    await h.admin("POST", "kf_says", json={
        "external_userid": "wmA", "location": {"latitude": 30.1, "longitude": 120.2}})
    photo = base64.b64encode(b"\x89PNG-photo").decode()
    await h.admin("POST", "kf_says", json={"external_userid": "wmA", "image_base64": photo})
    notices = [opened(i) for i in range(len(received))]
    assert all(isinstance(n, KfNotice) and n.open_kfid == open_kfid for n in notices)
    assert len({n.token for n in notices if isinstance(n, KfNotice)}) == 4  # 3 repeats share one
    token = notices[-1].token if isinstance(notices[-1], KfNotice) else ""
    page = await h.call("kf/sync_msg", {"token": token, "open_kfid": open_kfid})
    assert [m["msgtype"] for m in page["msg_list"]] == ["event", "text", "location", "image"]
    assert page["msg_list"][0]["msgid"] == entered["msgid"]
    assert page["msg_list"][1]["msgid"] == said["msgid"]
    sent = await h.call("kf/send_msg", {"touser": "wmA", "open_kfid": open_kfid,
                                         "msgtype": "text", "text": {"content": "收到"}})
    assert sent["errcode"] == 0
    [message] = await h.admin("GET", "kf_messages", params={"external_userid": "wmA"})
    assert (message["content"], message["msgid"]) == ("收到", sent["msgid"])
    session = await h.admin("GET", "kf_session", params={"external_userid": "wmA"})
    assert (session["state"], session["sent_in_window"]) == (0, 1)
    failed = await h.admin("POST", "kf_fail_send", json={"msgid": sent["msgid"],
                                                         "fail_type": 4})
    assert failed["results"][0]["ok"]
    assert await h.admin("POST", "kf_empty_pages", json={"count": 1}) == {"count": 1}
    empty = await h.call("kf/sync_msg", {"token": token, "cursor": page["next_cursor"]})
    assert (empty["msg_list"], empty["has_more"]) == ([], 1)
    rest = await h.call("kf/sync_msg", {"token": token, "cursor": empty["next_cursor"]})
    assert [m["event"]["fail_type"] for m in rest["msg_list"]] == [4]

    before = len(received)
    assert [r["ok"] for r in await h.admin("POST", "post_image", json={
        "from_user": "w1", "image_base64": photo, "repeat": 2})] == [True, True]
    image = opened(before)
    assert isinstance(image, ImageMessage) and image == opened(before + 1)
    async with h.session.get(f"{h.base}/cgi-bin/media/get",
                             params={"access_token": h.token, "media_id": image.media_id}) as r:
        assert (r.content_type, await r.read()) == ("image/png", b"\x89PNG-photo")
    assert (await h.admin("POST", "post_location", json={
        "from_user": "w1", "latitude": 30.27, "longitude": 120.15, "label": "文三路"}))["ok"]
    place = opened(before + 2)
    assert isinstance(place, LocationMessage) and place.label == "文三路"
