"""Audit log: append-only entries with who/what/outcome; numbers in details are masked."""

from __future__ import annotations

import redis.asyncio as aioredis

from bot.audit import AuditLog
from bot.clock import Clock
from bot.keys import Keys


async def test_record_and_read_back(redis: aioredis.Redis, keys: Keys) -> None:
    audit = AuditLog(redis, keys, Clock())
    await audit.record("officer1", "broadcast.issue", "ok", target="141181", source="msg:1")
    await audit.record("resident9", "broadcast.issue", "refused", detail="电话13812345678")
    entries = await audit.entries()
    assert [e.actor for e in entries] == ["resident9", "officer1"]  # newest first
    refused = await audit.entries(actor="resident9")
    assert refused[0].outcome == "refused"
    assert "13812345678" not in refused[0].detail
    assert (await audit.entries(action="broadcast.issue"))[1].source == "msg:1"


async def test_entries_are_appended_never_replaced(redis: aioredis.Redis, keys: Keys) -> None:
    audit = AuditLog(redis, keys, Clock())
    first = await audit.record("a", "x", "ok")
    second = await audit.record("a", "x", "ok")
    assert first < second  # stream ids only grow: entries are appended, never replaced
    assert await redis.xlen(keys.audit()) == 2
