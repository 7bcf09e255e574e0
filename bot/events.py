"""Our own typed events. Handlers see these, never WeCom's XML or wechatpy's classes.

bot/wecom/parse.py turns a decrypted callback into one of these; `to_dict`/`from_dict`
carry them through the durable inbox stream as JSON.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class Event:
    """Common fields of everything WeCom tells the bot."""

    kind: ClassVar[str] = "event"
    sender: str  # WeCom userid (FromUserName); "sys" for system events
    create_time: int
    agent_id: int = 0

    @property
    def dedupe_key(self) -> str:
        """Key for WeCom's retries: MsgId for messages, sender+time+event for events."""
        return f"{self.kind}:{self.sender}:{self.create_time}"

    def to_json(self) -> str:
        """Serialise for the inbox stream."""
        return json.dumps({"kind": self.kind, **dataclasses.asdict(self)}, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class TextMessage(Event):
    """A member typed text to the app (app chat, 1:1 with the bot)."""

    kind: ClassVar[str] = "text"
    content: str = ""
    msg_id: str = ""

    @property
    def dedupe_key(self) -> str:
        return f"msg:{self.msg_id}" if self.msg_id else f"text:{self.sender}:{self.create_time}"

    @property
    def text(self) -> str:
        """Content with surrounding white space (incl. full-width) removed."""
        return self.content.strip().strip("\u3000")


@dataclass(frozen=True, slots=True)
class OtherMessage(Event):
    """A non-text message (image, voice, location …) the bot does not read."""

    kind: ClassVar[str] = "other"
    msg_type: str = ""
    msg_id: str = ""

    @property
    def dedupe_key(self) -> str:
        return f"msg:{self.msg_id}" if self.msg_id else f"other:{self.sender}:{self.create_time}"


@dataclass(frozen=True, slots=True)
class ImageMessage(Event):
    """A member sent a photo to the app; `media_id` downloads it with media/get (3 days)."""

    kind: ClassVar[str] = "image"
    media_id: str = ""
    pic_url: str = ""
    msg_id: str = ""

    @property
    def dedupe_key(self) -> str:
        return f"msg:{self.msg_id}" if self.msg_id else f"image:{self.sender}:{self.create_time}"


@dataclass(frozen=True, slots=True)
class LocationMessage(Event):
    """A member sent a location to the app (WeCom's Location_X is the latitude)."""

    kind: ClassVar[str] = "location"
    latitude: float = 0.0
    longitude: float = 0.0
    scale: int = 0
    label: str = ""
    msg_id: str = ""

    @property
    def dedupe_key(self) -> str:
        return (f"msg:{self.msg_id}" if self.msg_id
                else f"location:{self.sender}:{self.create_time}")


@dataclass(frozen=True, slots=True)
class KfNotice(Event):
    """kf_msg_or_event: 微信客服 has new messages for `open_kfid`; they are pulled with
    kf/sync_msg and `token` (valid 10 min). Carries nothing about the resident, so it may
    sit in the inbox stream in clear; bot.kf turns it into KfMessage events."""

    kind: ClassVar[str] = "kf_msg_or_event"
    token: str = ""
    open_kfid: str = ""
    attempt: int = 0  # > 0: bot.kf put it back after WeCom failed to answer sync_msg

    @property
    def dedupe_key(self) -> str:
        # WeCom's retries of one callback carry the same Token; two callbacks never do. Only a
        # digest of it: dedupe keys end up in logs and the handled log
        tag = hashlib.sha256(self.token.encode()).hexdigest()[:20] if self.token else ""
        key = f"{self.kind}:{self.open_kfid}:{tag or self.create_time}"
        return f"{key}:retry{self.attempt}" if self.attempt else key


@dataclass(frozen=True, slots=True)
class KfMessage(Event):
    """One message or event pulled by kf/sync_msg; `sender` is the resident's external_userid.

    Never put into a stream or stored in clear: bot.kf dispatches it straight from the page
    it read. origin 3 = the resident, 4 = a system event, 5 = a servicer in the WeCom client.
    """

    kind: ClassVar[str] = "kf"
    open_kfid: str = ""
    msgid: str = ""
    origin: int = 3
    msgtype: str = ""  # "text" | "image" | "location" | "event" | other WeCom types
    content: str = ""
    media_id: str = ""
    latitude: float = 0.0
    longitude: float = 0.0
    label: str = ""
    event_type: str = ""  # "enter_session" | "msg_send_fail" | … when msgtype == "event"
    scene: str = ""  # enter_session: the scene given to add_contact_way (a node code)
    welcome_code: str = ""  # enter_session: usable once within 20 s by kf_send_on_event
    fail_msgid: str = ""  # msg_send_fail: the msgid of our send_msg that failed
    fail_type: int = 0  # msg_send_fail: 4 session expired, 6 over 5 messages, 10 refused …

    @property
    def dedupe_key(self) -> str:
        return f"kf:{self.msgid}"

    @property
    def text(self) -> str:
        """Content with surrounding white space (incl. full-width) removed."""
        return self.content.strip().strip("\u3000")


@dataclass(frozen=True, slots=True)
class ExternalChatChange(Event):
    """change_external_chat: a customer (resident) group was created, updated or dismissed."""

    kind: ClassVar[str] = "change_external_chat"
    chat_id: str = ""
    change_type: str = ""  # create | update | dismiss
    update_detail: str = ""  # add_member | del_member | change_owner | change_name | change_notice
    join_scene: int = 0
    quit_scene: int = 0
    member_change_count: int = 0

    @property
    def dedupe_key(self) -> str:
        return (
            f"{self.kind}:{self.sender}:{self.create_time}:{self.chat_id}:"
            f"{self.change_type}:{self.update_detail}"
        )


@dataclass(frozen=True, slots=True)
class ExternalContactChange(Event):
    """change_external_contact: a resident added or removed a grid worker as contact."""

    kind: ClassVar[str] = "change_external_contact"
    change_type: str = ""
    user_id: str = ""
    external_user_id: str = ""

    @property
    def dedupe_key(self) -> str:
        parts = (self.kind, self.sender, self.create_time, self.change_type, self.external_user_id)
        return ":".join(map(str, parts))


@dataclass(frozen=True, slots=True)
class AppEvent(Event):
    """Any other app event (enter_agent, click …), kept for logging."""

    kind: ClassVar[str] = "app_event"
    event: str = ""
    event_key: str = ""
    raw: dict[str, str] = field(default_factory=dict)

    @property
    def dedupe_key(self) -> str:
        return f"{self.kind}:{self.sender}:{self.create_time}:{self.event}"


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (TextMessage, ImageMessage, LocationMessage, OtherMessage, ExternalChatChange,
                ExternalContactChange, AppEvent, KfNotice, KfMessage)
}


def event_from_json(data: str) -> Event:
    """Inverse of Event.to_json."""
    payload: dict[str, Any] = json.loads(data)
    cls = EVENT_TYPES[payload.pop("kind")]
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in payload.items() if k in names})
