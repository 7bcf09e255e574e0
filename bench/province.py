"""A province on ONE three-master Redis Cluster: registry, records, a notice, how load spreads.

One run starts a real three-master cluster (bot.cluster.EmbeddedCluster) and runs every phase
on it in this order, so that the notice goes to the registry's groups and the last key count
holds everything:
  1. registry (`--groups N`, the 吕梁市 tree shape with more buildings): write time, Redis
     memory per group (used_memory summed over the primaries); the whole-tree subtree query
     (every active group with its records + breakdown by kind), cold (a process that has
     decoded nothing yet) and warm, median ms, and the same for the largest 县区;
  2. hot paths: 20,000 jobs through the broadcast job queue (8 shards) and 2,000 callbacks
     into the inbox (4 shards);
  3. records (`--records N[,M…]`): 一标三实 person records (bench/export_records.py's
     generator: sealed, blind-indexed, indexed under every ancestor), Redis memory per record
     part by part, and export rows/s (CSV, XLSX) with peak RSS, each export in a fresh child
     process (export_records.py's child);
  4. notice (`--notice`): a province-wide 紧急预警 to all the registry's groups, delivered by
     `gridbot worker` subprocesses through the WeCom simulator with WeCom's ceilings
     (bench/broadcast.py's engine phase): the machine part against the ceiling floor, the
     ratio and the 45009 count. Past 20,000 groups the hourly app-chat ceiling (150,000
     person-times) sets the floor at hours of simulated time: choose `--speed` so that
     floor / speed fits the real time you have (10,800 s / 15 = 12 min at 100,000 groups);
  5. the share of keys per primary with everything loaded, and of commands per primary per
     phase and over the whole run (goal: no primary above 40 %).

Phases without their option are skipped: `--groups 0 --records …` is the records alone,
`--records` left out the registry (+ `--notice`) alone.

    .venv/bin/python bench/province.py --groups 100000 --records 2000000 --notice --speed 15
    .venv/bin/python bench/province.py --groups 100000 --runs 5
    .venv/bin/python bench/province.py --groups 0 --records 1000000,2000000
    .venv/bin/python bench/province.py --groups 100000 --notice --speed 15
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import broadcast  # noqa: E402
import export_records as er  # noqa: E402
from record_memory import breakdown, lines  # noqa: E402
from registry_query import BENCH_PREFIX, fresh, subtree, timed  # noqa: E402

from bot.clock import REAL_TIME, Clock  # noqa: E402
from bot.cluster import EmbeddedCluster  # noqa: E402
from bot.events import TextMessage  # noqa: E402
from bot.inbox import Inbox  # noqa: E402
from bot.keys import Keys  # noqa: E402
from bot.redis import cluster_of, connect  # noqa: E402
from bot.seal import Sealer  # noqa: E402
from bot.settings import CallbackSettings, load_settings  # noqa: E402
from broadcasts.keys import BroadcastKeys  # noqa: E402
from broadcasts.queue import Job, JobQueue  # noqa: E402
from registry.city import City  # noqa: E402
from registry.divisions import CITY_CODE  # noqa: E402
from registry.models import Level  # noqa: E402
from registry.store import Registry  # noqa: E402

HOT_PREFIX = "hot"  # the hot-path burst's keys, apart from the notice's queue


async def per_primary(redis: Any, section: str) -> dict[str, Any]:
    cluster = cluster_of(redis)
    assert cluster is not None
    out = {}
    for node in cluster.get_primaries():
        out[node.name] = await cluster.info(section, target_nodes=node)
    return out


async def keys_per_primary(redis: Any) -> dict[str, int]:
    cluster = cluster_of(redis)
    assert cluster is not None
    return {node.name: int(await cluster.dbsize(target_nodes=node))
            for node in cluster.get_primaries()}


async def calls_per_primary(redis: Any) -> dict[str, int]:
    stats = await per_primary(redis, "commandstats")
    return {name: sum(int(v["calls"]) for k, v in s.items() if k.startswith("cmdstat_"))
            for name, s in stats.items()}


async def memory(redis: Any) -> int:
    return sum(int(s["used_memory"]) for s in (await per_primary(redis, "memory")).values())


def shares(counts: dict[str, int]) -> str:
    total = sum(counts.values()) or 1
    return "  ".join(f"{name} {n / total:.1%}" for name, n in sorted(counts.items()))


async def reset_stats(redis: Any) -> None:
    cluster = cluster_of(redis)
    assert cluster is not None
    for node in cluster.get_primaries():
        await cluster.config_resetstat(target_nodes=node)


class Meter:
    """Commands per primary, phase by phase: cumulative commandstats read at each cut and
    never reset in between, so the phases add up to the whole run."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self.last: dict[str, int] = {}
        self.phases: list[tuple[str, dict[str, int]]] = []

    async def start(self) -> None:
        await reset_stats(self.redis)
        self.last = await calls_per_primary(self.redis)

    async def cut(self, name: str) -> dict[str, int]:
        """Commands per primary since the last cut, kept as phase `name`."""
        now = await calls_per_primary(self.redis)
        part = {node: n - self.last.get(node, 0) for node, n in now.items()}
        self.last = now
        self.phases.append((name, part))
        return part

    def total(self) -> dict[str, int]:
        out: Counter[str] = Counter()
        for _, part in self.phases:
            out.update(part)
        return dict(out)


