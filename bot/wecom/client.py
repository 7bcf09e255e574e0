"""Async WeCom API client on one aiohttp session (never wechatpy's sync client).

Retries are bounded and chosen by error class (docs/design.md, wecom.md §2.3):
- errcode -1 (系统繁忙): back off and retry, at most 3 tries in all → TransientError;
- 40014/42001 (token invalid/expired): fetch a new token once (shared in Redis), retry once;
- 45009/45033 (rate limited): the block window is recorded in Redis under Keys.api_block so
  every process honours it; waited out inline when ≤ wecom.max_block_wait, else
  RateLimitedError(retry_after);
- connect failure / HTTP 5xx → TransientError (not processed);
- read timeout or lost connection → retried on idempotent calls, AmbiguousError otherwise;
- any other errcode → WeComAPIError at once.
The base URL (also for gettoken) comes from settings, so a private deployment or the simulator
can stand in for qyapi.weixin.qq.com.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
import redis.asyncio as aioredis

from bot.clock import Clock
from bot.keys import Keys
from bot.redis import as_str
from bot.settings import WeComSettings
from bot.wecom import models
from bot.wecom.errors import (
    KF_CANNOT_SEND,
    AmbiguousError,
    KfCannotSend,
    RateLimitedError,
    TransientError,
    WeComAPIError,
)
from bot.wecom.models import (
    Attachment,
    AuthUser,
    GroupChatInfo,
    GroupChatRef,
    GroupMsgSendResult,
    GroupMsgSummary,
    GroupMsgTask,
    KfAccount,
    KfPage,
    MsgTemplateResult,
    Page,
)
from bot.wecom.token import TokenStore

log = logging.getLogger(__name__)
T = TypeVar("T")
Json = dict[str, Any]

SYSTEM_BUSY = -1
TOKEN_ERRORS = frozenset({40014, 42001})
RATE_LIMITED = frozenset({45009, 45033})
MAX_TRIES = 3
# WeCom blocks for 60 s after a per-minute breach (wecom.md §2.1); 45033 is a concurrency
# ceiling, so a short pause is enough.
BLOCK_SECONDS = {45009: 60.0, 45033: 2.0}
MAX_BLOCK_WAITS = 2
# 微信客服 limits (residents_console_votes.md §1.3, §1.5, §1.7) and media/get (§3)
KF_SCENE = re.compile(r"[0-9a-zA-Z_-]{0,32}")
KF_MSGID = re.compile(r"[0-9a-zA-Z_-]{0,32}")
KF_TEXT_MAX_BYTES = 2048
KF_SYNC_MAX_LIMIT = 1000
KF_ACCOUNT_PAGE = 100
MEDIA_MAX_BYTES = 20 * 1024 * 1024  # the largest temporary media WeCom accepts (file)


BeforeSend = Callable[[], Awaitable[None]]


class _Pending:
    """A call's before_send hook, run at most once."""

    def __init__(self, hook: BeforeSend) -> None:
        self._hook, self.ran = hook, False

    async def run(self) -> None:
        if not self.ran:
            self.ran = True
            await self._hook()


async def _on_connection(session: aiohttp.ClientSession, ctx: Any, params: Any) -> None:
    pending = getattr(ctx, "trace_request_ctx", None)
    if isinstance(pending, _Pending):
        await pending.run()


_TRACE = aiohttp.TraceConfig()
_TRACE.on_connection_create_end.append(_on_connection)
_TRACE.on_connection_reuseconn.append(_on_connection)
_TRACE.freeze()


def trace_configs() -> list[aiohttp.TraceConfig]:
    """Pass to the ClientSession a WeComClient uses: before_send hooks then run once a
    connection is in hand, so nothing but writing the request follows the claim."""
    return [_TRACE]


