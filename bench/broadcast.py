"""A police notice to the whole synthetic city: this engine against a naive sequential loop.

The full synthetic 吕梁市 (5,267 groups: customer groups, appchats, robots) is loaded into the
registry (an embedded redis-server) and into the WeCom simulator, served over HTTP on
loopback with realistic latency and WeCom's ceilings. The clock is sped up (--speed), so the
ten simulated minutes pass in a couple of real minutes.

1. Engine: `gridbot worker` subprocesses (--workers) deliver a city-wide 紧急预警 issued and
   confirmed by an officer through BroadcastService.
2. Naive loop: one API call after another through the same WeComClient (webhook_send,
   appchat_send, one add_msg_template per owner), as a simple wechatpy script would do; no
   owner notice, reminder or escalation.

Prints the floor the ceilings allow (broadcasts.planner.machine_floor, the function the
planner shows officers), the time until every machine-deliverable step is done (webhook and
appchat sends; task creation and the 1:1 owner notice for customer groups), API calls spent,
45009 answers, p50/p95/p99 per-group latency, the share delivered within ten minutes under
the default owner profile, and the ratio to the naive loop. Acceptance: machine steps within
1.2 × the floor, zero 45009.

`--groups N` replaces 吕梁市 by a synthetic city/province of N groups (registry.synthetic's
generator as bench/province.py uses it), `--engine cluster` runs on a three-master Redis
Cluster (bot.cluster.EmbeddedCluster), `--no-naive` skips the naive loop. When the floor is
beyond the ten minutes (hourly ceilings), the engine phase waits for the machine steps up to
twice the floor.

    .venv/bin/python bench/broadcast.py [--speed 5] [--workers 2] [--concurrency 64]
    .venv/bin/python bench/broadcast.py --groups 20000 --engine cluster --no-naive --speed 5
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.audit import AuditLog  # noqa: E402
from bot.clock import Clock  # noqa: E402
from bot.cluster import EmbeddedCluster  # noqa: E402
from bot.keys import Keys  # noqa: E402
from bot.redis import connect, free_port, redis_url_for  # noqa: E402
from bot.settings import Settings, load_settings  # noqa: E402
from bot.wecom.client import WeComClient  # noqa: E402
from bot.wecom.errors import WeComError  # noqa: E402
from bot.wecom.simulator import LatencyConfig, SimConfig, WeComSimulator  # noqa: E402
from broadcasts.content import has_marker  # noqa: E402
from broadcasts.deps import Runtime  # noqa: E402
from broadcasts.planner import demand_of, fmt_duration, machine_floor  # noqa: E402
from broadcasts.progress import percentile  # noqa: E402
from broadcasts.service import BroadcastService  # noqa: E402
from registry.city import City  # noqa: E402
from registry.models import DeliveryKind, Group, Person, Role  # noqa: E402
from registry.store import Registry  # noqa: E402
from registry.synthetic import generate_city, load_into_simulator  # noqa: E402

OFFICER = "mj_city_bench"
TEXT = ("通知 紧急预警 范围：吕梁市 内容：近期冒充公检法电信诈骗高发，"
        "任何要求转账到“安全账户”的都是诈骗！")
NAIVE_MARK = "（警务通知编号 #900001）"
LATENCY = LatencyConfig(median=0.060, p99=0.400)


@dataclass
class Run:
    name: str
    started: float = 0.0
    machine_done: float | None = None
    calls: int = 0
    rate_limited: int = 0
    latencies: list[float] = field(default_factory=list)
    groups: int = 0
    missing_steps: int = 0

    @property
    def machine(self) -> float:
        return (self.machine_done or float("nan")) - self.started

    def within(self, seconds: float) -> float:
        return sum(1 for x in self.latencies if x <= seconds) / self.groups


def settings_for(redis_url: str, api: str, clock: Clock, prefix: str = "gridbot") -> Settings:
    aes = base64.b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    env = {"GRIDBOT_WECOM__CORP_ID": "wwbenchcorp0001", "GRIDBOT_WECOM__AGENT_ID": "1000002",
           "GRIDBOT_WECOM__SECRET": "bench-secret", "GRIDBOT_WECOM__TOKEN": secrets.token_hex(8),
           "GRIDBOT_WECOM__ENCODING_AES_KEY": aes, "GRIDBOT_REDIS__URL": redis_url,
           "GRIDBOT_WECOM__API_BASE_URL": api, "GRIDBOT_CLOCK__SPEED": repr(clock.speed),
           "GRIDBOT_CLOCK__ORIGIN": repr(clock.origin), "GRIDBOT_LOG__LEVEL": "WARNING",
           "GRIDBOT_WECOM__MAX_CONCURRENCY": "128", "GRIDBOT_REDIS__PREFIX": prefix}
    return load_settings(ROOT / "settings.toml", env)


def subprocess_env(settings: Settings) -> dict[str, str]:
    w = settings.wecom
    return {**os.environ, "GRIDBOT_REDIS__URL": settings.redis.url,
            "GRIDBOT_REDIS__PREFIX": settings.redis.prefix,
            "GRIDBOT_WECOM__CORP_ID": w.corp_id,
            "GRIDBOT_WECOM__SECRET": w.secret.get_secret_value(),
            "GRIDBOT_WECOM__AGENT_ID": str(w.agent_id),
            "GRIDBOT_WECOM__TOKEN": w.token.get_secret_value(),
            "GRIDBOT_WECOM__ENCODING_AES_KEY": w.encoding_aes_key.get_secret_value(),
            "GRIDBOT_WECOM__API_BASE_URL": w.api_base_url,
            "GRIDBOT_WECOM__MAX_CONCURRENCY": str(w.max_concurrency),
            "GRIDBOT_CLOCK__SPEED": repr(settings.clock.speed),
            "GRIDBOT_CLOCK__ORIGIN": repr(settings.clock.origin), "GRIDBOT_LOG__LEVEL": "WARNING"}


class Simulated:
    """A simulator for one run, served on loopback."""

    def __init__(self, city: City, clock: Clock, seed: int) -> None:
        self.port = free_port()
        self.sim = WeComSimulator(SimConfig(corp_id="wwbenchcorp0001", secret="bench-secret",
                                            agent_id=1000002, clock=clock, seed=seed,
                                            latency=LATENCY))
        load_into_simulator(city, self.sim)
        self.runner = web.AppRunner(self.sim.app, access_log=None)

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}/cgi-bin/"

    async def __aenter__(self) -> Simulated:
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()

    def calls(self) -> int:
        return sum(n for api, n in self.sim.records.call_counts.items() if api != "gettoken")


def city_with_officer(groups: int = 0) -> City:
    """吕梁市 as generated by default, or (groups > 0) bench/province.py's city of `groups`."""
    city = generate_city() if groups <= 0 else generate_city(
        seed=1, total_groups=groups, residents=groups * 80)
    city.people.append(Person(OFFICER, "指挥中心值班民警", Role.OFFICER, ("141100",)))
    return city


