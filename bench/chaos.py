"""Chaos: a notice to every group of a county while a process or a Redis primary is killed.

Each trial issues a 紧急预警 to every group of a synthetic county (default 100 groups: customer
groups, appchats, robots) through BroadcastService, with 5 % of WeCom calls failing (errcode
-1 or HTTP 5xx, as the simulator injects them), delivered by two `gridbot worker`s and one
`gridbot serve` (embedded worker). At a random moment one victim is SIGKILLed:

- worker: a `gridbot worker` (restarted a second later, as a supervisor would);
- serve: the `gridbot serve` process (restarted likewise);
- primary: a Redis Cluster primary that has a replica (the replica takes over; the killed
  node is restarted and rejoins as a replica).

When the notice has settled (or the trial times out) every group is classified from the
simulator's records and the pair states: delivered once, delivered twice (or more), reported
to the officer (failed / uncertain / late), or lost (neither delivered nor reported).
Prints a row per trial and the totals.

    .venv/bin/python bench/chaos.py [--trials 100] [--engine cluster|single] [--groups 100]
                                    [--victim worker|serve|primary] [--window 4.0]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import redis as syncredis
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.audit import AuditLog  # noqa: E402
from bot.clock import Clock  # noqa: E402
from bot.cluster import EmbeddedCluster  # noqa: E402
from bot.keys import Keys  # noqa: E402
from bot.redis import EmbeddedRedis, connect, free_port  # noqa: E402
from bot.settings import Settings, load_settings  # noqa: E402
from bot.wecom.client import WeComClient  # noqa: E402
from bot.wecom.simulator import FaultConfig, OwnerProfile, SimConfig, WeComSimulator  # noqa: E402
from broadcasts.content import has_marker  # noqa: E402
from broadcasts.deps import Runtime  # noqa: E402
from broadcasts.grammar import parse_notice  # noqa: E402
from broadcasts.models import PairState  # noqa: E402
from broadcasts.service import BroadcastService  # noqa: E402
from registry.city import City  # noqa: E402
from registry.models import Person, Role  # noqa: E402
from registry.store import Registry  # noqa: E402
from registry.synthetic import generate_city, load_into_simulator  # noqa: E402

OFFICER = "mj_chaos"
COUNTY = "141130"  # 交口县
TEXT = "通知 紧急预警 范围：交口县 内容：近期冒充公检法电信诈骗高发，请勿向“安全账户”转账。"
REPORTED = {PairState.FAILED, PairState.UNCERTAIN, PairState.LATE}
WORKERS = ("chaos1", "chaos2")


@dataclass
class Trial:
    number: int
    victim: str
    kill_at: float = 0.0  # real seconds after confirm
    groups: int = 0
    once: int = 0
    twice: int = 0
    reported: int = 0
    uncertain: int = 0
    lost: int = 0
    settled: bool = False
    seconds: float = 0.0

    def row(self) -> str:
        return (f"{self.number:>4} {self.victim:<8} {self.kill_at:>6.2f} {self.groups:>6} "
                f"{self.once:>6} {self.twice:>5} {self.reported:>6} {self.uncertain:>6} "
                f"{self.lost:>5} {'是' if self.settled else '否':>4} {self.seconds:>6.1f}")


HEADER = ("  试验 受害者    杀于(s)   群数   送达一次 两次  已报告   不明   丢失 结束   耗时(s)")


def secrets_env() -> dict[str, str]:
    aes = base64.b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    return {
        "GRIDBOT_WECOM__CORP_ID": "wwchaoscorp0001", "GRIDBOT_WECOM__AGENT_ID": "1000002",
        "GRIDBOT_WECOM__SECRET": "chaos-secret", "GRIDBOT_WECOM__TOKEN": secrets.token_hex(8),
        "GRIDBOT_WECOM__ENCODING_AES_KEY": aes,
        "GRIDBOT_SECURITY__FIELD_KEYS": "k1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "GRIDBOT_SECURITY__BLIND_INDEX_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "GRIDBOT_LOG__LEVEL": "ERROR", "GRIDBOT_BROADCAST__CLAIM_IDLE_SECONDS": "3",
    }


class Engine:
    """The Redis under test: one embedded server, or a cluster of 3 primaries + 3 replicas."""

    def __init__(self, kind: str, data: Path) -> None:
        self.kind = kind
        self.server: EmbeddedRedis | EmbeddedCluster = (
            EmbeddedCluster(data, replicas=1) if kind == "cluster" else EmbeddedRedis(data))
        self.url = self.server.start()

    def primary_with_replica(self, rng: random.Random) -> EmbeddedRedis:
        assert isinstance(self.server, EmbeddedCluster)
        by_port = {n.port: n for n in self.server.nodes}
        lines = str(syncredis.Redis(port=self.server.nodes[0].port, decode_responses=True)
                    .execute_command("CLUSTER", "NODES")).splitlines()
        masters = {f[0]: int(f[1].split(":")[1].split("@")[0]) for f in map(str.split, lines)
                   if "master" in f[2] and "fail" not in f[2]}
        served = {f[3] for f in map(str.split, lines) if "slave" in f[2] and "fail" not in f[2]}
        return by_port[masters[rng.choice(sorted(set(masters) & served))]]

    def heal(self) -> None:
        """Restart killed nodes and wait until every slot is served and every node is back."""
        if not isinstance(self.server, EmbeddedCluster):
            return
        for node in self.server.nodes:
            if node.process is not None and node.process.poll() is not None:
                node.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(syncredis.RedisError):
                if all(self._healed(n.port) for n in self.server.nodes):
                    return
            time.sleep(0.2)
        raise RuntimeError("cluster did not heal")

    @staticmethod
    def _healed(port: int) -> bool:
        """Every slot served, and a replica only once it holds its primary's data: a node
        restarted as a replica that is still syncing could otherwise be the one promoted
        by the next trial's kill, with the data of an earlier trial."""
        node = syncredis.Redis(port=port, decode_responses=True)
        if "cluster_state:ok" not in str(node.execute_command("CLUSTER", "INFO")):
            return False
        info = node.info("replication")
        return info.get("role") != "slave" or (
            info.get("master_link_status") == "up" and not info.get("master_sync_in_progress"))

    def stop(self) -> None:
        self.server.stop()


