"""The embedded redis-server: a real server with AOF persistence that survives a restart."""

from __future__ import annotations

from pathlib import Path

import redis

from bot.clock import Clock, make_clock
from bot.redis import EmbeddedRedis


def test_embedded_server_persists_across_restart(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "r", appendfsync="always")
    url = server.start()
    redis.Redis.from_url(url).set("gridbot:probe", "持久")
    server.stop()
    again = EmbeddedRedis(tmp_path / "r")
    url = again.start()
    try:
        assert redis.Redis.from_url(url).get("gridbot:probe") == "持久".encode()
        assert (tmp_path / "r").exists()
    finally:
        again.stop()


def test_clock_speed_and_origin_agree_between_instances() -> None:
    a = Clock(speed=60, origin=1_000.0)
    b = make_clock(60, 1_000.0)
    assert abs(a.now() - b.now()) < 1.0
    assert a.real(60) == 1.0
    assert make_clock(1.0, 0).speed == 1.0
