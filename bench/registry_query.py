"""Registry benchmark: whole-city subtree queries and Redis memory per group.

Usage: .venv/bin/python bench/registry_query.py [--large 100000] [--runs 20]

For the synthetic 吕梁市 (5,267 groups) and a large registry (100,000 groups, same tree shape
with more buildings) it measures, on a fresh embedded redis-server:
  - Redis memory per group (INFO memory used_memory before/after writing the groups, with
    the tree and the staff already in place), and the share of the per-group history streams;
  - the whole-city subtree query: every active group under 吕梁市 with its records
    (groups_under) plus the breakdown by delivery kind (breakdown), median and p95:
    cold (a process that has decoded nothing yet), and warm (the same process again) after
    another process changed 0, 100 or 1,000 random groups, as live events do;
  - a county-level query (临县), cold and warm;
  - the Python memory one process's decoded packs take (tracemalloc);
  - decoding the whole-city reply with codec.decode_rows against a per-row decoder, the two
    interleaved in one run (a ratio the machine's drift barely moves);
and, for the synthetic city, a full sync against the simulator over HTTP (the bot's own
WeComClient; 81017 makes it list per owner batch) after importing the same city from CSV,
checking the registry is unchanged.
Targets: whole city < 50 ms on the synthetic city, < 500 ms on 100,000 groups.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
from aiohttp import web

from bot.clock import REAL_TIME
from bot.keys import Keys
from bot.redis import EmbeddedRedis, connect, free_port
from bot.settings import WeComSettings
from bot.wecom.client import WeComClient
from bot.wecom.simulator import LatencyConfig, SimConfig, WeComSimulator
from registry.city import City
from registry.codec import ROW, RS, US, decode_rows, group_content
from registry.divisions import CITY_CODE
from registry.importer import Importer
from registry.models import DeliveryKind, Group, GroupState
from registry.placement import Placer
from registry.store import Registry
from registry.sync import RegistrySync
from registry.synthetic import DEFAULT_RULE, generate_city, load_into_simulator

COUNTY = "141124"  # 临县, the largest county
BENCH_PREFIX = "bench"
CHURN = (0, 100, 1000)  # groups changed between two warm queries


@dataclass
class Row:
    name: str
    groups: int
    bytes_per_group: float
    history_share: float
    write_s: float
    cold_ms: tuple[float, float]  # a process that has decoded nothing yet: median, p95
    warm_ms: dict[int, float]  # groups changed (by another process) since the last query -> median
    county_ms: tuple[float, float]  # cold, warm
    city_targets: int
    city_redis_ms: float  # redis-server time per cold whole-city query (INFO commandstats)
    cache_mb: float  # Python memory of one process's decoded packs (tracemalloc)


async def used_memory(registry: Registry) -> int:
    info = await registry.redis.info("memory")
    return int(info["used_memory"])


async def history_bytes(registry: Registry, city: City, sample: int = 500) -> float:
    """Average MEMORY USAGE of a group's history stream, over a sample of groups."""
    step = max(1, len(city.groups) // sample)
    sizes = []
    sample_ids = [g.chat_id for g in city.groups[::step]]
    for chat_id, home in zip(sample_ids, await registry.homes(sample_ids), strict=True):
        key = registry.shard_keys(home or "-").history(chat_id)
        size = await registry.redis.memory_usage(key)
        sizes.append(int(size or 0))
    return statistics.fmean(sizes)


async def timed(
    runs: int, query: Callable[[], Awaitable[int]],
    before: Callable[[int], Awaitable[None]] | None = None,
) -> tuple[float, float, int]:
    """(median ms, p95 ms, groups found) of `runs` calls of `query`; `before(run)` untimed."""
    times, found = [], 0
    for run in range(runs):
        if before is not None:
            await before(run)
        start = time.perf_counter()
        found = await query()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))], found


async def server_usec(registry: Registry) -> int:
    stats = await registry.redis.info("commandstats")
    return sum(int(v["usec"]) for k, v in stats.items() if k.startswith("cmdstat_"))


async def subtree(registry: Registry, code: str) -> int:
    groups = await registry.groups_under(code)
    breakdown = await registry.breakdown(code)
    assert sum(breakdown.values()) == len(groups)
    return len(groups)


