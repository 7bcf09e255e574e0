"""Resident groups: keep the registry live from WeCom's group events, 绑定 and 确认迁移.

change_external_chat create / update (name, owner, members) → fetch groupchat/get and apply
it; dismiss → dismissed, no longer a target, kept in history. A rename whose new name points
at another node does not move the group: its officers are told, and `确认迁移 <群>` by
someone covering both nodes moves it (registry/moves.py). Every automatic placement is
audited (`registry.place`), and so is every move request, move and refusal.
`绑定 <群ID或群名> <节点路径或编码>` lets staff place a group on a node they cover.
"""

from __future__ import annotations

import logging

from bot.audit import Outcome
from bot.context import Context
from bot.events import ExternalChatChange, TextMessage
from bot.filters import Command
from bot.router import Router
from bot.wecom.errors import WeComAPIError
from bot.wecom.models import GroupChatInfo
from registry import moves
from registry.models import Group, GroupState, Node, Role
from registry.placement import Placer
from registry.sync import Applied, apply_chat_info

log = logging.getLogger(__name__)
router = Router(name=__name__)
EVENT_ACTOR = "wecom"
BIND = Command("绑定")
CONFIRM_MOVE = Command("确认迁移")
USAGE = (
    "用法：绑定 <群ID或群名> <节点路径或编码>\n"
    "例如：绑定 wrOgQhDgAA1234 孝义市/新义街道/东关社区/3号楼"
)
IGNORED_DETAILS = frozenset({"change_notice"})
router.describe("绑定 <群ID或群名> <节点路径或编码>：把居民群挂到您负责的网格或楼栋",
                *(role.value for role in Role))  # any staff; coverage is checked per node
router.describe("确认迁移 <群ID或群名>：群改名后指向别处时，确认把群迁过去（须同时负责两处）",
                *(role.value for role in Role))


@router.chat_change()
async def on_chat_change(event: ExternalChatChange, ctx: Context) -> None:
    if event.change_type == "dismiss":
        at = float(event.create_time) if event.create_time else ctx.clock.now()
        await ctx.registry.dismiss_group(event.chat_id, at, actor=EVENT_ACTOR, source=ctx.source)
        return
    if event.update_detail in IGNORED_DETAILS:
        return
    try:
        info = await ctx.wecom.groupchat_get(event.chat_id)
    except WeComAPIError as error:
        log.warning("群 %s 的变更无法读取详情: %s", event.chat_id, error)
        return
    applied = await _apply(ctx, info)
    if applied.unplaced_reason:
        log.info("群 %s 未能定位: %s", info.chat_id, applied.unplaced_reason)


@router.message(BIND)
async def on_bind(event: TextMessage, ctx: Context) -> None:
    words = BIND.args(event).split()
    if len(words) < 2:
        await ctx.reply(event.sender, USAGE)
        return
    target, where = " ".join(words[:-1]), words[-1]
    node = await _resolve_node(ctx, event.sender, where)
    group = await _resolve_group(ctx, event.sender, target) if node else None
    if node is None or group is None:
        return
    refusal = await _refusal(ctx, event.sender, group, node)
    if refusal:
        await _audit(ctx, event.sender, "refused", group.chat_id, f"{node.code}: {refusal}")
        await ctx.reply(event.sender, refusal)
        return
    await ctx.registry.bind_group(group.chat_id, node.code, actor=event.sender, source=ctx.source)
    await _audit(ctx, event.sender, "ok", group.chat_id, f"{group.node or '未定位'} → {node.code}")
    path = "/".join(n.name for n in await ctx.registry.path(node.code))
    await ctx.reply(event.sender, f"已将「{group.name}」绑定到 {path}")


@router.message(CONFIRM_MOVE)
async def on_confirm_move(event: TextMessage, ctx: Context) -> None:
    target = CONFIRM_MOVE.args(event).strip()
    if not target:
        await ctx.reply(event.sender, "用法：确认迁移 <群ID或群名>")
        return
    group = await _resolve_group(ctx, event.sender, target)
    if group is None:
        return
    _, answer = await moves.confirm(ctx.registry, ctx.audit, event.sender, group,
                                    source=ctx.source)
    await ctx.reply(event.sender, answer)


