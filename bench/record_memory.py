"""What one 一标三实 record costs in Redis, part by part (MEMORY USAGE, summed over the keys).

The record, its history list and its blind-index key are sampled (every `every`-th record);
the per-node index ZSETs are measured whole (SAMPLES 0) and shared out over the records they
list. Works on one server and on a cluster (MEMORY USAGE goes to the key's primary).
"""

from __future__ import annotations

from typing import Any

from collect.keys import CollectKeys


async def _usage(redis: Any, keys: list[str]) -> int:
    async with redis.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.memory_usage(key, samples=0)
        return sum(int(n or 0) for n in await pipe.execute())


async def breakdown(redis: Any, keys: CollectKeys, records: int, index_keys: list[str],
                    blind: dict[str, str], every: int = 500) -> dict[str, float]:
    """Bytes per record of each part; `blind` maps a sampled record id to its bidx key."""
    sample = [f"P{n}" for n in range(1, records + 1, every)]
    per = 1 / len(sample)
    parts = {
        "record": await _usage(redis, [keys.record(i) for i in sample]) * per,
        "history": await _usage(redis, [keys.history(i) for i in sample]) * per,
        "blind index": await _usage(redis, [blind[i] for i in sample if i in blind]) * per,
        "node indexes": await _usage(redis, index_keys) / records,
    }
    parts["sum"] = sum(parts.values())
    return parts


def lines(parts: dict[str, float], used_per_record: float) -> list[str]:
    out = [f"  {name:<13} {value:>7.0f} B" for name, value in parts.items()]
    out.append(f"  {'used_memory':<13} {used_per_record:>7.0f} B  (INFO used_memory delta / "
               "records, allocator overhead included)")
    return out
