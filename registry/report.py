"""Chinese text views of the registry for the CLI (and anyone who wants them as lines)."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone

from registry.models import DeliveryKind, GroupState, Node, Role
from registry.store import Registry

CHINA = timezone(timedelta(hours=8))
STATES = {GroupState.ACTIVE: "正常", GroupState.DISMISSED: "已解散"}
WHAT = {
    "created": "创建", "updated": "修改", "moved": "移动", "dismissed": "解散", "restored": "恢复",
}


async def resolve(registry: Registry, text: str) -> Node | None:
    """The node named by a code or a name path ("" → the root); complains on stderr."""
    if not text:
        roots = await registry.children("")
        if len(roots) == 1:
            return roots[0]
        _complain("有多个根节点，请指定节点" if roots else "登记中还没有节点，请先导入节点文件")
        return None
    node = await registry.node(text)
    found = [node] if node else await registry.find_nodes(text)
    if len(found) == 1:
        return found[0]
    if not found:
        _complain(f"找不到节点「{text}」")
    else:
        _complain(f"「{text}」对应 {len(found)} 个节点：" + "、".join(n.code for n in found[:10]))
    return None


def _complain(text: str) -> None:
    sys.stderr.write(text + "\n")


def kinds_text(counts: dict[DeliveryKind, int]) -> str:
    return "／".join(f"{k.label} {counts[k]}" for k in DeliveryKind)


async def tree_lines(registry: Registry, node: Node, depth: int, indent: int = 0) -> list[str]:
    counts = await registry.breakdown(node.code)
    lines = [f"{'  ' * indent}{node.name} [{node.code}] 群 {sum(counts.values())}"
             f"（{kinds_text(counts)}）"]
    if depth > 0:
        for child in await registry.children(node.code):
            lines.extend(await tree_lines(registry, child, depth - 1, indent + 1))
    return lines


async def stats_lines(registry: Registry, node: Node) -> list[str]:
    path = "/".join(n.name for n in await registry.path(node.code))
    groups = await registry.breakdown(node.code)
    members = await registry.members_breakdown(node.code)
    lines = [f"{path} [{node.code}]", f"{'类型':<8}{'群数':>8}{'人数':>10}"]
    lines.extend(f"{k.label:<8}{groups[k]:>8}{members[k]:>10}" for k in DeliveryKind)
    lines.append(f"{'合计':<8}{sum(groups.values()):>8}{sum(members.values()):>10}")
    children = await registry.children(node.code)
    if children:
        lines.append("下级：")
        for child in children:
            counts = await registry.breakdown(child.code)
            lines.append(f"  {child.name} [{child.code}] 群 {sum(counts.values())}"
                         f"（{kinds_text(counts)}）")
    return lines


async def who_lines(registry: Registry, node: Node) -> list[str]:
    path = "/".join(n.name for n in await registry.path(node.code))
    lines = [f"{path} [{node.code}] 的负责人："]
    for role in Role:
        people = await registry.staff_for(node.code, {role})
        names = "、".join(f"{p.name}({p.userid})" for p in people) or "无"
        lines.append(f"  {role.label}：{names}")
    return lines


async def group_lines(registry: Registry, chat: str) -> list[str]:
    group = await registry.group(chat)
    found = [group] if group else await registry.groups_named(chat)
    if len(found) != 1:
        many = "、".join(g.chat_id for g in found[:10])
        return [f"找不到群「{chat}」" if not found else f"有 {len(found)} 个同名群：{many}"]
    g = found[0]
    where = "/".join(n.name for n in await registry.path(g.node)) if g.node else "未定位"
    owner = await registry.person(g.owner) if g.owner else None
    lines = [
        f"{g.name} [{g.chat_id}]",
        f"  位置：{where}" + (f" [{g.node}]" if g.node else ""),
        f"  类型：{g.kind.label}  人数：{g.member_count}  状态：{STATES[g.state]}",
        f"  群主：{f'{owner.name}({g.owner})' if owner else g.owner or '无'}",
        "  历史：",
    ]
    for change in await registry.history(g.chat_id):
        when = datetime.fromtimestamp(change.at, CHINA).strftime("%Y-%m-%d %H:%M:%S")
        what = WHAT.get(change.what, change.what)
        detail = "" if change.what == "created" else " " + ", ".join(
            f"{k}: {v.get('from')} → {v.get('to')}" for k, v in change.changes.items())
        lines.append(f"    {when} {change.actor} {what}{detail}")
    return lines
