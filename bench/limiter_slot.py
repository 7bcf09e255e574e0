"""Is the limiter's one slot a bottleneck? Grants per second against the corp's ceilings.

The limiter's buckets (per corp: API calls per minute and per hour, appchat person-times,
robots, member messages) share the `{rl}` hash tag, so they live on one Redis (one cluster
primary). This runs the real limiter script (broadcasts/limiter.py) as a send does — the
per-minute and per-hour API buckets in one all-or-nothing grant — from `--callers`
concurrent callers until the hour bucket's log holds `--grants` entries (the log a full hour
at the ceiling leaves), then prints grants per second, Redis CPU per grant (INFO
commandstats), and how much of one core the slot would spend at WeCom's ceiling of
api_calls_per_minute (settings.toml). WeCom's ceilings, not the slot, bound the fleet when
the ratio is far above 1.

    .venv/bin/python bench/limiter_slot.py [--grants 150000] [--callers 64] [--engine cluster]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.clock import Clock  # noqa: E402
from bot.cluster import EmbeddedCluster  # noqa: E402
from bot.keys import Keys  # noqa: E402
from bot.redis import EmbeddedRedis, cluster_of, connect  # noqa: E402
from bot.settings import CeilingSettings  # noqa: E402
from broadcasts.keys import BroadcastKeys  # noqa: E402
from broadcasts.limiter import Rate, RateLimiter  # noqa: E402

BIG = 10**9  # never refuse: measure the script, not the ceiling


async def run(url: str, args: argparse.Namespace) -> None:
    redis = connect(url)
    await redis.flushdb()
    clock = Clock()
    limiter = RateLimiter(redis, BroadcastKeys(Keys("bench")), clock)
    rates = [Rate("api:minute", BIG, 60.0), Rate("api:hour", BIG, 3600.0)]
    per_caller = args.grants // args.callers

    async def caller() -> None:
        for _ in range(per_caller):
            assert (await limiter.take(rates)).wait == 0.0

    await redis.config_resetstat()
    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(args.callers)))
    seconds = time.perf_counter() - started
    grants = per_caller * args.callers
    usec = await usec_per_call(redis, BroadcastKeys(Keys("bench")).limiter_seq())
    ceiling = CeilingSettings().api_calls_per_minute / 60
    print(f"授权 {grants} 次，{seconds:.1f} 秒：{grants / seconds:,.0f} 次/秒"
          f"（{args.callers} 个并发调用方，引擎 {args.engine}）")
    print(f"Redis 每次授权耗 CPU {usec:.1f} µs（EVALSHA，INFO commandstats）")
    print(f"企业微信上限 {ceiling:.0f} 次调用/秒 时，该槽位占用一个核心的 "
          f"{ceiling * usec / 1e6:.2%}；本机客户端可达速率是上限的 "
          f"{grants / seconds / ceiling:.0f} 倍")
    await redis.aclose()


async def usec_per_call(redis: Redis, key: str) -> float:
    """EVALSHA's usec_per_call on the node holding `key` (one server: that server)."""
    cluster = cluster_of(redis)
    if cluster is None:
        stats: Any = await redis.info("commandstats")
    else:
        node = cluster.get_node_from_key(key)
        stats = await cluster.info("commandstats", target_nodes=node)
    return float(stats["cmdstat_evalsha"]["usec_per_call"])


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = (EmbeddedCluster(Path(tmp)) if args.engine == "cluster"
                  else EmbeddedRedis(Path(tmp), appendfsync="everysec"))
        url = server.start()
        try:
            await run(url, args)
        finally:
            server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grants", type=int, default=150_000)
    parser.add_argument("--callers", type=int, default=64)
    parser.add_argument("--engine", choices=("single", "cluster"), default="single")
    asyncio.run(main(parser.parse_args()))
