"""Registry benchmark: whole-city subtree queries and Redis memory per group.

Usage: .venv/bin/python bench/registry_query.py [--large 100000] [--runs 20]

For the synthetic 吕梁市 (5,267 groups) and a large registry (100,000 groups, same tree shape
with more buildings) it measures, on a fresh embedded redis-server:
  - Redis memory per group (INFO memory used_memory before/after writing the groups, with
    the tree and the staff already in place), and the share of the per-group history streams;
  - the whole-city subtree query: every active group under 吕梁市 with its records
    (groups_under) plus the breakdown by delivery kind (breakdown), median and p95;
  - a county-level query (临县) the same way.
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

from bot.clock import REAL_TIME  # noqa: E402
from bot.keys import Keys  # noqa: E402
from bot.redis import EmbeddedRedis, connect  # noqa: E402
from bot.registry.city import City  # noqa: E402
from bot.registry.divisions import CITY_CODE  # noqa: E402
from bot.registry.store import Registry  # noqa: E402
from bot.registry.synthetic import generate_city  # noqa: E402

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


async def timed(runs: int, query: object) -> tuple[float, float, int]:
    """(median ms, p95 ms, groups found) of `runs` calls of the async `query`."""
    times, found = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        found = await query()  # type: ignore[operator]
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))], found


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
    city_med, city_p95, found = await timed(runs, lambda: subtree(registry, CITY_CODE))
    county_med, county_p95, _ = await timed(runs, lambda: subtree(registry, COUNTY))
    return Row(name, len(city.groups), per_group, hist / per_group, write_s,
               (city_med, city_p95), (county_med, county_p95), found)


def table(rows: list[Row]) -> str:
    head = (f"{'registry':<22}{'groups':>8}{'B/group':>9}{'hist%':>7}{'write s':>9}"
            f"{'city med ms':>13}{'city p95':>10}{'county med':>12}{'county p95':>12}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r.name:<22}{r.groups:>8}{r.bytes_per_group:>9.0f}{r.history_share * 100:>6.0f}%"
            f"{r.write_s:>9.2f}{r.city_ms[0]:>13.1f}{r.city_ms[1]:>10.1f}"
            f"{r.county_ms[0]:>12.1f}{r.county_ms[1]:>12.1f}")
    return "\n".join(lines)


async def main(large: int, runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp))
        server.start()
        redis = connect(server.url)
        try:
            registry = Registry(redis, Keys("bench"), REAL_TIME)
            rows = [await scenario(registry, "吕梁市 synthetic", generate_city(seed=1), runs)]
            big = generate_city(seed=1, total_groups=large, residents=large * 80)
            rows.append(await scenario(registry, f"{large:,} groups", big, runs))
        finally:
            await redis.aclose()
            server.stop()
    print(table(rows))
    print("targets: whole city < 50 ms (synthetic), < 500 ms (100,000 groups)")
    ok = rows[0].city_ms[0] < 50 and rows[-1].city_ms[0] < 500
    print("result:", "within targets" if ok else "OVER TARGET")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20)
    options = parser.parse_args()
    asyncio.run(main(options.large, options.runs))
