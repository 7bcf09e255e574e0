"""A rename is a request, not a move.

A placed group whose new name points at another node stays where it is: `hold` records a
move request (listed by `gridbot groups unplaced`) and the handler tells the officers of the
group's current node. The move happens only when someone whose scope covers both the current
and the requested node confirms it (`确认迁移 <群>` in app chat, `gridbot groups confirm-move`):
`confirm` checks, moves (an explicit placement: later events keep it while the name stays)
and audits, ok and refused alike. A rename back, or a name that points nowhere, drops the
request. Automatic placements (a new or unplaced group placed by its name) are audited as
`registry.place` by the caller.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from bot.audit import AuditLog
from bot.rtypes import opt, smap
from registry.models import Group, GroupState
from registry.store import Registry

REQUEST_ACTION = "registry.move_request"
MOVE_ACTION = "registry.move"
PLACE_ACTION = "registry.place"


@dataclass(frozen=True, slots=True)
class MoveRequest:
    """Group `chat_id`, at `current`, was renamed to `name`, which points at `to`."""

    chat_id: str
    name: str
    current: str
    to: str
    at: float

    def to_json(self) -> str:
        return json.dumps({"name": self.name, "current": self.current, "to": self.to,
                           "at": self.at}, ensure_ascii=False)

    @classmethod
    def from_json(cls, chat_id: str, raw: str) -> MoveRequest:
        data = json.loads(raw)
        return cls(chat_id, str(data["name"]), str(data["current"]), str(data["to"]),
                   float(data.get("at", 0)))


async def hold(registry: Registry, request: MoveRequest) -> bool:
    """Record the request; False when the same one was already recorded (a re-delivery)."""
    key = registry.keys.move_requests()
    old = opt(await registry.redis.hget(key, request.chat_id))
    if old is not None and MoveRequest.from_json(request.chat_id, old).to == request.to:
        return False
    await registry.redis.hset(key, request.chat_id, request.to_json())
    return True


async def drop(registry: Registry, chat_id: str) -> None:
    await registry.redis.hdel(registry.keys.move_requests(), chat_id)


async def request_for(registry: Registry, chat_id: str) -> MoveRequest | None:
    raw = opt(await registry.redis.hget(registry.keys.move_requests(), chat_id))
    return MoveRequest.from_json(chat_id, raw) if raw else None


async def requests(registry: Registry) -> list[MoveRequest]:
    """Every pending request, by chat id."""
    raw = smap(await registry.redis.hgetall(registry.keys.move_requests()))
    return [MoveRequest.from_json(c, raw[c]) for c in sorted(raw)]


async def describe(registry: Registry, code: str) -> str:
    """The node's path (names), or the code when it is unknown."""
    path = await registry.path(code)
    return "/".join(n.name for n in path) if path else code


async def confirm(registry: Registry, audit: AuditLog, actor: str, group: Group, *,
                  source: str) -> tuple[bool, str]:
    """Carry out the pending move of `group` for `actor`: (done, the reply in Chinese)."""
    request = await request_for(registry, group.chat_id)
    refusal = await _refusal(registry, actor, group, request)
    if refusal or request is None:
        await audit.record(actor, MOVE_ACTION, "refused", target=group.chat_id,
                           detail=refusal, source=source)
        return False, refusal
    await registry.bind_group(group.chat_id, request.to, actor=actor, source=source)
    await drop(registry, group.chat_id)
    await audit.record(actor, MOVE_ACTION, "ok", target=group.chat_id,
                       detail=f"{group.node} → {request.to}（改名为「{request.name}」）",
                       source=source)
    return True, f"已将「{group.name}」迁移到 {await describe(registry, request.to)}"


async def _refusal(registry: Registry, actor: str, group: Group,
                   request: MoveRequest | None) -> str:
    if request is None:
        return f"「{group.name}」没有待确认的迁移"
    if group.state is GroupState.DISMISSED:
        return f"「{group.name}」已解散，不能迁移"
    for code in (group.node, request.to):
        if not await registry.covers(actor, code):
            return (f"您不负责「{await describe(registry, code)}」：迁移须由同时负责原节点"
                    "和新节点的人员确认")
    return ""
