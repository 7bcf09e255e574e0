"""The WeCom callback endpoint (wecom.md §3.1) and /healthz.

GET  verifies the URL: signature over echostr, decrypt, answer the exact plaintext.
POST receives: cap the body, check the timestamp window, parse the envelope (defusedxml),
check the signature in constant time, decrypt, check the corp id, parse the event, and put it
into the durable inbox (one Redis round trip) BEFORE answering 200 with an empty body. Handlers
run later in the inbox consumer, never on this path: WeCom re-delivers anything not
acknowledged within 5 s. Bad input gets a 4xx with a short Chinese reason and changes nothing;
a Redis failure gets a 503, so WeCom delivers again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping

from aiohttp import web
from redis.exceptions import RedisError

from bot import appkeys
from bot.clock import Clock
from bot.cluster import redis_health
from bot.events import Event
from bot.masking import scrub
from bot.wecom.crypto import WeComCrypto
from bot.wecom.errors import (
    BodyTooLargeError,
    CallbackRejectedError,
    CorpIdMismatchError,
    MalformedCallbackError,
    StaleTimestampError,
)
from bot.wecom.parse import parse_envelope, parse_event

log = logging.getLogger(__name__)
_CHUNK = 64 * 1024
HEALTH_PING_SECONDS = 1.0  # the client retries a lost connection; health must not wait


async def verify_url(request: web.Request) -> web.Response:
    """GET: WeCom's URL verification; the body is exactly the decrypted echostr."""
    app = request.app
    try:
        sig, ts, nonce, echostr = _params(request.query, "msg_signature", "timestamp", "nonce",
                                          "echostr")
        _check_timestamp(ts, app[appkeys.clock], app[appkeys.settings].callback.timestamp_window)
        plaintext = app[appkeys.crypto].verify_url(sig, ts, nonce, echostr)
    except CallbackRejectedError as error:
        return _reject(request, error)
    log.info("← 回调 URL 验证成功")
    return web.Response(text=plaintext, content_type="text/plain")


async def receive(request: web.Request) -> web.Response:
    """POST: accept one encrypted callback into the inbox, then answer an empty 200."""
    started = time.perf_counter()
    try:
        event = await _accept(request)
    except CallbackRejectedError as error:
        return _reject(request, error)
    try:
        entry = await request.app[appkeys.inbox].put(event)
    except RedisError as error:
        log.error("回调未能写入收件箱 (%s)，返回 503 由企业微信重试", type(error).__name__)
        return web.Response(status=503, text="服务暂时不可用")
    if log.isEnabledFor(logging.INFO):  # the one line per callback; skip scrubbing otherwise
        log.info("← %s %s %s %.1fms", event.kind, scrub(event.dedupe_key),
                 "新" if entry else "重复", (time.perf_counter() - started) * 1000)
    return web.Response(status=200)


async def healthz(request: web.Request) -> web.Response:
    """200 {"status": "ok"} only while Redis answers (within HEALTH_PING_SECONDS) and every
    long-running loop of the process (inbox consumer, scheduler, embedded worker) runs and is
    not failing; else 503 naming what is wrong. A supervisor may rely on it. On a Redis
    Cluster the body also carries the cluster's state (`cluster`: state, slots ok / failing,
    primaries), and a cluster with an unserved slot counts as down."""
    try:
        report = await asyncio.wait_for(redis_health(request.app[appkeys.redis]),
                                        HEALTH_PING_SECONDS)
    except TimeoutError:
        report = {"mode": "unknown", "ok": False}
    ok = bool(report["ok"])
    problems = request.app[appkeys.health].problems()
    healthy = ok and not problems
    body: dict[str, object] = {"status": "ok" if healthy else "异常", "redis": ok,
                               "loops": problems}
    if not ok:
        body["status"] = "redis 不可用"
    if report["mode"] == "cluster":
        body["cluster"] = {k: v for k, v in report.items() if k not in {"mode", "ok"}}
    return web.json_response(body, status=200 if healthy else 503, dumps=_dumps)


async def _accept(request: web.Request) -> Event:
    app = request.app
    settings = app[appkeys.settings].callback
    body = await _read_capped(request, settings.max_body_bytes)
    sig, ts, nonce = _params(request.query, "msg_signature", "timestamp", "nonce")
    _check_timestamp(ts, app[appkeys.clock], settings.timestamp_window)
    crypto: WeComCrypto = app[appkeys.crypto]
    envelope = parse_envelope(body)
    if envelope.to_user and envelope.to_user != crypto.corp_id:
        raise CorpIdMismatchError()
    return parse_event(crypto.decrypt(sig, ts, nonce, envelope.encrypt))


async def _read_capped(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLargeError()
    body = bytearray()
    async for chunk in request.content.iter_chunked(_CHUNK):
        body += chunk
        if len(body) > limit:
            raise BodyTooLargeError()
    return bytes(body)


def _params(query: Mapping[str, str], *names: str) -> list[str]:
    values = [query.get(name, "") for name in names]
    if not all(values):
        missing = ", ".join(n for n, v in zip(names, values, strict=True) if not v)
        raise MalformedCallbackError(f"缺少参数 {missing}")
    return values


def _check_timestamp(raw: str, clock: Clock, window: int) -> None:
    try:
        timestamp = int(raw)
    except ValueError:
        raise MalformedCallbackError("timestamp 不是整数") from None
    if abs(clock.now() - timestamp) > window:
        raise StaleTimestampError()


def _reject(request: web.Request, error: CallbackRejectedError) -> web.Response:
    log.warning("✗ 回调被拒绝 %s %s: %s (来自 %s)", request.method, error.status,
                scrub(error.detail), request.remote)
    return web.Response(status=error.status, text=error.reason)


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)
