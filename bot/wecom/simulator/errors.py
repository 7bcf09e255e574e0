"""WeCom errcodes the simulator answers, with errmsg text shaped like WeCom's (wecom.md §2.3)."""

from __future__ import annotations

from typing import Any

SYSTEM_BUSY = -1
INVALID_SECRET = 40001
INVALID_USERID = 40003
INVALID_MSGTYPE = 40008
INVALID_CORPID = 40013
INVALID_TOKEN = 40014
CHAT_NOT_FOUND = 40050
INVALID_AGENTID = 40056
INVALID_PARAMETER = 40058
MISSING_TOKEN = 41001
MISSING_CORPID = 41002
MISSING_SECRET = 41004
MISSING_USERID = 41009
MISSING_AGENTID = 41011
TOKEN_EXPIRED = 42001
EMPTY_CONTENT = 44004
CONTENT_TOO_LONG = 45002
FREQ_LIMIT = 45009
BAD_JSON = 47001
USERID_NOT_FOUND = 60111
NO_SENDABLE_CUSTOMER = 41048
ALL_RECIPIENTS_INVALID = 81013
TOO_MANY_MEMBERS_VISIBLE = 81017
APPCHAT_NOT_FOUND = 86003
INVALID_WEBHOOK_KEY = 93000
INVALID_MEDIA_ID = 40007
MISSING_MEDIA_ID = 41006
# 微信客服 (residents_console_votes.md §1, go-workwx errcodes)
KF_INVALID_OPEN_KFID = 95000
KF_SEND_COUNT_LIMIT = 95001
KF_SEND_TIME_LIMIT = 95002
KF_NO_SUCH_OPEN_KFID = 95004
KF_INVALID_MSG_TOKEN = 95007
KF_SESSION_ENDED = 95013
KF_NOT_SERVICER = 95014
KF_BAD_TRANSITION = 95016
KF_STATE_FORBIDS_SEND = 95018

ERRMSG = {
    SYSTEM_BUSY: "system busy",
    INVALID_SECRET: "invalid credential, secret is invalid",
    INVALID_USERID: "invalid userid",
    INVALID_MSGTYPE: "invalid message type",
    INVALID_CORPID: "invalid corpid",
    INVALID_TOKEN: "invalid access_token",
    CHAT_NOT_FOUND: "chatid not found",
    INVALID_AGENTID: "invalid agentid",
    INVALID_PARAMETER: "invalid Request Parameter",
    MISSING_TOKEN: "access_token missing",
    MISSING_CORPID: "corpid missing",
    MISSING_SECRET: "corpsecret missing",
    MISSING_USERID: "user id missing",
    MISSING_AGENTID: "agentid missing",
    TOKEN_EXPIRED: "access_token expired",
    EMPTY_CONTENT: "empty content",
    CONTENT_TOO_LONG: "content size out of limit",
    FREQ_LIMIT: "api freq out of limit",
    BAD_JSON: "data format error",
    USERID_NOT_FOUND: "userid not found",
    NO_SENDABLE_CUSTOMER: "no sendable customer or chat",
    ALL_RECIPIENTS_INVALID: "user & party & tag all invalid",
    TOO_MANY_MEMBERS_VISIBLE: "too many members in app visible range, owner_filter required",
    APPCHAT_NOT_FOUND: "chatid not found",
    INVALID_WEBHOOK_KEY: "invalid webhook url, please check",
    INVALID_MEDIA_ID: "invalid media_id",
    MISSING_MEDIA_ID: "media_id missing",
    KF_INVALID_OPEN_KFID: "invalid open_kfid",
    KF_SEND_COUNT_LIMIT: "send msg count limit",
    KF_SEND_TIME_LIMIT: "send msg time limit",
    KF_NO_SUCH_OPEN_KFID: "open_kfid not exist",
    KF_INVALID_MSG_TOKEN: "invalid msg token",
    KF_SESSION_ENDED: "session already ended",
    KF_NOT_SERVICER: "user is not servicer",
    KF_BAD_TRANSITION: "service state transition not allowed",
    KF_STATE_FORBIDS_SEND: "send msg session status invalid",
}


class SimError(Exception):
    """An errcode answer; raised anywhere below a handler, rendered by the server."""

    def __init__(self, errcode: int, detail: str = "") -> None:
        self.errcode = errcode
        self.detail = detail
        super().__init__(errcode, detail)

    @property
    def errmsg(self) -> str:
        base = self.detail or ERRMSG.get(self.errcode, "error")
        return (
            f"{base}, more info at https://open.work.weixin.qq.com/devtool/query?e={self.errcode}"
        )

    def body(self) -> dict[str, Any]:
        return {"errcode": self.errcode, "errmsg": self.errmsg}


def ok(**fields: Any) -> dict[str, Any]:
    """A successful WeCom answer with extra fields."""
    return {"errcode": 0, "errmsg": "ok", **fields}
