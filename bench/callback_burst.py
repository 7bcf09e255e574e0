"""Burst of valid encrypted callbacks at a running bot: how fast does it acknowledge?

The bot (create_app, inbox consumer included) is served in this process on loopback with an
embedded redis-server; the load generator runs in a separate process so that its CPU does not
count against the bot. Every request is a distinct, correctly signed text callback.

    .venv/bin/python bench/callback_burst.py --n 500 --concurrency 500

Prints ack latency p50/p99/max, ack throughput, and how long the consumer took to handle all.
`--appendfsync always,everysec` runs the burst once per AOF fsync policy of the embedded
server (a fresh server each) and prints the comparison: the cost of "acknowledged to WeCom
means on disk" (redis.appendfsync = "always").
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
RUN_CONSUMER = True


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


class Connection:
    """One keep-alive HTTP/1.1 connection speaking just enough of the protocol."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def exchange(self, raw: bytes) -> tuple[int, float]:
        """Send one request; (status, seconds until the whole response was read)."""
        started = time.perf_counter()
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = int(next((line.split(b":", 1)[1] for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), b"0"))
        if length:
            await self.reader.readexactly(length)
        return int(head.split(b" ", 2)[1]), time.perf_counter() - started


def render(host: str, port: int, path: str, request: Request) -> bytes:
    query, body = request
    target = path + "?" + "&".join(f"{k}={v}" for k, v in query.items())
    return (f"POST {target} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: text/xml\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def fire(url: str, requests: list[Request], concurrency: int
               ) -> tuple[list[float], float, int]:
    """(latencies in s, wall time in s, non-200 count) of a burst over open connections."""
    host, port_path = url.removeprefix("http://").split(":", 1)
    port, path = int(port_path.split("/", 1)[0]), "/" + port_path.split("/", 1)[1]
    raws = [render(host, port, path, r) for r in requests]
    connections = [Connection(*await asyncio.open_connection(host, port))
                   for _ in range(concurrency)]
    health = f"GET /healthz HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    await asyncio.gather(*(c.exchange(health) for c in connections))  # warm: accepted, alive
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for raw in raws:
        queue.put_nowait(raw)
    results: list[tuple[int, float]] = []

    async def worker(connection: Connection) -> None:
        while not queue.empty():
            results.append(await connection.exchange(queue.get_nowait()))

    started = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in connections))
    wall = time.perf_counter() - started
    for connection in connections:
        connection.writer.close()
    return [r[1] for r in results], wall, sum(1 for r in results if r[0] != 200)


def read_json(path: str) -> dict[str, float | list[float] | int]:
    data: dict[str, float | list[float] | int] = json.loads(Path(path).read_text())
    return data


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
    requests = build_requests(settings, n)
    url = f"http://127.0.0.1:{port}{settings.callback.path}"
    try:
        with tempfile.NamedTemporaryFile(suffix=".json") as result:
            proc = multiprocessing.get_context("spawn").Process(
                target=client_process, args=(url, requests, concurrency, result.name))
            proc.start()
            await asyncio.to_thread(proc.join)
            data = await asyncio.to_thread(read_json, result.name)
        handled_at = await wait_handled(app, n) if RUN_CONSUMER else float("nan")
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
    print(f"回调突发：{n} 条，并发 {concurrency}（机器人进程内服务 + 内置 Redis；"
          "压测客户端为独立进程中的精简 HTTP/1.1 客户端，连接预先建立）")
    print(f"  确认延迟 p50 {statistics.median(latencies):.1f} ms · p99 {p99:.1f} ms · "
          f"最大 {latencies[-1]:.1f} ms")
    print(f"  确认吞吐 {n / wall:.0f} 条/秒（{wall:.2f} 秒内全部确认），"
          f"非 200 应答 {data['bad']} 条")
    print(f"  全部处理完毕：确认结束后再过 {handled_after:.2f} 秒")


def main() -> None:
    parser = argparse.ArgumentParser(description="回调突发压测")
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=500)
    parser.add_argument("--appendfsync", default="everysec",
                        help="内置 Redis 的 AOF 刷盘策略；逗号分隔可比较，如 always,everysec")
    args = parser.parse_args()
    setup_logging("WARNING")
    for policy in args.appendfsync.split(","):
        print(f"== appendfsync {policy} ==")
        with tempfile.TemporaryDirectory(prefix="gridbot-bench-") as tmp, \
                redis_url_for("", Path(tmp) / "redis", appendfsync=policy) as url:
            asyncio.run(run_bench(args.n, args.concurrency, url))


if __name__ == "__main__":
    main()
