"""Benchmark: streaming export of 一标三实 records, time and memory against record count.

Generates person records into a fresh embedded redis-server (pipelined, sealed with the real
cipher, indexed exactly as the service indexes them), then exports them with
collect.export.export in a child process per run, so each run's peak RSS is its own.
Constant memory shows as the same peak RSS at 100k and 1M records. rows/CPU s counts the
export process's own CPU time (the Redis server's is not in it): on a shared machine it
moves less than rows/s, which the other processes' load takes its share of. After each size it
prints Redis memory per record, part by part (bench/record_memory.py).

    .venv/bin/python bench/export_records.py                       # 100k and 1M, CSV; XLSX 100k
    .venv/bin/python bench/export_records.py --sizes 20000 --xlsx-sizes 20000   # quick
    .venv/bin/python bench/export_records.py --engine cluster      # a three-master cluster
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from record_memory import breakdown, lines
from stdnum.cn import ric

from bot.audit import AuditLog
from bot.clock import Clock
from bot.cluster import EmbeddedCluster
from bot.keys import Keys
from bot.redis import EmbeddedRedis, cluster_of, connect
from bot.rtypes import hmapping
from bot.settings import Settings, load_settings
from collect.deps import CollectDeps
from collect.export import ExportQuery, export
from collect.models import Change, ChangeKind, HistoryEntry, Record, RecordKind, ReviewState
from collect.records import compose, label_of
from registry.models import Level, Node, Person, Role
from registry.store import Registry

ROOT = Path(__file__).resolve().parent.parent
COUNTY, GRIDS = "141181", 100
OFFICER = "bench-officer"
BATCH = 2000
WRITERS = 4
EVERY = 500  # every 500th record's own keys are measured


@dataclass
class Written:
    """What the generator wrote that the memory breakdown measures."""

    layout: str = "packed"
    index_keys: set[str] = field(default_factory=set)
    blind: dict[str, str] = field(default_factory=dict)  # sampled record id -> bidx key


WRITTEN = Written()


def environment(redis_url: str) -> dict[str, str]:
    """Settings for parent and children: fresh keys, the bench's Redis."""
    secret = base64.b64encode(os.urandom(32)).decode()
    return {
        "GRIDBOT_REDIS__URL": redis_url, "GRIDBOT_WECOM__CORP_ID": "wwbench",
        "GRIDBOT_WECOM__SECRET": "bench", "GRIDBOT_WECOM__AGENT_ID": "1",
        "GRIDBOT_WECOM__TOKEN": "bench", "GRIDBOT_WECOM__ENCODING_AES_KEY": "a" * 43,
        "GRIDBOT_SECURITY__FIELD_KEYS": f"k1:{secret}",
        "GRIDBOT_SECURITY__BLIND_INDEX_KEY": base64.b64encode(os.urandom(32)).decode(),
    }


def build_deps(redis: aioredis.Redis, settings: Settings) -> CollectDeps:
    keys, clock = Keys(settings.redis.prefix), Clock()
    return CollectDeps.build(redis, keys, clock, settings, Registry(redis, keys, clock),
                             AuditLog(redis, keys, clock))


def tree() -> list[Node]:
    nodes = [Node("141100", "吕梁市", Level.CITY), Node(COUNTY, "孝义市", Level.COUNTY, "141100"),
             Node("141181001", "新义街道", Level.TOWNSHIP, COUNTY),
             Node("141181001001", "东关社区", Level.VILLAGE, "141181001")]
    nodes += [Node(f"141181001001-G{g:02d}", f"东关{g}网格", Level.GRID, "141181001001")
              for g in range(1, GRIDS + 1)]
    return nodes


async def seed_registry(deps: CollectDeps) -> list[tuple[Node, ...]]:
    nodes = tree()
    for node in nodes:
        await deps.registry.upsert_node(node)
    await deps.registry.upsert_person(Person(OFFICER, "民警", Role.OFFICER, (COUNTY,)))
    return [(*nodes[:4], grid) for grid in nodes[4:]]


def id_number(i: int) -> str:
    body = f"142326{1950 + i % 50}{1 + i % 12:02d}{1 + i % 28:02d}{i % 1000:03d}"
    return body + ric.calc_check_digit(body + "0")


