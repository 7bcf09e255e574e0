"""Cases under load on the synthetic city: 1,000 cases a simulated minute for ten minutes.

The synthetic 吕梁市 (its grids, police, grid workers, township supervisors) is loaded into the
registry (an embedded redis-server) and into the WeCom simulator, served over HTTP on loopback.
Grid workers report (`上报 …`, 60 %) and residents write to 微信客服 (40 %: each enters
through its grid's link in the simulator, then writes; the KfMessage with the simulator's
msgid is dispatched straight to the routers — the callback → sync_msg intake in front of it
is measured by bench/kf_intake.py), all through the production routers (handlers.ROUTERS).
Acknowledgements to residents go out by kf/send_msg under the simulator's 微信客服 rules.
Simulated officers read their 1:1 notices in the simulator and behave like people: 70 % take
the case (接单) within 1–4 min, 20 % within 4–40 min (past an urgent limit), 10 % never — so
the clocks escalate. Two ClockRunners share the clocks.

Prints: sustained intake (cases per simulated minute), p50/p99 from the start of handling a
message to the officer's 1:1 notice accepted by the simulator (real ms), the clocks' error
against their due times (simulated s; goal ≤ 5 s), escalations, and peak RSS.

    .venv/bin/python bench/cases.py [--rate 1000] [--minutes 10] [--speed 10] [--workers 32]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import itertools
import random
import resource
import secrets
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.audit import AuditLog  # noqa: E402
from bot.clock import make_clock  # noqa: E402
from bot.context import Context  # noqa: E402
from bot.events import Event, KfMessage, TextMessage  # noqa: E402
from bot.keys import Keys  # noqa: E402
from bot.redis import connect, free_port, redis_url_for  # noqa: E402
from bot.router import dispatch  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from bot.wecom.client import WeComClient  # noqa: E402
from bot.wecom.simulator import LatencyConfig, SimConfig, WeComSimulator  # noqa: E402
from cases import escalate  # noqa: E402
from cases.clocks import ClockRunner  # noqa: E402
from cases.deps import CasesDeps  # noqa: E402
from cases.service import BadInput, CaseService, Refused  # noqa: E402
from handlers import ROUTERS  # noqa: E402
from registry.models import Role  # noqa: E402
from registry.store import Registry  # noqa: E402
from registry.synthetic import generate_city  # noqa: E402

PROBLEMS = ("楼道堆放杂物堵塞消防通道", "小区门口车辆乱停占道", "邻里因噪音争吵",
            "有陌生人挨家敲门推销", "路灯损坏夜间很黑", "老人走失家属求助", "电动车在楼道充电",
            "有人持刀闹事")


def _key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="gridbot-bench-cases-") as tmp, \
            redis_url_for("", Path(tmp) / "redis") as url:
        await run(args, url)


async def run(args: argparse.Namespace, url: str) -> None:
    port = free_port()
    env = {"GRIDBOT_WECOM__CORP_ID": "wwbench", "GRIDBOT_WECOM__SECRET": "s" * 20,
           "GRIDBOT_WECOM__AGENT_ID": "1000002", "GRIDBOT_WECOM__TOKEN": "benchtoken",
           "GRIDBOT_WECOM__ENCODING_AES_KEY": "a" * 43, "GRIDBOT_REDIS__URL": url,
           "GRIDBOT_SECURITY__FIELD_KEYS": f"k1:{_key()}",
           "GRIDBOT_SECURITY__BLIND_INDEX_KEY": _key(),
           "GRIDBOT_WECOM__API_BASE_URL": f"http://127.0.0.1:{port}/cgi-bin/"}
    settings = load_settings(ROOT / "settings.toml", env)
    clock = make_clock(args.speed, time.time())
    redis, keys = connect(url), Keys(settings.redis.prefix)
    city = generate_city(seed=2024)
    registry = Registry(redis, keys, clock)
    await registry.upsert_nodes(city.nodes)
    await registry.upsert_people(city.people)
    sim = WeComSimulator(SimConfig.from_settings(
        settings, clock, latency=LatencyConfig.none(), member_app_messages_per_minute=1_000_000,
        member_app_messages_per_hour=10_000_000, api_calls_per_minute=10_000_000,
        api_calls_per_hour=100_000_000))
    city.load_into_simulator(sim)
    open_kfid = sim.add_kf_account("社区警务")
    runner = web.AppRunner(sim.app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    workers = [p for p in city.people if p.role is Role.GRID_WORKER and p.nodes]
    police = {p.userid for p in city.people if p.role in (Role.OFFICER, Role.AUXILIARY)}
    rng = random.Random(7)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)) as session:
        client = WeComClient(session, settings.wecom, redis, keys, clock)
        audit = AuditLog(redis, keys, clock)
        ctx = Context(settings=settings, redis=redis, keys=keys, clock=clock, wecom=client,
                      audit=audit, registry=registry, routers=ROUTERS)
        deps = CasesDeps.build(redis, keys, clock, settings, registry, audit, client)
        runners = [ClockRunner(deps, escalate.fire) for _ in range(2)]
        clock_tasks = [asyncio.create_task(r.run()) for r in runners]
        latencies: list[float] = []
        made = itertools.count(1)
        ids = itertools.count(1)
        sem = asyncio.Semaphore(args.workers)
        residents: dict[str, str] = {}

        async def handle(event: Event, timed: bool) -> None:
            async with sem:
                t0 = time.perf_counter()
                await dispatch(ROUTERS, event, replace(ctx, source=event.dedupe_key))
                if timed:
                    latencies.append((time.perf_counter() - t0) * 1000)
                    next(made)

        async def one(i: int) -> None:
            text = rng.choice(PROBLEMS) + f"（{i}）"
            now = int(clock.now())
            if rng.random() < 0.6:
                worker = rng.choice(workers)
                await handle(TextMessage(sender=worker.userid, create_time=now,
                                         content=f"上报 {text}", msg_id=f"t{i}"), True)
                return
            resident = f"wmR{rng.randrange(50_000):05d}"
            if resident not in residents:
                residents[resident] = scene = rng.choice(workers).nodes[0]
                sim.state.kf.add_link(open_kfid, scene)
                entered = await sim.kf_resident_enter(scene, resident, deliver=False)
                await handle(KfMessage(sender=resident, create_time=now, open_kfid=open_kfid,
                                       msgid=entered.msgid, origin=4, msgtype="event",
                                       event_type="enter_session", scene=scene), False)
            said = await sim.kf_resident_says(resident, text, open_kfid=open_kfid,
                                              deliver=False)
            await handle(KfMessage(sender=resident, create_time=now, open_kfid=open_kfid,
                                   msgid=said.msgid, msgtype="text", content=text), True)

        seen: set[str] = set()
        timers: list[asyncio.TimerHandle] = []

        async def officers() -> None:
            svc = CaseService(deps, source="bench")
            cursor = 0
            while True:
                records = sim.records.deliveries
                for d in records[cursor:]:
                    if d.target in police and "【新事件 " in d.content:
                        number = d.content.split("【新事件 ")[1].split("】")[0]
                        if (d.target, number) in seen or number in seen:
                            continue
                        seen.add(number)
                        roll = rng.random()
                        if roll < 0.1:
                            continue
                        delay = rng.uniform(60, 240) if roll < 0.8 else rng.uniform(240, 2400)
                        timers.append(asyncio.get_running_loop().call_later(
                            clock.real(delay), lambda n=number, u=d.target: asyncio.ensure_future(
                                take(svc, u, n))))
                cursor = len(records)
                await asyncio.sleep(0.2)

        async def take(svc: CaseService, userid: str, number: str) -> None:
            with contextlib.suppress(Refused, BadInput):
                await svc.accept(userid, number)

        watcher = asyncio.create_task(officers())
        total = int(args.rate * args.minutes)
        start_sim, start_real = clock.now(), time.perf_counter()
        tasks: list[asyncio.Task[None]] = []
        for i in range(total):
            due = start_sim + i * 60.0 / args.rate
            wait = clock.real(due - clock.now())
            if wait > 0:
                await asyncio.sleep(wait)
            tasks.append(asyncio.create_task(one(next(ids))))
        await asyncio.gather(*tasks)
        elapsed_sim = clock.now() - start_sim
        real = time.perf_counter() - start_real
        created = next(made) - 1
        # let escalations due in the run's window fire, then stop
        await asyncio.sleep(clock.real(settings.cases.respond_urgent_seconds + 30))
        for r in runners:
            r.stop()
        await asyncio.gather(*clock_tasks)
        watcher.cancel()
        for timer in timers:
            timer.cancel()
        errors = [e for r in runners for e in r.lateness]
        escalated = sum(1 for d in sim.records.deliveries if "【超时升级 " in d.content)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"城市：{len(city.nodes)} 个节点，{len(workers)} 名网格员，"
              f"{len(police)} 名民警辅警；倍速 {args.speed:g}")
        print(f"事件：{created} 件，模拟 {elapsed_sim / 60:.1f} 分钟（实际 {real:.0f} 秒）："
              f"持续受理 {created / (elapsed_sim / 60):.0f} 件/模拟分钟（目标 {args.rate}）")
        print(f"消息→民警 1:1 通知（实测毫秒）：p50 {pct(latencies, 0.5):.0f}，"
              f"p99 {pct(latencies, 0.99):.0f}，最大 {max(latencies):.0f}")
        if errors:
            print(f"时钟：触发 {len(errors)} 次，误差（模拟秒）中位数 "
                  f"{statistics.median(errors):.2f}，p99 {pct(errors, 0.99):.2f}，"
                  f"最大 {max(errors):.2f}（目标 ≤ 5 秒）")
        print(f"超时升级通知：{escalated} 条；峰值内存 {peak:.0f} MB")
    await runner.cleanup()
    await sim.close()
    await redis.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000.0, help="每模拟分钟事件数")
    parser.add_argument("--minutes", type=float, default=10.0, help="模拟分钟数")
    parser.add_argument("--speed", type=float, default=10.0, help="模拟时钟倍速")
    parser.add_argument("--workers", type=int, default=32, help="并发处理的消息数")
    asyncio.run(main(parser.parse_args()))
