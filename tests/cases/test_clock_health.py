"""The case clocks' loop is part of /healthz: failing while Redis is away, ok again after, and
a loop that cannot recover makes `gridbot serve` exit (the Health registry's gave_up)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from bot.health import Health, LoopGaveUpError
from cases import clocks, escalate
from cases.clocks import ClockRunner
from tests.cases.conftest import Chat


async def _until(check: Callable[[], bool], what: str) -> None:
    for _ in range(200):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _redis_away(monkeypatch: pytest.MonkeyPatch) -> dict[str, bool]:
    state = {"down": True}
    real = clocks.claim

    async def claim(*args: Any, **kwargs: Any) -> list[clocks.Clock]:
        if state["down"]:
            raise RedisConnectionError("Connection closed by server.")
        return await real(*args, **kwargs)

    monkeypatch.setattr(clocks, "claim", claim)
    return state


async def test_clock_loop_reports_failing_then_ok(chat: Chat,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    health = Health(give_up_seconds=60.0)
    loop = health.loop("case-clocks")
    redis = _redis_away(monkeypatch)
    runner = ClockRunner(chat.deps, escalate.fire, health=loop)
    task = asyncio.create_task(runner.run())
    await _until(lambda: loop.failing_since is not None, "the loop to report failing")
    assert health.problems() == {"case-clocks": "重试中（ConnectionError）"}
    redis["down"] = False
    await _until(lambda: loop.healthy, "the loop to recover")
    assert health.problems() == {}
    runner.stop()
    await task
    assert health.problems() == {"case-clocks": "未运行"}


async def test_clock_loop_that_cannot_recover_gives_up(chat: Chat,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    health = Health(give_up_seconds=0.0)
    _redis_away(monkeypatch)
    runner = ClockRunner(chat.deps, escalate.fire, health=health.loop("case-clocks"))
    with pytest.raises(LoopGaveUpError):
        await asyncio.wait_for(runner.run(), 10)
    assert health.gave_up.is_set()
