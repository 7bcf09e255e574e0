"""gettoken, app messages (message/send), app chats (appchat/send) and robots (webhook/send)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.wecom.simulator import errors, params
from bot.wecom.simulator.errors import SimError, ok
from bot.wecom.simulator.params import Body
from bot.wecom.simulator.state import SimState

TEXT_MAX = 2048  # message/send, appchat/send, webhook text (wecom.md §5)
WEBHOOK_MARKDOWN_MAX = 4096
DUPLICATE_INTERVAL_DEFAULT, DUPLICATE_INTERVAL_MAX = 1800, 4 * 3600


def gettoken(state: SimState, body: Body, query: Mapping[str, str]) -> dict[str, Any]:
    token, expires_in = state.tokens.issue(
        query.get("corpid", ""), query.get("corpsecret", ""), state.now()
    )
    return ok(access_token=token, expires_in=expires_in)


def message_send(state: SimState, body: Body, query: Mapping[str, str]) -> dict[str, Any]:
    _check_agent(state, body)
    msgtype, content = params.content(body, ("text", "markdown"))
    if msgtype == "text":
        content = params.truncate_utf8(content, TEXT_MAX)  # documented: 超过将截断
    elif params.utf8_len(content) > TEXT_MAX:
        raise SimError(errors.CONTENT_TOO_LONG)
    valid, invalid = _recipients(state, str(body.get("touser") or ""))
    if not valid:
        raise SimError(errors.ALL_RECIPIENTS_INVALID)
    interval = _duplicate_interval(body)
    msgid = state.new_id("am")
    for userid in valid:
        _deliver_app_message(state, userid, msgtype, content, msgid, interval)
    return ok(
        invaliduser="|".join(invalid),
        invalidparty="",
        invalidtag="",
        unlicenseduser="",
        msgid=msgid,
    )


def _check_agent(state: SimState, body: Body) -> None:
    agent = body.get("agentid")
    if agent in (None, ""):
        raise SimError(errors.MISSING_AGENTID)
    if str(agent) != str(state.config.agent_id):
        raise SimError(errors.INVALID_AGENTID)


def _recipients(state: SimState, touser: str) -> tuple[list[str], list[str]]:
    users = state.directory.users
    if touser == "@all":
        return list(users), []
    named = list(dict.fromkeys(u for u in touser.split("|") if u))
    return [u for u in named if u in users], [u for u in named if u not in users]


def _duplicate_interval(body: Body) -> float:
    if not body.get("enable_duplicate_check"):
        return 0.0
    return float(
        params.integer(
            body, "duplicate_check_interval", DUPLICATE_INTERVAL_DEFAULT, 0, DUPLICATE_INTERVAL_MAX
        )
    )


def _deliver_app_message(
    state: SimState, userid: str, msgtype: str, content: str, msgid: str, interval: float
) -> None:
    now = state.now()
    key = (userid, msgtype, content)
    if interval:
        last = state.recent_app_messages.get(key)
        if last is not None and now - last < interval:
            state.drop("app_message", userid, content, "duplicate", msgid)
            return
    if not state.member_limit.admit(userid, now):
        # WeCom drops over-limit app messages silently; the API still answers ok
        state.drop("app_message", userid, content, "member_rate", msgid)
        return
    state.recent_app_messages[key] = now
    state.deliver("app_message", userid, content, msgid, msgtype)
    state.owners.app_message(userid, now)


def appchat_send(state: SimState, body: Body, query: Mapping[str, str]) -> dict[str, Any]:
    chat = state.groups.appchats.get(str(body.get("chatid") or ""))
    if chat is None:
        raise SimError(errors.APPCHAT_NOT_FOUND)
    msgtype, content = params.content(body, ("text", "markdown"))
    if params.utf8_len(content) > TEXT_MAX:
        raise SimError(errors.CONTENT_TOO_LONG)
    if not state.appchat_limit.admit("corp", state.now(), max(1, len(chat.members))):
        raise SimError(errors.FREQ_LIMIT, "api freq out of limit, appchat person-times")
    state.deliver("appchat", chat.chat_id, content, "", msgtype)
    return ok()


def webhook_send(state: SimState, body: Body, query: Mapping[str, str]) -> dict[str, Any]:
    key = query.get("key", "")
    chat_id = state.groups.robots.get(key)
    if chat_id is None:
        raise SimError(errors.INVALID_WEBHOOK_KEY)
    msgtype, content = params.content(body, ("text", "markdown", "markdown_v2"))
    limit = TEXT_MAX if msgtype == "text" else WEBHOOK_MARKDOWN_MAX
    if params.utf8_len(content) > limit:
        raise SimError(errors.INVALID_PARAMETER, f"{msgtype}.content exceed max length {limit}")
    if not state.robot_limit.admit(key, state.now()):
        raise SimError(errors.FREQ_LIMIT)
    state.deliver("webhook", chat_id, content, key, msgtype)
    return ok()
