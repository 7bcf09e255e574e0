"""This process's decoded packs, each kept under the SHA-1 of the pack it was decoded from.

A whole-city query reads ~2,300 packs, and turning their 100,000 rows into Groups is most of
its time. The registry's write script stamps every pack with the SHA-1 of its content; the
query script is told which packs this process holds, with their SHA-1, and sends the rows
of only those whose SHA-1 differs. Redis stays the one truth: an entry is used only when
Redis has just confirmed that the pack is still exactly what it was decoded from. Any number
of processes each keep their own copy, and a query re-decodes only what changed since the
last one. Groups are immutable tuples, so cached ones are handed out without copying.
"""

from __future__ import annotations

import gc
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter

from registry.codec import ROW, US, decode_rows, gc_paused
from registry.models import Group

CHAT_ID = itemgetter(0)  # Group is a NamedTuple: a C-level sort key
MAX_GROUPS = 250_000  # ~130 MB of Groups (the benchmark measures ~520 B each)
MAX_SELECTIONS = 4096
FREEZE_AT = 20_000  # groups decoded at once: a cold start or a whole-city read

# (space, include codes, exclude codes): the shape of one query's whole-pack part in one
# space, the shard and the active or dismissed packs read there ("<shard>|" or "<shard>|g")
Selection = tuple[str, tuple[str, ...], tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class Pack:
    """The groups of one pack, by chat id, and the SHA-1 of the rows they came from."""

    node: str
    sha1: str
    groups: tuple[Group, ...]

    def only(self, nodes: Container[str]) -> Pack:
        """The pack's groups that hang on `nodes` (a building of its grid, say)."""
        return Pack(self.node, self.sha1, tuple(g for g in self.groups if g.node in nodes))

    def only_from(self, shard: str, homes: Mapping[str, str]) -> Pack:
        """The pack read from `shard` without the groups whose home is another shard (a
        copy a move between shards has not dropped yet)."""
        if not any(homes.get(g.chat_id, shard) != shard for g in self.groups):
            return self
        kept = tuple(g for g in self.groups if homes.get(g.chat_id, shard) == shard)
        return Pack(self.node, self.sha1, kept)


def held_arg(held: Mapping[str, Pack]) -> str:
    """The held packs as the query script reads them: "node US sha1 US" each."""
    return "".join(f"{node}{US}{pack.sha1}{US}" for node, pack in held.items())


class PackCache:
    """Decoded packs (the longest held dropped first) and the packs each selection read."""

    def __init__(self, max_groups: int = MAX_GROUPS) -> None:
        self.max_groups = max_groups
        self._packs: dict[tuple[str, str], Pack] = {}
        self._groups = 0
        self._seen: dict[Selection, tuple[str, ...]] = {}
        self.decoded = 0  # packs decoded so far: what a benchmark or test reads

    def __len__(self) -> int:
        return len(self._packs)

    @property
    def groups(self) -> int:
        """Groups held, over all packs."""
        return self._groups

    def held(
        self, space: str, selection: Selection, extras: Iterable[str]
    ) -> dict[str, Pack]:
        """The held packs the query script is told about: those the same selection read last
        time, or (a selection not seen before) every held pack; and the held `extras`.

        The caller keeps this mapping for the reply: another query may evict these entries
        while this one waits on Redis.
        """
        packs = self._packs
        seen = self._seen.get(selection)
        if seen is None:
            found = {n: p for (d, n), p in packs.items() if d == space}
        else:
            found = {n: p for n in seen if (p := packs.get((space, n))) is not None}
        found.update((n, p) for n in extras if (p := packs.get((space, n))) is not None)
        return found

    def remember(self, selection: Selection, nodes: Sequence[str]) -> None:
        self._seen.pop(selection, None)
        self._seen[selection] = tuple(nodes)
        while len(self._seen) > MAX_SELECTIONS:
            del self._seen[next(iter(self._seen))]

    def take(
        self, space: str, state: str, stale: Sequence[str], held: Mapping[str, Pack]
    ) -> list[Pack]:
        """The packs of a query reply, in order: `state` is "node US sha1" of every pack read,
        joined by US; `stale` is node, rows, node, rows … of those not in `held`.

        The stale packs are decoded together, in one call: a call per pack would cost more
        than the decoding on a cold cache of 2,300 small packs.
        """
        fields = state.split(US) if state else []
        names, bodies = stale[0::2], stale[1::2]
        fresh = dict(zip(names, self._decode(bodies), strict=True))
        out = []
        for node, sha1 in zip(fields[0::2], fields[1::2], strict=True):
            groups = fresh.get(node)
            if groups is None:
                out.append(held[node])
            else:
                out.append(self._store(space, Pack(node, sha1, groups)))
        return out

    def _decode(self, bodies: Sequence[str]) -> list[tuple[Group, ...]]:
        with gc_paused():  # the sorted packs are as acyclic as the Groups
            decoded = decode_rows(ROW.join(bodies))
            self.decoded += len(bodies)
            out, at = [], 0
            for body in bodies:
                end = at + body.count(ROW) + 1
                out.append(tuple(sorted(decoded[at:end], key=CHAT_ID)))
                at = end
            if len(decoded) >= FREEZE_AT:
                # A cold start's 100,000 long-lived Groups would be traversed by the next
                # collection (~100 ms, inside this query) and by every full one after; they
                # hold no cycles, so the collector is told to leave them (and what lives now)
                # alone. Evicted packs are still freed by reference counting.
                gc.freeze()
            return out

    def _store(self, space: str, pack: Pack) -> Pack:
        old = self._packs.pop((space, pack.node), None)
        if old is not None:
            self._groups -= len(old.groups)
        self._packs[(space, pack.node)] = pack
        self._groups += len(pack.groups)
        while self._groups > self.max_groups and len(self._packs) > 1:
            evicted = self._packs.pop(next(iter(self._packs)))
            self._groups -= len(evicted.groups)
        return pack
