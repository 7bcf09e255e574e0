"""Customer-group listing: externalcontact/groupchat/list and groupchat/get."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from bot.wecom.simulator import errors, params
from bot.wecom.simulator.errors import SimError, ok
from bot.wecom.simulator.groups import CustomerGroup
from bot.wecom.simulator.params import Body
from bot.wecom.simulator.state import SimState

OWNER_FILTER_MAX = 100


def groupchat_list(state: SimState, body: Body, query: Mapping[str, str]) -> dict[str, Any]:
    limit = params.integer(body, "limit", -1, 1, 1000)
    status = params.integer(body, "status_filter", 0, 0, 3)
    owners = _owner_filter(body)
    visible, ceiling = (
        len(state.directory.users),
        state.config.groupchat_list_unfiltered_max_members,
    )
    if not owners and ceiling and visible > ceiling:
        raise SimError(errors.TOO_MANY_MEMBERS_VISIBLE)
    offset = params.cursor(body)
    ids = state.groups.listing(owners, status)
    page = ids[offset : offset + limit]
    chats = [{"chat_id": c, "status": state.groups.customer[c].status} for c in page]
    more = offset + limit < len(ids)
    return ok(group_chat_list=chats, next_cursor=params.next_cursor(offset + limit, more))


def _owner_filter(body: Body) -> list[str]:
    raw = body.get("owner_filter") or {}
    users = raw.get("userid_list", []) if isinstance(raw, Mapping) else None
    if not isinstance(users, list) or not all(isinstance(u, str) for u in users):
        raise SimError(errors.INVALID_PARAMETER, "invalid owner_filter")
    if len(users) > OWNER_FILTER_MAX:
        raise SimError(errors.INVALID_PARAMETER, "owner_filter.userid_list exceed max size 100")
    return users


def groupchat_get(state: SimState, body: Body, query: Mapping[str, str]) -> dict[str, Any]:
    group = state.groups.get(params.string(body, "chat_id"))
    if group is None:
        raise SimError(errors.CHAT_NOT_FOUND)
    need_name = bool(body.get("need_name"))
    owner_name = state.directory.users.get(group.owner, "")
    info = {
        "chat_id": group.chat_id,
        "name": group.name,
        "owner": group.owner,
        "create_time": group.create_time,
        "notice": group.notice,
        "member_list": _members(group, owner_name, need_name),
        "admin_list": [{"userid": a} for a in group.admins],
        "member_version": hashlib.md5(
            f"{group.chat_id}:{group.member_count}".encode()
        ).hexdigest(),
    }
    return ok(group_chat=info)


def _members(group: CustomerGroup, owner_name: str, need_name: bool) -> list[dict[str, Any]]:
    """The owner, then residents with stable made-up external userids."""
    stem = hashlib.md5(group.chat_id.encode()).hexdigest()[:16]
    owner = {
        "userid": group.owner,
        "type": 1,
        "join_time": group.create_time,
        "join_scene": 1,
        "invitor": {"userid": group.owner},
        "group_nickname": "",
    }
    if need_name:
        owner["name"] = owner_name
    members = [owner]
    for i in range(1, max(1, group.member_count)):
        member: dict[str, Any] = {
            "userid": f"wm{stem}{i:06d}",
            "type": 2,
            "unionid": "",
            "join_time": group.create_time,
            "join_scene": 3,
            "group_nickname": "",
        }
        if need_name:
            member["name"] = f"居民{i}"
        members.append(member)
    return members
