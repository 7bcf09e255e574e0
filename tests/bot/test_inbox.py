"""The durable inbox: dedupe, error isolation, take-over of dead consumers, per-sender order."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from bot import appkeys
from bot.app import create_app
from bot.context import Context
from bot.events import TextMessage
from bot.inbox import GROUP, SHARDS, Inbox, handled_records, inbox_sealer, shard_of
from bot.keys import Keys
from bot.router import Router
from bot.settings import Settings
from bot.wecom.errors import WeComAPIError
from tests.bot.support import SEEN, wait_until

ClientFactory = Callable[..., Any]
CONTENT_LOG = "test:contents"


def message(n: int, sender: str = "wangwu", content: str = "") -> TextMessage:
    return TextMessage(sender=sender, create_time=1_700_000_000 + n, content=content or str(n),
                       msg_id=f"7{n:09d}")


def content_router(delay: Callable[[str], float] = lambda _: 0.0) -> Router:
    """Records contents in order; "boom" raises; `delay(content)` real seconds per message."""
    router = Router("test-contents")

    @router.message()
    async def record(event: TextMessage, ctx: Context) -> None:
        await asyncio.sleep(delay(event.content))
        if event.content == "boom":
            raise RuntimeError(f"handler failed for 身份证 110101199003077777 {event.sender}")
        await ctx.redis.rpush(CONTENT_LOG, event.content)  # type: ignore[misc]

    return router


async def contents(redis: aioredis.Redis) -> list[str]:
    return list(await redis.lrange(CONTENT_LOG, 0, -1))  # type: ignore[misc]


async def start(aiohttp_client: ClientFactory, settings: Settings, router: Router) -> TestClient:
    client: TestClient = await aiohttp_client(create_app(settings, [router], run_scheduler=False))
    return client


async def inbox_length(redis: aioredis.Redis, keys: Keys) -> int:
    return sum([await redis.xlen(keys.inbox(shard)) for shard in range(SHARDS)])


async def test_senders_spread_over_the_shards_and_one_consumer_handles_them_all(
    aiohttp_client: ClientFactory, make_settings: Callable[..., Settings], redis: aioredis.Redis,
    keys: Keys,
) -> None:
    client = await start(aiohttp_client, make_settings(), content_router())
    inbox = client.app[appkeys.inbox]
    events = [message(n, sender=f"user{n % 40}", content=f"m{n}") for n in range(80)]
    entries = [await inbox.put(event) for event in events]
    assert all(entries)
    shards = Counter(int(str(entry).split("/")[0]) for entry in entries)
    assert sorted(shards) == list(range(SHARDS))  # 40 senders reach every shard
    assert all(shards[shard_of(e.sender)] for e in events)

    async def all_handled() -> bool:
        return len(await handled_records(redis, keys)) == 80

    await wait_until(all_handled, what="80 handled records")
    assert sorted(await contents(redis)) == sorted(f"m{n}" for n in range(80))
    for shard in range(SHARDS):
        assert (await redis.xpending(keys.inbox(shard), GROUP))["pending"] == 0


async def test_put_is_idempotent_per_dedupe_key(
    redis: aioredis.Redis, keys: Keys, clock: Any, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    inbox = Inbox(redis, keys, clock, settings.callback, inbox_sealer(settings))
    first = await inbox.put(message(1))
    assert first is not None
    assert await inbox.put(message(1)) is None
    assert await inbox.put(message(2)) is not None
    assert await inbox_length(redis, keys) == 2
    shard = shard_of(message(1).sender)
    assert 0 < await redis.pttl(keys.dedupe(message(1).dedupe_key, shard)) <= 7 * 86400 * 1000


async def test_the_inbox_keeps_nothing_in_clear_and_nothing_once_handled(
    aiohttp_client: ClientFactory, make_settings: Callable[..., Settings], redis: aioredis.Redis,
    keys: Keys,
) -> None:
    """Issue 10: the stream held every decrypted message, numbers included, for good."""
    phone, id_number = "13912345678", "11010519491231002X"
    client = await start(aiohttp_client, make_settings(), content_router(lambda _: 0.3))
    inbox = client.app[appkeys.inbox]
    await inbox.put(message(1, content=f"电话 {phone} 身份证 {id_number}"))
    shard = shard_of(message(1).sender)
    queued = await redis.xrange(keys.inbox(shard))
    assert len(queued) == 1  # waiting for its handler: sealed, bound to its dedupe key
    raw = repr(queued)
    assert phone not in raw and id_number not in raw and "电话" not in raw
    await wait_until(lambda: _handled(redis, keys, 1), what="the handled record")
    assert await contents(redis) == [f"电话 {phone} 身份证 {id_number}"]  # opened intact
    assert await redis.xlen(keys.inbox(shard)) == 0  # deleted once handled: a bounded life
    assert phone not in repr(await redis.xrange(keys.handled(shard)))


async def _handled(redis: aioredis.Redis, keys: Keys, count: int) -> bool:
    return len(await handled_records(redis, keys)) >= count


async def test_expected_wecom_refusals_and_repeated_errors_log_one_line(
    aiohttp_client: ClientFactory, make_settings: Callable[..., Settings], redis: aioredis.Redis,
    keys: Keys, caplog: Any,
) -> None:
    """Issue 10: a user WeCom's directory rejects logged a 4 KB traceback per message."""
    router = Router("refusals")

    @router.message()
    async def reply(event: TextMessage, ctx: Context) -> None:
        if event.content.startswith("bug"):
            raise KeyError("a handler bug")
        raise WeComAPIError(60111, "invalid userid", "message/send")

    client = await start(aiohttp_client, make_settings(), router)
    inbox = client.app[appkeys.inbox]
    for n in range(20):
        await inbox.put(message(n, sender=f"u{n}", content="hi" if n < 10 else f"bug {n}"))
    await wait_until(lambda: _handled(redis, keys, 20), what="twenty handled records")
    records = [r for r in caplog.records if r.name == "bot.inbox" and r.levelno >= 30]
    refusals = [r for r in records if "60111" in r.getMessage()]
    bugs = [r for r in records if "KeyError" in r.getMessage()]
    assert len(refusals) == 1 and "Traceback" not in refusals[0].getMessage()
    assert refusals[0].exc_info is None and len(refusals[0].getMessage()) < 300
    assert len(bugs) == 1 and "Traceback" in bugs[0].getMessage()  # the first one in full
    outcomes = [r.outcome for r in await handled_records(redis, keys)]
    assert outcomes == ["error"] * 20  # each still recorded, only the log is quiet