def worst_share(*counts: dict[str, int]) -> float:
    return max(max(n / (sum(c.values()) or 1) for n in c.values()) for c in counts if c)


async def hot_paths(redis: Any) -> None:
    """The job queue and the callback inbox under a burst (their own prefix: the notice's
    workers never see these jobs)."""
    keys = Keys(HOT_PREFIX)
    queue = JobQueue(redis, BroadcastKeys(keys), Clock())
    await queue.ensure_group()
    await queue.enqueue(Job("send", n % 24, f"chat{n}") for n in range(20_000))
    read = 0
    while read < 20_000:
        batch = await queue.read("bench", 256, 10)
        await queue.ack([e.id for e in batch])
        read += len(batch)
    inbox = Inbox(redis, keys, Clock(), CallbackSettings(),
                  Sealer("bench-secret-0123456789", "inbox"))
    await asyncio.gather(*(inbox.put(TextMessage(sender=f"user{n % 500}", create_time=n,
                                                 content="巡查", msg_id=str(n)))
                           for n in range(2_000)))


def home_of(redis: Any, key: str) -> str:
    """The primary serving `key`'s slot."""
    cluster = cluster_of(redis)
    assert cluster is not None
    node = cluster.get_node_from_key(key)
    return node.name if node is not None else "?"


async def notice_phase(redis: Any, url: str, city: City, args: argparse.Namespace) -> None:
    """bench/broadcast.py's engine phase, to the groups the registry phase wrote."""
    options = broadcast.parse_args(
        ["--groups", str(args.groups), "--engine", "cluster", "--no-naive",
         "--speed", str(args.speed), "--workers", str(args.workers)])
    engine, floor = await broadcast.run_engine(city, url, options, loaded=BENCH_PREFIX)
    broadcast.report(city, engine, None, floor, options)
    print(f"全省通知（{len(city.groups):,} 个群，三主集群，注册库即上面写入的）：机器步骤 "
          f"{engine.machine:.1f} s，下限 {floor:.1f} s，比值 {engine.machine / floor:.2f} ×，"
          f"45009 应答 {engine.rate_limited} 次（负载 {load_avg()}）", flush=True)
    bkeys = BroadcastKeys(Keys(BENCH_PREFIX))
    print(f"通知 #1 的槽（{{bc:1}}，每群的状态）在 {home_of(redis, bkeys.pairs(1))}；"
          f"限流器的槽（{{rl}}）在 {home_of(redis, bkeys.limiter_seq())}", flush=True)


def load_avg() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


async def main(args: argparse.Namespace) -> None:
    if args.notice and not args.groups:
        raise SystemExit("--notice needs --groups > 0: the notice goes to the registry's groups")
    with tempfile.TemporaryDirectory() as tmp:
        cluster = EmbeddedCluster(Path(tmp), appendfsync="no")
        url = cluster.start()
        redis = connect(url)
        try:
            await phases(redis, url, Path(tmp), args)
        finally:
            await redis.aclose()
            cluster.stop()


