"""Plaintext callback bodies, field for field as WeCom documents them (doc 90240, 96361)."""

from __future__ import annotations

from collections.abc import Sequence

from bot.wecom.simulator.callbacks import Raw, cdata, xml_message


def text_message(
    corp_id: str, agent_id: int, from_user: str, content: str, msg_id: str, at: int
) -> str:
    return xml_message(
        [
            ("ToUserName", corp_id),
            ("FromUserName", from_user),
            ("CreateTime", at),
            ("MsgType", "text"),
            ("Content", content),
            ("MsgId", msg_id),
            ("AgentID", agent_id),
        ]
    )


def chat_event(
    corp_id: str,
    chat_id: str,
    change_type: str,
    update_detail: str,
    at: int,
    *,
    join_scene: int = 0,
    quit_scene: int = 0,
    mem_change_cnt: int = 0,
    mem_change_list: Sequence[str] = (),
    last_mem_ver: str = "",
    cur_mem_ver: str = "",
) -> str:
    """change_external_chat; the update-only fields appear only on updates."""
    fields: list[tuple[str, str | int]] = [
        ("ToUserName", corp_id),
        ("FromUserName", "sys"),
        ("CreateTime", at),
        ("MsgType", "event"),
        ("Event", "change_external_chat"),
        ("ChatId", chat_id),
        ("ChangeType", change_type),
    ]
    if change_type == "update":
        fields.append(("UpdateDetail", update_detail))
        if update_detail in ("add_member", "del_member"):
            items = "".join(f"<Item>{cdata(m)}</Item>" for m in mem_change_list)
            fields += [
                ("JoinScene", join_scene),
                ("QuitScene", quit_scene),
                ("MemChangeCnt", mem_change_cnt),
                ("MemChangeList", Raw(items)),
                ("LastMemVer", last_mem_ver),
                ("CurMemVer", cur_mem_ver),
            ]
    return xml_message(fields)


def contact_event(
    corp_id: str,
    user_id: str,
    external_user_id: str,
    change_type: str,
    at: int,
    *,
    state: str = "",
    welcome_code: str = "",
) -> str:
    """change_external_contact (add_external_contact, del_external_contact, …)."""
    fields: list[tuple[str, str | int]] = [
        ("ToUserName", corp_id),
        ("FromUserName", "sys"),
        ("CreateTime", at),
        ("MsgType", "event"),
        ("Event", "change_external_contact"),
        ("ChangeType", change_type),
        ("UserID", user_id),
        ("ExternalUserID", external_user_id),
    ]
    if state:
        fields.append(("State", state))
    if welcome_code:
        fields.append(("WelcomeCode", welcome_code))
    return xml_message(fields)


def image_message(
    corp_id: str, agent_id: int, from_user: str, media_id: str, pic_url: str, msg_id: str,
    at: int,
) -> str:
    """A member's photo to the app (residents_console_votes.md §3.3)."""
    return xml_message(
        [
            ("ToUserName", corp_id),
            ("FromUserName", from_user),
            ("CreateTime", at),
            ("MsgType", "image"),
            ("PicUrl", pic_url),
            ("MediaId", media_id),
            ("MsgId", msg_id),
            ("AgentID", agent_id),
        ]
    )


def location_message(
    corp_id: str, agent_id: int, from_user: str, latitude: float, longitude: float,
    scale: int, label: str, msg_id: str, at: int,
) -> str:
    """A member's location to the app: Location_X is the latitude (§3.3)."""
    return xml_message(
        [
            ("ToUserName", corp_id),
            ("FromUserName", from_user),
            ("CreateTime", at),
            ("MsgType", "location"),
            ("Location_X", Raw(f"{latitude:.6f}")),
            ("Location_Y", Raw(f"{longitude:.6f}")),
            ("Scale", scale),
            ("Label", label),
            ("MsgId", msg_id),
            ("AgentID", agent_id),
            ("AppType", "wxwork"),
        ]
    )


def kf_event(corp_id: str, token: str, open_kfid: str, at: int) -> str:
    """kf_msg_or_event: only the Token and the account; content is pulled (§1.4)."""
    return xml_message(
        [
            ("ToUserName", corp_id),
            ("CreateTime", at),
            ("MsgType", "event"),
            ("Event", "kf_msg_or_event"),
            ("Token", token),
            ("OpenKfId", open_kfid),
        ]
    )