async def test_a_failing_handler_is_isolated_and_recorded(
    aiohttp_client: ClientFactory, make_settings: Callable[..., Settings], redis: aioredis.Redis,
    keys: Keys, caplog: Any,
) -> None:
    client = await start(aiohttp_client, make_settings(), content_router())
    inbox = client.app[appkeys.inbox]
    for n, text in enumerate(["boom", "after", "boom", "again"]):
        await inbox.put(message(n, content=text))

    async def all_handled() -> bool:
        return len(await handled_records(redis, keys)) == 4

    await wait_until(all_handled, what="four handled records")
    assert await contents(redis) == ["after", "again"]
    outcomes = [r.outcome for r in await handled_records(redis, keys)]
    assert outcomes == ["error", "ok", "error", "ok"]
    assert "110101199003077777" not in caplog.text and "1101**********7777" in caplog.text
    for shard in range(SHARDS):
        assert (await redis.xpending(keys.inbox(shard), GROUP))["pending"] == 0


async def test_entries_of_a_dead_consumer_are_taken_over(
    aiohttp_client: ClientFactory, make_settings: Callable[..., Settings], redis: aioredis.Redis,
    keys: Keys, clock: Any,
) -> None:
    settings = make_settings({"GRIDBOT_CALLBACK__CLAIM_IDLE_SECONDS": "0.3"})
    inbox = Inbox(redis, keys, clock, settings.callback, inbox_sealer(settings))
    shard = shard_of(message(1).sender)
    await redis.xgroup_create(keys.inbox(shard), GROUP, id="0", mkstream=True)
    await inbox.put(message(1, content="orphan"))
    # a consumer that read the entry and died before acknowledging it
    await redis.xreadgroup(GROUP, "dead-consumer", {keys.inbox(shard): ">"}, count=10)
    await start(aiohttp_client, settings, content_router())

    async def taken_over() -> bool:
        return await contents(redis) == ["orphan"]

    await wait_until(taken_over, what="the orphaned entry to be handled")
    [record] = await handled_records(redis, keys)
    assert record.consumer != "dead-consumer" and record.outcome == "ok"


async def test_a_slow_handler_is_not_taken_over_by_another_process(
    aiohttp_client: ClientFactory, make_settings: Callable[..., Settings], redis: aioredis.Redis,
    keys: Keys,
) -> None:
    settings = make_settings({"GRIDBOT_CALLBACK__CLAIM_IDLE_SECONDS": "0.3"})
    slow = content_router(lambda text: 1.5 if text == "slow" else 0.0)
    first = await start(aiohttp_client, settings, slow)
    await start(aiohttp_client, settings, slow)  # a second process on the same Redis
    await first.app[appkeys.inbox].put(message(1, content="slow"))

    async def done() -> bool:
        return len(await handled_records(redis, keys)) == 1

    await wait_until(done, what="the slow handler")
    await asyncio.sleep(1.0)  # time for a wrongful take-over to show up
    assert await contents(redis) == ["slow"]


async def test_messages_of_one_sender_are_handled_in_order(
    aiohttp_client: ClientFactory, make_settings: Callable[..., Settings], redis: aioredis.Redis,
    keys: Keys,
) -> None:
    # later messages are faster: without per-sender ordering they would overtake
    client = await start(aiohttp_client, make_settings(),
                         content_router(lambda text: 0.05 * (10 - int(text)) / 10))
    for n in range(10):
        await client.app[appkeys.inbox].put(message(n))

    async def all_done() -> bool:
        return len(await contents(redis)) == 10

    await wait_until(all_done, what="ten messages")
    assert await contents(redis) == [str(n) for n in range(10)]
    assert await redis.llen(SEEN) == 0  # type: ignore[misc]