def county(groups: int) -> City:
    city = generate_city(seed=11, counties=(COUNTY,), total_groups=groups, residents=8_000)
    city.people.append(Person(OFFICER, "值班民警", Role.OFFICER, (COUNTY,)))
    return city


def process_env(settings: Settings, api: str) -> dict[str, str]:
    w = settings.wecom
    return {**os.environ, **{k: v for k, v in secrets_env().items() if "SECURITY" in k},
            "GRIDBOT_REDIS__URL": settings.redis.url, "GRIDBOT_WECOM__CORP_ID": w.corp_id,
            "GRIDBOT_WECOM__SECRET": w.secret.get_secret_value(),
            "GRIDBOT_WECOM__AGENT_ID": str(w.agent_id),
            "GRIDBOT_WECOM__TOKEN": w.token.get_secret_value(),
            "GRIDBOT_WECOM__ENCODING_AES_KEY": w.encoding_aes_key.get_secret_value(),
            "GRIDBOT_WECOM__API_BASE_URL": api,
            "GRIDBOT_CLOCK__SPEED": repr(settings.clock.speed),
            "GRIDBOT_CLOCK__ORIGIN": repr(settings.clock.origin),
            "GRIDBOT_BROADCAST__CLAIM_IDLE_SECONDS": "3", "GRIDBOT_LOG__LEVEL": "ERROR"}


