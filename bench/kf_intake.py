"""微信客服 intake under a steady stream of resident messages: callback → sync_msg → routers.

The WeCom simulator (loopback HTTP, realistic API latency) holds one 客服 account; simulated
residents enter through a group's link and write at --rate messages a minute for --seconds
real seconds, each message announced by its own encrypted kf_msg_or_event callback, a share
(--repeat-share) delivered three times as WeCom does when an answer is slow. The bot
(create_app with its inbox consumer, bot.kf's router and a handler that does one Redis write)
runs in this process on an embedded redis-server.

Prints sustained intake (messages dispatched per minute), p50/p99/max from the resident's
message to its dispatch, messages dispatched twice (must be 0) or never (must be 0),
sync_msg calls per message, and peak memory.

    .venv/bin/python bench/kf_intake.py [--rate 1000] [--seconds 60] [--residents 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import random
import resource
import secrets
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot import appkeys  # noqa: E402
from bot import kf as kf_intake  # noqa: E402
from bot.app import create_app  # noqa: E402
from bot.clock import REAL_TIME  # noqa: E402
from bot.context import Context  # noqa: E402
from bot.events import KfMessage  # noqa: E402
from bot.log import setup_logging  # noqa: E402
from bot.redis import free_port, redis_url_for  # noqa: E402
from bot.router import Router  # noqa: E402
from bot.settings import Settings, load_settings  # noqa: E402
from bot.wecom.simulator import LatencyConfig, SimConfig, WeComSimulator  # noqa: E402

LATENCY = LatencyConfig(median=0.060, p99=0.400)
TEXTS = ("楼道消防门坏了", "小区门口有可疑车辆", "邻居装修噪音太大", "看到通报上的人了",
         "路灯不亮", "有老人走失")


def bench_settings(redis_url: str, sim_port: int, bot_port: int) -> Settings:
    aes = base64.b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    env = {"GRIDBOT_WECOM__CORP_ID": "wwbenchcorp0001", "GRIDBOT_WECOM__AGENT_ID": "1000002",
           "GRIDBOT_WECOM__SECRET": "bench-secret", "GRIDBOT_WECOM__TOKEN": secrets.token_hex(8),
           "GRIDBOT_WECOM__ENCODING_AES_KEY": aes, "GRIDBOT_REDIS__URL": redis_url,
           "GRIDBOT_WECOM__API_BASE_URL": f"http://127.0.0.1:{sim_port}/cgi-bin/",
           "GRIDBOT_SERVER__PORT": str(bot_port), "GRIDBOT_LOG__LEVEL": "WARNING"}
    return load_settings(ROOT / "settings.toml", env)


class Tally:
    """When each message was said and when it was dispatched (in this process only)."""

    def __init__(self) -> None:
        self.said: dict[str, float] = {}
        self.dispatched: Counter[str] = Counter()
        self.latency: list[float] = []
        self.first = self.last = 0.0

    def router(self) -> Router:
        router = Router("bench-kf")

        @router.on(KfMessage)
        async def handle(event: KfMessage, ctx: Context) -> None:
            await ctx.redis.incr("bench:kf:handled")
            now = time.monotonic()
            self.dispatched[event.msgid] += 1
            if event.msgid in self.said and self.dispatched[event.msgid] == 1:
                self.latency.append(now - self.said[event.msgid])
                self.last = now

        return router


async def run(rate: float, seconds: float, residents: int, repeat_share: float,
              redis_url: str) -> None:
    sim_port, bot_port = free_port(), free_port()
    settings = bench_settings(redis_url, sim_port, bot_port)
    sim = WeComSimulator(SimConfig.from_settings(
        settings, REAL_TIME, latency=LATENCY,
        callback_url=f"http://127.0.0.1:{bot_port}{settings.callback.path}"))
    open_kfid = sim.add_kf_account("吕梁市社区警务")
    link = sim.kf_link(open_kfid, "bench-node")
    tally = Tally()
    app = create_app(settings, [kf_intake.router, tally.router()], run_scheduler=False)
    runners = []
    for application, port in ((sim.app, sim_port), (app, bot_port)):
        runner = web.AppRunner(application, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=4096).start()
        runners.append(runner)
    try:
        people = [f"wmbench{i:05d}" for i in range(residents)]
        for person in people:  # entered earlier; their enter_session is read with the rest
            await sim.kf_resident_enter(link, person, deliver=False)
        tally.said.clear()
        await drive(sim, tally, people, rate, seconds, repeat_share)
        await settle(tally, timeout=60.0)
        await app[appkeys.consumer].drain(10.0)
    finally:
        for runner in reversed(runners):
            await runner.cleanup()
    report(tally, rate, seconds, sim.calls("kf/sync_msg"), len(tally.said))


async def drive(sim: WeComSimulator, tally: Tally, people: list[str], rate: float,
                seconds: float, repeat_share: float) -> None:
    rng = random.Random(7)
    interval, started, sent = 60.0 / rate, time.monotonic(), 0
    tally.first = started
    tasks: set[asyncio.Task[None]] = set()

    async def one(person: str) -> None:
        said_at = time.monotonic()
        posted = await sim.kf_resident_says(person, rng.choice(TEXTS), deliver=False)
        tally.said[posted.msgid] = said_at
        await sim.deliver(posted.callback)
        if rng.random() < repeat_share:  # WeCom's retries of a slow answer
            await sim.deliver(posted.callback)
            await sim.deliver(posted.callback)

    while time.monotonic() - started < seconds:
        due = started + sent * interval
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        task = asyncio.create_task(one(rng.choice(people)))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        sent += 1
    await asyncio.gather(*tasks)


async def settle(tally: Tally, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(tally.dispatched[m] for m in tally.said):
            return
        await asyncio.sleep(0.1)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(len(ordered) * share + 0.5) - 1))]


def report(tally: Tally, rate: float, seconds: float, sync_calls: int, said: int) -> None:
    twice = sum(1 for m, n in tally.dispatched.items() if n > 1)
    never = sum(1 for m in tally.said if not tally.dispatched[m])
    span = max(tally.last - tally.first, 1e-9)
    lat = tally.latency or [float("nan")]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"微信客服接入：目标 {rate:.0f} 条/分钟，持续 {seconds:.0f} 秒，居民消息 {said} 条"
          "（模拟器回环 HTTP，接口延迟 p50 60 ms / p99 400 ms；机器人与内置 Redis 同进程）")
    print(f"  持续接入 {len(tally.latency) / span * 60:.0f} 条/分钟（首条发出至末条分发）；"
          f"从居民发出到分发 p50 {percentile(lat, 0.5) * 1000:.0f} ms · "
          f"p99 {percentile(lat, 0.99) * 1000:.0f} ms · 最大 {max(lat) * 1000:.0f} ms")
    print(f"  重复分发 {twice} 条，未分发 {never} 条；sync_msg 调用 {sync_calls} 次"
          f"（每条消息 {sync_calls / max(said, 1):.2f} 次）；峰值内存 {peak_mb:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description="微信客服接入压测")
    parser.add_argument("--rate", type=float, default=1000.0, help="居民消息/分钟")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--residents", type=int, default=2000)
    parser.add_argument("--repeat-share", type=float, default=0.05)
    args = parser.parse_args()
    setup_logging("WARNING")
    with tempfile.TemporaryDirectory(prefix="gridbot-bench-") as tmp, \
            redis_url_for("", Path(tmp) / "redis") as url:
        asyncio.run(run(args.rate, args.seconds, args.residents, args.repeat_share, url))


if __name__ == "__main__":
    main()