async def load(settings: Settings, clock: Clock, city: City) -> None:
    redis = connect(settings.redis.url)
    await redis.flushdb()
    # open() marks the empty registry with the current layout: the workers then start
    # without rebuilding its indexes (25 s at 100,000 groups)
    registry = await Registry.open(redis, Keys(settings.redis.prefix), clock)
    await registry.upsert_nodes(city.nodes)
    await registry.upsert_people(city.people)
    await registry.upsert_groups(city.groups, batch=2000)
    await redis.aclose()


@contextlib.contextmanager
def engine_url(engine: str, data_dir: Path) -> Iterator[str]:
    """A fresh embedded Redis (`single`) or three-master cluster (`cluster`) for the run."""
    if engine != "cluster":
        with redis_url_for("", data_dir) as url:
            yield url
        return
    cluster = EmbeddedCluster(data_dir / "cluster", appendfsync="no")
    try:
        yield cluster.start()
    finally:
        cluster.stop()


class FirstDeliveries:
    """chat/userid -> first delivery time of one notice, read incrementally (the monitor must
    not eat the simulator's CPU)."""

    def __init__(self, sim: WeComSimulator, marker: str | int) -> None:
        self.sim, self.seen = sim, 0
        self.out: dict[str, float] = {}
        self.text = f"编号 #{marker}" if isinstance(marker, int) else marker
        self.marker = marker

    def __call__(self) -> dict[str, float]:
        records = self.sim.records.deliveries
        for d in records[self.seen:]:
            if d.target not in self.out and self.text in d.content and (
                    not isinstance(self.marker, int) or has_marker(d.content, self.marker)):
                self.out[d.target] = d.at
        self.seen = len(records)
        return self.out