def fresh(registry: Registry) -> Registry:
    """The registry as a process that has decoded nothing yet sees it (an empty PackCache)."""
    return Registry(registry.redis, Keys(BENCH_PREFIX), REAL_TIME)


def churn(writer: Registry, city: City, changed: int) -> Callable[[int], Awaitable[None]]:
    """Before run n: another process changes the member count of `changed` random groups,
    as live member-joined events do; each touches one pack, which the reader must re-read."""
    rng = random.Random(changed)

    async def change(run: int) -> None:
        picked = rng.sample(city.groups, changed)
        await writer.upsert_groups([g._replace(member_count=g.member_count + run + 1)
                                    for g in picked], actor="bench", batch=2000)
    return change


async def cache_megabytes(registry: Registry) -> float:
    """Python memory allocated by one whole-city query of an empty cache, still held after."""
    reader = fresh(registry)
    tracemalloc.start()
    await reader.groups_under(CITY_CODE)
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return held / 1e6


async def scenario(registry: Registry, name: str, city: City, runs: int) -> Row:
    await registry.redis.flushdb()
    await registry.upsert_nodes(city.nodes, batch=2000)
    await registry.upsert_people(city.people, batch=2000)
    before = await used_memory(registry)
    start = time.perf_counter()
    await registry.upsert_groups(city.groups, actor="bench", batch=2000)
    write_s = time.perf_counter() - start
    per_group = (await used_memory(registry) - before) / len(city.groups)
    hist = await history_bytes(registry, city)
    before_usec = await server_usec(registry)
    cold_med, cold_p95, found = await timed(runs, lambda: subtree(fresh(registry), CITY_CODE))
    redis_ms = (await server_usec(registry) - before_usec) / runs / 1000
    county_cold = (await timed(runs, lambda: subtree(fresh(registry), COUNTY)))[0]
    reader, writer = fresh(registry), fresh(registry)
    await subtree(reader, COUNTY)
    county_warm = (await timed(runs, lambda: subtree(reader, COUNTY)))[0]
    await subtree(reader, CITY_CODE)
    warm = {}
    for changed in CHURN:
        step = churn(writer, city, changed) if changed else None
        warm[changed] = (await timed(runs, lambda: subtree(reader, CITY_CODE), step))[0]
    return Row(name, len(city.groups), per_group, hist / per_group, write_s,
               (cold_med, cold_p95), warm, (county_cold, county_warm), found, redis_ms,
               await cache_megabytes(registry))


def per_row_decode(blob: str) -> list[Group]:
    """The baseline: one Group built per row in Python (the decoder before decode_rows)."""
    kinds, states = {k.value: k for k in DeliveryKind}, {s.value: s for s in GroupState}
    out = []
    for row in blob.split(ROW):
        f = row.split(US)
        out.append(Group(f[0], f[1], kinds[f[2]], f[3], f[4], int(f[5]), states[f[6]], f[7],
                         tuple(f[8].split(RS)) if f[8] else (), float(f[10]), float(f[9])))
    return out


async def decode_ratio(registry: Registry, runs: int) -> str:
    """Columnar decode against the per-row baseline on the same whole-city reply, the two
    interleaved so that both see the same machine: a ratio that noise does not move much."""
    groups = await registry.groups_under(CITY_CODE)
    blob = ROW.join(group_content(g) + US + repr(g.updated_at) for g in groups)
    assert per_row_decode(blob) == decode_rows(blob)
    columnar: list[float] = []
    per_row: list[float] = []
    for _ in range(runs):
        for decode, times in ((decode_rows, columnar), (per_row_decode, per_row)):
            start = time.perf_counter()
            decode(blob)
            times.append((time.perf_counter() - start) * 1000)
    a, b = statistics.median(columnar), statistics.median(per_row)
    return (f"decoding the {len(groups):,}-group reply: columnar {a:.0f} ms, per-row {b:.0f} ms "
            f"(per-row / columnar = {b / a:.2f} ×, same run, interleaved)")