class Fleet:
    """Two `gridbot worker`s and one `gridbot serve`, each restartable after a kill."""

    def __init__(self, environ: dict[str, str], logs: Path | None = None) -> None:
        self.environ, self.logs = environ, logs
        self.port = free_port()
        self.commands = {name: ["worker", "--name", name] for name in WORKERS}
        self.commands["serve"] = ["serve", "--host", "127.0.0.1", "--port", str(self.port)]
        self.procs = {name: self._start(name) for name in self.commands}

    def _start(self, name: str) -> subprocess.Popen[bytes]:
        out = (self.logs / f"{name}.log").open("ab") if self.logs else subprocess.DEVNULL
        environ = {**self.environ, "GRIDBOT_LOG__LEVEL": "INFO"} if self.logs else self.environ
        return subprocess.Popen(
            [sys.executable, "-m", "bot", "--settings", str(ROOT / "settings.toml"),
             *self.commands[name]], env=environ, cwd=ROOT, stdout=out, stderr=out)

    def kill(self, name: str) -> None:
        self.procs[name].kill()
        self.procs[name].wait()

    def restart(self, name: str) -> None:
        self.procs[name] = self._start(name)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def alive(rt: Runtime, port: int) -> bool:
    workers = [await rt.redis.exists(rt.keys.worker_alive(w)) for w in WORKERS]
    try:
        async with aiohttp.ClientSession() as http, \
                http.get(f"http://127.0.0.1:{port}/healthz") as response:
            served = response.status == 200
    except aiohttp.ClientError:
        served = False
    return all(workers) and served


async def run_trial(number: int, engine: Engine, city: City, args: argparse.Namespace) -> Trial:
    rng = random.Random(args.seed * 100_003 + number)
    victims = ["worker", "serve"] + (["primary"] if engine.kind == "cluster" else [])
    victims = [args.victim] if args.victim else victims
    trial = Trial(number, rng.choice(victims), kill_at=rng.uniform(0.0, args.window))
    started = time.monotonic()
    redis = connect(engine.url)
    await redis.flushdb()
    clock = Clock(speed=args.speed, origin=time.time())
    sim = WeComSimulator(SimConfig(corp_id="wwchaoscorp0001", secret="chaos-secret",
                                   agent_id=1000002, clock=clock, seed=number,
                                   owner_profile=OwnerProfile.always((30.0, 90.0))))
    load_into_simulator(city, sim)
    sim.set_faults(FaultConfig(rate=0.05, weights={"-1": 1.0, "5xx": 1.0}))
    runner = web.AppRunner(sim.app, access_log=None, shutdown_timeout=5.0,
                           handler_cancellation=True)
    await runner.setup()
    sim_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", sim_port).start()
    api = f"http://127.0.0.1:{sim_port}/cgi-bin/"
    settings = load_settings(ROOT / "settings.toml", {
        **secrets_env(), "GRIDBOT_REDIS__URL": engine.url, "GRIDBOT_WECOM__API_BASE_URL": api,
        "GRIDBOT_CLOCK__SPEED": repr(clock.speed), "GRIDBOT_CLOCK__ORIGIN": repr(clock.origin)})
    keys = Keys(settings.redis.prefix)
    registry = Registry(redis, keys, clock)
    await registry.upsert_nodes(city.nodes)
    await registry.upsert_people(city.people)
    await registry.upsert_groups(city.groups)
    logs = Path(args.logs) / f"trial-{number}" if args.logs else None
    if logs:
        logs.mkdir(parents=True, exist_ok=True)
    fleet = Fleet(process_env(settings, api), logs)
    try:
        async with aiohttp.ClientSession() as session:
            wecom = WeComClient(session, settings.wecom, redis, keys, clock)
            rt = Runtime.build(settings, redis, keys, clock, wecom, registry,
                               AuditLog(redis, keys, clock))
            await rt.quota.set_known(city.quota_used)
            await wait_for(lambda: alive(rt, fleet.port), 90)
            nid = await issue_and_confirm(BroadcastService(rt), clock)
            await asyncio.sleep(trial.kill_at)
            await strike(trial.victim, fleet, engine, rng)
            trial.settled = await settle(rt, nid, args.timeout)
            await classify(trial, rt, sim, city, nid)
    finally:
        fleet.stop()
        await redis.aclose()
        await runner.cleanup()
        engine.heal()
    trial.seconds = time.monotonic() - started
    if logs and not trial.twice and not trial.lost:  # keep the logs of the trials that went wrong
        shutil.rmtree(logs)
    return trial


