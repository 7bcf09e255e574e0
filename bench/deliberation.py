"""Benchmark: 1,000 households voting through the page, with real HTTP, within one minute.

A village of 1,000 households (one adult head each, typed into 一标三实 through collect's own
service) gets a matter; every household's signed link is opened (GET: the page and its CSRF
value) and voted (POST) by an aiohttp client against TWO page-server processes (links
alternate between them, as behind a load balancer), `--concurrency` at a time. Then the
matter is closed and the count checked: every vote counted once, turnout = entries = 1,000,
the counts equal what was sent, a second POST of every 10th link refused.

    .venv/bin/python bench/deliberation.py [--households 1000] [--concurrency 50]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import multiprocessing
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot import appkeys
from bot.audit import AuditLog
from bot.clock import Clock
from bot.keys import Keys
from bot.redis import EmbeddedRedis, connect, free_port
from bot.settings import Settings, load_settings
from collect.access import Actor
from collect.models import RecordKind
from collect.results import Outcome, Submission
from collect.service import CollectService
from deliberation import announce
from deliberation.deps import DelibDeps
from deliberation.service import MatterDraft, MatterService
from registry.models import Level, Node, Person, Role
from registry.store import Registry

ROOT = Path(__file__).resolve().parent.parent
VILLAGE, GRIDS = "141181001001", 10
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def environment(redis_url: str) -> dict[str, str]:
    return {
        "GRIDBOT_REDIS__URL": redis_url, "GRIDBOT_WECOM__CORP_ID": "wwbench",
        "GRIDBOT_WECOM__SECRET": "bench", "GRIDBOT_WECOM__AGENT_ID": "1",
        "GRIDBOT_WECOM__TOKEN": "bench", "GRIDBOT_WECOM__ENCODING_AES_KEY": "a" * 43,
        "GRIDBOT_SECURITY__FIELD_KEYS": f"k1:{base64.b64encode(os.urandom(32)).decode()}",
        "GRIDBOT_SECURITY__BLIND_INDEX_KEY": base64.b64encode(os.urandom(32)).decode(),
    }


def settings_from(env: dict[str, str]) -> Settings:
    return load_settings(ROOT / "settings.toml", env)


def deps_of(settings: Settings) -> DelibDeps:
    redis, keys, clock = connect(settings.redis.url), Keys(settings.redis.prefix), Clock()
    return DelibDeps.build(redis, keys, clock, settings, Registry(redis, keys, clock),
                           AuditLog(redis, keys, clock), None)


def id_number(n: int) -> str:
    body = f"142326{1960 + n % 40:04d}{1 + n % 12:02d}{1 + n % 28:02d}{n % 1000:03d}"
    total = sum(int(d) * w for d, w in zip(body, _WEIGHTS, strict=True))
    return body + "10X98765432"[total % 11]


async def seed(deps: DelibDeps, households: int) -> None:
    registry = deps.registry
    for node in (Node("141100", "吕梁市", Level.CITY), Node("141181", "孝义市", Level.COUNTY,
                                                              "141100"),
                 Node("141181001", "新义街道", Level.TOWNSHIP, "141181"),
                 Node(VILLAGE, "东关村", Level.VILLAGE, "141181001"),
                 *(Node(f"{VILLAGE}-G{g:02d}", f"东关{g}网格", Level.GRID, VILLAGE)
                   for g in range(1, GRIDS + 1))):
        await registry.upsert_node(node)
    await registry.upsert_person(Person("officer", "民警", Role.OFFICER, ("141181001",)))
    for g in range(1, GRIDS + 1):
        await registry.upsert_person(Person(f"w{g}", f"网格员{g}", Role.GRID_WORKER,
                                            (f"{VILLAGE}-G{g:02d}",)))
    service, gate = CollectService(deps.collect), asyncio.Semaphore(16)

    async def one(n: int) -> None:
        grid = 1 + n % GRIDS
        values = {"name": "王某", "id_number": id_number(n), "phone": f"139{n:08d}",
                  "address": f"东关{grid}巷{n}号", "population_type": "常住",
                  "relation": "户主"}
        async with gate:
            result = await service.submit(Submission(
                RecordKind.PERSON, values, Actor.staff(f"w{grid}"), "bench", confirmed=True,
                override=True))
        assert result.outcome is Outcome.STORED, result

    await asyncio.gather(*(one(n) for n in range(1, households + 1)))


def serve(env: dict[str, str], port: int) -> None:
    """A page-server process: the deliberation routes on `port`."""
    import deliberation.web

    async def main() -> None:
        settings = settings_from(env)
        deps = deps_of(settings)
        app = web.Application()
        app[appkeys.redis], app[appkeys.keys], app[appkeys.clock] = deps.redis, \
            deps.base_keys, deps.clock
        app[appkeys.settings], app[appkeys.registry] = settings, deps.registry
        app[appkeys.audit] = deps.audit
        deliberation.web.setup_routes(app)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await asyncio.Event().wait()

    asyncio.run(main())


async def ready(ports: list[int], timeout: float = 120.0) -> None:
    """Wait until every page server answers (spawned processes import for a while)."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        for port in ports:
            while True:
                try:
                    async with http.get(f"http://127.0.0.1:{port}/receipt"):
                        break
                except aiohttp.ClientConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.2)


