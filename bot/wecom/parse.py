"""Callback XML → bot.events types.

Every XML document (the envelope before the signature check, and the decrypted plaintext) is
first parsed with defusedxml with DTDs forbidden, so billion-laughs and external-entity
payloads are refused before anything else reads them. Standard messages and app events are then
read by wechatpy's message classes — what wechatpy.enterprise.parse_message does, minus its
second (xmltodict) parse of the same document; change_external_chat / change_external_contact,
which wechatpy lacks (wecom.md §3.1, §4.4), are mapped from the fields ourselves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypedDict
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from wechatpy.enterprise.events import EVENT_TYPES
from wechatpy.enterprise.messages import MESSAGE_TYPES
from wechatpy.messages import UnknownMessage

from bot.events import (
    AppEvent,
    Event,
    ExternalChatChange,
    ExternalContactChange,
    ImageMessage,
    KfNotice,
    LocationMessage,
    OtherMessage,
    TextMessage,
)
from bot.wecom.errors import MalformedCallbackError

Fields = dict[str, str]
VERBATIM = frozenset({"Content"})


@dataclass(frozen=True, slots=True)
class Envelope:
    """The outer POST body: who it is for and the ciphertext."""

    to_user: str
    agent_id: str
    encrypt: str


def xml_fields(document: str | bytes) -> Fields:
    """Top-level child elements of <xml> as {tag: text}; refuses DTDs, entities, non-XML."""
    try:
        root = fromstring(document, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (DefusedXmlException, ParseError, ValueError, UnicodeError):
        raise MalformedCallbackError("不是合法的 XML") from None
    if root.tag != "xml":
        raise MalformedCallbackError("XML 根元素不是 <xml>")
    return {child.tag: _text(child.tag, child.text) for child in root}


def _text(tag: str, text: str | None) -> str:
    # what a member typed is kept verbatim; identifiers and numbers lose stray white space
    return (text or "") if tag in VERBATIM else (text or "").strip()


def parse_envelope(body: bytes) -> Envelope:
    """The envelope of a callback POST; MalformedCallbackError when Encrypt is missing."""
    fields = xml_fields(body)
    encrypt = fields.get("Encrypt", "")
    if not encrypt:
        raise MalformedCallbackError("缺少 Encrypt")
    return Envelope(fields.get("ToUserName", ""), fields.get("AgentID", ""), encrypt)


def parse_event(plaintext: str) -> Event:
    """Our event for a decrypted callback; MalformedCallbackError when it makes no sense."""
    fields = xml_fields(plaintext)
    msg_type = fields.get("MsgType", "").lower()
    if msg_type == "event" and fields.get("Event", "").lower() == "kf_msg_or_event":
        return _kf_notice(fields)  # has no FromUserName: only Token and OpenKfId
    if not msg_type or not fields.get("FromUserName"):
        raise MalformedCallbackError("缺少 MsgType 或 FromUserName")
    if msg_type == "event":
        own = _OWN_EVENTS.get(fields.get("Event", "").lower())
        if own is not None:
            return own(fields)
    return _standard(fields)


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        return 0


def _float(value: str, name: str, limit: float) -> float:
    try:
        number = float(value)
    except ValueError:
        raise MalformedCallbackError(f"{name} 不是数字") from None
    if not -limit <= number <= limit:  # also refuses nan and inf
        raise MalformedCallbackError(f"{name} 超出范围")
    return number


MAX_TOKEN_BYTES = 128  # sync_msg's token (residents_console_votes.md §1.5)
MAX_OPEN_KFID_BYTES = 64  # kf/account/del (§1.2)


def _kf_notice(fields: Fields) -> Event:
    """kf_msg_or_event (§1.4): ToUserName is the CorpID, the content is pulled later."""
    token, open_kfid = fields.get("Token", ""), fields.get("OpenKfId", "")
    if not token or not open_kfid:
        raise MalformedCallbackError("kf_msg_or_event 缺少 Token 或 OpenKfId")
    if len(token.encode()) > MAX_TOKEN_BYTES or len(open_kfid.encode()) > MAX_OPEN_KFID_BYTES:
        raise MalformedCallbackError("kf_msg_or_event 的 Token 或 OpenKfId 过长")
    return KfNotice(sender="sys", create_time=_int(fields.get("CreateTime", "0")),
                    token=token, open_kfid=open_kfid)


class _Common(TypedDict):
    sender: str
    create_time: int
    agent_id: int


def _common(fields: Fields) -> _Common:
    return _Common(sender=fields.get("FromUserName", ""),
                   create_time=_int(fields.get("CreateTime", "0")),
                   agent_id=_int(fields.get("AgentID", "0")))


def _chat_change(fields: Fields) -> Event:
    return ExternalChatChange(
        **_common(fields),
        chat_id=fields.get("ChatId", ""), change_type=fields.get("ChangeType", ""),
        update_detail=fields.get("UpdateDetail", ""),
        join_scene=_int(fields.get("JoinScene", "0")),
        quit_scene=_int(fields.get("QuitScene", "0")),
        member_change_count=_int(fields.get("MemChangeCnt", "0")),
    )


def _contact_change(fields: Fields) -> Event:
    return ExternalContactChange(
        **_common(fields),
        change_type=fields.get("ChangeType", ""), user_id=fields.get("UserID", ""),
        external_user_id=fields.get("ExternalUserID", ""),
    )


_OWN_EVENTS: dict[str, Callable[[Fields], Event]] = {
    "change_external_chat": _chat_change,
    "change_external_contact": _contact_change,
}


def _wechatpy_message(fields: Fields) -> Any:
    """wechatpy's message object for the flat fields (parse_message's class lookup)."""
    msg_type = fields["MsgType"].lower()
    if msg_type == "event":
        return EVENT_TYPES.get(fields.get("Event", "").lower(), UnknownMessage)(dict(fields))
    return MESSAGE_TYPES.get(msg_type, UnknownMessage)(dict(fields))


def _standard(fields: Fields) -> Event:
    try:
        message = _wechatpy_message(fields)
        kind, number = str(message.type), message.id  # MsgId → int, ValueError if garbled
    except Exception:  # wechatpy raises KeyError/ValueError/… on odd input
        raise MalformedCallbackError("无法解析消息") from None
    common, msg_id = _common(fields), str(number) if number else ""
    if kind == "text":
        return TextMessage(**common, content=str(message.content or ""), msg_id=msg_id)
    if kind == "image":
        return ImageMessage(**common, media_id=fields.get("MediaId", ""),
                            pic_url=fields.get("PicUrl", ""), msg_id=msg_id)
    if kind == "location":  # Location_X is the latitude, Location_Y the longitude (§3.3)
        latitude = _float(fields.get("Location_X", ""), "Location_X", 90)
        longitude = _float(fields.get("Location_Y", ""), "Location_Y", 180)
        return LocationMessage(**common, latitude=latitude, longitude=longitude,
                               scale=_int(fields.get("Scale", "0")),
                               label=fields.get("Label", ""), msg_id=msg_id)
    if kind == "event":
        return AppEvent(**common, event=fields.get("Event", ""),
                        event_key=fields.get("EventKey", ""), raw=fields)
    return OtherMessage(**common, msg_type=kind, msg_id=msg_id)