async def wait_for(check: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if await check():  # type: ignore[operator]
                return
        await asyncio.sleep(0.2)
    raise RuntimeError("the fleet did not start")


async def issue_and_confirm(service: BroadcastService, clock: Clock) -> int:
    reply = await service.issue(OFFICER, parse_notice(TEXT, clock.now()))
    assert reply.ok and reply.notice_id is not None, reply.text
    confirmed = await service.confirm(OFFICER, reply.notice_id)
    assert confirmed.ok, confirmed.text
    return reply.notice_id


async def strike(victim: str, fleet: Fleet, engine: Engine, rng: random.Random) -> None:
    if victim == "primary":
        node = engine.primary_with_replica(rng)
        assert node.process is not None
        node.process.kill()  # SIGKILL: no AOF flush, no failover hand-over
        node.process.wait()
        return
    name = rng.choice(WORKERS) if victim == "worker" else "serve"
    fleet.kill(name)
    await asyncio.sleep(1.0)
    fleet.restart(name)


async def settle(rt: Runtime, nid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):  # Redis may be failing over right now
            notice = await rt.notices.get(nid)
            if notice is not None and notice.settled_at > 0:
                return True
        await asyncio.sleep(0.5)
    return False


async def classify(trial: Trial, rt: Runtime, sim: WeComSimulator, city: City, nid: int) -> None:
    pairs = await rt.state.pairs(nid)
    trial.groups = len(city.groups)
    for group in city.groups:
        got = sum(1 for d in sim.deliveries_to(group.chat_id) if has_marker(d.content, nid))
        record = pairs.get(group.chat_id)
        state = record.state if record else None
        if got == 1:
            trial.once += 1
        elif got > 1:
            trial.twice += 1
            sent = [(d.channel, round(d.at, 1)) for d in sim.deliveries_to(group.chat_id)]
            print(f"      两次：{group.name}（{group.kind.value}）送达于 {sent}，记录 {record}",
                  flush=True)
        elif state in REPORTED:
            trial.reported += 1
        else:
            trial.lost += 1
        trial.uncertain += state is PairState.UNCERTAIN


def totals(trials: list[Trial]) -> None:
    groups = sum(t.groups for t in trials)
    lost, twice = sum(t.lost for t in trials), sum(t.twice for t in trials)
    uncertain = sum(t.uncertain for t in trials)
    victims = Counter(t.victim for t in trials)
    print(f"\n合计：{len(trials)} 次试验（{dict(victims)}），{groups} 个群次；"
          f"丢失 {lost}，重复送达 {twice}，报告为状态不明 {uncertain}"
          f"（{uncertain / max(groups, 1):.2%}），报告为失败/逾期 "
          f"{sum(t.reported for t in trials)}，未在时限内结束 "
          f"{sum(not t.settled for t in trials)}", flush=True)


async def main(args: argparse.Namespace) -> None:
    city = county(args.groups)
    with tempfile.TemporaryDirectory() as tmp:
        engine = Engine(args.engine, Path(tmp) / "redis")
        trials: list[Trial] = []
        print(f"引擎：{args.engine}；每次 {len(city.groups)} 个群；5 % WeCom 故障；"
              f"时钟 ×{args.speed}\n{HEADER}", flush=True)
        try:
            for number in range(1, args.trials + 1):
                trial = await run_trial(number, engine, city, args)
                trials.append(trial)
                print(trial.row(), flush=True)
        finally:
            if trials:
                totals(trials)
            engine.stop()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--engine", choices=("cluster", "single"), default="cluster")
    parser.add_argument("--groups", type=int, default=100)
    parser.add_argument("--speed", type=float, default=20.0)
    parser.add_argument("--window", type=float, default=4.0,
                        help="the kill falls uniformly within this many real seconds")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--logs", default="",
                        help="目录：各进程以 INFO 级写日志，仅保留出现重复或丢失的试验")
    parser.add_argument("--victim", choices=("worker", "serve", "primary"), default=None,
                        help="kill only this kind (default: a random kind per trial)")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
