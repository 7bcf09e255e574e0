"""Move data of the earlier layout to the compact one: records, histories, indexes.

The earlier layout kept a record as a hash of named fields, its history as a list of JSON
objects, and per node an index of all review states beside the per-state ones. Reading needs
no upgrade (RecordStore reads both record and history forms and no longer reads the all-state
index; every save writes the compact forms); this pass frees the memory of records nobody
edits. Safe to run while the bot runs: each record is rewritten under a WATCH (a concurrent
save has already packed it), a record already packed is left alone, and the all-state
indexes are no longer written, so an interrupted run is simply run again.

    gridbot collect upgrade-records
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.exceptions import WatchError

from bot.redis import scan_pages
from collect.deps import CollectDeps
from collect.models import RecordKind
from collect.store import earlier_history, queue_history, read_any


@dataclass
class UpgradeReport:
    scanned: int = 0
    upgraded: int = 0
    conflicts: int = 0
    indexes: int = 0

    def line(self) -> str:
        return (f"已检查 {self.scanned} 条记录，转为紧凑格式 {self.upgraded} 条，"
                f"并发冲突待重试 {self.conflicts} 条，删除旧索引 {self.indexes} 个")


async def _upgrade_one(deps: CollectDeps, key: str, report: UpgradeReport) -> None:
    async with deps.redis.pipeline(transaction=True) as pipe:
        try:
            await pipe.watch(key)
            record, packed = await read_any(pipe, key)
            if record is None or packed:
                return
            history = deps.keys.history(record.id)
            earlier = await earlier_history(pipe, history, packed)
            pipe.multi()  # type: ignore[no-untyped-call]
            pipe.set(key, record.pack())
            queue_history(pipe, history, earlier, replace=True)
            await pipe.execute()
            report.upgraded += 1
        except WatchError:
            report.conflicts += 1


async def upgrade(deps: CollectDeps, *, batch: int = 500) -> UpgradeReport:
    """One pass over every record key, packing the ones still stored as hashes."""
    report = UpgradeReport()
    async for _, found in scan_pages(deps.redis, deps.keys.record_pattern(), batch):
        for key in found:
            report.scanned += 1
            await _upgrade_one(deps, key, report)
    kinds = {kind.value for kind in RecordKind}
    async for _, found in scan_pages(deps.redis, deps.keys.index_pattern(), batch):
        for key in (k for k in found if k.rsplit(":", 1)[-1] in kinds):
            report.indexes += await deps.redis.delete(key)
    return report
