"""`gridbot demo`'s scenario runs end to end against the simulator and prints Chinese."""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from bot.cli.demo import STEPS, demo_settings, play
from bot.clock import make_clock
from tests.leakscan import find_leaks


async def test_demo_plays_every_step_as_expected(redis_url: str, redis: aioredis.Redis) -> None:
    lines: list[str] = []
    settings = demo_settings(None, redis_url)
    code = await play(settings, make_clock(60.0, time.time()), STEPS, lines.append)
    text = "\n".join(lines)
    assert code == 0, text
    assert "✗" not in text
    assert text.count("【第") == len(STEPS)
    assert "李警官（民警）可以使用以下命令" in text
    assert "处理 1 次，回复 1 次" in text
    assert "全部步骤符合预期" in text
    assert "采集 人口" in text and find_leaks(text) == []  # the narration masks input too
    assert "警务控制台：http://127.0.0.1:" in text and "/console/auth/link/" in text
