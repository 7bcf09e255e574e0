"""/cgi-bin/kf/*: account/list, add_contact_way, sync_msg, send_msg, send_msg_on_event,
service_state/get and service_state/trans, with the rules of bot.wecom.simulator.kf."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.wecom.simulator import errors, params
from bot.wecom.simulator.errors import SimError, ok
from bot.wecom.simulator.kf import (
    MAX_PER_WINDOW,
    POOL_CODE_TTL,
    STATE_BOT,
    STATE_ENDED,
    STATE_HUMAN,
    STATE_NEW,
    STATE_POOL,
    TEXT_MAX,
    WELCOME_TTL,
    WINDOW,
    Outgoing,
    Session,
)
from bot.wecom.simulator.params import Body
from bot.wecom.simulator.state import SimState

SYNC_LIMIT_MAX = 1000
CURSOR_PREFIX = "kc"


def account_list(state: SimState, body: Body, query: Mapping[str, str]) -> dict[str, Any]:
    offset = params.integer(body, "offset", 0, 0, 10**9)
    limit = params.integer(body, "limit", 100, 1, 100)
    accounts = list(state.kf.accounts.values())[offset:offset + limit]
    return ok(account_list=[{"open_kfid": a.open_kfid, "name": a.name, "avatar": a.avatar,
                             "manage_privilege": a.manage_privilege} for a in accounts])


def add_contact_way(state: SimState, body: Body, query: Mapping[str, str]) -> dict[str, Any]:
    open_kfid = params.string(body, "open_kfid", errors.KF_INVALID_OPEN_KFID)
    scene = body.get("scene") or ""
    if not isinstance(scene, str):
        raise SimError(errors.INVALID_PARAMETER, "invalid scene")
    return ok(url=state.kf.add_link(open_kfid, scene))


def sync_msg(state: SimState, body: Body, query: Mapping[str, str]) -> dict[str, Any]:
    now, kf = state.now(), state.kf
    token = body.get("token") or ""
    if not isinstance(token, str) or len(token.encode()) > 128:
        raise SimError(errors.KF_INVALID_MSG_TOKEN)
    if token:
        kf.check_token(token, now)
    elif not state.kf_untokened.admit("kf/sync_msg", now):
        raise SimError(errors.FREQ_LIMIT)  # without a token the API is strictly limited
    limit = params.integer(body, "limit", SYNC_LIMIT_MAX, 1, SYNC_LIMIT_MAX)
    open_kfid = body.get("open_kfid") or ""
    if open_kfid:
        kf.account(str(open_kfid))
    found, position, more = kf.page(_cursor(body), limit, str(open_kfid), now)
    return ok(next_cursor=f"{CURSOR_PREFIX}{position}", has_more=int(more), msg_list=found)


def _cursor(body: Body) -> int:
    raw = body.get("cursor") or ""
    if not raw:
        return 0
    if (not isinstance(raw, str) or len(raw) > 64 or not raw.startswith(CURSOR_PREFIX)
            or not raw[len(CURSOR_PREFIX):].isdigit()):
        raise SimError(errors.INVALID_PARAMETER, "invalid cursor")
    return int(raw[len(CURSOR_PREFIX):])


def send_msg(state: SimState, body: Body, query: Mapping[str, str]) -> dict[str, Any]:
    now, kf = state.now(), state.kf
    open_kfid = params.string(body, "open_kfid", errors.KF_INVALID_OPEN_KFID)
    kf.account(open_kfid)
    touser = params.string(body, "touser")
    msgtype, content = _content(body, ("text", "image", "location"))
    session = kf.sessions.get((open_kfid, touser))
    _check_window(session, now)
    assert session is not None  # _check_window refused a missing session
    msgid = _msgid(state, body, open_kfid)
    session.sent_in_window += 1
    session.messaged_at = now
    _record(state, session, msgid, msgtype, content, "send_msg")
    return ok(msgid=msgid)


def _check_window(session: Session | None, now: float) -> None:
    """The rules of §1.7 in the order WeCom names them."""
    if session is None or session.last_user_msg is None:
        raise SimError(errors.KF_STATE_FORBIDS_SEND)  # entered only, or never: state 4
    if now - session.last_user_msg > WINDOW:
        raise SimError(errors.KF_SEND_TIME_LIMIT)
    if session.effective_state(now) not in (STATE_NEW, STATE_BOT):
        raise SimError(errors.KF_STATE_FORBIDS_SEND)
    if session.sent_in_window >= MAX_PER_WINDOW:
        raise SimError(errors.KF_SEND_COUNT_LIMIT)


def send_msg_on_event(state: SimState, body: Body, query: Mapping[str, str]
                      ) -> dict[str, Any]:
    now, kf = state.now(), state.kf
    code_text = params.string(body, "code")
    msgtype, content = _content(body, ("text", "msgmenu"))
    code = kf.take_code(code_text, now)
    session = kf.session(code.open_kfid, code.external_userid)
    # only the welcome code outlives a state change (§1.8)
    if code.kind != "welcome" and session.effective_state(now) != code.state:
        raise SimError(errors.KF_STATE_FORBIDS_SEND, "code no longer valid in this state")
    msgid = _msgid(state, body, code.open_kfid)
    if code.kind == "welcome":
        session.last_welcome = now
    _record(state, session, msgid, msgtype, content, "send_msg_on_event")
    return ok(msgid=msgid)


def service_state_get(state: SimState, body: Body, query: Mapping[str, str]
                      ) -> dict[str, Any]:
    session = _session(state, body)
    current = session.effective_state(state.now())
    extra = {"servicer_userid": session.servicer} if current == STATE_HUMAN else {}
    return ok(service_state=current, **extra)


# allowed API transitions (§1.9); state 4 cannot be changed by the API
_TRANSITIONS = {
    STATE_NEW: {STATE_BOT, STATE_POOL, STATE_HUMAN, STATE_ENDED},
    STATE_BOT: {STATE_POOL, STATE_HUMAN, STATE_ENDED},
    STATE_POOL: {STATE_HUMAN, STATE_ENDED},
    STATE_HUMAN: {STATE_HUMAN, STATE_ENDED},
}


def service_state_trans(state: SimState, body: Body, query: Mapping[str, str]
                        ) -> dict[str, Any]:
    now = state.now()
    session = _session(state, body)
    target = params.integer(body, "service_state", -1, 0, 4)
    current = session.effective_state(now)
    if target not in _TRANSITIONS.get(current, set()):
        raise SimError(errors.KF_BAD_TRANSITION)
    servicer = body.get("servicer_userid") or ""
    if target == STATE_HUMAN and (not isinstance(servicer, str)
                                  or servicer not in state.directory.users):
        raise SimError(errors.KF_NOT_SERVICER)
    session.state, session.servicer = target, servicer if target == STATE_HUMAN else ""
    if target == STATE_POOL:
        return ok(msg_code=state.kf.new_code(session, "pool", POOL_CODE_TTL, now))
    if target == STATE_ENDED:
        return ok(msg_code=state.kf.new_code(session, "end", WELCOME_TTL, now))
    return ok()


def _session(state: SimState, body: Body) -> Session:
    open_kfid = params.string(body, "open_kfid", errors.KF_INVALID_OPEN_KFID)
    state.kf.account(open_kfid)
    external = params.string(body, "external_userid")
    return state.kf.session(open_kfid, external)


def _content(body: Body, allowed: tuple[str, ...]) -> tuple[str, str]:
    msgtype = body.get("msgtype")
    if msgtype not in allowed:
        raise SimError(errors.INVALID_MSGTYPE)
    part = body.get(msgtype)
    if not isinstance(part, Mapping):
        raise SimError(errors.INVALID_PARAMETER, f"{msgtype} missing")
    if msgtype == "text":
        text = part.get("content")
        if not isinstance(text, str) or not text:
            raise SimError(errors.EMPTY_CONTENT)
        if params.utf8_len(text) > TEXT_MAX:
            raise SimError(errors.CONTENT_TOO_LONG)
        return msgtype, text
    if msgtype == "image":
        return msgtype, params.string(part, "media_id", errors.MISSING_MEDIA_ID)
    if msgtype == "location":
        return msgtype, f"{part.get('latitude')},{part.get('longitude')} {part.get('name', '')}"
    return msgtype, str(part.get("head_content", ""))


def _msgid(state: SimState, body: Body, open_kfid: str) -> str:
    given = body.get("msgid")
    msgid = given if isinstance(given, str) and given else state.new_id("kfm")
    state.kf.use_msgid(open_kfid, msgid)
    return msgid


def _record(state: SimState, session: Session, msgid: str, msgtype: str, content: str,
            via: str) -> None:
    now = state.now()
    sent = Outgoing(session.open_kfid, session.external_userid, msgid, msgtype, content, now,
                    via)
    state.kf.sent.append(sent)
    # the app's own message takes a log position but sync_msg never returns it (§1.5)
    state.kf.append(session.open_kfid, now, {"msgid": msgid, "origin": 0}, visible=False)
    if state.kf.on_sent is not None:
        state.kf.on_sent(sent)
