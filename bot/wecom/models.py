"""Typed results of the WeCom calls we make (frozen dataclasses; see docs/design.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a cursor-paged list; `next_cursor` is "" on the last page."""

    items: list[T]
    next_cursor: str = ""


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