def first_deliveries(sim: WeComSimulator, marker: str | int) -> dict[str, float]:
    return FirstDeliveries(sim, marker)()


@dataclass
class MachineSteps:
    """The engine notice's machine-deliverable steps: direct sends, and per owner of a
    customer group the task and the 1:1 notice. Targets are computed once: the monitor
    calls this every 0.25 s, on up to 100,000 groups."""

    sim: WeComSimulator
    nid: int
    direct: list[str]
    owners: set[str]

    @classmethod
    def of(cls, sim: WeComSimulator, city: City, nid: int, spent: set[str]) -> MachineSteps:
        owners = {g.owner for g in city.groups
                  if g.kind is DeliveryKind.CUSTOMER_GROUP and g.chat_id not in spent}
        direct = [g.chat_id for g in city.groups if g.kind is not DeliveryKind.CUSTOMER_GROUP]
        return cls(sim, nid, direct, owners)

    def __call__(self, firsts: dict[str, float]) -> tuple[float | None, int]:
        """(time of the last machine step, steps still missing)."""
        tasks = {t.sender: t.create_time for t in self.sim.tasks()
                 if has_marker(t.text, self.nid)}
        times = [firsts.get(c) for c in self.direct] + [tasks.get(o) for o in self.owners] \
            + [firsts.get(o) for o in self.owners]
        done = [t for t in times if t is not None]
        return (max(done) if done else None), len(times) - len(done)


def group_latencies(sim: WeComSimulator, groups: Sequence[Group], marker: str | int,
                    started: float) -> list[float]:
    firsts = first_deliveries(sim, marker)
    return sorted(firsts[g.chat_id] - started for g in groups if g.chat_id in firsts)


async def run_engine(city: City, redis_url: str, args: argparse.Namespace,
                     *, loaded: str = "") -> tuple[Run, float]:
    """The engine's notice; `loaded`: the prefix of a registry already holding `city` (else
    the Redis is emptied and the city written under the default prefix)."""
    clock = Clock(speed=args.speed, origin=time.time())
    async with Simulated(city, clock, seed=1) as sim:
        settings = settings_for(redis_url, sim.api, clock, loaded or "gridbot")
        if not loaded:
            await load(settings, clock, city)
        redis = connect(redis_url)
        keys = Keys(settings.redis.prefix)
        async with aiohttp.ClientSession() as session:
            wecom = WeComClient(session, settings.wecom, redis, keys, clock)
            rt = Runtime.build(settings, redis, keys, clock, wecom, Registry(redis, keys, clock),
                               AuditLog(redis, keys, clock))
            await rt.quota.set_known(city.quota_used)
            workers = start_workers(settings, args)
            try:
                await wait_alive(rt, len(workers))
                run, floor = await engine_notice(rt, sim, city, clock, args)
            finally:
                stop_workers(workers)
        await redis.aclose()
    return run, floor


def start_workers(settings: Settings, args: argparse.Namespace) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen(
        [sys.executable, "-m", "bot", "--settings", str(ROOT / "settings.toml"), "worker",
         "--concurrency", str(args.concurrency), "--name", f"bench{i}"],
        env=subprocess_env(settings), cwd=ROOT) for i in range(args.workers)]


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for proc in workers:
        proc.send_signal(signal.SIGTERM)
    for proc in workers:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


async def wait_alive(rt: Runtime, n: int) -> None:
    for _ in range(600):
        alive = [await rt.redis.exists(rt.keys.worker_alive(f"bench{i}")) for i in range(n)]
        if all(alive):
            return
        await asyncio.sleep(0.1)
    raise RuntimeError("workers did not start")


