"""Callbacks to the bot: encrypted and signed as WeCom does, retried, repeatable."""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import xmltodict
from aiohttp import web
from pytest_aiohttp import AiohttpServer
from wechatpy.enterprise.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidSignatureException

from tests.simulator.conftest import AGENT_ID, CORP_ID, SimFactory

TOKEN = secrets.token_hex(8)
AES_KEY = base64.b64encode(secrets.token_bytes(32)).decode().rstrip("=")


@dataclass
class FakeBot:
    """The bot's callback endpoint: decrypts with wechatpy and scripts its HTTP answers."""

    statuses: list[int] = field(default_factory=list)  # answered in order, then 200
    delays: list[float] = field(default_factory=list)  # real seconds before answering
    reply: Callable[[dict[str, Any]], str] | None = None
    bodies: list[str] = field(default_factory=list)
    queries: list[dict[str, str]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    crypto: WeChatCrypto = field(default_factory=lambda: WeChatCrypto(TOKEN, AES_KEY, CORP_ID))

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.text()
        query = dict(request.query)
        self.bodies.append(body)
        self.queries.append(query)
        plain = self.crypto.decrypt_message(
            body, query["msg_signature"], query["timestamp"], query["nonce"]
        )
        message = xmltodict.parse(plain)["xml"]
        self.messages.append(message)
        if self.delays:
            await asyncio.sleep(self.delays.pop(0))
        status = self.statuses.pop(0) if self.statuses else 200
        text = self.reply(message) if self.reply and status == 200 else ""
        return web.Response(status=status, text=text)


BotFactory = Callable[..., Awaitable[tuple[FakeBot, Any]]]


@pytest.fixture
def make_pair(aiohttp_server: AiohttpServer, make_sim: SimFactory) -> BotFactory:
    async def build(bot: FakeBot | None = None, **overrides: Any) -> tuple[FakeBot, Any]:
        bot = bot or FakeBot()
        app = web.Application()
        app.router.add_post("/wecom/callback", bot.handle)
        server = await aiohttp_server(app)
        url = str(server.make_url("/wecom/callback"))
        h = await make_sim(token=TOKEN, encoding_aes_key=AES_KEY, callback_url=url, **overrides)
        return bot, h

    return build


async def test_text_callback_is_encrypted_signed_and_decryptable(make_pair: BotFactory) -> None:
    bot, h = await make_pair()
    result = await h.sim.post_text("w1", "查询 <群> ]]> 1号楼", msg_id="4561255354251345929")
    assert result.ok and len(result.attempts) == 1
    [message] = bot.messages
    assert message["FromUserName"] == "w1" and message["MsgType"] == "text"
    assert message["Content"] == "查询 <群> ]]> 1号楼"
    assert message["MsgId"] == "4561255354251345929"
    assert message["ToUserName"] == CORP_ID and message["AgentID"] == str(AGENT_ID)
    envelope = xmltodict.parse(bot.bodies[0])["xml"]
    assert envelope["ToUserName"] == CORP_ID and envelope["AgentID"] == str(AGENT_ID)
    assert abs(int(bot.queries[0]["timestamp"]) - h.sim.clock.now()) < 5
    other = WeChatCrypto("another-token", AES_KEY, CORP_ID)
    query = bot.queries[0]
    with pytest.raises(InvalidSignatureException):
        other.decrypt_message(
            bot.bodies[0], query["msg_signature"], query["timestamp"], query["nonce"]
        )


async def test_non_200_is_retried_with_the_same_body(make_pair: BotFactory) -> None:
    bot, h = await make_pair(FakeBot(statuses=[500, 503]))
    result = await h.sim.post_text("w1", "你好")
    assert result.ok
    assert [a.status for a in result.attempts] == [500, 503, 200]
    assert len(set(bot.bodies)) == 1 and len(bot.bodies) == 3
    assert len(h.sim.records.callback_attempts) == 3


async def test_gives_up_after_three_retries(make_pair: BotFactory) -> None:
    bot, h = await make_pair(FakeBot(statuses=[500] * 10))
    result = await h.sim.post_text("w1", "你好")
    assert not result.ok and len(result.attempts) == 4 and len(bot.bodies) == 4


async def test_slow_answer_counts_as_failed_and_is_retried(make_pair: BotFactory) -> None:
    _, h = await make_pair(
        FakeBot(delays=[0.6]), callback_timeout=0.2, callback_min_real_timeout=0.2
    )
    result = await h.sim.post_text("w1", "你好")
    assert result.ok
    assert [a.status for a in result.attempts] == [None, 200]
    assert result.attempts[0].error == "TimeoutError"


async def test_the_same_callback_can_be_delivered_again(make_pair: BotFactory) -> None:
    bot, h = await make_pair()
    callback = h.sim.build_text("w1", "上报")
    first, second = await h.sim.deliver(callback), await h.sim.deliver(callback)
    assert first.ok and second.ok
    assert bot.bodies[0] == bot.bodies[1] and bot.queries[0] == bot.queries[1]
    assert bot.messages[0]["MsgId"] == bot.messages[1]["MsgId"]
    assert h.sim.build_text("w1", "上报").label != callback.label  # a new message, new MsgId


async def test_passive_reply_is_decrypted(make_pair: BotFactory) -> None:
    def reply(message: dict[str, Any]) -> str:
        xml = (
            f"<xml><ToUserName>{message['FromUserName']}</ToUserName><FromUserName>"
            f"{CORP_ID}</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType>"
            "<Content>收到</Content></xml>"
        )
        return str(WeChatCrypto(TOKEN, AES_KEY, CORP_ID).encrypt_message(xml, "123", "1"))

    _, h = await make_pair(FakeBot(reply=reply))
    result = await h.sim.post_text("w1", "你好")
    assert "<Content>收到</Content>" in result.reply


async def test_chat_events_update_the_groups_the_api_reports(make_pair: BotFactory) -> None:
    bot, h = await make_pair()
    h.sim.load_directory({"w1": "网格员甲", "w2": "网格员乙"})
    get = "externalcontact/groupchat/get"
    await h.sim.post_chat_event("wr9", "create", name="新建群", owner="w1", member_count=5)
    info = (await h.call(get, {"chat_id": "wr9"}))["group_chat"]
    assert (info["name"], info["owner"], len(info["member_list"])) == ("新建群", "w1", 5)
    assert bot.messages[-1]["Event"] == "change_external_chat"
    assert bot.messages[-1]["ChangeType"] == "create" and "UpdateDetail" not in bot.messages[-1]
    await h.sim.post_chat_event("wr9", "update", "change_name", name="东关1号楼")
    await h.sim.post_chat_event("wr9", "update", "change_owner", owner="w2")
    await h.sim.post_chat_event(
        "wr9",
        "update",
        "add_member",
        mem_change_cnt=3,
        mem_change_list=["wmA", "wmB", "wmC"],
        join_scene=3,
    )
    last = bot.messages[-1]
    assert last["UpdateDetail"] == "add_member" and last["MemChangeCnt"] == "3"
    assert last["MemChangeList"]["Item"] == ["wmA", "wmB", "wmC"]
    info = (await h.call(get, {"chat_id": "wr9"}))["group_chat"]
    assert (info["name"], info["owner"], len(info["member_list"])) == ("东关1号楼", "w2", 8)
    listed = await h.call(
        "externalcontact/groupchat/list", {"limit": 10, "owner_filter": {"userid_list": ["w2"]}}
    )
    assert [c["chat_id"] for c in listed["group_chat_list"]] == ["wr9"]
    await h.sim.post_chat_event("wr9", "dismiss")
    assert (await h.call(get, {"chat_id": "wr9"}))["errcode"] == 40050
    assert (await h.call("externalcontact/groupchat/list", {"limit": 10}))["group_chat_list"] == []
    assert bot.messages[-1]["ChangeType"] == "dismiss"


async def test_contact_event(make_pair: BotFactory) -> None:
    bot, h = await make_pair()
    result = await h.sim.post_contact_event("w1", "wmRes1", state="grid-01")
    assert result.ok
    message = bot.messages[-1]
    assert message["Event"] == "change_external_contact"
    assert message["ChangeType"] == "add_external_contact"
    assert (message["UserID"], message["ExternalUserID"], message["State"]) == (
        "w1",
        "wmRes1",
        "grid-01",
    )