async def phases(redis: Any, url: str, tmp: Path, args: argparse.Namespace) -> None:
    meter = Meter(redis)
    await meter.start()
    began = time.perf_counter()
    city = None
    if args.groups:
        city = broadcast.city_with_officer(args.groups)
        await registry_phase(redis, city, meter, args)
        await hot_paths(redis)
        print(f"任务队列 2 万个任务 + 2,000 条回调的命令分布："
              f"{shares(await meter.cut('任务队列与回调'))}", flush=True)
    if args.records:
        sizes = sorted(int(n) for n in args.records.split(","))
        await records_phase(redis, url, sizes, tmp, args.formats.split(","), meter)
    if args.notice and city is not None:
        await notice_phase(redis, url, city, args)
        await meter.cut("全省通知")
    await summary(redis, meter, time.perf_counter() - began)


async def summary(redis: Any, meter: Meter, seconds: float) -> None:
    """Keys per primary with everything loaded; commands per primary per phase and in all."""
    keys = await keys_per_primary(redis)
    total = meter.total()
    print(f"\n=== 一次运行、同一个三主集群（{seconds / 60:.1f} 分钟，负载 {load_avg()}） ===")
    print(f"全部键分布（全部阶段之后，{sum(keys.values()):,} 个键）：{shares(keys)}")
    for name, part in meter.phases:
        print(f"  命令分布 · {name}（{sum(part.values()):,} 条）：{shares(part)}")
    print(f"全部命令分布（整次运行，{sum(total.values()):,} 条）：{shares(total)}")
    worst = worst_share(keys, total)
    print("结论（全部键、整次运行的命令，目标：任何主节点不超过 40 %）：",
          "达到" if worst <= 0.40 else f"未达到（最多的主节点占 {worst:.1%}）", flush=True)


async def registry_phase(redis: Any, city: City, meter: Meter, args: argparse.Namespace) -> None:
    # open() marks the empty registry with the current layout: the notice's workers then
    # start without rebuilding its indexes
    registry = await Registry.open(redis, Keys(BENCH_PREFIX), REAL_TIME)
    await registry.upsert_nodes(city.nodes, batch=2000)
    await registry.upsert_people(city.people, batch=2000)
    await meter.cut("注册库树与人员")
    before = await memory(redis)
    keys_before = await keys_per_primary(redis)
    started = time.perf_counter()
    await registry.upsert_groups(city.groups, actor="bench", batch=2000)
    write_s = time.perf_counter() - started
    per_group = (await memory(redis) - before) / len(city.groups)
    registry_calls = await meter.cut("注册库写入群")
    county = largest_county(city)
    county_shards = len(await registry.shards_for([county]))
    cold = await timed(args.runs, lambda: subtree(fresh(registry), CITY_CODE))
    county_cold = await timed(args.runs, lambda: subtree(fresh(registry), county))
    cold_calls = await meter.cut("注册库冷查询")
    reader = fresh(registry)
    await subtree(reader, CITY_CODE)
    await subtree(reader, county)
    await meter.cut("注册库预热")
    warm = await timed(args.runs, lambda: subtree(reader, CITY_CODE))
    county_warm = await timed(args.runs, lambda: subtree(reader, county))
    warm_calls = await meter.cut("注册库热查询")
    registry_keys = await keys_per_primary(redis)
    group_keys = {n: k - keys_before.get(n, 0) for n, k in registry_keys.items()}
    print(f"三主 Redis 集群；{len(city.groups):,} 个群（{city.nodes[0].name} 树形，更多楼栋）")
    print(f"写入 {write_s:.1f} 秒；每群 Redis 内存 {per_group:.0f} 字节"
          "（各主节点 used_memory 之和）")
    print(f"全树子树查询（{cold[2]:,} 个群 + 分类统计）：冷 {cold[0]:.0f} ms"
          f"（p95 {cold[1]:.0f}），热 {warm[0]:.0f} ms")
    print(f"最大县区 {county} 子树查询（{county_cold[2]:,} 个群，{county_shards} 个分片）：冷 "
          f"{county_cold[0]:.0f} ms（p95 {county_cold[1]:.0f}），热 {county_warm[0]:.0f} ms")
    print(f"注册库键分布：{shares(registry_keys)}（其中群写入的键：{shares(group_keys)}）")
    print(f"注册库写入命令分布：{shares(registry_calls)}")
    print(f"注册库查询命令分布（冷）：{shares(cold_calls)}")
    print(f"注册库查询命令分布（热）：{shares(warm_calls)}")
    worst = worst_share(registry_keys, registry_calls)
    print("结论（注册库键与写入命令，目标：任何主节点不超过 40 %）：",
          "达到" if worst <= 0.40 else f"未达到（最多的主节点占 {worst:.1%}）", flush=True)