async def engine_notice(rt: Runtime, sim: Simulated, city: City, clock: Clock,
                        args: argparse.Namespace) -> tuple[Run, float]:
    service = BroadcastService(rt)
    preview = await service.issue_text(OFFICER, TEXT)
    assert preview.ok and preview.notice_id is not None, preview.text
    print("预览（发给民警的内容）：\n" + preview.text + "\n", flush=True)
    nid = preview.notice_id
    pairs = await rt.state.pairs(nid)
    spent = {c for c, r in pairs.items() if r.state.value == "failed"}
    sendable = [g for g in city.groups if g.chat_id not in spent]
    floor = machine_floor(demand_of(await _planned(rt, nid, sendable)),
                          rt.settings.broadcast.ceilings, latency=LATENCY.median)
    calls_before = sim.calls()
    confirmed = await service.confirm(OFFICER, nid)
    assert confirmed.ok, confirmed.text
    notice = await rt.notices.get(nid)
    assert notice is not None
    run = Run("engine", started=notice.started_at, groups=len(city.groups))
    print(f"下限 {floor.seconds:.1f} s（{floor.binding}）；已确认，开始发送", flush=True)
    # hourly ceilings can put the floor past the ten minutes: wait for the machine steps
    limit = notice.started_at + args.deadline + 5
    cap = notice.started_at + max(args.deadline, 2 * floor.seconds) + 5
    seen, steps = FirstDeliveries(sim.sim, nid), MachineSteps.of(sim.sim, city, nid, spent)
    while clock.now() < limit or (run.machine_done is None and clock.now() < cap):
        if run.machine_done is None:
            done, missing = steps(seen())
            if missing == 0 and done is not None:
                run.machine_done = done
                print(f"机器步骤完成：{done - run.started:.1f} s（模拟时间）", flush=True)
        await asyncio.sleep(1.0 if run.machine_done else 0.25)
    run.missing_steps = steps(seen())[1]
    run.calls = sim.calls() - calls_before
    run.rate_limited = sim.sim.errors_answered(45009)
    run.latencies = group_latencies(sim.sim, city.groups, nid, run.started)
    return run, floor.seconds


async def _planned(rt: Runtime, nid: int, groups: Sequence[Group]) -> list:  # type: ignore[type-arg]
    plans = await rt.plans.groups(nid)
    return [plans[g.chat_id] for g in groups if g.chat_id in plans]


async def run_naive(city: City, redis_url: str, args: argparse.Namespace) -> Run:
    """The naive loop waits on latency, not CPU: it may run on a faster clock."""
    clock = Clock(speed=args.naive_speed or args.speed, origin=time.time())
    async with Simulated(city, clock, seed=1) as sim:
        settings = settings_for(redis_url, sim.api, clock)
        redis = connect(redis_url)
        await redis.flushdb()
        async with aiohttp.ClientSession() as session:
            wecom = WeComClient(session, settings.wecom, redis, Keys("naive"), clock)
            run = Run("naive", started=clock.now(), groups=len(city.groups))
            await naive_loop(wecom, city)
            run.machine_done = clock.now()
            print(f"朴素循环完成：{run.machine:.1f} s（模拟时间）", flush=True)
            while clock.now() < run.started + args.deadline + 5:
                await asyncio.sleep(0.25)
        await redis.aclose()
        run.calls = sim.calls()
        run.rate_limited = sim.sim.errors_answered(45009)
        run.latencies = group_latencies(sim.sim, city.groups, NAIVE_MARK, run.started)
    return run


async def naive_loop(wecom: WeComClient, city: City) -> None:
    """One call after another; customer groups: one task per owner (its whole chat list)."""
    text = TEXT.split("内容：", 1)[1] + NAIVE_MARK
    per_owner: dict[str, list[str]] = {}
    for g in city.groups:
        if g.kind is DeliveryKind.CUSTOMER_GROUP:
            per_owner.setdefault(g.owner, []).append(g.chat_id)
    for g in city.groups:
        try:
            if g.kind is DeliveryKind.WEBHOOK:
                await wecom.webhook_send(g.webhook_key, text)
            elif g.kind is DeliveryKind.APPCHAT:
                await wecom.appchat_send(g.chat_id, text)
            elif g.owner in per_owner:
                await wecom.add_msg_template(g.owner, per_owner.pop(g.owner), text)
        except WeComError as error:
            print(f"  naive: {g.chat_id}: {error}", flush=True)


def fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.1f} s" if x < 60 else fmt_duration(x)


def secs(x: float) -> str:
    return f"{x:.1f} s"


def report(city: City, engine: Run, naive: Run | None, floor: float,
           args: argparse.Namespace) -> bool:
    kinds = {k: sum(1 for g in city.groups if g.kind is k) for k in DeliveryKind}
    owners = len({g.owner for g in city.groups if g.kind is DeliveryKind.CUSTOMER_GROUP})
    where = "三主 Redis 集群" if args.engine == "cluster" else "单个 Redis"
    print(f"\n=== GridBot 警务通知基准（全部 {len(city.groups):,} 个群，{where}） ===")
    print(f"{len(city.groups)} 个群（客户群 {kinds[DeliveryKind.CUSTOMER_GROUP]}、应用群聊 "
          f"{kinds[DeliveryKind.APPCHAT]}、群机器人 {kinds[DeliveryKind.WEBHOOK]}），"
          f"群主 {owners} 人")
    naive_clock = "" if naive is None else f"（朴素循环 ×{args.naive_speed or args.speed}）"
    print(f"时钟 ×{args.speed}{naive_clock}；"
          f"时延中位 {LATENCY.median * 1000:.0f} ms、p99 {LATENCY.p99 * 1000:.0f} ms；"
          f"工作进程 {args.workers} × 并发 {args.concurrency}")
    runs = [engine] if naive is None else [engine, naive]
    rows = [("频率上限允许的下限 (floor)", [secs(floor) for _ in runs]),
            ("机器步骤全部完成", [secs(r.machine) for r in runs]),
            ("  相对下限", [f"{r.machine / floor:.2f} ×" for r in runs]),
            ("API 调用次数", [str(r.calls) for r in runs]),
            ("45009 应答", [str(r.rate_limited) for r in runs])]
    for q in (0.5, 0.95, 0.99):
        rows.append((f"每群送达用时 p{int(q * 100)}",
                     [fmt(percentile(r.latencies, q)) for r in runs]))
    rows.append(("10 分钟内送达（默认群主画像）",
                 [f"{r.within(args.deadline):.2%}" for r in runs]))
    print(f"{'':32}{'本引擎':>14}" + ("" if naive is None else f"{'朴素循环':>14}"))
    for name, cells in rows:
        print(f"{name:32}" + "".join(f"{c:>14}" for c in cells))
    if naive is not None:
        print(f"朴素循环 / 本引擎（机器步骤用时）：{naive.machine / engine.machine:.1f} ×")
    ok = engine.machine <= 1.2 * floor and engine.rate_limited == 0 and engine.missing_steps == 0
    print(f"验收（≤ 1.2 × 下限 = {1.2 * floor:.1f} s，且 45009 为零）："
          + ("通过" if ok else "未通过")
          + (f"（未完成的机器步骤 {engine.missing_steps}）" if engine.missing_steps else ""))
    return ok


async def main(args: argparse.Namespace) -> int:
    city = city_with_officer(args.groups)
    with tempfile.TemporaryDirectory() as tmp, engine_url(args.engine, Path(tmp)) as url:
        engine, floor = await run_engine(city, url, args)
        naive = None if args.no_naive else await run_naive(city, url, args)
    return 0 if report(city, engine, naive, floor, args) else 1


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed", type=float, default=5.0, help="时钟加速倍数")
    parser.add_argument("--naive-speed", type=float, default=10.0,
                        help="朴素循环的时钟加速（只等网络时延，不占 CPU）")
    parser.add_argument("--workers", type=int, default=2, help="gridbot worker 进程数")
    parser.add_argument("--concurrency", type=int, default=64, help="每个工作进程的并发")
    parser.add_argument("--deadline", type=float, default=600.0, help="时限（模拟秒）")
    parser.add_argument("--groups", type=int, default=0,
                        help="群数：0 为吕梁市（5,267 个群），否则为 N 个群的合成市/省")
    parser.add_argument("--engine", choices=("single", "cluster"), default="single",
                        help="single：单个内嵌 Redis；cluster：三主 Redis 集群")
    parser.add_argument("--no-naive", action="store_true", help="不跑朴素循环对比")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
