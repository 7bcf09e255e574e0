"""Burst of valid encrypted callbacks at a running bot: how fast does it acknowledge?

The bot (create_app, inbox consumer included) is served in this process on loopback with an
embedded redis-server; the load generator runs in a separate process so that its CPU does not
count against the bot. Every request is a distinct, correctly signed text callback.

    .venv/bin/python bench/callback_burst.py --n 500 --concurrency 500

Prints ack latency p50/p99/max, ack throughput, and how long the consumer took to handle all.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot import appkeys  # noqa: E402
from bot.app import create_app  # noqa: E402
from bot.context import Context  # noqa: E402
from bot.events import TextMessage  # noqa: E402
from bot.inbox import handled_records  # noqa: E402
from bot.log import setup_logging  # noqa: E402
from bot.redis import free_port, redis_url_for  # noqa: E402
from bot.router import Router  # noqa: E402
from bot.settings import Settings, load_settings  # noqa: E402
from bot.wecom.crypto import WeComCrypto  # noqa: E402

Request = tuple[dict[str, str], bytes]
RUN_CONSUMER = False


def bench_settings(redis_url: str, port: int) -> Settings:
    aes = base64.b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    env = {"GRIDBOT_WECOM__CORP_ID": "wwbenchcorp0001", "GRIDBOT_WECOM__AGENT_ID": "1000002",
           "GRIDBOT_WECOM__SECRET": "bench-secret", "GRIDBOT_WECOM__TOKEN": secrets.token_hex(8),
           "GRIDBOT_WECOM__ENCODING_AES_KEY": aes, "GRIDBOT_REDIS__URL": redis_url,
           "GRIDBOT_SERVER__PORT": str(port), "GRIDBOT_LOG__LEVEL": "WARNING"}
    return load_settings(ROOT / "settings.toml", env)


def build_requests(settings: Settings, n: int) -> list[Request]:
    wecom = settings.wecom
    crypto = WeComCrypto(wecom.token.get_secret_value(), wecom.encoding_aes_key.get_secret_value(),
                         wecom.corp_id)
    now, out = int(time.time()), []
    for i in range(n):
        xml = (f"<xml><ToUserName><![CDATA[{wecom.corp_id}]]></ToUserName>"
               f"<FromUserName><![CDATA[user{i % 300}]]></FromUserName>"
               f"<CreateTime>{now}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
               f"<Content><![CDATA[第 {i} 条]]></Content><MsgId>{9 * 10**17 + i}</MsgId>"
               f"<AgentID>1000002</AgentID></xml>")
        sealed = crypto.encrypt(xml, timestamp=now)
        out.append((sealed.query(), crypto.callback_body(sealed, 1000002)))
    return out


def quiet_router() -> Router:
    router = Router("bench")

    @router.message()
    async def handle(event: TextMessage, ctx: Context) -> None:
        return None

    return router


async def fire(url: str, requests: list[Request], concurrency: int) -> tuple[list[float], float, int]:
    """(latencies in s, wall time in s, non-200 count)."""
    gate = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        async def one(request: Request) -> tuple[float, int]:
            async with gate:
                started = time.perf_counter()
                async with http.post(url, params=request[0], data=request[1]) as response:
                    await response.read()
                return time.perf_counter() - started, response.status

        warm = requests[:20]
        await asyncio.gather(*(one(r) for r in warm))
        started = time.perf_counter()
        results = await asyncio.gather(*(one(r) for r in requests[20:]))
        wall = time.perf_counter() - started
    return [r[0] for r in results], wall, sum(1 for r in results if r[1] != 200)


def client_process(url: str, requests: list[Request], concurrency: int, out: str) -> None:
    latencies, wall, bad = asyncio.run(fire(url, requests, concurrency))
    Path(out).write_text(json.dumps({"latencies": latencies, "wall": wall, "bad": bad}))


async def run_bench(n: int, concurrency: int, redis_url: str) -> None:
    port = free_port()
    settings = bench_settings(redis_url, port)
    app = create_app(settings, [quiet_router()], run_scheduler=False, run_consumer=RUN_CONSUMER)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=4096).start()
    requests = build_requests(settings, n + 20)
    url = f"http://127.0.0.1:{port}{settings.callback.path}"
    try:
        with tempfile.NamedTemporaryFile(suffix=".json") as result:
            proc = multiprocessing.get_context("spawn").Process(
                target=client_process, args=(url, requests, concurrency, result.name))
            proc.start()
            await asyncio.to_thread(proc.join)
            data = json.loads(Path(result.name).read_text())
        handled_at = await wait_handled(app, n + 20)
    finally:
        await runner.cleanup()
    report(n, concurrency, data, handled_at)


async def wait_handled(app: web.Application, total: int) -> float:
    started = time.perf_counter()
    while len(await handled_records(app[appkeys.redis], app[appkeys.keys], count=total + 10)
              ) < total:
        if time.perf_counter() - started > 60:
            return float("nan")
        await asyncio.sleep(0.05)
    return time.perf_counter() - started


def report(n: int, concurrency: int, data: dict[str, float | list[float] | int],
           handled_after: float) -> None:
    latencies = sorted(float(x) * 1000 for x in data["latencies"])  # type: ignore[union-attr]
    wall = float(data["wall"])  # type: ignore[arg-type]
    p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)]
    print(f"回调突发：{n} 条，并发 {concurrency}（机器人进程内服务 + 内置 Redis，压测客户端独立进程）")
    print(f"  确认延迟 p50 {statistics.median(latencies):.1f} ms · p99 {p99:.1f} ms · "
          f"最大 {latencies[-1]:.1f} ms")
    print(f"  确认吞吐 {n / wall:.0f} 条/秒（{wall:.2f} 秒内全部确认），非 200 应答 {data['bad']} 条")
    print(f"  全部处理完毕：确认结束后再过 {handled_after:.2f} 秒")


def main() -> None:
    parser = argparse.ArgumentParser(description="回调突发压测")
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=500)
    args = parser.parse_args()
    setup_logging("WARNING")
    with tempfile.TemporaryDirectory(prefix="gridbot-bench-") as tmp, \
            redis_url_for("", Path(tmp) / "redis") as url:
        asyncio.run(run_bench(args.n, args.concurrency, url))


if __name__ == "__main__":
    main()
