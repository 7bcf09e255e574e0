"""Key rotation: re-encrypt every sealed field under the current write key (and cipher).

Put the new key first in security.field_keys (keep the old ones after it), restart, then run
`gridbot collect rotate-keys`. Records are walked with SCAN in batches, each rewritten under
a WATCH on the record (a concurrent edit wins and the record is retried on the next pass);
the SCAN cursors (one per cluster primary) are kept in Redis, so an interrupted run resumes.
When a run reports 0 left, and session_ttl_seconds have passed (sealed conversation state
expires), the old key may go.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from redis.exceptions import WatchError

from bot.redis import Cursors, scan_pages
from bot.rtypes import text
from collect.crypto import FieldCryptoError
from collect.deps import CollectDeps
from collect.models import Record
from collect.store import earlier_history, queue_history, read_any


@dataclass
class RotationReport:
    scanned: int = 0
    rewritten: int = 0
    conflicts: int = 0
    unreadable: int = 0

    def line(self) -> str:
        return (f"已检查 {self.scanned} 条记录，重新加密 {self.rewritten} 条，"
                f"并发冲突待重试 {self.conflicts} 条，无法解密 {self.unreadable} 条")


def _resealed(deps: CollectDeps, record: Record) -> Record | None:
    """The record with every stale sealed value re-encrypted; None when nothing is stale."""
    stale = {k: v for k, v in record.sealed.items() if not deps.cipher.is_current(v)}
    if not stale:
        return None
    sealed = dict(record.sealed)
    for name, value in stale.items():
        plain = deps.cipher.open(value, record.id, name)
        sealed[name] = deps.cipher.seal(plain, record.id, name)
    return replace(record, sealed=sealed, version=record.version + 1)


async def _rewrite(deps: CollectDeps, key: str, report: RotationReport) -> None:
    async with deps.redis.pipeline(transaction=True) as pipe:
        try:
            await pipe.watch(key)
            record, packed = await read_any(pipe, key)
            if record is None:
                return
            try:
                new = _resealed(deps, record)
            except FieldCryptoError:
                report.unreadable += 1
                return
            if new is None:
                return
            history = deps.keys.history(record.id)
            earlier = await earlier_history(pipe, history, packed)
            pipe.multi()  # type: ignore[no-untyped-call]
            pipe.set(key, new.pack())  # an earlier-layout record is upgraded on the way
            queue_history(pipe, history, earlier, replace=not packed)
            await pipe.execute()
            report.rewritten += 1
        except WatchError:
            report.conflicts += 1


def _resume(saved: str | None) -> Cursors | None:
    """Stored cursors: {node: cursor} (one per primary), or one bare cursor (earlier form)."""
    if not saved:
        return None
    value = json.loads(saved)
    return {"": int(value)} if isinstance(value, int) else dict(value)


async def rotate(deps: CollectDeps, *, batch: int = 500, restart: bool = False
                 ) -> RotationReport:
    """One full pass over the records (resuming a stopped pass unless `restart`)."""
    cursor_key = deps.keys.rotate_cursor()
    saved = None if restart else text(await deps.redis.get(cursor_key))
    report = RotationReport()
    async for cursors, found in scan_pages(deps.redis, deps.keys.record_pattern(), batch,
                                           _resume(saved)):
        for key in found:
            report.scanned += 1
            await _rewrite(deps, key, report)
        await deps.redis.set(cursor_key, json.dumps(cursors))
    await deps.redis.delete(cursor_key)
    return report