async def import_and_sync(registry: Registry, city: City, directory: Path) -> str:
    """Import the city from CSV, sync it from the simulator; a one-line summary."""
    await registry.redis.flushdb()
    importer = Importer(registry, Placer(registry, DEFAULT_RULE))
    start = time.perf_counter()
    for path in city.write_csv(directory / "city.csv"):
        assert (await importer.import_file(path)).ok
    import_s = time.perf_counter() - start
    before = await registry.dump()
    sim = WeComSimulator(SimConfig(latency=LatencyConfig.none()))
    load_into_simulator(city, sim)
    port = free_port()
    runner = web.AppRunner(sim.app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    settings = WeComSettings(
        corp_id=sim.config.corp_id, secret=sim.config.secret,
        agent_id=sim.config.agent_id, token="bench-token", encoding_aes_key="a" * 43,
        api_base_url=f"http://127.0.0.1:{port}/cgi-bin/")
    try:
        async with aiohttp.ClientSession() as session:
            client = WeComClient(session, settings, registry.redis, Keys("bench"), REAL_TIME)
            start = time.perf_counter()
            result = await RegistrySync(registry, client, Placer(registry, DEFAULT_RULE)).run()
            sync_s = time.perf_counter() - start
    finally:
        await runner.cleanup()
    same = await registry.dump() == before
    return (f"import of the synthetic city's 3 CSV files: {import_s:.1f} s; sync from the "
            f"simulator: {sync_s:.1f} s for {result.listed} customer groups "
            f"({sim.calls('externalcontact/groupchat/list')} list + "
            f"{sim.calls('externalcontact/groupchat/get')} get calls), changed {result.changed}, "
            f"registry unchanged: {same}")


def table(rows: list[Row]) -> str:
    warm = "".join(f"{'+' + str(c) if c else 'warm':>9}" for c in CHURN)
    head = (f"{'registry':<18}{'groups':>8}{'B/group':>9}{'hist%':>7}{'write s':>9}"
            f"{'cold med':>10}{'p95':>7}{warm}{'redis':>7}{'county':>8}{'warm':>6}{'MB':>6}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r.name:<18}{r.groups:>8}{r.bytes_per_group:>9.0f}{r.history_share * 100:>6.0f}%"
            f"{r.write_s:>9.2f}{r.cold_ms[0]:>10.1f}{r.cold_ms[1]:>7.1f}"
            + "".join(f"{r.warm_ms[c]:>9.1f}" for c in CHURN)
            + f"{r.city_redis_ms:>7.1f}{r.county_ms[0]:>8.1f}{r.county_ms[1]:>6.1f}"
            f"{r.cache_mb:>6.0f}")
    return "\n".join(lines)


async def main(large: int, runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp))
        server.start()
        redis = connect(server.url)
        try:
            registry = Registry(redis, Keys(BENCH_PREFIX), REAL_TIME)
            rows = [await scenario(registry, "吕梁市 (synthetic)", generate_city(seed=1), runs)]
            big = generate_city(seed=1, total_groups=large, residents=large * 80)
            rows.append(await scenario(registry, f"{large:,} groups", big, runs))
            decode_line = await decode_ratio(registry, max(5, runs // 2))
            sync_line = await import_and_sync(registry, generate_city(seed=1), Path(tmp))
        finally:
            await redis.aclose()
            server.stop()
    print(table(rows))
    print("whole city: every active group under 吕梁市 as Group records + breakdown by kind, "
          "median ms over the runs")
    print("cold: a process that has decoded nothing yet; warm: the same process again, after "
          "another process changed nothing (warm) or +N random groups before each query; "
          "redis: redis-server ms per cold query; county: 临县 cold and warm; MB: Python "
          "memory of one process's decoded packs")
    print("targets: whole city < 50 ms (synthetic), < 500 ms (100,000 groups)")
    print(decode_line)
    print(sync_line)
    for label, pick in verdicts():
        ok = pick(rows[0]) < 50 and pick(rows[-1]) < 500
        print(f"result ({label}):", "within targets" if ok else "OVER TARGET")


def verdicts() -> list[tuple[str, Callable[[Row], float]]]:
    def warm(changed: int) -> Callable[[Row], float]:
        return lambda row: row.warm_ms[changed]
    cold: list[tuple[str, Callable[[Row], float]]] = [("cold", lambda row: row.cold_ms[0])]
    return cold + [(f"warm +{c}" if c else "warm", warm(c)) for c in CHURN]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20)
    options = parser.parse_args()
    asyncio.run(main(options.large, options.runs))
