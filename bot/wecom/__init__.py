"""The WeCom adapter: the only package that knows WeCom's wire format.

Handlers never import this package's internals or wechatpy; they use bot.events and
Context.wecom (a WeComClient).
"""

from bot.wecom.client import WeComClient
from bot.wecom.crypto import Sealed, WeComCrypto
from bot.wecom.errors import (
    AmbiguousError,
    CallbackRejectedError,
    RateLimitedError,
    TransientError,
    WeComAPIError,
    WeComError,
)
from bot.wecom.models import (
    Attachment,
    GroupChatInfo,
    GroupChatRef,
    GroupMsgSendResult,
    GroupMsgSummary,
    GroupMsgTask,
    MsgTemplateResult,
    Page,
)
from bot.wecom.parse import parse_envelope, parse_event

__all__ = [
    "AmbiguousError",
    "Attachment",
    "CallbackRejectedError",
    "GroupChatInfo",
    "GroupChatRef",
    "GroupMsgSendResult",
    "GroupMsgSummary",
    "GroupMsgTask",
    "MsgTemplateResult",
    "Page",
    "RateLimitedError",
    "Sealed",
    "TransientError",
    "WeComAPIError",
    "WeComClient",
    "WeComCrypto",
    "WeComError",
    "parse_envelope",
    "parse_event",
]
