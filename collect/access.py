"""Who may do what with 一标三实 data, by role and by the nodes a person covers.

* collect / correct: grid workers and police (民警/辅警) inside the nodes they cover; a resident
  only inside the node their campaign link names;
* review (核查): 民警/辅警 covering the record's node;
* lookup and export (full numbers): 民警 (Role.OFFICER) covering the node — nobody else.
Every refusal is returned as a Chinese sentence; the caller audits it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from registry.models import Person, Role
from registry.store import Registry

COLLECTORS = frozenset({Role.GRID_WORKER, Role.OFFICER, Role.AUXILIARY})
REVIEWERS = frozenset({Role.OFFICER, Role.AUXILIARY})
REVEALERS = frozenset({Role.OFFICER})


@dataclass(frozen=True, slots=True)
class Actor:
    """Who submits: a staff member by userid, or a resident through a campaign link."""

    userid: str = ""
    campaign: str = ""
    node: str = ""  # residents: the node their link names

    @classmethod
    def staff(cls, userid: str) -> Actor:
        return cls(userid=userid)

    @classmethod
    def resident(cls, campaign: str, node: str) -> Actor:
        return cls(campaign=campaign, node=node)

    @property
    def is_resident(self) -> bool:
        return not self.userid

    @property
    def label(self) -> str:
        """The audit trail's actor field."""
        return self.userid or f"resident@{self.campaign}"


class Access:
    """Permission checks against the registry; None means allowed."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    async def scope(self, actor: Actor) -> tuple[str, ...]:
        """Nodes the actor may collect in."""
        if actor.is_resident:
            return (actor.node,)
        person = await self._registry.person(actor.userid)
        return person.nodes if person else ()

    async def may_collect_at_all(self, actor: Actor) -> str | None:
        """The role check alone, before anything is parsed or resolved."""
        if actor.is_resident:
            return None
        person = await self._registry.person(actor.userid)
        if person is None or person.role not in COLLECTORS:
            return "无权采集或更正一标三实信息：仅限网格员、民警或辅警"
        return None

    async def may_collect(self, actor: Actor, node: str) -> str | None:
        if actor.is_resident:
            if await self._registry.is_within(node, actor.node):
                return None
            return "地址不在本次采集范围内，请联系网格员"
        return await self._staff(actor.userid, node, COLLECTORS, "采集或更正一标三实信息",
                                 "网格员、民警或辅警")

    async def may_review(self, userid: str, node: str) -> str | None:
        return await self._staff(userid, node, REVIEWERS, "核查", "民警或辅警")

    async def may_reveal(self, userid: str, node: str) -> str | None:
        return await self._staff(userid, node, REVEALERS, "查询或导出", "辖区民警")

    async def _staff(self, userid: str, node: str, roles: Collection[Role], what: str,
                     who: str) -> str | None:
        person = await self._registry.person(userid)
        if person is None or person.role not in roles:
            return f"无权{what}：仅限{who}"
        if not await self._registry.covers(userid, node):
            return f"无权{what}：该地址不在您负责的区域内"
        return None

    async def person(self, userid: str) -> Person | None:
        return await self._registry.person(userid)
