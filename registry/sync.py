"""Sync customer groups from WeCom (externalcontact/groupchat/list + groupchat/get).

A run pages through groupchat/list, fetches each group and applies it: name, owner and member
count from WeCom, the node from the naming rule (an existing placement is kept when the name
does not resolve, so an imported or 绑定 placement survives). Applying the same data twice
changes nothing, so a page interrupted half-way is simply fetched and applied again: the
cursor of the next page and the counters are kept in Redis after every page, and the next
run resumes there. A Redis lock keeps two processes from syncing at once.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from bot.wecom.errors import WeComAPIError
from bot.wecom.models import GroupChatInfo, GroupChatRef, Page
from registry import moves
from registry.models import DeliveryKind, Group, GroupState
from registry.moves import MoveRequest
from registry.placement import Placement, Placer
from registry.replies import mapping, texts
from registry.store import Registry, RegistryError

SYNC_ACTOR = "sync"
LOCK_SECONDS = 600
OWNER_BATCH = 100  # groupchat/list owner_filter.userid_list maximum
TOO_MANY_VISIBLE = 81017  # unfiltered groupchat/list refused: more than 1000 members visible


class ChatSource(Protocol):
    """What sync needs of bot.wecom.client.WeComClient."""

    async def groupchat_list(
        self, *, cursor: str = "", limit: int = 1000, owner_userids: Sequence[str] = (),
        status_filter: int = 0,
    ) -> Page[GroupChatRef]: ...

    async def groupchat_get(self, chat_id: str) -> GroupChatInfo: ...


class SyncBusyError(RegistryError):
    pass


@dataclass(frozen=True, slots=True)
class Applied:
    """What applying one groupchat/get answer did."""

    group: Group | None
    changed: bool
    unplaced_reason: str = ""
    requested: MoveRequest | None = None  # a rename pointing elsewhere: held, not moved
    placed: str = ""  # the node the name placed a group on that had none (automatic)


async def apply_chat_info(
    registry: Registry, placer: Placer, info: GroupChatInfo, *, actor: str, source: str = ""
) -> Applied:
    """Write what WeCom says about one customer group; a dismissed record stays dismissed.

    The naming rule places the group, except while it still carries the name it had when it
    was placed explicitly (绑定 or import). A name the rule cannot resolve keeps the current
    node; a group that never had one is listed as unplaced.
    """
    bound = await registry.binding(info.chat_id)
    sticky = bound is not None and bound == info.name
    placement = Placement("") if sticky else await placer.place(info.name)
    before = await registry.group(info.chat_id)
    held = _held(before, placement, info, registry)
    if held is not None:  # a rename is a request, not a move: the group stays
        placement = Placement("")
        if not await moves.hold(registry, held):
            held = None  # the same request again (a re-delivered event): nothing new
    elif not sticky:
        await moves.drop(registry, info.chat_id)  # renamed back, or pointing nowhere
    if bound is not None and not sticky and held is None:
        await registry.clear_binding(info.chat_id)

    def merge(current: Group | None) -> Group | None:
        if current is not None and current.state is GroupState.DISMISSED:
            return None
        base = current or Group(info.chat_id, info.name, DeliveryKind.CUSTOMER_GROUP)
        return base._replace(
            name=info.name, kind=DeliveryKind.CUSTOMER_GROUP, owner=info.owner,
            member_count=info.member_count, node=placement.node or base.node,
        )

    write = await registry.update_group(
        info.chat_id, merge, actor=actor, source=source, unplaced_reason=placement.reason,
        candidates=placement.candidates,
    )
    reason = placement.reason if write.group is not None and not write.group.node else ""
    placed = write.group.node if (write.group is not None and write.group.node and placement.node
                                  and not (before and before.node)) else ""
    return Applied(write.group, write.changed, reason, held, placed)


def _held(before: Group | None, placement: Placement, info: GroupChatInfo,
          registry: Registry) -> MoveRequest | None:
    """The move request a rename makes: the group has a node and its name points elsewhere."""
    if before is None or not before.node or not placement.node or placement.node == before.node:
        return None
    if before.state is GroupState.DISMISSED:
        return None
    return MoveRequest(info.chat_id, info.name, before.node, placement.node,
                       registry.clock.now())


@dataclass(frozen=True, slots=True)
class SyncProgress:
    """Counters of a run (kept in Redis, so a resumed run continues them)."""

    status: str = "idle"  # idle | running | done
    pages: int = 0
    listed: int = 0
    changed: int = 0
    unchanged: int = 0
    unplaced: int = 0
    failed: int = 0
    resumed: bool = False
    missing: tuple[str, ...] = ()  # customer groups in the registry WeCom no longer lists


class RegistrySync:
    """One sync run at a time across all processes; resumable after an interruption.

    A run walks a list of scopes (owner filters) page by page. It starts with one unfiltered
    scope; when WeCom answers 81017 (more than 1000 members visible), the scopes become the
    registry's people and group owners in batches of 100 (groupchat/list's filter maximum).
    """

    def __init__(
        self, registry: Registry, source: ChatSource, placer: Placer, *, page_size: int = 1000,
        concurrency: int = 16,
    ) -> None:
        self.registry = registry
        self.source = source
        self.placer = placer
        self.page_size = page_size
        self.concurrency = concurrency

    async def state(self) -> SyncProgress:
        return _progress(await self._raw_state())

    async def _raw_state(self) -> dict[str, str]:
        return mapping(await self.registry.redis.hgetall(self.registry.keys.sync_state()))

    async def run(
        self, *, owners: Sequence[str] = (), restart: bool = False, max_pages: int | None = None,
        on_page: Callable[[SyncProgress], None] | None = None,
    ) -> SyncProgress:
        """Sync (or resume) to the end, or for `max_pages` pages (then it stays resumable)."""
        token = await self._lock()
        try:
            resumed = await self._begin(owners, restart)
            pages = 0
            while max_pages is None or pages < max_pages:
                scopes, index, cursor = await self._position()
                if index >= len(scopes):
                    return await self._finish(owners, resumed)
                await self._step(scopes[index], cursor)
                pages += 1
                if on_page:
                    on_page(await self.state())
                await self._refresh_lock(token)
            return replace(await self.state(), resumed=resumed)
        finally:
            await self._unlock(token)

    async def _begin(self, owners: Sequence[str], restart: bool) -> bool:
        k, redis = self.registry.keys, self.registry.redis
        state = await self._raw_state()
        same_scope = state.get("owners", "") == ",".join(owners)
        if state.get("status") == "running" and same_scope and not restart:
            return True
        scopes = [list(owners[i:i + OWNER_BATCH]) for i in range(0, len(owners), OWNER_BATCH)]
        async with redis.pipeline(transaction=True) as pipe:
            pipe.delete(k.sync_state(), k.sync_seen())
            pipe.hset(k.sync_state(), mapping={
                "status": "running", "owners": ",".join(owners),
                "scopes": json.dumps(scopes or [[]]), "scope": 0, "cursor": "",
                "started_at": f"{self.registry.clock.now():.3f}",
            })
            await pipe.execute()
        return False

    async def _position(self) -> tuple[list[list[str]], int, str]:
        raw = await self._raw_state()
        scopes: list[list[str]] = json.loads(raw.get("scopes") or "[[]]")
        return scopes, int(raw.get("scope", 0)), raw.get("cursor", "")

    async def _step(self, scope: list[str], cursor: str) -> None:
        try:
            page = await self.source.groupchat_list(
                cursor=cursor, limit=self.page_size, owner_userids=scope
            )
        except WeComAPIError as error:
            if error.errcode != TOO_MANY_VISIBLE or scope:
                raise
            await self._split_by_owner()
            return
        await self._apply_page(page)

    async def _split_by_owner(self) -> None:
        """Unfiltered listing refused (81017): list per owner batch instead."""
        people = {p.userid for p in await self.registry.people()}
        owners = sorted(people | {g.owner for g in await self.registry.all_groups() if g.owner})
        scopes = [owners[i:i + OWNER_BATCH] for i in range(0, len(owners), OWNER_BATCH)]
        await self.registry.redis.hset(self.registry.keys.sync_state(), mapping={
            "scopes": json.dumps(scopes), "scope": 0, "cursor": "",
        })

    async def _apply_page(self, page: Page[GroupChatRef]) -> None:
        gate = asyncio.Semaphore(self.concurrency)
        results = await asyncio.gather(*(self._one(ref.chat_id, gate) for ref in page.items))
        k, redis = self.registry.keys, self.registry.redis
        async with redis.pipeline(transaction=True) as pipe:
            if page.items:
                pipe.sadd(k.sync_seen(), *(ref.chat_id for ref in page.items))
            pipe.hincrby(k.sync_state(), "listed", len(page.items))
            for counter in results:
                pipe.hincrby(k.sync_state(), counter, 1)
            pipe.hincrby(k.sync_state(), "pages", 1)
            pipe.hset(k.sync_state(), "cursor", page.next_cursor)
            if not page.next_cursor:
                pipe.hincrby(k.sync_state(), "scope", 1)
            await pipe.execute()

    async def _one(self, chat_id: str, gate: asyncio.Semaphore) -> str:
        """Fetch and apply one group; the counter it adds to."""
        async with gate:  # bounds WeCom calls and Redis connections alike
            try:
                info = await self.source.groupchat_get(chat_id)
            except WeComAPIError:
                return "failed"  # e.g. dismissed between list and get; the next run retries
            applied = await apply_chat_info(self.registry, self.placer, info, actor=SYNC_ACTOR)
        if applied.unplaced_reason:
            return "unplaced"
        return "changed" if applied.changed else "unchanged"

    async def _finish(self, owners: Sequence[str], resumed: bool) -> SyncProgress:
        k, redis = self.registry.keys, self.registry.redis
        missing: tuple[str, ...] = ()
        if not owners:
            missing = await self._missing()
        await redis.hset(k.sync_state(), mapping={
            "status": "done", "finished_at": f"{self.registry.clock.now():.3f}",
            "missing": ",".join(missing),
        })
        return replace(await self.state(), resumed=resumed)

    async def _missing(self) -> tuple[str, ...]:
        """Active customer groups the full listing did not return (dismissed unnoticed?)."""
        seen = set(texts(await self.registry.redis.smembers(self.registry.keys.sync_seen())))
        groups = await self.registry.all_groups()
        return tuple(
            g.chat_id for g in groups
            if g.kind is DeliveryKind.CUSTOMER_GROUP and g.state is GroupState.ACTIVE
            and g.chat_id not in seen
        )

    async def _lock(self) -> str:
        token = secrets.token_hex(8)
        key = self.registry.keys.sync_lock()
        if not await self.registry.redis.set(key, token, nx=True, ex=LOCK_SECONDS):
            raise SyncBusyError("另一个群同步正在进行，请稍后再试")
        return token

    async def _refresh_lock(self, token: str) -> None:
        await self.registry.redis.eval(
            _REFRESH, 1, self.registry.keys.sync_lock(), token, LOCK_SECONDS
        )

    async def _unlock(self, token: str) -> None:
        await self.registry.redis.eval(_RELEASE, 1, self.registry.keys.sync_lock(), token)


_OWNED = "if redis.call('GET', KEYS[1]) == ARGV[1] then "
_REFRESH = _OWNED + "redis.call('EXPIRE', KEYS[1], ARGV[2]) end"
_RELEASE = _OWNED + "redis.call('DEL', KEYS[1]) end"


def _progress(raw: dict[str, str]) -> SyncProgress:
    def num(name: str) -> int:
        return int(raw.get(name, 0) or 0)

    missing = tuple(m for m in raw.get("missing", "").split(",") if m)
    return SyncProgress(
        status=raw.get("status", "idle"), pages=num("pages"), listed=num("listed"),
        changed=num("changed"), unchanged=num("unchanged"), unplaced=num("unplaced"),
        failed=num("failed"), missing=missing,
    )
