"""`发起采集 <节点> [截止 YYYY-MM-DD]`: open a campaign and hand each grid worker their link."""

from __future__ import annotations

import re

from collect.campaign import Campaign, Campaigns, parse_deadline
from collect.deps import CollectDeps
from collect.replies import when
from registry.models import Level, Node, Role

USAGE = ("用法：发起采集 节点名称或编码 [截止 2026-12-31]，"
         "如 发起采集 孝义市/新义街道 截止 2026-12-31")


def parse_args(args: str) -> tuple[str, str]:
    """`孝义市/新义街道 截止 2026-12-31` -> ('孝义市/新义街道', '2026-12-31')."""
    node, _, deadline = re.sub(r"截止\s*[:：]?", " 截止 ", args).partition(" 截止 ")
    return node.strip(), deadline.strip()


async def _node(deps: CollectDeps, text: str) -> Node | str:
    node = await deps.registry.node(text)
    if node is not None:
        return node
    found = await deps.registry.find_nodes(text)
    if len(found) == 1:
        return found[0]
    if not found:
        return f"找不到节点“{text[:30]}”，请写名称路径（如 孝义市/新义街道）或编码"
    return f"“{text[:30]}”对应多个节点，请写出上级名称，如 孝义市/新义街道"


async def open_campaign(deps: CollectDeps, userid: str, args: str,
                        source: str) -> tuple[str, list[tuple[str, str]]]:
    """(reply to the officer, [(grid worker, message with their grid's form link)])."""
    text, deadline_text = parse_args(args)
    if not text:
        return USAGE, []
    node = await _node(deps, text)
    if isinstance(node, str):
        return node, []
    denied = await _may_open(deps, userid, node.code)
    if denied:
        await deps.record_audit(userid, "collect.campaign", "refused", target=node.code,
                                detail=denied, source=source)
        return denied, []
    deadline = parse_deadline(deadline_text, deps.now())
    if deadline is None or deadline <= deps.now():
        return "截止日期：请写成 2026-12-31 的格式，且须晚于今天", []
    campaigns = Campaigns(deps)
    campaign = await campaigns.open(userid, node, deadline)
    notices = await _notices(deps, campaigns, campaign)
    await deps.record_audit(userid, "collect.campaign", "ok", target=campaign.id,
                            detail=f"{node.name} 截止 {when(deadline)}", source=source)
    reply = (f"已发起采集 {campaign.id}：范围 {node.name}，截止 {when(deadline)}；"
             f"已向 {len(notices)} 名网格员发送本网格的自主申报链接。"
             f"查看进度：采集进度 {campaign.id}")
    return reply, notices


async def _may_open(deps: CollectDeps, userid: str, code: str) -> str | None:
    person = await deps.access.person(userid)
    if person is None or person.role is not Role.OFFICER:
        return "无权发起采集：仅限辖区民警"
    if not await deps.registry.covers(userid, code):
        return "无权发起采集：该节点不在您负责的区域内"
    return None


async def _notices(deps: CollectDeps, campaigns: Campaigns,
                   campaign: Campaign) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for grid in await campaigns.grids(campaign):
        link = campaigns.link(campaign, grid.code)
        for worker in await deps.registry.staff_for(grid.code, {Role.GRID_WORKER}):
            out.append((worker.userid, notice_text(campaign, grid, link)))
    return out


def notice_text(campaign: Campaign, grid: Node, link: str) -> str:
    where = grid.name if grid.level is Level.GRID else campaign.root_name
    return (f"【一标三实集中采集 {campaign.id}】{campaign.root_name}，"
            f"截止 {when(campaign.deadline)}。"
            f"请把下面的自主申报链接转发到{where}的居民群，居民可用手机自行填报，"
            f"提交后进入您的「我的待办」待核查：\n{link}")