async def vote_all(urls: list[str], concurrency: int) -> tuple[float, list[int], int]:
    gate = asyncio.Semaphore(concurrency)
    sent = [0, 0, 0]
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        async def one(n: int, url: str) -> None:
            option = n % 3
            async with gate:
                async with http.get(url) as page:
                    body = await page.text()
                    assert page.status == 200, body
                csrf = re.search(r'name="csrf" value="([^"]+)"', body)
                assert csrf
                async with http.post(url, data={"option": str(option),
                                                "csrf": csrf.group(1)}) as answer:
                    assert answer.status == 200 and "投票成功" in await answer.text()
                sent[option] += 1

        started = time.perf_counter()
        await asyncio.gather(*(one(n, u) for n, u in enumerate(urls)))
        elapsed = time.perf_counter() - started
        refused = 0
        for url in urls[::10]:  # the same link again: refused, nothing counted
            async with http.get(url) as page:
                refused += page.status == 409
    return elapsed, sent, refused


async def run(households: int, concurrency: int, redis_url: str, env: dict[str, str]) -> int:
    settings = settings_from(env)
    deps = deps_of(settings)
    await deps.redis.flushdb()
    started = time.perf_counter()
    await seed(deps, households)
    print(f"一标三实：{households} 户录入 {time.perf_counter() - started:.1f} s")
    service = MatterService(deps)
    reply = await service.open("officer", MatterDraft(VILLAGE, "修建村口道路"))
    assert reply.ok, reply.text
    matter = await deps.matters.get(reply.matter_id)
    assert matter is not None and matter.eligible == households, matter
    ports = [free_port(), free_port()]
    context = multiprocessing.get_context("spawn")
    servers = [context.Process(target=serve, args=(env, port), daemon=True) for port in ports]
    for process in servers:
        process.start()
    try:
        await ready(ports)
        urls = []
        for n, voter in enumerate(await deps.matters.roll(matter.id)):
            url = announce.vote_url(deps, matter, voter.vid)
            urls.append(f"http://127.0.0.1:{ports[n % 2]}{url[url.index('/vote/'):]}")
        elapsed, sent, refused = await vote_all(urls, concurrency)
    finally:
        for process in servers:
            process.terminate()
    closed = await service.close("officer", matter.id)
    result = (await deps.matters.get(matter.id)).result  # type: ignore[union-attr]
    ok = (result["present"] == households and result["counts"] == sent and
          result["entries"] == households and refused == len(urls[::10]) and
          await service.verify_stored(matter.id))
    print(f"{households} 户经页面投票（GET+POST，2 个页面进程，并发 {concurrency}）："
          f"{elapsed:.1f} s，{households / elapsed:.0f} 票/秒")
    print(f"计票：到会 {result['present']}，各选项 {result['counts']}（发送 {sent}），"
          f"选票记录 {result['entries']} 条，重复投票 {refused}/{len(urls[::10])} 被拒，"
          f"链校验{'通过' if await service.verify_stored(matter.id) else '失败'}")
    print(closed.text.splitlines()[0])
    print("结论：" + ("每票计一次，" if ok else "计票不符！") +
          ("一分钟内完成" if elapsed < 60 else "超过一分钟"))
    await deps.redis.aclose()
    return 0 if ok and elapsed < 60 else 1


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--households", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp))
        server.start()
        try:
            return asyncio.run(run(args.households, args.concurrency, server.url,
                                   environment(server.url)))
        finally:
            server.stop()


if __name__ == "__main__":
    raise SystemExit(main())
