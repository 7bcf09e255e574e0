"""微信客服 in the simulator, driven through the bot's own WeComClient: the send rules
(state 0/1, 5 messages, 48 h), their error codes, sync_msg paging (empty page with
has_more = 1), tokens, the 20-second welcome code, msg_send_fail and media/get."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aiohttp
import pytest
import redis.asyncio as aioredis
from pytest_aiohttp import AiohttpServer

from bot.clock import Clock
from bot.events import ImageMessage, KfMessage, KfNotice, LocationMessage
from bot.keys import Keys
from bot.settings import Settings
from bot.wecom.client import WeComClient
from bot.wecom.errors import KfCannotSend, WeComAPIError
from bot.wecom.parse import parse_event
from bot.wecom.simulator import LatencyConfig, SimConfig, WeComSimulator
from bot.wecom.simulator.media import sample_png
from bot.wecom.simulator.residents import KfPosted, ResidentClass, SimLocation
from tests.simulator.conftest import fast_clock

HOURS = 3600.0


@dataclass
class Kf:
    sim: WeComSimulator
    client: WeComClient
    clock: Clock
    open_kfid: str
    link: str

    async def pull(self, posted: KfPosted | None = None, *, cursor: str = "",
                   limit: int = 1000) -> tuple[list[KfMessage], str]:
        """Every message after `cursor`, following has_more."""
        token = notice(posted).token if posted else ""
        found: list[KfMessage] = []
        while True:
            page = await self.client.kf_sync_msg(cursor=cursor, token=token, limit=limit,
                                                 open_kfid=self.open_kfid)
            found += page.items
            cursor = page.next_cursor
            if not page.has_more:
                return found, cursor


def notice(posted: KfPosted | None) -> KfNotice:
    assert posted is not None
    event = parse_event(posted.callback.plaintext)
    assert isinstance(event, KfNotice)
    return event


@pytest.fixture
async def kf(request: pytest.FixtureRequest, make_settings: Callable[..., Settings],
             aiohttp_server: AiohttpServer, redis: aioredis.Redis, keys: Keys
             ) -> AsyncIterator[Kf]:
    speed = getattr(request, "param", 1000.0)
    clock = fast_clock(speed) if speed != 1.0 else Clock()
    sim = WeComSimulator(SimConfig.from_settings(make_settings(), clock, callback_url="",
                                                 latency=LatencyConfig.none()))
    sim.load_directory({"w1": "网格员", "p1": "民警"})
    server = await aiohttp_server(sim.app)
    settings = make_settings({"GRIDBOT_WECOM__API_BASE_URL": str(server.make_url("/cgi-bin/")),
                              "GRIDBOT_WECOM__CORP_ID": sim.config.corp_id,
                              "GRIDBOT_WECOM__SECRET": sim.config.secret})
    async with aiohttp.ClientSession() as session:
        client = WeComClient(session, settings.wecom, redis, keys, clock)
        open_kfid = sim.add_kf_account("平安社区")
        link = await client.kf_add_contact_way(open_kfid, "n-3301-01")
        yield Kf(sim, client, clock, open_kfid, link)


async def test_accounts_links_and_scene_validation(kf: Kf) -> None:
    second = kf.sim.add_kf_account("平安乡")
    accounts = await kf.client.kf_account_list()
    assert [a.open_kfid for a in accounts] == [kf.open_kfid, second]
    assert accounts[0].name == "平安社区" and accounts[0].manage_privilege
    assert "enc_scene=" in kf.link
    with pytest.raises(ValueError, match="scene"):
        await kf.client.kf_add_contact_way(kf.open_kfid, "节点/1")
    with pytest.raises(WeComAPIError) as missing:
        await kf.client.kf_add_contact_way("wk-nobody", "n1")
    assert missing.value.errcode == 95004


@pytest.mark.parametrize("kf", [1.0], indirect=True)  # real time: 20 s is 20 s
async def test_enter_session_scene_and_welcome_code_once_within_20s(kf: Kf) -> None:
    entered = await kf.sim.kf_resident_enter(kf.link, "wmA", deliver=False)
    [event], _ = await kf.pull(entered)
    assert (event.msgtype, event.event_type, event.sender, event.scene, event.origin) == (
        "event", "enter_session", "wmA", "n-3301-01", 4)
    assert event.welcome_code
    await kf.client.kf_send_on_event(event.welcome_code, "您好，这里是平安社区警务室。")
    with pytest.raises(KfCannotSend) as again:  # single use
        await kf.client.kf_send_on_event(event.welcome_code, "再次欢迎")
    assert again.value.errcode == 95018
    assert [m.content for m in kf.sim.kf_messages_to("wmA")] == ["您好，这里是平安社区警务室。"]
    # a second entry within 48 h of a welcome carries no code
    again_entered = await kf.sim.kf_resident_enter("n-3301-01", "wmA", deliver=False)
    [event2], _ = await kf.pull(again_entered, cursor=_after(kf, entered))
    assert event2.event_type == "enter_session" and event2.welcome_code == ""


def _after(kf: Kf, posted: KfPosted) -> str:
    # our cursors are positions; the one just past `posted`
    index = next(i for i, e in enumerate(kf.sim.state.kf.log) if e.wire["msgid"] == posted.msgid)
    return f"kc{index + 2}"


async def test_welcome_code_expires_after_20_seconds(kf: Kf) -> None:
    entered = await kf.sim.kf_resident_enter(kf.link, "wmB", deliver=False, ago=21.0)
    [event], _ = await kf.pull(entered)
    with pytest.raises(KfCannotSend) as expired:
        await kf.client.kf_send_on_event(event.welcome_code, "欢迎")
    assert expired.value.errcode == 95018
    assert kf.sim.kf_messages_to("wmB") == []


async def test_five_messages_per_window_and_a_new_message_reopens_it(kf: Kf) -> None:
    await kf.sim.kf_resident_enter(kf.link, "wmC", deliver=False)
    with pytest.raises(KfCannotSend) as entered_only:  # state 4 until the resident writes
        await kf.client.kf_send_text("wmC", kf.open_kfid, "您好")
    assert entered_only.value.errcode == 95018
    await kf.sim.kf_resident_says("wmC", "楼道消防门坏了", deliver=False)
    assert await kf.client.kf_service_state(kf.open_kfid, "wmC") == 0
    for i in range(5):
        await kf.client.kf_send_text("wmC", kf.open_kfid, f"答复{i}", msgid=f"ans-c-{i}")
    with pytest.raises(KfCannotSend) as sixth:
        await kf.client.kf_send_text("wmC", kf.open_kfid, "第六条")
    assert sixth.value.errcode == 95001 and "5 条" in sixth.value.reason
    await kf.sim.kf_resident_says("wmC", "好的谢谢", deliver=False)
    await kf.client.kf_send_text("wmC", kf.open_kfid, "不客气")
    assert [m.content for m in kf.sim.kf_messages_to("wmC")][-2:] == ["答复4", "不客气"]
    with pytest.raises(WeComAPIError) as duplicate:  # msgid must be unique per account
        await kf.client.kf_send_text("wmC", kf.open_kfid, "重发", msgid="ans-c-0")
    assert not isinstance(duplicate.value, KfCannotSend)


async def test_48_hours_after_the_last_message_the_window_is_closed(kf: Kf) -> None:
    await kf.sim.kf_resident_enter(kf.link, "wmD", deliver=False, ago=50 * HOURS)
    await kf.sim.kf_resident_says("wmD", "有人吗", deliver=False, ago=49 * HOURS)
    with pytest.raises(KfCannotSend) as late:
        await kf.client.kf_send_text("wmD", kf.open_kfid, "您好")
    assert late.value.errcode == 95002 and "48 小时" in late.value.reason
    assert await kf.client.kf_service_state(kf.open_kfid, "wmD") == 4
    await kf.sim.kf_resident_says("wmD", "还在吗", deliver=False)
    assert await kf.client.kf_send_text("wmD", kf.open_kfid, "在的")


async def test_only_states_0_and_1_may_send(kf: Kf) -> None:
    await kf.sim.kf_resident_enter(kf.link, "wmE", deliver=False)
    await kf.sim.kf_resident_says("wmE", "我要报警", deliver=False)
    await kf.client.kf_service_state_trans(kf.open_kfid, "wmE", 1)
    await kf.client.kf_send_text("wmE", kf.open_kfid, "智能助手在")
    with pytest.raises(WeComAPIError) as not_servicer:
        await kf.client.kf_service_state_trans(kf.open_kfid, "wmE", 3, "nobody")
    assert not_servicer.value.errcode == 95014
    await kf.client.kf_service_state_trans(kf.open_kfid, "wmE", 3, "p1")
    assert await kf.client.kf_service_state(kf.open_kfid, "wmE") == 3
    with pytest.raises(KfCannotSend) as human:
        await kf.client.kf_send_text("wmE", kf.open_kfid, "机器人插话")
    assert human.value.errcode == 95018
    code = await kf.client.kf_service_state_trans(kf.open_kfid, "wmE", 4)
    assert code  # the end-of-session code
    with pytest.raises(WeComAPIError) as from_ended:
        await kf.client.kf_service_state_trans(kf.open_kfid, "wmE", 1)
    assert from_ended.value.errcode == 95016


async def test_sync_msg_pages_hidden_sends_and_empty_pages_with_has_more(kf: Kf) -> None:
    await kf.sim.kf_resident_enter(kf.link, "wmF", deliver=False)
    first = await kf.sim.kf_resident_says("wmF", "第一条", deliver=False)
    for i in range(3):  # the app's own messages take log positions but are never returned
        await kf.client.kf_send_text("wmF", kf.open_kfid, f"回复{i}")
    await kf.sim.kf_resident_says("wmF", "第二条", deliver=False)
    token = notice(first).token
    page1 = await kf.client.kf_sync_msg(token=token, limit=2, open_kfid=kf.open_kfid)
    assert [m.event_type or m.content for m in page1.items] == ["enter_session", "第一条"]
    assert page1.has_more
    page2 = await kf.client.kf_sync_msg(cursor=page1.next_cursor, token=token, limit=3,
                                        open_kfid=kf.open_kfid)
    assert page2.items == [] and page2.has_more  # empty, yet more to come
    kf.sim.kf_force_empty_pages(2)
    cursor, seen = page2.next_cursor, []
    for _ in range(4):
        page = await kf.client.kf_sync_msg(cursor=cursor, token=token, open_kfid=kf.open_kfid)
        seen.append((len(page.items), page.has_more))
        cursor = page.next_cursor
    assert seen == [(0, True), (0, True), (1, False), (0, False)]


async def test_tokens_expire_after_10_minutes_and_bad_ones_are_95007(kf: Kf) -> None:
    await kf.sim.kf_resident_enter(kf.link, "wmG", deliver=False)
    posted = await kf.sim.kf_resident_says("wmG", "你好", deliver=False)
    token = notice(posted).token
    assert (await kf.client.kf_sync_msg(token=token)).items
    with pytest.raises(WeComAPIError) as bad:
        await kf.client.kf_sync_msg(token="ENCforged")
    assert bad.value.errcode == 95007
    kf.sim.state.kf.tokens[token] = (kf.open_kfid, kf.clock.now() - 1)  # 10 minutes later
    with pytest.raises(WeComAPIError) as stale:
        await kf.client.kf_sync_msg(token=token)
    assert stale.value.errcode == 95007


async def test_a_resident_who_refuses_produces_msg_send_fail(kf: Kf) -> None:
    kf.sim.kf_resident("wmH", "refuses")
    await kf.sim.kf_resident_enter(kf.link, "wmH", deliver=False)
    await kf.sim.kf_resident_says("wmH", "我看到那个人了", deliver=False)
    _, cursor = await kf.pull()
    msgid = await kf.client.kf_send_text("wmH", kf.open_kfid, "请问在哪里看到的？")
    for _ in range(100):  # the refusal arrives a moment later, as WeCom's does
        if kf.sim.kf_messages_to("wmH")[0].failed:
            break
        await kf.clock.sleep(1.0)
    [fail], _ = await kf.pull(cursor=cursor)
    assert (fail.event_type, fail.fail_msgid, fail.fail_type, fail.sender) == (
        "msg_send_fail", msgid, 10, "wmH")


async def test_residents_answer_like_people(kf: Kf) -> None:
    kf.sim.kf_resident("wmI", ResidentClass("quick", 1.0, (30.0, 60.0)), replies=["在小区东门"])
    kf.sim.kf_resident("wmJ", "never")
    for resident in ("wmI", "wmJ"):
        await kf.sim.kf_resident_enter(kf.link, resident, deliver=False)
        await kf.sim.kf_resident_says(resident, "我看到通报上的人了", deliver=False)
    _, cursor = await kf.pull()
    for resident in ("wmI", "wmJ"):
        await kf.client.kf_send_text(resident, kf.open_kfid, "请问在哪里看到的？")
    await kf.clock.sleep(120.0)
    answers, _ = await kf.pull(cursor=cursor)
    assert [(m.sender, m.content) for m in answers] == [("wmI", "在小区东门")]


async def test_photos_and_locations_from_members_and_residents(kf: Kf) -> None:
    photo = sample_png(7)
    image = parse_event(kf.sim.build_image("w1", photo).plaintext)
    assert isinstance(image, ImageMessage) and image.sender == "w1"
    assert await kf.client.media_get(image.media_id) == photo
    place = parse_event(kf.sim.build_location("w1", 30.27, 120.15, label="文三路").plaintext)
    assert isinstance(place, LocationMessage)
    assert (place.latitude, place.longitude, place.label) == (30.27, 120.15, "文三路")
    with pytest.raises(WeComAPIError) as unknown:
        await kf.client.media_get("3no-such-media")
    assert unknown.value.errcode == 40007
    await kf.sim.kf_resident_enter(kf.link, "wmK", deliver=False)
    await kf.sim.kf_resident_says("wmK", b"\xff\xd8\xff\xe0fake-jpeg", deliver=False)
    await kf.sim.kf_resident_says("wmK", SimLocation(23.1, 113.3, "广州塔", "海珠区"),
                                  deliver=False)
    found, _ = await kf.pull()
    shot, where = found[-2:]
    assert shot.msgtype == "image"
    assert await kf.client.media_get(shot.media_id) == b"\xff\xd8\xff\xe0fake-jpeg"
    assert (where.msgtype, where.latitude, where.label) == ("location", 23.1, "广州塔 海珠区")