def largest_county(city: City) -> str:
    county_of = {n.code: n.code if n.level is Level.COUNTY else n.parent for n in city.nodes}
    for _ in range(8):  # walk every node up to its 县区 (the tree is ≤ 6 deep)
        county_of = {c: county_of.get(up, up) for c, up in county_of.items()}
    sizes = Counter(county_of.get(g.node, "") for g in city.groups if g.node)
    return max((c for c in sizes if c), key=lambda c: sizes[c])


async def records_phase(redis: Any, url: str, sizes: list[int], tmp: Path,
                        formats: list[str], meter: Meter) -> None:
    """一标三实 records on the cluster: memory per record, key and command shares, export."""
    env = er.environment(url)
    deps = er.build_deps(redis, load_settings(ROOT / "settings.toml", env))
    paths = await er.seed_registry(deps)
    before, keys_before, made = await memory(redis), await keys_per_primary(redis), 0
    await meter.cut("记录前的树")
    for size in sizes:
        took, added = await er.generate(deps, paths, made, size), size - made
        made = size
        calls = await meter.cut(f"写入 {size:,} 条记录")
        used = await memory(redis) - before
        keys_now = await keys_per_primary(redis)
        record_keys = {name: n - keys_before.get(name, 0) for name, n in keys_now.items()}
        parts = await breakdown(redis, deps.keys, size, sorted(er.WRITTEN.index_keys),
                                er.WRITTEN.blind, er.EVERY)
        print(f"三主 Redis 集群；{size:,} 条一标三实人口记录（本轮写入 {added:,} 条，"
              f"{took:.1f} 秒）；每条记录 Redis 内存：")
        print("\n".join(lines(parts, used / size)))
        print(f"记录键分布：{shares(record_keys)}")
        print(f"记录写入命令分布：{shares(calls)}")
        print(f"全部键分布：{shares(keys_now)}")
        print(f"{'records':>9} {'format':>6} {'export s':>9} {'rows/s':>9} {'rows/CPU s':>10} "
              f"{'peak RSS MB':>12} {'file MB':>8}", flush=True)
        for fmt in formats:
            r = await asyncio.to_thread(er.run_child, env, fmt, tmp / f"out.{fmt}")
            assert int(r["rows"]) == size, r
            print(f"{size:>9} {fmt:>6} {r['seconds']:>9.1f} {size / r['seconds']:>9.0f} "
                  f"{size / r['cpu_s']:>10.0f} {r['rss_mb']:>12.1f} {r['file_mb']:>8.1f}   "
                  f"(load {os.getloadavg()[0]:.1f})", flush=True)
        print(f"导出命令分布：{shares(await meter.cut(f'导出 {size:,} 条'))}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--records", default="", help="一标三实 record counts, e.g. 2000000")
    parser.add_argument("--formats", default="csv,xlsx")
    parser.add_argument("--notice", action="store_true",
                        help="the province-wide notice to the registry's groups, last")
    parser.add_argument("--speed", type=float, default=15.0, help="--notice: clock speed-up")
    parser.add_argument("--workers", type=int, default=2, help="--notice: gridbot workers")
    asyncio.run(main(parser.parse_args()))