def person(deps: CollectDeps, i: int, path: tuple[Node, ...], now: float) -> Record:
    number, record_id = id_number(i), f"P{i + 1}"
    values = {"name": "王" + "小明红丽"[i % 4] + "伟芳娜敏"[i % 4 // 2], "id_number": number,
              "phone": f"13{i % 10}{i:08d}"[-11:], "sex": "男" if int(number[16]) % 2 else "女",
              "birth_date": f"{number[6:10]}-{number[10:12]}-{number[12:14]}",
              "population_type": "常住人口", "relation": "户主", "relation_code": "02",
              "status": "在住", "address_id": f"A{i // 3 + 1}",
              "address_full": f"吕梁市孝义市新义街道东关社区{path[-1].name}振兴路{i // 300}号"
                              f"{i // 30 % 10}栋{i // 3 % 10 + 1}0{i % 3 + 1}室",
              "id_bidx": deps.blind.digest("id", number)}
    fields, sealed, masked = compose(RecordKind.PERSON, record_id, values, deps.cipher)
    state = (ReviewState.PENDING, ReviewState.VERIFIED, ReviewState.RETURNED)[i % 3]
    return Record(record_id, RecordKind.PERSON, path[-1].code, state, fields, sealed, masked,
                  now, "bench", now + i * 0.001, "bench", "chat", "", 1)


async def write_batch(deps: CollectDeps, records: list[Record],
                      paths: list[tuple[Node, ...]]) -> None:
    """The keys RecordStore.save/reindex write, with each index's members of the batch in one
    ZADD (the same members and scores, far fewer commands); the history entry is the one
    the service writes on creation (every shown field, masked)."""
    keys = deps.keys
    index: dict[str, dict[str, float]] = defaultdict(dict)
    async with deps.redis.pipeline(transaction=False) as pipe:
        for record, path in zip(records, paths, strict=True):
            entry = HistoryEntry(record.created_at, "bench", ChangeKind.COLLECT, "",
                                 "chat:bench", shown(record))
            if WRITTEN.layout == "hash":  # the layout before the packed one, to compare
                pipe.hset(keys.record(record.id), mapping=hmapping(record.to_redis()))
                pipe.rpush(keys.history(record.id), earlier_history(entry))
            else:
                pipe.set(keys.record(record.id), record.pack())
                pipe.append(keys.history(record.id), entry.to_json() + "\n")
            blind = keys.blind("id", record.fields["id_bidx"])
            pipe.set(blind, record.id)
            if (int(record.id[1:]) - 1) % EVERY == 0:
                WRITTEN.blind[record.id] = blind
            for node in path:
                if WRITTEN.layout == "hash":  # the earlier layout's index of all states
                    index[keys.under(node.code, "person")][record.id] = record.updated_at
                index[keys.under(node.code, "person", record.state.value)][record.id] = \
                    record.updated_at
        WRITTEN.index_keys.update(index)
        for key, members in index.items():
            pipe.zadd(key, cast("Mapping[Any, float]", members))
        await pipe.execute()


def earlier_history(entry: HistoryEntry) -> str:
    return json.dumps({"at": entry.at, "actor": entry.actor, "kind": entry.kind.value,
                       "reason": entry.reason, "source": entry.source,
                       "changes": [[c.field, c.old, c.new] for c in entry.changes]},
                      ensure_ascii=False)


def shown(record: Record) -> tuple[Change, ...]:
    """collect.service's first history entry: each shown field, masked."""
    names = sorted({*record.fields, *record.masked} - {"id_bidx", "canonical", "address_full"})
    return tuple(Change(label_of(record.kind, n), "", record.display(n)) for n in names
                 if not n.endswith("_code"))


async def generate(deps: CollectDeps, paths: list[tuple[Node, ...]], start: int,
                   stop: int) -> float:
    """Records start..stop-1, WRITERS pipelines in flight; returns seconds."""
    began, now = time.perf_counter(), time.time()
    pending: set[asyncio.Task[None]] = set()
    for first in range(start, stop, BATCH):
        chosen = [paths[i % len(paths)] for i in range(first, min(stop, first + BATCH))]
        batch = [person(deps, first + n, p, now) for n, p in enumerate(chosen)]
        pending.add(asyncio.create_task(write_batch(deps, batch, chosen)))
        if len(pending) >= WRITERS:
            _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
    await asyncio.gather(*pending)
    return time.perf_counter() - began


async def child(fmt: str, out: Path, trace: bool) -> dict[str, float]:
    """One export in this (fresh) process: rows, seconds, peak RSS and traced peak."""
    settings = load_settings(ROOT / "settings.toml")
    redis = connect(settings.redis.url)
    if trace:  # tracemalloc slows Python several-fold: only for the allocation figure
        tracemalloc.start()
    began, cpu = time.perf_counter(), time.process_time() + _children_cpu()
    rows = await export(build_deps(redis, settings), OFFICER,
                        ExportQuery(COUNTY, RecordKind.PERSON, fmt=fmt), out,  # type: ignore[arg-type]
                        source="bench")
    seconds = time.perf_counter() - began
    cpu = time.process_time() + _children_cpu() - cpu  # the row workers' too
    traced = tracemalloc.get_traced_memory()[1] if trace else 0
    await redis.aclose()
    return {"rows": rows, "seconds": seconds, "cpu_s": cpu, "rss_mb": _peak_rss_mb(),
            "worker_rss_mb": _peak_rss_mb(resource.RUSAGE_CHILDREN),
            "traced_mb": traced / 2**20, "file_mb": _size_mb(out)}


def _size_mb(path: Path) -> float:
    return path.stat().st_size / 2**20


def _peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # Linux: KiB; children: the largest one


def _children_cpu() -> float:
    """CPU seconds of this process's finished children: the export's row workers."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_child(env: dict[str, str], fmt: str, out: Path, trace: bool = False
              ) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", fmt, "--out", str(out)]
    command += ["--trace"] if trace else []
    done = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True,
                          check=True, cwd=ROOT)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


async def used_memory(redis: aioredis.Redis) -> int:
    """INFO used_memory, summed over the primaries on a cluster."""
    cluster = cluster_of(redis)
    if cluster is None:
        return int((await redis.info("memory"))["used_memory"])
    return sum([int((await cluster.info("memory", target_nodes=node))["used_memory"])
                for node in cluster.get_primaries()])


async def main(args: argparse.Namespace) -> None:
    sizes = sorted(int(s) for s in args.sizes.split(","))
    xlsx = {int(s) for s in args.xlsx_sizes.split(",") if s}
    WRITTEN.layout = args.layout
    with tempfile.TemporaryDirectory(prefix="gridbot-bench-") as tmp:
        server: EmbeddedRedis | EmbeddedCluster = (
            EmbeddedCluster(Path(tmp) / "cluster", appendfsync="no")
            if args.engine == "cluster" else EmbeddedRedis(Path(tmp) / "redis", appendfsync="no"))
        env = environment(server.start())
        try:
            await _run(env, sizes, xlsx, Path(tmp), args.formats.split(","),
                       args.workers.split(","))
        finally:
            server.stop()


async def _run(env: dict[str, str], sizes: list[int], xlsx: set[int], tmp: Path,
               formats: list[str], workers: list[str]) -> None:
    settings = load_settings(ROOT / "settings.toml", env)
    redis = connect(env["GRIDBOT_REDIS__URL"])
    deps = build_deps(redis, settings)
    paths = await seed_registry(deps)
    before, made = await used_memory(redis), 0
    print(f"engine {'cluster (3 primaries)' if cluster_of(redis) else 'single'}, "
          f"layout {WRITTEN.layout}", flush=True)
    for size in sizes:
        took, added = await generate(deps, paths, made, size), size - made
        made = size
        used = await used_memory(redis)
        parts = await breakdown(redis, deps.keys, size, sorted(WRITTEN.index_keys),
                                WRITTEN.blind, EVERY)
        print(f"{size:,} records ({added:,} written in {took:.1f} s); Redis memory per record:")
        print("\n".join(lines(parts, (used - before) / size)), flush=True)
        print(f"{'records':>9} {'format':>6} {'workers':>7} {'export s':>9} {'rows/s':>9} "
              f"{'rows/CPU s':>10} {'peak RSS MB':>12} {'worker MB':>9} {'traced MB':>10} "
              f"{'file MB':>8}")
        for fmt in [f for f in formats if f == "csv" or size in xlsx]:
            first = 0.0
            for count in workers:
                r = await asyncio.to_thread(run_child, {**env, **_workers_env(count)}, fmt,
                                            tmp / f"out.{fmt}")
                assert int(r["rows"]) == size, r
                rate = size / r["seconds"]
                first = first or rate
                print(f"{size:>9} {fmt:>6} {count:>7} {r['seconds']:>9.1f} {rate:>9.0f} "
                      f"{size / r['cpu_s']:>10.0f} {r['rss_mb']:>12.1f} "
                      f"{r['worker_rss_mb']:>9.1f} {r['traced_mb']:>10.2f} {r['file_mb']:>8.1f}"
                      f"   ×{rate / first:.2f} (load {os.getloadavg()[0]:.1f})", flush=True)
    await redis.aclose()


def _workers_env(count: str) -> dict[str, str]:
    """settings.collect.export_workers for one run: a number, or "auto" (one per core)."""
    return {} if count == "auto" else {"GRIDBOT_COLLECT__EXPORT_WORKERS": count}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--xlsx-sizes", default="100000")
    parser.add_argument("--formats", default="csv,xlsx")
    parser.add_argument("--engine", choices=["single", "cluster"], default="single")
    parser.add_argument("--layout", choices=["packed", "hash"], default="packed",
                        help="hash: write records in the earlier layout (to compare)")
    parser.add_argument("--workers", default="0,auto",
                        help="export_workers per run, side by side (auto: one per core)")
    parser.add_argument("--child", choices=["csv", "xlsx"])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--trace", action="store_true", help="child: also run tracemalloc")
    cli = parser.parse_args()
    if cli.child:
        print(json.dumps(asyncio.run(child(cli.child, cli.out, cli.trace))))
    else:
        asyncio.run(main(cli))
