"""The console under load: 100 signed-in users on the synthetic city follow a live notice.

The whole synthetic 吕梁市 is loaded into the registry (an embedded redis-server) and the WeCom
simulator (served on loopback with realistic latency). `gridbot serve` runs as a subprocess
(--serves of them, users spread across them; no embedded worker) and a `gridbot worker`
subprocess delivers. Each user is a distinct 民警 of the county with the most groups, signed
in through a one-time sign-in link (the session cookie the console sets, as after WeCom
login). Every user loads the county overview and the notice's page, opens the notice's
live stream (SSE), and keeps reloading both pages while the notice is delivered.

Prints p50/p99 page time (overview, notice page, all pages) and the delay from a pair's state
change in Redis (the worker's publish, stamped with the wall clock) to its arrival in each
user's live stream. Goals: p99 page < 300 ms, live < 2 s.

    .venv/bin/python bench/console.py [--users 100] [--serves 1] [--seconds 40] [--speed 10]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import random
import re
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.broadcast import (  # noqa: E402
    Simulated,
    load,
    settings_for,
    stop_workers,
    subprocess_env,
    wait_alive,
)
from bot.audit import AuditLog  # noqa: E402
from bot.clock import Clock  # noqa: E402
from bot.keys import Keys  # noqa: E402
from bot.redis import connect, free_port, redis_url_for  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.wecom.client import WeComClient  # noqa: E402
from broadcasts.deps import Runtime  # noqa: E402
from broadcasts.progress import percentile  # noqa: E402
from broadcasts.service import BroadcastService  # noqa: E402
from console.keys import ConsoleKeys  # noqa: E402
from console.sessions import SessionStore  # noqa: E402
from registry.city import City  # noqa: E402
from registry.models import Level, Person, Role  # noqa: E402
from registry.store import Registry  # noqa: E402
from registry.synthetic import generate_city  # noqa: E402

SINCE = re.compile(rb'\{"since": ([0-9.]+)')


@dataclass
class Tally:
    pages: dict[str, list[float]] = field(default_factory=lambda: {"overview": [], "notice": []})
    live: list[float] = field(default_factory=list)
    events: int = 0
    errors: list[str] = field(default_factory=list)
    cpu: float = 0.0  # CPU seconds the serve processes used while users followed the notice
    wall: float = 0.0


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time of processes (Linux /proc), in seconds."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    return total / os.sysconf("SC_CLK_TCK")


def busiest_county(city: City) -> str:
    counties = [n.code for n in city.nodes if n.level is Level.COUNTY]
    counts = {c: sum(1 for g in city.groups if g.node.startswith(c)) for c in counties}
    return max(counts, key=lambda c: counts[c])


def serve_env(settings: Settings, sim_base: str) -> dict[str, str]:
    key, blind = (base64.b64encode(secrets.token_bytes(32)).decode() for _ in range(2))
    return {**subprocess_env(settings), "GRIDBOT_BROADCAST__EMBEDDED_WORKER": "false",
            "GRIDBOT_SECURITY__FIELD_KEYS": f"k1:{key}",
            "GRIDBOT_SECURITY__BLIND_INDEX_KEY": blind,
            "GRIDBOT_CASES__EMBEDDED_CLOCKS": "false",
            "GRIDBOT_CONSOLE__SECURE_COOKIES": "false",
            "GRIDBOT_CONSOLE__QR_LOGIN_URL": sim_base + "/wwlogin/sso/login",
            "GRIDBOT_REGISTRY__WARM_CACHE_ON_START": "true"}


def start(args: list[str], env: dict[str, str], profile: str = "") -> subprocess.Popen[bytes]:
    prof = ["-m", "cProfile", "-o", profile] if profile else []
    return subprocess.Popen([sys.executable, *prof, "-m", "bot", "--settings",
                             str(ROOT / "settings.toml"), *args], env=env, cwd=ROOT)


async def wait_up(base: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(600):
            try:
                async with session.get(base + "/healthz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{base} did not start")


async def user(base: str, token: str, nid: int, stop: asyncio.Event, tally: Tally,
               think: float) -> None:
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        async with session.get(f"{base}/console/auth/link/{token}") as r:
            if r.status != 200:
                tally.errors.append(f"sign-in {r.status}")
                return
        live = asyncio.create_task(follow(session, base, nid, stop, tally))
        await asyncio.sleep(random.uniform(0, think))  # people do not click in step
        while not stop.is_set():
            for name, path in (("overview", "/console/"), ("notice", f"/console/notices/{nid}")):
                began = time.perf_counter()
                async with session.get(base + path) as r:
                    await r.read()
                    if r.status != 200:
                        tally.errors.append(f"{path} {r.status}")
                tally.pages[name].append(time.perf_counter() - began)
            with contextlib.suppress(TimeoutError):
                # a person reading the page before reloading it
                await asyncio.wait_for(stop.wait(), random.uniform(0.5, 1.5) * think)
        await live


async def follow(session: aiohttp.ClientSession, base: str, nid: int, stop: asyncio.Event,
                 tally: Tally) -> None:
    async with session.get(f"{base}/console/notices/{nid}/live",
                           timeout=aiohttp.ClientTimeout(total=None)) as r:
        waiting = asyncio.create_task(stop.wait())
        while not stop.is_set():
            reading = asyncio.create_task(r.content.readline())
            done, _ = await asyncio.wait({reading, waiting}, return_when=asyncio.FIRST_COMPLETED)
            if reading not in done:
                reading.cancel()
                break
            line = reading.result()
            if not line:
                break
            if line.startswith(b"data: "):
                found = SINCE.match(line, 6)  # the server puts `since` first
                if found and float(found.group(1)):
                    tally.live.append(time.time() - float(found.group(1)))
                tally.events += 1
        waiting.cancel()


def report(tally: Tally, users: int, groups: int, county: str, args: argparse.Namespace) -> None:
    def ms(values: list[float], q: float) -> str:
        v = percentile(sorted(values), q)
        return "—" if v is None else f"{v * 1000:.0f} ms"

    every = tally.pages["overview"] + tally.pages["notice"]
    print(f"\n控制台压测：{users} 名已登录用户，{args.serves} 个 serve 进程，"
          f"县 {county}（{groups} 个群）")
    for name, values in (("县概览", tally.pages["overview"]),
                         ("通知页", tally.pages["notice"]), ("全部页面", every)):
        print(f"  {name}：{len(values)} 次，p50 {ms(values, 0.5)}，p99 {ms(values, 0.99)}")
    print(f"  实时推送：{tally.events} 条事件，送达→页面延迟 p50 {ms(tally.live, 0.5)}，"
          f"p99 {ms(tally.live, 0.99)}，最大 {ms(tally.live, 1.0)}")
    print(f"  错误：{len(tally.errors)} {tally.errors[:3]}")
    served = len(every) or 1
    print(f"  serve 进程 CPU：{tally.cpu:.1f} s / {tally.wall:.0f} s 墙钟（占一个核的 "
          f"{tally.cpu / max(tally.wall, 1e-9):.0%}），含实时推送在内平均每次页面 "
          f"{tally.cpu / served * 1000:.1f} ms CPU；本机负载 {os.getloadavg()[0]:.1f}（2 核）")
    p99 = percentile(sorted(every), 0.99) or 0.0
    live99 = percentile(sorted(tally.live), 0.99) or 0.0
    print(f"  目标 p99 页面 < 300 ms：{'达成' if p99 < 0.3 else '未达成'}；"
          f"实时 < 2 s：{'达成' if live99 < 2 and tally.live else '未达成'}")


async def run(url: str, args: argparse.Namespace) -> None:
    city = generate_city()
    county = busiest_county(city)
    officers = [Person(f"mj_bench_{i:03d}", f"压测民警{i}", Role.OFFICER, (county,))
                for i in range(args.users)]
    city.people += officers
    clock = Clock(speed=args.speed, origin=time.time())
    async with Simulated(city, clock, seed=3) as sim:
        settings = settings_for(url, sim.api, clock)
        await load(settings, clock, city)
        redis = connect(url)
        keys = Keys(settings.redis.prefix)
        env = serve_env(settings, sim.api.removesuffix("/cgi-bin/"))
        ports = [free_port() for _ in range(args.serves)]
        procs = [start(["serve", "--port", str(p)], env, args.profile if i == 0 else "")
                 for i, p in enumerate(ports)]
        args.serve_pids = [p.pid for p in procs]
        procs.append(start(["worker", "--name", "bench0"], subprocess_env(settings)))
        try:
            bases = [f"http://127.0.0.1:{p}" for p in ports]
            for base in bases:
                await wait_up(base)
            async with aiohttp.ClientSession() as http:
                wecom = WeComClient(http, settings.wecom, redis, keys, clock)
                rt = Runtime.build(settings, redis, keys, clock, wecom,
                                   Registry(redis, keys, clock), AuditLog(redis, keys, clock))
                await rt.quota.set_known(city.quota_used)
                await wait_alive(rt, 1)
                await follow_notice(rt, redis, keys, bases, officers, county, city, args)
        finally:
            stop_workers(procs)
        await redis.aclose()


async def follow_notice(rt: Runtime, redis: object, keys: Keys, bases: Sequence[str],
                        officers: list[Person], county: str, city: City,
                        args: argparse.Namespace) -> None:
    service = BroadcastService(rt)
    name = next(n.name for n in city.nodes if n.code == county)
    preview = await service.issue_text(officers[0].userid,
                                       f"通知 紧急预警 范围：{name} 内容：压测通知，请勿转发。")
    assert preview.ok and preview.notice_id is not None, preview.text
    nid = preview.notice_id
    sessions = SessionStore(rt.redis, ConsoleKeys(keys), idle_seconds=3600, max_seconds=3600)
    tokens = [await sessions.new_link(p.userid) for p in officers]
    tally, stop = Tally(), asyncio.Event()
    tasks = [asyncio.create_task(user(bases[i % len(bases)], t, nid, stop, tally, args.think))
             for i, t in enumerate(tokens)]
    await asyncio.sleep(3)  # everyone signed in, on the page, stream open
    confirmed = await service.confirm(officers[0].userid, nid)
    assert confirmed.ok, confirmed.text
    cpu_before, wall_before = cpu_seconds(args.serve_pids), time.monotonic()
    await asyncio.sleep(args.seconds)
    stop.set()
    await asyncio.gather(*tasks)
    tally.cpu = cpu_seconds(args.serve_pids) - cpu_before
    tally.wall = time.monotonic() - wall_before
    groups = len(await rt.plans.groups(nid))
    report(tally, len(officers), groups, f"{name} {county}", args)


async def main(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory() as tmp, redis_url_for("", Path(tmp)) as url:
        await run(url, args)
    return 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100, help="同时在线的已登录用户数")
    parser.add_argument("--serves", type=int, default=1, help="gridbot serve 进程数")
    parser.add_argument("--seconds", type=float, default=40.0, help="确认发送后观察的真实秒数")
    parser.add_argument("--speed", type=float, default=10.0, help="时钟加速倍数")
    parser.add_argument("--profile", default="",
                        help="把第一个 serve 进程的 cProfile 结果写到此文件")
    parser.add_argument("--think", type=float, default=5.0,
                        help="每个用户两次刷新之间的真实秒数（看页面的时间）")
    return parser.parse_args(argv)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(asyncio.run(main(parse_args())))
