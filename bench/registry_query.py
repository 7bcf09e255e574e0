"""Registry benchmark: whole-city subtree queries and Redis memory per group.

Usage: .venv/bin/python bench/registry_query.py [--large 100000] [--runs 20]

For the synthetic 吕梁市 (5,267 groups) and a large registry (100,000 groups, same tree shape
with more buildings) it measures, on a fresh embedded redis-server:
  - Redis memory per group (INFO memory used_memory before/after writing the groups, with
    the tree and the staff already in place), and the share of the per-group history streams;
  - the whole-city subtree query: every active group under 吕梁市 with its records
    (groups_under) plus the breakdown by delivery kind (breakdown), median and p95;
  - a county-level query (临县) the same way;
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
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
from aiohttp import web

from bot.clock import REAL_TIME
from bot.keys import Keys
from bot.redis import EmbeddedRedis, connect, free_port
from bot.registry.city import City
from bot.registry.codec import ROW, RS, US, decode_rows, group_content
from bot.registry.divisions import CITY_CODE
from bot.registry.importer import Importer
from bot.registry.models import DeliveryKind, Group, GroupState
from bot.registry.placement import Placer
from bot.registry.store import Registry
from bot.registry.sync import RegistrySync
from bot.registry.synthetic import DEFAULT_RULE, generate_city, load_into_simulator
from bot.settings import WeComSettings
from bot.wecom.client import WeComClient
from bot.wecom.simulator import LatencyConfig, SimConfig, WeComSimulator

COUNTY = "141124"  # 临县, the largest county


@dataclass
class Row:
    name: str
    groups: int
    bytes_per_group: float
    history_share: float
    write_s: float
    city_ms: tuple[float, float]
    county_ms: tuple[float, float]
    city_targets: int
    city_cpu_ms: float  # this process's CPU per whole-city query (parse + Group objects)
    city_redis_ms: float  # redis-server time per whole-city query (INFO commandstats)


async def used_memory(registry: Registry) -> int:
    info = await registry.redis.info("memory")
    return int(info["used_memory"])


async def history_bytes(registry: Registry, city: City, sample: int = 500) -> float:
    """Average MEMORY USAGE of a group's history stream, over a sample of groups."""
    step = max(1, len(city.groups) // sample)
    sizes = []
    for group in city.groups[::step]:
        size = await registry.redis.memory_usage(registry.keys.history(group.chat_id))
        sizes.append(int(size or 0))
    return statistics.fmean(sizes)


async def timed(runs: int, query: object) -> tuple[float, float, int, float]:
    """(median ms, p95 ms, groups found, median CPU ms) of `runs` calls of async `query`."""
    times, cpu, found = [], [], 0
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        found = await query()  # type: ignore[operator]
        times.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    times.sort()
    p95 = times[int(0.95 * (len(times) - 1))]
    return statistics.median(times), p95, found, statistics.median(cpu)


async def server_usec(registry: Registry) -> int:
    stats = await registry.redis.info("commandstats")
    return sum(int(v["usec"]) for k, v in stats.items() if k.startswith("cmdstat_"))


async def subtree(registry: Registry, code: str) -> int:
    groups = await registry.groups_under(code)
    breakdown = await registry.breakdown(code)
    assert sum(breakdown.values()) == len(groups)
    return len(groups)


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
    city_med, city_p95, found, city_cpu = await timed(runs, lambda: subtree(registry, CITY_CODE))
    redis_ms = (await server_usec(registry) - before_usec) / runs / 1000
    county_med, county_p95, _, _ = await timed(runs, lambda: subtree(registry, COUNTY))
    return Row(name, len(city.groups), per_group, hist / per_group, write_s,
               (city_med, city_p95), (county_med, county_p95), found, city_cpu, redis_ms)


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
    columnar, per_row = [], []
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
    head = (f"{'registry':<18}{'groups':>8}{'B/group':>9}{'hist%':>7}{'write s':>9}"
            f"{'city med ms':>13}{'p95':>7}{'cpu':>7}{'redis':>7}"
            f"{'county med':>12}{'p95':>7}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r.name:<18}{r.groups:>8}{r.bytes_per_group:>9.0f}{r.history_share * 100:>6.0f}%"
            f"{r.write_s:>9.2f}{r.city_ms[0]:>13.1f}{r.city_ms[1]:>7.1f}{r.city_cpu_ms:>7.1f}"
            f"{r.city_redis_ms:>7.1f}{r.county_ms[0]:>12.1f}{r.county_ms[1]:>7.1f}")
    return "\n".join(lines)


async def main(large: int, runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp))
        server.start()
        redis = connect(server.url)
        try:
            registry = Registry(redis, Keys("bench"), REAL_TIME)
            rows = [await scenario(registry, "吕梁市 (synthetic)", generate_city(seed=1), runs)]
            big = generate_city(seed=1, total_groups=large, residents=large * 80)
            rows.append(await scenario(registry, f"{large:,} groups", big, runs))
            decode_line = await decode_ratio(registry, max(5, runs // 2))
            sync_line = await import_and_sync(registry, generate_city(seed=1), Path(tmp))
        finally:
            await redis.aclose()
            server.stop()
    print(table(rows))
    print("city: all active groups under 吕梁市 as Group records + breakdown by kind; cpu: this"
          " process's CPU per query; redis: redis-server time per query")
    print("targets: whole city < 50 ms (synthetic), < 500 ms (100,000 groups)")
    print(decode_line)
    print(sync_line)
    ok = rows[0].city_ms[0] < 50 and rows[-1].city_ms[0] < 500
    print("result:", "within targets" if ok else "OVER TARGET")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20)
    options = parser.parse_args()
    asyncio.run(main(options.large, options.runs))