@dataclass(frozen=True, slots=True)
class Call:
    """One logical API call."""

    api: str
    method: str = "POST"
    payload: Json | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    idempotent: bool = False
    with_token: bool = True
    block_scope: str = ""  # what a 45009 blocks: the api, or one robot of webhook/send
    binary: bool = False  # a download: anything but a JSON body is the payload (media/get)
    # awaited once, right before the first request is written (after the token and a
    # connection slot are in hand): callers record "in flight" here, so that a crash while
    # still queueing inside the client never leaves a send looking ambiguous
    before_send: BeforeSend | None = None

    @property
    def scope(self) -> str:
        return self.block_scope or self.api


@dataclass
class _Attempts:
    busy: int = 0
    token_refreshed: bool = False
    block_waits: int = 0


class WeComClient:
    """The WeCom API calls GridBot makes, with the retry contract of bot.wecom.errors."""

    def __init__(self, session: aiohttp.ClientSession, settings: WeComSettings,
                 redis: aioredis.Redis, keys: Keys, clock: Clock, *,
                 busy_backoff: Sequence[float] = (0.5, 1.5)) -> None:
        self._session = session
        self._settings = settings
        self._redis = redis
        self._keys = keys
        self._clock = clock
        self._base = settings.api_base_url
        self._busy_backoff = tuple(busy_backoff)
        self._gate = asyncio.Semaphore(settings.max_concurrency)
        self._timeout = aiohttp.ClientTimeout(
            total=settings.connect_timeout + settings.request_timeout,
            sock_connect=settings.connect_timeout, sock_read=settings.request_timeout)
        # WeCom drops an identical app message within this window; it only has to cover our
        # own retries of one send, so a member asking 帮助 twice still gets two answers
        self._duplicate_window = int(MAX_TRIES * (settings.connect_timeout
                                                  + settings.request_timeout)) + 5
        self.tokens = TokenStore(redis, keys, clock, settings.corp_id, settings.agent_id,
                                 self._fetch_token)

    # --- app messages (message/send) -----------------------------------------------------
    async def send_text(self, touser: str | Sequence[str], content: str) -> None:
        """1:1 app message; WeCom's duplicate check makes our own retries of it harmless."""
        await self._app_message(touser, "text", content)

    async def send_markdown(self, touser: str | Sequence[str], content: str) -> None:
        """1:1 markdown app message (duplicate check on)."""
        await self._app_message(touser, "markdown", content)

    # --- groups ------------------------------------------------------------------------
    async def appchat_send(self, chat_id: str, content: str, *, markdown: bool = False,
                           before_send: BeforeSend | None = None) -> None:
        """Post into an app-created internal group chat (not idempotent)."""
        kind = "markdown" if markdown else "text"
        await self._call(Call("appchat/send", payload={
            "chatid": chat_id, "msgtype": kind, kind: {"content": content}, "safe": 0},
            before_send=before_send))

    async def webhook_send(self, key: str, content: str, *, markdown: bool = False,
                           before_send: BeforeSend | None = None) -> None:
        """Post through a group robot's webhook; its 20/min ceiling is blocked per robot."""
        kind = "markdown" if markdown else "text"
        robot = hashlib.sha256(key.encode()).hexdigest()[:16]
        payload = {"msgtype": kind, kind: {"content": content}}
        await self._call(Call("webhook/send", payload=payload, params={"key": key},
                              with_token=False, block_scope=f"webhook/send:{robot}",
                              before_send=before_send))

    # --- customer-group mass send (客户群群发) -----------------------------------------------
    async def add_msg_template(self, sender: str, chat_ids: Sequence[str], text: str,
                               attachments: Sequence[Attachment] = (), *,
                               before_send: BeforeSend | None = None) -> MsgTemplateResult:
        """Create a group mass-send task the owner `sender` must confirm (not idempotent);
        `before_send` runs right before the request is written (the caller's claim)."""
        payload: Json = {"chat_type": "group", "sender": sender, "chat_id_list": list(chat_ids),
                         "allow_select": False, "text": {"content": text}}
        if attachments:
            payload["attachments"] = [a.to_wire() for a in attachments]
        data = await self._call(Call("externalcontact/add_msg_template", payload=payload,
                                     before_send=before_send))
        return MsgTemplateResult(str(data.get("msgid", "")),
                                 [str(x) for x in data.get("fail_list") or []])

    async def get_groupmsg_list_v2(self, start_time: int, end_time: int, *, creator: str = "",
                                   filter_type: int = 2, cursor: str = "", limit: int = 100
                                   ) -> Page[GroupMsgSummary]:
        """Group mass sends created in [start_time, end_time] (window ≤ 1 month)."""
        payload: Json = {"chat_type": "group", "start_time": start_time, "end_time": end_time,
                         "filter_type": filter_type, "cursor": cursor, "limit": limit}
        if creator:
            payload["creator"] = creator
        return await self._page("externalcontact/get_groupmsg_list_v2", payload,
                                "group_msg_list", models.summary_from_wire)

    async def get_groupmsg_task(self, msgid: str, *, cursor: str = "", limit: int = 1000
                                ) -> Page[GroupMsgTask]:
        """Whether each owner confirmed the task `msgid`."""
        return await self._page("externalcontact/get_groupmsg_task",
                                {"msgid": msgid, "cursor": cursor, "limit": limit},
                                "task_list", models.task_from_wire)

    async def get_groupmsg_send_result(self, msgid: str, userid: str, *, cursor: str = "",
                                       limit: int = 1000) -> Page[GroupMsgSendResult]:
        """Per-group outcome of `userid`'s part of the task `msgid`."""
        return await self._page("externalcontact/get_groupmsg_send_result",
                                {"msgid": msgid, "userid": userid, "cursor": cursor,
                                 "limit": limit}, "send_list", models.send_result_from_wire)

    async def remind_groupmsg_send(self, msgid: str) -> None:
        """Remind the owners of `msgid` (≤ 3 per 24 h, so not idempotent)."""
        await self._call(Call("externalcontact/remind_groupmsg_send", payload={"msgid": msgid}))

    async def cancel_groupmsg_send(self, msgid: str) -> None:
        """Cancel the unsent part of `msgid` (cancelling twice is harmless)."""
        await self._call(Call("externalcontact/cancel_groupmsg_send", payload={"msgid": msgid},
                              idempotent=True))

    # --- customer groups -------------------------------------------------------------------
    async def groupchat_list(self, *, cursor: str = "", limit: int = 1000,
                             owner_userids: Sequence[str] = (), status_filter: int = 0
                             ) -> Page[GroupChatRef]:
        """One page of the corp's customer groups."""
        payload: Json = {"status_filter": status_filter, "cursor": cursor, "limit": limit}
        if owner_userids:
            payload["owner_filter"] = {"userid_list": list(owner_userids)}
        return await self._page("externalcontact/groupchat/list", payload, "group_chat_list",
                                models.chat_ref_from_wire)

    async def groupchat_get(self, chat_id: str) -> GroupChatInfo:
        """Details of one customer group."""
        data = await self._call(Call("externalcontact/groupchat/get",
                                     payload={"chat_id": chat_id, "need_name": 1},
                                     idempotent=True))
        return models.chat_info_from_wire(data.get("group_chat") or {})

    # --- 微信客服 (residents 1:1) -------------------------------------------------------------
    async def kf_account_list(self) -> list[KfAccount]:
        """Every kf account this app can see (POST, paged by 100: §1.2)."""
        accounts: list[KfAccount] = []
        while True:
            data = await self._call(Call("kf/account/list", idempotent=True, payload={
                "offset": len(accounts), "limit": KF_ACCOUNT_PAGE}))
            page = [models.kf_account_from_wire(raw) for raw in data.get("account_list") or []]
            accounts.extend(page)
            if len(page) < KF_ACCOUNT_PAGE:
                return accounts

    async def kf_add_contact_way(self, open_kfid: str, scene: str) -> str:
        """A 客服 link whose enter_session events carry `scene` (≤32 of [0-9a-zA-Z_-])."""
        if not KF_SCENE.fullmatch(scene):
            raise ValueError("scene 只能是不超过 32 个字母、数字、_ 或 - 的字符串")
        data = await self._call(Call("kf/add_contact_way", idempotent=True, payload={
            "open_kfid": open_kfid, "scene": scene}))
        return str(data.get("url", ""))

    async def kf_sync_msg(self, *, cursor: str = "", token: str = "",
                          limit: int = KF_SYNC_MAX_LIMIT, open_kfid: str = "") -> KfPage:
        """One page of kf messages after `cursor` (reading is idempotent). An empty page may
        still have has_more: keep going with next_cursor."""
        if not 1 <= limit <= KF_SYNC_MAX_LIMIT:
            raise ValueError(f"limit 须在 1 到 {KF_SYNC_MAX_LIMIT} 之间")
        payload: Json = {"cursor": cursor, "token": token, "limit": limit}
        if open_kfid:
            payload["open_kfid"] = open_kfid
        data = await self._call(Call("kf/sync_msg", payload=payload, idempotent=True))
        items = [models.kf_message_from_wire(raw) for raw in data.get("msg_list") or []]
        return KfPage(items, str(data.get("next_cursor") or ""), bool(data.get("has_more")))

    async def kf_send_text(self, touser: str, open_kfid: str, content: str, *,
                           msgid: str = "") -> str:
        """Send text to a resident; its msgid. KfCannotSend when 微信客服 will not take it
        (state not 0/1, 5 messages used, 48 h passed). Not idempotent: msgid must be unique
        per account, so a retry of a sent msgid fails rather than sending twice."""
        _check_kf_text(content, msgid)
        payload: Json = {"touser": touser, "open_kfid": open_kfid, "msgtype": "text",
                         "text": {"content": content}}
        return await self._kf_send("kf/send_msg", payload, msgid)

    async def kf_send_on_event(self, code: str, content: str, *, msgid: str = "") -> str:
        """Answer an event code once (enter_session's welcome_code: within 20 s); its msgid."""
        _check_kf_text(content, msgid)
        payload: Json = {"code": code, "msgtype": "text", "text": {"content": content}}
        return await self._kf_send("kf/send_msg_on_event", payload, msgid)

    async def kf_service_state(self, open_kfid: str, external_userid: str) -> int:
        """The resident's session state: 0 new, 1 bot, 2 queue, 3 human, 4 ended (§1.9)."""
        data = await self._call(Call("kf/service_state/get", idempotent=True, payload={
            "open_kfid": open_kfid, "external_userid": external_userid}))
        return int(data.get("service_state") or 0)

    async def kf_service_state_trans(self, open_kfid: str, external_userid: str,
                                     service_state: int, servicer_userid: str = "") -> str:
        """Move the session (e.g. to 3 with a servicer); the msg_code it may return."""
        payload: Json = {"open_kfid": open_kfid, "external_userid": external_userid,
                         "service_state": service_state}
        if servicer_userid:
            payload["servicer_userid"] = servicer_userid
        data = await self._call(Call("kf/service_state/trans", payload=payload))
        return str(data.get("msg_code") or "")

    async def media_get(self, media_id: str) -> bytes:
        """Download temporary media (3 days); errors come as JSON with HTTP 200 (§3.1)."""
        data = await self._call(Call("media/get", method="GET", params={"media_id": media_id},
                                     idempotent=True, binary=True))
        body = data.get("body")
        return body if isinstance(body, bytes) else b""

    async def _kf_send(self, api: str, payload: Json, msgid: str) -> str:
        if msgid:
            payload["msgid"] = msgid
        try:
            data = await self._call(Call(api, payload=payload))
        except WeComAPIError as error:
            if error.errcode in KF_CANNOT_SEND and not isinstance(error, KfCannotSend):
                raise KfCannotSend(error.errcode, error.errmsg, api) from None
            raise
        return str(data.get("msgid") or msgid)
    # --- member login (OAuth in the WeCom client, QR login in a browser) -------------------
    async def auth_getuserinfo(self, code: str) -> AuthUser:
        """Exchange a login code (single use, 5 minutes; 40029 invalid or used, 42003 expired)
        for the member's userid. Not retried on a timeout: the code may already be spent."""
        data = await self._call(Call("auth/getuserinfo", method="GET", params={"code": code}))
        userid = str(data.get("userid") or data.get("UserId") or "")
        if userid:
            return AuthUser(userid, True)
        return AuthUser(str(data.get("openid") or data.get("OpenId") or ""), False)

    # --- plumbing ---------------------------------------------------------------------------
    async def _app_message(self, touser: str | Sequence[str], kind: str, content: str) -> None:
        users = touser if isinstance(touser, str) else "|".join(touser)
        await self._call(Call("message/send", idempotent=True, payload={
            "touser": users, "msgtype": kind, "agentid": self._settings.agent_id,
            kind: {"content": content}, "enable_duplicate_check": 1,
            "duplicate_check_interval": self._duplicate_window}))

    async def _page(self, api: str, payload: Json, list_key: str,
                    convert: Callable[[Mapping[str, Any]], T]) -> Page[T]:
        data = await self._call(Call(api, payload=payload, idempotent=True))
        items = [convert(raw) for raw in data.get(list_key) or []]
        return Page(items, str(data.get("next_cursor") or ""))

    async def _fetch_token(self) -> tuple[str, int]:
        params = {"corpid": self._settings.corp_id,
                  "corpsecret": self._settings.secret.get_secret_value()}
        data = await self._call(Call("gettoken", method="GET", params=params, idempotent=True,
                                     with_token=False))
        return str(data["access_token"]), int(data.get("expires_in") or 7200)

    async def _call(self, call: Call) -> Json:
        """Run `call` with the bounded retries described in the module docstring."""
        tries = _Attempts()
        hook = call.before_send
        while True:
            token = await self._ready(call)
            data = await self._send(call, token, hook)
            hook = None  # once: retries of the same call are the same send
            if data is None:  # read timeout on an idempotent call: same budget as -1
                await self._busy(call, tries, "读取超时")
                continue
            errcode = int(data.get("errcode") or 0)
            if errcode == 0:
                return data
            await self._handle_error(call, tries, errcode, str(data.get("errmsg", "")), token)

    async def _handle_error(self, call: Call, tries: _Attempts, errcode: int, errmsg: str,
                            token: str) -> None:
        """Prepare a retry for a retryable errcode, or raise."""
        if errcode == SYSTEM_BUSY:
            await self._busy(call, tries, "系统繁忙 (-1)")
        elif errcode in TOKEN_ERRORS and call.with_token and not tries.token_refreshed:
            tries.token_refreshed = True
            log.info("企业微信令牌失效 (%s)，刷新后重试 %s", errcode, call.api)
            await self.tokens.refresh(stale=token)
        elif errcode in RATE_LIMITED and tries.block_waits < MAX_BLOCK_WAITS:
            tries.block_waits += 1
            await self._record_block(call, errcode)
        elif errcode in RATE_LIMITED:
            raise RateLimitedError(errcode, errmsg, call.api, BLOCK_SECONDS[errcode])
        else:
            raise WeComAPIError(errcode, errmsg, call.api)

    async def _busy(self, call: Call, tries: _Attempts, reason: str) -> None:
        tries.busy += 1
        if tries.busy >= MAX_TRIES:
            raise TransientError(call.api, f"{reason}，已重试 {MAX_TRIES} 次")
        delay = self._busy_backoff[min(tries.busy, len(self._busy_backoff)) - 1]
        await self._clock.sleep(delay)

    async def _record_block(self, call: Call, errcode: int) -> None:
        window = BLOCK_SECONDS[errcode]
        until = self._clock.now() + window
        # NX: the first process to be blocked sets the window; the others honour it
        await self._redis.set(self._keys.api_block(call.scope), f"{until:.3f}", nx=True,
                              px=self._clock.real_ms(window))
        log.warning("企业微信接口 %s 限流 (%s)", call.scope, errcode)

    async def _ready(self, call: Call) -> str:
        """Wait out a shared block window and return the token; one Redis round trip on the
        send path (a pipeline, not MGET: the two keys may sit in different Cluster slots)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(self._keys.api_block(call.scope))
            if call.with_token:
                pipe.get(self.tokens.key)
            replies = await pipe.execute()
        waited = await self._honour_block(call, as_str(replies[0]))
        if not call.with_token:
            return ""
        cached = as_str(replies[1])
        # after waiting out a block the token read before may have expired: read it again
        return cached if cached and not waited else await self.tokens.get()

    async def _honour_block(self, call: Call, raw: str | None) -> bool:
        """Sleep through a recorded block window; True when it did."""
        if raw is None:
            return False
        remaining = float(raw) - self._clock.now()
        if remaining <= 0:
            return False
        if remaining > self._settings.max_block_wait:
            raise RateLimitedError(45009, "api freq out of limit", call.api, remaining)
        await self._clock.sleep(remaining)
        return True

    async def _send(self, call: Call, token: str, hook: BeforeSend | None = None) -> Json | None:
        """One HTTP exchange; None for a read timeout on an idempotent call."""
        params = {**call.params, "access_token": token} if call.with_token else dict(call.params)
        async with self._gate:
            pending = _Pending(hook) if hook is not None else None
            if pending is not None and _TRACE not in self._session.trace_configs:
                await pending.run()  # a session without our trace config: claim up front
            return await self._exchange(call, params, pending)

    async def _exchange(self, call: Call, params: Mapping[str, str],
                        pending: _Pending | None) -> Json | None:
        try:
            async with self._session.request(
                call.method, self._base + call.api, params=params, json=call.payload,
                timeout=self._timeout, trace_request_ctx=pending,
            ) as response:
                return await _read(call, response)
        except (aiohttp.ConnectionTimeoutError, aiohttp.ClientConnectorError) as error:
            raise TransientError(call.api, f"无法连接 ({type(error).__name__})") from None
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            if call.idempotent:
                return None
            raise AmbiguousError(call.api, f"请求已发出但未收到应答 ({type(error).__name__})"
                                 ) from None


def _check_kf_text(content: str, msgid: str) -> None:
    if not content.strip():
        raise ValueError("content 不能为空")
    if len(content.encode()) > KF_TEXT_MAX_BYTES:
        raise ValueError(f"content 超过 {KF_TEXT_MAX_BYTES} 字节，请缩短后再发")
    if not KF_MSGID.fullmatch(msgid):
        raise ValueError("msgid 只能是不超过 32 个字母、数字、_ 或 - 的字符串")


async def _read(call: Call, response: aiohttp.ClientResponse) -> Json:
    if response.status >= 500:
        raise TransientError(call.api, f"HTTP {response.status}")
    if response.status not in (200, 206):
        raise WeComAPIError(response.status, f"HTTP {response.status}", call.api)
    if call.binary and response.content_type not in ("application/json", "text/plain"):
        return {"errcode": 0, "body": await _read_capped(call, response)}
    data = await response.json(content_type=None)
    if not isinstance(data, dict):
        raise ValueError("response is not a JSON object")
    return data


async def _read_capped(call: Call, response: aiohttp.ClientResponse) -> bytes:
    """A download body, refused above MEDIA_MAX_BYTES (nothing larger is valid media)."""
    if (response.content_length or 0) > MEDIA_MAX_BYTES:
        raise WeComAPIError(830002, "媒体文件过大", call.api)
    body = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > MEDIA_MAX_BYTES:
            raise WeComAPIError(830002, "媒体文件过大", call.api)
    return bytes(body)
