"""Typed results of the WeCom calls we make (frozen dataclasses; see docs/design.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from bot.events import KfMessage

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a cursor-paged list; `next_cursor` is "" on the last page."""

    items: list[T]
    next_cursor: str = ""


@dataclass(frozen=True, slots=True)
class AuthUser:
    """Who a login code belongs to (auth/getuserinfo): a member's userid, or for someone
    outside the corp (is_member False) their openid, which the console refuses."""

    userid: str
    is_member: bool


@dataclass(frozen=True, slots=True)
class Attachment:
    """An attachment of a customer-group mass send (only image and link are used)."""

    kind: Literal["image", "link"]
    title: str = ""
    url: str = ""
    pic_url: str = ""
    desc: str = ""
    media_id: str = ""

    def to_wire(self) -> dict[str, Any]:
        """The attachment as add_msg_template expects it."""
        if self.kind == "image":
            image = {"media_id": self.media_id} if self.media_id else {"pic_url": self.pic_url}
            return {"msgtype": "image", "image": image}
        link = {"title": self.title, "url": self.url, "picurl": self.pic_url, "desc": self.desc}
        return {"msgtype": "link", "link": {k: v for k, v in link.items() if v}}


@dataclass(frozen=True, slots=True)
class MsgTemplateResult:
    """add_msg_template: the task's msgid and the chat ids WeCom refused."""

    msgid: str
    fail_list: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class GroupMsgSummary:
    """One mass send from get_groupmsg_list_v2."""

    msgid: str
    creator: str
    create_type: int
    text: str
    create_time: int


@dataclass(frozen=True, slots=True)
class GroupMsgTask:
    """Whether one owner confirmed a task: status 0 未发送, 2 已发送."""

    userid: str
    status: int
    send_time: int = 0


@dataclass(frozen=True, slots=True)
class GroupMsgSendResult:
    """Per group: 0 未发送, 1 已发送, 2 非好友/不在群, 3 已收到其他群发/quota."""

    chat_id: str
    userid: str
    status: int
    send_time: int = 0


@dataclass(frozen=True, slots=True)
class GroupChatRef:
    """A customer group from groupchat/list (status 0 normal, 1–3 handover states)."""

    chat_id: str
    status: int = 0


@dataclass(frozen=True, slots=True)
class GroupChatInfo:
    """groupchat/get, reduced to what the registry keeps."""

    chat_id: str
    name: str
    owner: str
    create_time: int = 0
    notice: str = ""
    member_count: int = 0


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def summary_from_wire(raw: Mapping[str, Any]) -> GroupMsgSummary:
    """GroupMsgSummary from one entry of group_msg_list."""
    text = raw.get("text") or {}
    return GroupMsgSummary(
        msgid=str(raw.get("msgid", "")), creator=str(raw.get("creator", "")),
        create_type=_int(raw.get("create_type")), text=str(text.get("content", "")),
        create_time=_int(raw.get("create_time")),
    )


def task_from_wire(raw: Mapping[str, Any]) -> GroupMsgTask:
    """GroupMsgTask from one entry of task_list."""
    return GroupMsgTask(str(raw.get("userid", "")), _int(raw.get("status")),
                        _int(raw.get("send_time")))


def send_result_from_wire(raw: Mapping[str, Any]) -> GroupMsgSendResult:
    """GroupMsgSendResult from one entry of send_list."""
    return GroupMsgSendResult(str(raw.get("chat_id", "")), str(raw.get("userid", "")),
                              _int(raw.get("status")), _int(raw.get("send_time")))


def chat_ref_from_wire(raw: Mapping[str, Any]) -> GroupChatRef:
    """GroupChatRef from one entry of group_chat_list."""
    return GroupChatRef(str(raw.get("chat_id", "")), _int(raw.get("status")))


def chat_info_from_wire(raw: Mapping[str, Any]) -> GroupChatInfo:
    """GroupChatInfo from groupchat/get's group_chat object."""
    members = raw.get("member_list") or []
    return GroupChatInfo(
        chat_id=str(raw.get("chat_id", "")), name=str(raw.get("name", "")),
        owner=str(raw.get("owner", "")), create_time=_int(raw.get("create_time")),
        notice=str(raw.get("notice", "")),
        member_count=_int(raw.get("member_count")) or len(members),
    )


@dataclass(frozen=True, slots=True)
class KfAccount:
    """A 微信客服 account from kf/account/list; `manage_privilege`: this app may use it."""

    open_kfid: str
    name: str
    avatar: str = ""
    manage_privilege: bool = False


@dataclass(frozen=True, slots=True)
class KfPage:
    """One kf/sync_msg page. `items` may be empty while `has_more` is True (§1.6): keep
    pulling with `next_cursor`, and store it only after the items were handled."""

    items: list[KfMessage]
    next_cursor: str = ""
    has_more: bool = False


def kf_account_from_wire(raw: Mapping[str, Any]) -> KfAccount:
    """KfAccount from one entry of account_list."""
    return KfAccount(str(raw.get("open_kfid", "")), str(raw.get("name", "")),
                     str(raw.get("avatar", "")), bool(raw.get("manage_privilege")))


def _float(value: Any) -> float:
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0


def _location_label(location: Mapping[str, Any]) -> str:
    parts = (str(location.get("name") or ""), str(location.get("address") or ""))
    return " ".join(p for p in parts if p)


def kf_message_from_wire(raw: Mapping[str, Any]) -> KfMessage:
    """KfMessage from one entry of sync_msg's msg_list (events keep their ids inside
    `event`, §1.6)."""
    msgtype = str(raw.get("msgtype", ""))
    event: Mapping[str, Any] = raw.get("event") or {}
    location: Mapping[str, Any] = raw.get("location") or {}
    media: Mapping[str, Any] = (raw.get(msgtype) or {}) if msgtype in MEDIA_TYPES else {}
    return KfMessage(
        sender=str(raw.get("external_userid") or event.get("external_userid") or ""),
        create_time=_int(raw.get("send_time")),
        open_kfid=str(raw.get("open_kfid") or event.get("open_kfid") or ""),
        msgid=str(raw.get("msgid", "")), origin=_int(raw.get("origin")), msgtype=msgtype,
        content=str((raw.get("text") or {}).get("content", "")),
        media_id=str(media.get("media_id", "")),
        latitude=_float(location.get("latitude")), longitude=_float(location.get("longitude")),
        label=_location_label(location),
        event_type=str(event.get("event_type", "")), scene=str(event.get("scene", "")),
        welcome_code=str(event.get("welcome_code", "")),
        fail_msgid=str(event.get("fail_msgid", "")), fail_type=_int(event.get("fail_type")),
    )


MEDIA_TYPES = frozenset({"image", "voice", "video", "file"})
