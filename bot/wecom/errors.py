"""WeCom errors: the API retry contract (docs/design.md) and callback rejections.

- WeComAPIError(errcode, errmsg, api): an errcode the client does not retry. Permanent:
  report, never retry.
- RateLimitedError(WeComAPIError).retry_after: 45009/45033 whose block window is longer than
  wecom.max_block_wait. Retry after `retry_after`.
- TransientError: -1 three times, HTTP 5xx, connect failures. The request was NOT processed:
  retry (5 s, 30 s, 2 min).
- KfCannotSend(WeComAPIError): 微信客服 refuses to let the bot write to this resident now
  (95001 five messages used, 95002 outside 48 h, 95013 session ended, 95018 session state
  not 0/1, 95031 no consultation within 48 h). Not retried: hand the answer to a person.
- AmbiguousError: read timeout / connection lost after the request was written, on a
  non-idempotent call. Must NOT be resent blindly: reconcile or mark uncertain.
"""

from __future__ import annotations


class WeComError(Exception):
    """Base of every error raised by bot.wecom."""


class WeComAPIError(WeComError):
    """WeCom answered with an errcode the client does not retry (permanent for this request)."""

    def __init__(self, errcode: int, errmsg: str, api: str) -> None:
        super().__init__(f"企业微信接口 {api} 返回错误 {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg
        self.api = api


class RateLimitedError(WeComAPIError):
    """45009/45033 and the block window is longer than we wait inline."""

    def __init__(self, errcode: int, errmsg: str, api: str, retry_after: float) -> None:
        super().__init__(errcode, errmsg, api)
        self.retry_after = retry_after

    def __str__(self) -> str:
        return f"企业微信接口 {self.api} 限流 ({self.errcode})，{self.retry_after:.0f} 秒后可重试"


# residents_console_votes.md §1.7 and go-workwx errcodes: every reason 微信客服 gives for
# "the API may not write to this resident now"
KF_CANNOT_SEND: dict[int, str] = {
    95001: "48 小时内已发满 5 条消息",
    95002: "已超过居民最后一条消息后的 48 小时",
    95013: "会话已经结束",
    95018: "当前会话状态不允许接口发送（只允许 0/1）",
    95031: "居民 48 小时内未发起过咨询",
}


class KfCannotSend(WeComAPIError):
    """微信客服 will not take a message from the bot for this resident now (see
    KF_CANNOT_SEND); `reason` says why in Chinese. The caller hands the answer to the node's
    grid worker instead; retrying does not help until the resident writes again."""

    def __init__(self, errcode: int, errmsg: str, api: str) -> None:
        super().__init__(errcode, errmsg, api)
        self.reason = KF_CANNOT_SEND.get(errcode, errmsg)


class TransientError(WeComError):
    """The request was not processed (-1 three times, HTTP 5xx, connect failure): safe to retry."""

    def __init__(self, api: str, reason: str) -> None:
        super().__init__(f"企业微信接口 {api} 暂时不可用: {reason}")
        self.api = api
        self.reason = reason


class AmbiguousError(WeComError):
    """A non-idempotent request may or may not have been processed: never blindly resend."""

    def __init__(self, api: str, reason: str) -> None:
        super().__init__(f"企业微信接口 {api} 结果不确定: {reason}")
        self.api = api
        self.reason = reason


class CallbackRejectedError(WeComError):
    """A callback request that must be refused; `status` is the HTTP status to answer."""

    status = 400
    reason = "请求无效"

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.reason)
        self.detail = detail or self.reason


class MalformedCallbackError(CallbackRejectedError):
    """Missing parameters, non-XML, DTDs/entities, undecodable ciphertext."""

    status = 400
    reason = "回调格式错误"


class BadSignatureError(CallbackRejectedError):
    """msg_signature does not match."""

    status = 403
    reason = "签名校验失败"


class CorpIdMismatchError(CallbackRejectedError):
    """The ciphertext (or envelope) names another corp."""

    status = 403
    reason = "企业 ID 不匹配"


class StaleTimestampError(CallbackRejectedError):
    """The timestamp lies outside the accepted window (replay protection)."""

    status = 403
    reason = "时间戳超出允许范围"


class BodyTooLargeError(CallbackRejectedError):
    """The body exceeds callback.max_body_bytes."""

    status = 413
    reason = "请求体过大"