async def _resolve_node(ctx: Context, sender: str, where: str) -> Node | None:
    node = await ctx.registry.node(where)
    found = [node] if node else await ctx.registry.find_nodes(where)
    if len(found) == 1:
        return found[0]
    if not found:
        hint = "请用编码或完整路径（如 孝义市/新义街道/东关社区）"
        await ctx.reply(sender, f"找不到节点「{where}」，{hint}")
        return None
    paths = await ctx.registry.paths([n.code for n in found[:5]])
    listing = "\n".join(f"{c}  {'/'.join(n.name for n in p)}" for c, p in paths.items())
    await ctx.reply(sender, f"「{where}」对应 {len(found)} 个节点，请改用编码：\n{listing}")
    return None


async def _resolve_group(ctx: Context, sender: str, target: str) -> Group | None:
    group = await ctx.registry.group(target)
    found = [group] if group else await ctx.registry.groups_named(target)
    if not found and target.isascii():
        found = await _fetch_from_wecom(ctx, target)
    if len(found) == 1:
        return found[0]
    if not found:
        await ctx.reply(sender, f"找不到群「{target}」，请核对群ID或群名")
        return None
    listing = "\n".join(f"{g.chat_id}  {g.name}" for g in found[:5])
    await ctx.reply(sender, f"有 {len(found)} 个群名为「{target}」，请改用群ID：\n{listing}")
    return None


async def _fetch_from_wecom(ctx: Context, chat_id: str) -> list[Group]:
    """A customer group the registry has not seen yet: read it from WeCom first."""
    try:
        info = await ctx.wecom.groupchat_get(chat_id)
    except WeComAPIError:
        return []
    applied = await _apply(ctx, info)
    return [applied.group] if applied.group else []


async def _apply(ctx: Context, info: GroupChatInfo) -> Applied:
    placer = Placer(ctx.registry, ctx.settings.registry.naming_rule)
    applied = await apply_chat_info(ctx.registry, placer, info, actor=EVENT_ACTOR,
                                    source=ctx.source)
    if applied.placed:
        await ctx.audit.record(EVENT_ACTOR, moves.PLACE_ACTION, "ok", target=info.chat_id,
                               detail=f"按群名「{info.name}」定位到 {applied.placed}",
                               source=ctx.source)
    if applied.requested is not None:
        await _flag_move(ctx, applied.requested)
    return applied


async def _flag_move(ctx: Context, request: moves.MoveRequest) -> None:
    """Tell the officers of the group's current node; audit the request."""
    here = await moves.describe(ctx.registry, request.current)
    there = await moves.describe(ctx.registry, request.to)
    officers = await ctx.registry.staff_for(request.current, [Role.OFFICER])
    await ctx.audit.record(EVENT_ACTOR, moves.REQUEST_ACTION, "ok", target=request.chat_id,
                           detail=f"改名为「{request.name}」：{request.current} → {request.to}"
                                  f"（未迁移，告知 {','.join(p.userid for p in officers)}）",
                           source=ctx.source)
    text = (f"群 {request.chat_id} 改名为「{request.name}」，新名称指向 {there}。"
            f"该群仍留在 {here}，未迁移。如确需迁移，请由同时负责两处的人员发送："
            f"确认迁移 {request.chat_id}")
    for officer in officers:
        await ctx.reply(officer.userid, text)


async def _refusal(ctx: Context, sender: str, group: Group, node: Node) -> str:
    """Why `sender` may not bind `group` to `node` ("" when allowed)."""
    if not await ctx.registry.covers(sender, node.code):
        return f"您不负责「{node.name}」，不能把群绑定到该处"
    if group.node and not await ctx.registry.covers(sender, group.node):
        current = await ctx.registry.node(group.node)
        where = current.name if current else group.node
        return f"「{group.name}」目前属于「{where}」，您不负责该处，请联系上级调整"
    if group.state is GroupState.DISMISSED:
        return f"「{group.name}」已解散，不能绑定"
    return ""


async def _audit(ctx: Context, actor: str, outcome: Outcome, target: str, detail: str) -> None:
    await ctx.audit.record(
        actor, "registry.bind", outcome, target=target, detail=detail, source=ctx.source
    )
