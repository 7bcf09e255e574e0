"""The durable 微信客服 intake: every resident message handled exactly once.

WeCom's `kf_msg_or_event` callback says only "account X has news; here is a Token"
(residents_console_votes.md §1.4). It arrives through the ordinary inbox like any callback
(deduplicated by Token, so WeCom's three deliveries are one entry) and `router` below turns it
into a pull: kf/sync_msg pages from the account's stored cursor with that Token until
has_more = 0 (an empty page may still have has_more = 1, §1.6), each message dispatched as a
KfMessage through the same routers as every other event.

Exactly once, with several processes and crashes:
- One puller per account at a time: a lease `{kf:<open_kfid>}:lease` (SET NX PX, renewed while
  pulling). A notice that finds the lease held leaves its Token in `…:again`; the holder pulls
  once more with it before letting go (one script: nothing is lost between the two). If the
  holder died, the lease runs out and the waiting notice takes over.
- Per message a claim and a done marker under `{kfm:<msgid>}`: a message already done is
  skipped, so a page read twice (a worker killed between reading a page and storing its
  cursor) dispatches nothing twice. The done marker outlives sync_msg's 3-day retention.
- The cursor is stored only after every message of the page is done, and only while the lease
  is still ours (fenced by the lease value).
- WeCom away: sync_msg is retried (kf.retry_delays); if it still fails for a passing reason,
  the lease is dropped and the notice goes back into the inbox as a new entry (attempt + 1,
  up to MAX_ATTEMPTS), so the pull is tried again by whichever process reads it — also after
  a restart. A permanent error (permissions, a deleted account) is logged; the messages wait
  in WeCom (3 days) for the next callback.
A handler interrupted by a crash mid-dispatch runs again after the take-over (as with the
inbox); it sees the same `ctx.source` ("kf:<msgid>") to make its own effect idempotent.

Nothing a resident said or who they are is written to Redis here: messages go from the page
straight to the handlers; keys and logs carry only WeCom's opaque msgid and open_kfid.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
import time
import traceback
from collections.abc import AsyncIterator, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bot.context import Context
from bot.events import KfMessage, KfNotice
from bot.inbox import STREAM_MAXLEN, Inbox, inbox_sealer
from bot.keys import Keys
from bot.lease import RELEASE
from bot.masking import scrub
from bot.router import Router, dispatch
from bot.settings import KfSettings
from bot.wecom.client import WeComClient
from bot.wecom.errors import (
    AmbiguousError,
    RateLimitedError,
    TransientError,
    WeComAPIError,
)

log = logging.getLogger(__name__)
router = Router(name=__name__)

INVALID_TOKEN = 95007  # the callback's Token expired (10 min): pull without it
POLL_SECONDS = 0.1
MAX_ATTEMPTS = 100  # notices put back while WeCom does not answer (~1 h at the defaults)

# KEYS: lease, again. ARGV: owner, lease ms, token, token ms → 1 when the lease is ours
_ACQUIRE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
return 0
"""
# KEYS: lease, again. ARGV: owner, lease ms → the Token to pull again with, "" when released,
# false when the lease is no longer ours
_RELEASE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return false end
local again = redis.call('GET', KEYS[2])
if again then
  redis.call('DEL', KEYS[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return again
end
redis.call('DEL', KEYS[1])
return ''
"""
# KEYS: lease. ARGV: owner, lease ms
_RENEW = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
"""
# KEYS: lease, cursor. ARGV: owner, cursor
_STORE_CURSOR = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
return 1
"""
# KEYS: done, claim. ARGV: owner, claim ms → 0 done already, 1 ours, 2 someone else's
_CLAIM = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 2
"""
# KEYS: done, claim. ARGV: outcome, done ms
_DONE = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('DEL', KEYS[2])
return 1
"""
TOKEN_MS = 600_000  # the callback Token lives 10 minutes


class LeaseLost(Exception):
    """Another process took the account over (we were too slow): stop, it continues."""


class ClaimBusy(Exception):
    """A message stayed claimed by a process that lost the account: try the pull later."""


class KfIntake:
    """Pulls one account's sync_msg pages and dispatches each message once."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, wecom: WeComClient,
                 settings: KfSettings, routers: Sequence[Router], base: Context, *,
                 name: str = "") -> None:
        self._redis = redis
        self._keys = keys
        self._wecom = wecom
        self._settings = settings
        self._routers = tuple(routers)
        self._base = base
        self.owner = name or secrets.token_hex(8)
        self._lease_ms = max(1, int(settings.lease_seconds * 1000))
        self._gate = asyncio.Semaphore(settings.concurrency)
        self._scripts = {name: redis.register_script(body) for name, body in (
            ("acquire", _ACQUIRE), ("release", _RELEASE), ("renew", _RENEW), ("drop", RELEASE),
            ("cursor", _STORE_CURSOR), ("claim", _CLAIM), ("done", _DONE))}

    async def _script(self, name: str, keys: list[str], *args: str | int) -> Any:
        return await self._scripts[name](keys=keys, args=list(args))

    async def on_notice(self, open_kfid: str, token: str) -> None:
        """Pull everything new for `open_kfid`, or hand `token` to the process pulling it."""
        deadline = time.monotonic() + 2 * self._settings.lease_seconds
        while time.monotonic() < deadline:
            if await self._acquire(open_kfid, token):
                await self._hold(open_kfid, token)
                return
            await asyncio.sleep(POLL_SECONDS)
            waiting = await self._redis.get(self._keys.kf_account(open_kfid, "again"))
            if waiting != token:  # the holder took our Token over, or a newer notice did
                return
        log.warning("微信客服账号 %s 一直被占用，消息将在下次回调时拉取", open_kfid)

    async def _acquire(self, open_kfid: str, token: str) -> bool:
        keys = [self._keys.kf_account(open_kfid, "lease"),
                self._keys.kf_account(open_kfid, "again")]
        return bool(await self._script("acquire", keys, self.owner, self._lease_ms, token,
                                       TOKEN_MS))

    async def _hold(self, open_kfid: str, token: str) -> None:
        """Pull until nobody left a Token for us, then let go; the lease is renewed meanwhile."""
        keys = [self._keys.kf_account(open_kfid, "lease"),
                self._keys.kf_account(open_kfid, "again")]
        async with self._renewing(keys[0]):
            while True:
                try:
                    await self._drain(open_kfid, token)
                except LeaseLost:
                    log.warning("微信客服账号 %s 的拉取已被其他进程接管", open_kfid)
                    return
                except BaseException:
                    # let the next notice in at once rather than after the lease runs out
                    with contextlib.suppress(RedisError):
                        await self._script("drop", [keys[0]], self.owner)
                    raise
                again = await self._script("release", keys, self.owner, self._lease_ms)
                if not again:  # released ("") or no longer ours (None)
                    return
                token = str(again)

    @contextlib.asynccontextmanager
    async def _renewing(self, lease: str) -> AsyncIterator[None]:
        async def renew() -> None:
            while True:
                await asyncio.sleep(self._settings.lease_seconds / 3)
                with contextlib.suppress(RedisError):
                    await self._script("renew", [lease], self.owner, self._lease_ms)

        task = asyncio.create_task(renew())
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _drain(self, open_kfid: str, token: str) -> None:
        cursor_key = self._keys.kf_account(open_kfid, "cursor")
        cursor = await self._redis.get(cursor_key) or ""
        while True:
            page, token = await self._page(open_kfid, str(cursor), token)
            await self._dispatch_page(page.items)
            if page.next_cursor and page.next_cursor != cursor:
                await self._store_cursor(open_kfid, page.next_cursor)
                cursor = page.next_cursor
            if not page.has_more:
                return

    async def _page(self, open_kfid: str, cursor: str, token: str) -> tuple[Any, str]:
        """One sync_msg page, retried for passing failures; an expired Token is dropped."""
        delays = list(self._settings.retry_delays)
        while True:
            try:
                page = await self._wecom.kf_sync_msg(cursor=cursor, token=token,
                                                     limit=self._settings.page_limit,
                                                     open_kfid=open_kfid)
                return page, token
            except RateLimitedError as error:
                if not delays:
                    raise
                delays.pop(0)
                await asyncio.sleep(min(error.retry_after, self._settings.lease_seconds / 3))
            except WeComAPIError as error:
                if error.errcode != INVALID_TOKEN or not token:
                    raise
                token = ""  # 10 minutes passed (a retry after a crash): pull without it
            except (TransientError, AmbiguousError):
                if not delays:
                    raise
                await asyncio.sleep(delays.pop(0))

    async def _store_cursor(self, open_kfid: str, cursor: str) -> None:
        keys = [self._keys.kf_account(open_kfid, "lease"),
                self._keys.kf_account(open_kfid, "cursor")]
        stored = await self._script("cursor", keys, self.owner, cursor)
        if not stored:
            raise LeaseLost(open_kfid)

    async def _dispatch_page(self, items: Sequence[KfMessage]) -> None:
        """Residents side by side, each resident's messages in order."""
        by_sender: dict[str, list[KfMessage]] = {}
        for item in items:
            by_sender.setdefault(item.sender, []).append(item)
        results = await asyncio.gather(
            *(self._in_order(messages) for messages in by_sender.values()),
            return_exceptions=True)  # let every resident's run finish before failing the page
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _in_order(self, messages: Sequence[KfMessage]) -> None:
        for message in messages:
            async with self._gate:
                await self._once(message)

    async def _once(self, message: KfMessage) -> None:
        if not message.msgid:
            log.warning("微信客服消息缺少 msgid，已跳过")
            return
        keys = [self._keys.kf_message(message.msgid, "done"),
                self._keys.kf_message(message.msgid, "claim")]
        state = await self._claim(keys)
        if state == 0:
            return  # done before: a page read again
        outcome = await self._run(message)
        done_ms = self._settings.done_ttl_days * 86_400_000
        await self._script("done", keys, outcome, done_ms)
        await self._redis.xadd(self._keys.handled(), {
            "key": message.dedupe_key, "kind": message.kind, "outcome": outcome,
            "consumer": self.owner}, maxlen=STREAM_MAXLEN, approximate=True)

    async def _claim(self, keys: list[str]) -> int:
        """0 done already, 1 ours; waits out the claim of a process that died holding it."""
        deadline = time.monotonic() + self._settings.lease_seconds + 1
        while True:
            state = int(await self._script("claim", keys, self.owner, self._lease_ms))
            if state != 2:
                return state
            if time.monotonic() > deadline:
                raise ClaimBusy(keys[1])
            await asyncio.sleep(POLL_SECONDS)

    async def _run(self, message: KfMessage) -> str:
        ctx = dataclasses.replace(self._base, source=message.dedupe_key)
        started = time.monotonic()
        try:
            handled = await dispatch(self._routers, message, ctx)
        except Exception as error:
            # scrubbed: a handler's error may quote what the resident wrote
            trace = "".join(traceback.format_exception(error))
            log.error("处理微信客服消息 %s 出错\n%s", message.dedupe_key, scrub(trace))
            return "error"
        outcome = "ok" if handled else "unhandled"
        log.info("✓ kf %s %s %s %.0fms", message.msgtype, message.dedupe_key, outcome,
                 (time.monotonic() - started) * 1000)
        return outcome


def routers_of(ctx: Context) -> tuple[Router, ...]:
    """The routers the inbox dispatches with (the context lists them for 帮助)."""
    return tuple(r for r in ctx.routers if isinstance(r, Router))


@router.on(KfNotice)
async def on_kf_notice(event: KfNotice, ctx: Context) -> None:
    """kf_msg_or_event: pull the account's new messages and hand each to the routers."""
    intake = KfIntake(ctx.redis, ctx.keys, ctx.wecom, ctx.settings.kf, routers_of(ctx), ctx)
    try:
        await intake.on_notice(event.open_kfid, event.token)
    except (TransientError, RateLimitedError, AmbiguousError, ClaimBusy) as error:
        if event.attempt >= MAX_ATTEMPTS:
            log.error("微信客服账号 %s 拉取失败 %s 次，放弃；下次回调时再拉取: %s",
                      event.open_kfid, event.attempt + 1, error)
            return
        log.warning("微信客服账号 %s 拉取失败，稍后重试: %s", event.open_kfid, error)
        inbox = Inbox(ctx.redis, ctx.keys, ctx.clock, ctx.settings.callback,
                      inbox_sealer(ctx.settings))
        await inbox.put(dataclasses.replace(event, attempt=event.attempt + 1))
