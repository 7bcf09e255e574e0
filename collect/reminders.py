"""Reminding grid workers whose grid lags behind a campaign's schedule (see collect/campaign.py
for the metric). Each grid is reminded at most once per settings.collect.reminder_interval,
across every process (a Redis SET NX marker), whatever triggers the run."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from collect.campaign import Campaign, Campaigns, GridProgress
from collect.deps import CollectDeps
from collect.replies import when
from registry.models import Role

Send = Callable[[str, str], Awaitable[None]]


def reminder_text(campaign: Campaign, grid: GridProgress, link: str) -> str:
    return (f"【采集提醒 {campaign.id}】{campaign.root_name} 截止 {when(campaign.deadline)}。"
            f"您负责的{grid.grid.name}已覆盖 {grid.covered}/{grid.expected} 户"
            f"（{grid.completion:.0%}），进度落后，请抓紧入户采集，或把自主申报链接再次转发到居民群：\n"
            f"{link}")


async def remind_lagging(deps: CollectDeps, send: Send, campaign_id: str = "") -> int:
    """Remind the grid workers of every lagging grid; returns how many messages were sent."""
    campaigns = Campaigns(deps)
    active = await campaigns.active()
    sent = 0
    for campaign in active:
        if campaign_id and campaign.id != campaign_id:
            continue
        share = campaign.elapsed_share(deps.now())
        for grid in await campaigns.progress(campaign):
            if grid.expected and grid.completion < share and await _claim(deps, campaign, grid):
                sent += await _remind(deps, campaigns, campaign, grid, send)
    return sent


async def _claim(deps: CollectDeps, campaign: Campaign, grid: GridProgress) -> bool:
    interval = deps.settings.collect.reminder_interval_minutes * 60
    key = deps.keys.campaign_reminded(campaign.id, grid.grid.code)
    # a little under the interval, so the next scheduled run is not skipped by clock jitter
    ttl = deps.clock.real_ms(interval * 0.9)
    return bool(await deps.redis.set(key, "1", nx=True, px=ttl))


async def _remind(deps: CollectDeps, campaigns: Campaigns, campaign: Campaign,
                  grid: GridProgress, send: Send) -> int:
    workers = await deps.registry.staff_for(grid.grid.code, {Role.GRID_WORKER})
    text = reminder_text(campaign, grid, campaigns.link(campaign, grid.grid.code))
    for worker in workers:
        await send(worker.userid, text)
    return len(workers)
