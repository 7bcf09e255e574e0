"""Collection campaigns (集中采集): an officer opens one for a subtree, residents get links,
progress is tracked per grid and lagging grid workers are reminded.

Completion metric (per grid, and summed for the campaign):
  expected  = members of the grid's active resident groups (registry member counts). Grid
              groups follow 一户一人入群 (at least one member per household), so this
              approximates the households the grid should reach; a grid without groups has
              no baseline and is reported by count only.
  covered   = distinct household addresses in the grid where at least one person was
              collected or self-declared (chat or form, new or re-confirmed) since the
              campaign opened.
  completion = min(1, covered / expected).
A grid lags when its completion is below the share of the campaign's time already elapsed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import cast

from bot.rtypes import hmapping, smap, text
from collect import tokens
from collect.deps import CollectDeps
from collect.resolve import Resolved
from collect.validate import CHINA_TZ
from registry.models import Level, Node

DEFAULT_DAYS = 14


@dataclass(frozen=True, slots=True)
class Campaign:
    id: str
    root: str
    root_name: str
    created_by: str
    created_at: float
    deadline: float

    def to_redis(self) -> dict[str, str]:
        return {"id": self.id, "root": self.root, "root_name": self.root_name,
                "created_by": self.created_by, "created_at": f"{self.created_at:.3f}",
                "deadline": f"{self.deadline:.3f}"}

    @classmethod
    def from_redis(cls, raw: dict[str, str]) -> Campaign:
        return cls(raw["id"], raw["root"], raw.get("root_name", ""), raw.get("created_by", ""),
                   float(raw["created_at"]), float(raw["deadline"]))

    def elapsed_share(self, now: float) -> float:
        span = max(1.0, self.deadline - self.created_at)
        return min(1.0, max(0.0, (now - self.created_at) / span))


@dataclass(frozen=True, slots=True)
class GridProgress:
    grid: Node
    expected: int
    covered: int

    @property
    def completion(self) -> float:
        return min(1.0, self.covered / self.expected) if self.expected else 0.0


def parse_deadline(text: str, now: float) -> float | None:
    """End of the given day (China time), or DEFAULT_DAYS from now when `text` is empty."""
    if not text:
        return now + DEFAULT_DAYS * 86400
    try:
        day = dt.date.fromisoformat(text.strip())
    except ValueError:
        return None
    end = dt.datetime.combine(day, dt.time(23, 59, 59), CHINA_TZ)
    return end.timestamp()


class Campaigns:
    def __init__(self, deps: CollectDeps) -> None:
        self.deps = deps

    async def open(self, userid: str, root: Node, deadline: float) -> Campaign:
        number = await self.deps.redis.incr(self.deps.keys.campaign_seq())
        campaign = Campaign(f"C{number}", root.code, root.name, userid, self.deps.now(), deadline)
        await self.deps.redis.hset(self.deps.keys.campaign(campaign.id),
                                   mapping=hmapping(campaign.to_redis()))
        await self.deps.redis.zadd(self.deps.keys.campaigns_active(), {campaign.id: deadline})
        return campaign

    async def get(self, campaign_id: str) -> Campaign | None:
        raw = smap(await self.deps.redis.hgetall(self.deps.keys.campaign(campaign_id.upper())))
        return Campaign.from_redis(raw) if raw else None

    async def active(self) -> list[Campaign]:
        ids = await self.deps.redis.zrangebyscore(self.deps.keys.campaigns_active(),
                                                  self.deps.now(), "+inf")
        found = [await self.get(text(cast(str, i))) for i in ids]
        return [c for c in found if c is not None]

    async def grids(self, campaign: Campaign) -> list[Node]:
        root = await self.deps.registry.node(campaign.root)
        if root is None:
            return []
        if root.level in (Level.GRID, Level.BUILDING):
            path = await self.deps.registry.path(root.code)
            return [n for n in path if n.level is Level.GRID][-1:] or [root]
        return await self.deps.registry.nodes_at_level(Level.GRID, under=root.code)

    async def mark_covered(self, where: Resolved, address_id: str) -> None:
        """Count the household of a person just collected in every campaign over its node."""
        for campaign in await self.active():
            if campaign.root in where.ancestors:
                key = self.deps.keys.campaign_covered(campaign.id, where.grid())
                await self.deps.redis.sadd(key, address_id)

    async def progress(self, campaign: Campaign) -> list[GridProgress]:
        out = []
        for grid in await self.grids(campaign):
            members = await self.deps.registry.members_breakdown(grid.code)
            covered = await self.deps.redis.scard(
                self.deps.keys.campaign_covered(campaign.id, grid.code))
            out.append(GridProgress(grid, sum(members.values()), int(covered)))
        return out

    def link(self, campaign: Campaign, node: str) -> str:
        key = self.deps.blind.subkey("form-token")
        token = tokens.issue(key, campaign.id, node, campaign.deadline)
        return f"{self.base_url()}/form/{token}"

    def base_url(self) -> str:
        server = self.deps.settings.server
        return (server.public_url or f"http://{server.host}:{server.port}").rstrip("/")
