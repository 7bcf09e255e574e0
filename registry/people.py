"""Staff in the registry: who they are, their role, and the nodes they cover.

`staff:<code>` holds the userids covering exactly that node; coverage extends downwards, so
"who covers X" walks X's path upwards (one round trip) and takes the nearest staff.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from registry.codec import person_json
from registry.models import Person, Role
from registry.replies import optionals, texts
from registry.tree import TreeStore, UnknownNodeError


class PeopleStore(TreeStore):
    """People on top of the tree."""

    async def upsert_person(self, person: Person) -> bool:
        """Create or replace a person; True when something changed. Covered nodes must exist."""
        return (await self.upsert_people([person]))[0]

    async def upsert_people(self, people: Sequence[Person], *, batch: int = 500) -> list[bool]:
        """upsert_person for many people, pipelined."""
        k = self.keys
        args: list[list[str | int]] = [
            [k.prefix, p.userid, person_json(p), p.role.value, ",".join(p.nodes)] for p in people
        ]
        replies = await self._pipelined(self._upsert_person, k.people(), args, batch)
        results = [int(r) for r in replies]
        for person, status in zip(people, results, strict=True):
            if status < 0:
                who, covered = person.name or person.userid, "、".join(person.nodes)
                raise UnknownNodeError(f"{who} 负责的节点不存在：{covered}")
        return [status == 1 for status in results]

    async def person(self, userid: str) -> Person | None:
        found = await self.people([userid])
        return found[0] if found else None

    async def people(self, userids: Collection[str] | None = None) -> list[Person]:
        """The given people that exist (or everyone), by userid."""
        if userids is None:
            raws = optionals((await self.redis.hgetall(self.keys.people())).values())
        elif userids:
            raws = optionals(await self.redis.hmget(self.keys.people(), sorted(userids)))
        else:
            raws = []
        return sorted((Person.from_json(raw) for raw in raws if raw), key=lambda p: p.userid)

    async def staff_at(self, codes: Sequence[str]) -> dict[str, list[Person]]:
        """People covering exactly each of `codes` (not via an ancestor), by userid."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for code in codes:
                pipe.smembers(self.keys.staff(code))
            found = [sorted(texts(ids)) for ids in await pipe.execute()]
        everyone = {p.userid: p for p in await self.people({u for ids in found for u in ids})}
        return {
            code: [everyone[u] for u in ids if u in everyone]
            for code, ids in zip(codes, found, strict=True)
        }

    async def covers(self, userid: str, code: str) -> bool:
        """True when `userid` covers `code` or a node above it."""
        person = await self.person(userid)
        if person is None or not person.nodes:
            return False
        return bool(set(person.nodes) & {n.code for n in await self.path(code)})

    async def staff_for(self, code: str, roles: Collection[Role]) -> list[Person]:
        """People with one of `roles` covering the nearest node on the path up from `code`."""
        codes = [n.code for n in await self.path(code)]
        at = await self.staff_at(codes)
        for c in reversed(codes):
            found = [p for p in at[c] if p.role in roles]
            if found:
                return found
        return []

    async def people_with_role(self, role: Role) -> list[Person]:
        return await self.people(set(texts(await self.redis.smembers(self.keys.role(role.value)))))
