"""Decrypted callback XML → our events, including the events wechatpy lacks."""

from __future__ import annotations

import pytest

from bot.events import (
    AppEvent,
    ExternalChatChange,
    ExternalContactChange,
    ImageMessage,
    KfMessage,
    KfNotice,
    LocationMessage,
    OtherMessage,
    TextMessage,
)
from bot.wecom.errors import MalformedCallbackError
from bot.wecom.models import kf_message_from_wire
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
    voice = parse_event(xml("wang", "<MsgType>voice</MsgType><MediaId>m</MediaId>"
                                    "<Format>amr</Format><MsgId>124</MsgId>"))
    assert voice == OtherMessage(sender="wang", create_time=1700000000, msg_type="voice",
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


# residents_console_votes.md §3.3: what a member's photo and location look like decrypted
IMAGE = ("<xml><ToUserName><![CDATA[wwcorp]]></ToUserName><FromUserName><![CDATA[wang]]>"
         "</FromUserName><CreateTime>1700000100</CreateTime><MsgType><![CDATA[image]]></MsgType>"
         "<PicUrl><![CDATA[https://wework.qpic.cn/x.jpg]]></PicUrl><MediaId><![CDATA[MEDIA_1]]>"
         "</MediaId><MsgId>5678901234567890123</MsgId><AgentID>1000002</AgentID></xml>")
LOCATION = ("<xml><ToUserName><![CDATA[wwcorp]]></ToUserName><FromUserName><![CDATA[wang]]>"
            "</FromUserName><CreateTime>1700000200</CreateTime>"
            "<MsgType><![CDATA[location]]></MsgType><Location_X>30.2741</Location_X>"
            "<Location_Y>120.1551</Location_Y><Scale>15</Scale>"
            "<Label><![CDATA[杭州市西湖区文三路]]></Label><MsgId>5678901234567890124</MsgId>"
            "<AgentID>1000002</AgentID><AppType><![CDATA[wxwork]]></AppType></xml>")
KF = ("<xml><ToUserName><![CDATA[wwcorp]]></ToUserName><CreateTime>1700000300</CreateTime>"
      "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[kf_msg_or_event]]></Event>"
      "<Token><![CDATA[ENCApHxnGDNAVNY4AaSJKj4Tb5mwsEMzxhFmHVGcra996NR]]></Token>"
      "<OpenKfId><![CDATA[wkxxxxxxx]]></OpenKfId></xml>")


def test_member_image_and_location() -> None:
    assert parse_event(IMAGE) == ImageMessage(
        sender="wang", create_time=1700000100, agent_id=1000002, media_id="MEDIA_1",
        pic_url="https://wework.qpic.cn/x.jpg", msg_id="5678901234567890123")
    location = parse_event(LOCATION)
    # Location_X is the latitude, Location_Y the longitude
    assert location == LocationMessage(
        sender="wang", create_time=1700000200, agent_id=1000002, latitude=30.2741,
        longitude=120.1551, scale=15, label="杭州市西湖区文三路", msg_id="5678901234567890124")
    assert location.dedupe_key == "msg:5678901234567890124"


@pytest.mark.parametrize("x, y", [("91", "120"), ("30", "181"), ("nan", "1"), ("north", "1")])
def test_location_out_of_range_is_malformed(x: str, y: str) -> None:
    bad = LOCATION.replace("30.2741", x).replace("120.1551", y)
    with pytest.raises(MalformedCallbackError):
        parse_event(bad)


def test_kf_callback_carries_only_token_and_account() -> None:
    notice = parse_event(KF)
    assert notice == KfNotice(sender="sys", create_time=1700000300,
                              token="ENCApHxnGDNAVNY4AaSJKj4Tb5mwsEMzxhFmHVGcra996NR",
                              open_kfid="wkxxxxxxx")
    # WeCom's three deliveries of one callback dedupe to one inbox entry
    assert parse_event(KF).dedupe_key == notice.dedupe_key
    other = parse_event(KF.replace("ENCApHx", "ENCBpHx"))
    assert other.dedupe_key != notice.dedupe_key
    for broken in (KF.replace("<Token><![CDATA[ENCApHxnGDNAVNY4AaSJKj4Tb5mwsEMzxhFmHVGcra996NR]]>"
                              "</Token>", ""),
                   KF.replace("wkxxxxxxx", "w" * 65)):
        with pytest.raises(MalformedCallbackError):
            parse_event(broken)


def test_kf_sync_msg_entries() -> None:
    text = kf_message_from_wire({
        "msgid": "from_msgid_4622416642169452483", "open_kfid": "wkAJ2GCAAASSm4_FhToWMFea0xAFfd3Q",
        "external_userid": "wmAJ2GCAAAme1XQRC-NI-q0_ZM9ukoAw", "send_time": 1615478585,
        "origin": 3, "msgtype": "text", "text": {"content": "楼道消防门坏了"}})
    assert text == KfMessage(sender="wmAJ2GCAAAme1XQRC-NI-q0_ZM9ukoAw", create_time=1615478585,
                             open_kfid="wkAJ2GCAAASSm4_FhToWMFea0xAFfd3Q",
                             msgid="from_msgid_4622416642169452483", origin=3, msgtype="text",
                             content="楼道消防门坏了")
    image = kf_message_from_wire({"msgid": "m2", "open_kfid": "wk", "external_userid": "wm",
                                  "send_time": 1, "origin": 3, "msgtype": "image",
                                  "image": {"media_id": "2iSLeVyqzk4eX0IB5kTi9Ljfa2rt9dwfq5"}})
    assert image.media_id == "2iSLeVyqzk4eX0IB5kTi9Ljfa2rt9dwfq5"
    place = kf_message_from_wire({"msgid": "m3", "open_kfid": "wk", "external_userid": "wm",
                                  "send_time": 1, "origin": 3, "msgtype": "location",
                                  "location": {"latitude": 23.106021881103516,
                                               "longitude": 113.32476806640625,
                                               "name": "广州国际媒体港",
                                               "address": "广州市海珠区"}})
    assert (place.latitude, place.longitude) == (23.106021881103516, 113.32476806640625)
    assert place.label == "广州国际媒体港 广州市海珠区"
    enter = kf_message_from_wire({"msgid": "m4", "send_time": 2, "origin": 4, "msgtype": "event",
                                  "event": {"event_type": "enter_session", "open_kfid": "wk",
                                            "external_userid": "wm", "scene": "n-3301",
                                            "scene_param": "abc", "welcome_code": "aaaaaa"}})
    assert (enter.sender, enter.open_kfid, enter.event_type, enter.scene, enter.welcome_code) == (
        "wm", "wk", "enter_session", "n-3301", "aaaaaa")
    fail = kf_message_from_wire({"msgid": "m5", "send_time": 3, "origin": 4, "msgtype": "event",
                                 "event": {"event_type": "msg_send_fail", "open_kfid": "wk",
                                           "external_userid": "wm", "fail_msgid": "ans-1",
                                           "fail_type": 4}})
    assert (fail.event_type, fail.fail_msgid, fail.fail_type) == ("msg_send_fail", "ans-1", 4)
