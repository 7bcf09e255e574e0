"""Decrypted callback XML → our events, including the events wechatpy lacks."""

from __future__ import annotations

import pytest

from bot.events import (
    AppEvent,
    ExternalChatChange,
    ExternalContactChange,
    OtherMessage,
    TextMessage,
)
from bot.wecom.errors import MalformedCallbackError
from bot.wecom.parse import parse_envelope, parse_event

HEAD = ("<xml><ToUserName><![CDATA[wwcorp]]></ToUserName><FromUserName><![CDATA[{sender}]]>"
        "</FromUserName><CreateTime>1700000000</CreateTime>")


def xml(sender: str, body: str) -> str:
    return HEAD.format(sender=sender) + body + "</xml>"


def test_change_external_chat_add_member() -> None:
    event = parse_event(xml("sys", (
        "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_external_chat]]></Event>"
        "<ChatId><![CDATA[wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA]]></ChatId>"
        "<ChangeType><![CDATA[update]]></ChangeType>"
        "<UpdateDetail><![CDATA[add_member]]></UpdateDetail><JoinScene>1</JoinScene>"
        "<QuitScene>0</QuitScene><MemChangeCnt>10</MemChangeCnt>"
        "<MemChangeList><Item>Jack</Item><Item>Rose</Item></MemChangeList>"
        "<LastMemVer>9c3f97c2ada667dfb5f6d03308d963e1</LastMemVer>"
        "<CurMemVer>71217227bbd112ecfe3a49c482195cb4</CurMemVer>")))
    assert event == ExternalChatChange(
        sender="sys", create_time=1700000000, chat_id="wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA",
        change_type="update", update_detail="add_member", join_scene=1, quit_scene=0,
        member_change_count=10)


def test_change_external_chat_dismiss_and_contact_change() -> None:
    dismiss = parse_event(xml("sys", (
        "<MsgType>event</MsgType><Event>change_external_chat</Event><ChatId>wr1</ChatId>"
        "<ChangeType>dismiss</ChangeType>")))
    assert isinstance(dismiss, ExternalChatChange) and dismiss.change_type == "dismiss"
    contact = parse_event(xml("sys", (
        "<MsgType>event</MsgType><Event>change_external_contact</Event>"
        "<ChangeType>add_external_contact</ChangeType><UserID>wang</UserID>"
        "<ExternalUserID>wmEXT01</ExternalUserID><State>x</State>")))
    assert contact == ExternalContactChange(sender="sys", create_time=1700000000,
                                            change_type="add_external_contact",
                                            user_id="wang", external_user_id="wmEXT01")


def test_standard_messages_and_app_events() -> None:
    text = parse_event(xml("wang", "<MsgType>text</MsgType><Content><![CDATA[ 帮助\u3000]]>"
                                   "</Content><MsgId>123</MsgId><AgentID>1000002</AgentID>"))
    assert text == TextMessage(sender="wang", create_time=1700000000, agent_id=1000002,
                               content=" 帮助\u3000", msg_id="123")
    assert isinstance(text, TextMessage) and text.text == "帮助"
    image = parse_event(xml("wang", "<MsgType>image</MsgType><PicUrl>http://x</PicUrl>"
                                    "<MsgId>124</MsgId>"))
    assert image == OtherMessage(sender="wang", create_time=1700000000, msg_type="image",
                                 msg_id="124")
    enter = parse_event(xml("wang", "<MsgType>event</MsgType><Event>enter_agent</Event>"
                                    "<EventKey></EventKey><AgentID>1</AgentID>"))
    assert isinstance(enter, AppEvent) and enter.event == "enter_agent" and enter.agent_id == 1


@pytest.mark.parametrize("document", [
    "not xml at all",
    "<html><body/></html>",
    "<xml><ToUserName>x</ToUserName></xml>",  # no MsgType / FromUserName
    xml("wang", "<MsgType>text</MsgType><Content>x</Content><MsgId>not-a-number</MsgId>"),
    '<!DOCTYPE xml [<!ENTITY a "b">]><xml><FromUserName>&a;</FromUserName></xml>',
])
def test_nonsense_is_malformed(document: str) -> None:
    with pytest.raises(MalformedCallbackError):
        parse_event(document)


def test_envelope_needs_encrypt() -> None:
    assert parse_envelope(b"<xml><ToUserName>c</ToUserName><AgentID>1</AgentID>"
                          b"<Encrypt>abc</Encrypt></xml>").encrypt == "abc"
    with pytest.raises(MalformedCallbackError):
        parse_envelope(b"<xml><Encrypt></Encrypt></xml>")
