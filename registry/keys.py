"""Every Redis key of the registry, built in one place.

The registry lives in shards, each one Redis Cluster slot (layout 4, store.py):
  - the index, hash tag `{reg}`: the tree (nodes, kids, names, levels), people, staff and
    roles, the layout, sync state, bindings, move requests, and `gshard` (chat id -> the
    shards that may hold the group, the first one holding it) with `shards` (every shard in
    use) and `moving` (groups between two shards). It grows with the tree and the staff, not
    with the groups' rows, packs, counts or history;
  - one shard per 乡镇街道, hash tag `{reg:<township code>}` (a group hung on a 县区 itself:
    `{reg:<county code>}`; on neither, e.g. unplaced or hung on the city: `{reg:-}`): its
    groups' rows, packs, pack sums, counts, names, unplaced reasons and history, and the
    per-node indexes (packs, sums, counts) of every ancestor of its groups, counting only its
    own groups; a node above the 乡镇街道 is the sum over the shards below it. Shards per
    县区 were too few and too unequal to spread the load: 13 of them put 70 % of a synthetic
    city's groups on one of three primaries.
A write script runs in one shard and touches only that shard's keys; the caller reads the
group's ancestors from the index and passes them in. Layout 3 kept everything under `{reg}`:
`RegistryKeys(keys)` (the index) still names those old group keys for the migration.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.keys import Keys

TAG = "{reg}"
NO_SHARD = "-"  # the shard of groups with neither 乡镇街道 nor 县区 on their path


def shard_tag(shard: str) -> str:
    return "{reg:" + shard + "}"


@dataclass(frozen=True, slots=True)
class RegistryKeys:
    """Key builders; `prefix` is what the Lua scripts prepend to derived key names."""

    keys: Keys
    tag: str = TAG

    def shard(self, shard: str) -> RegistryKeys:
        """The keys of one shard (its groups, packs, counts, history)."""
        return RegistryKeys(self.keys, shard_tag(shard))

    @property
    def prefix(self) -> str:
        return self.keys.k(self.tag, "")

    def _k(self, *parts: object) -> str:
        return self.keys.k(self.tag, *parts)

    # index: where groups are
    def group_shards(self) -> str:  # hash chat_id -> shards holding it, the first one its home
        return self._k("gshard")

    def shards(self) -> str:  # set of every shard in use
        return self._k("shards")

    def moving(self) -> str:  # set of chat ids between two shards (a move or a crash in one)
        return self._k("moving")

    def move_lease(self, chat_id: str) -> str:  # held while a group moves between shards
        return self._k("mvlease", chat_id)

    def tree_version(self) -> str:  # bumped when a node changes parent or level
        return self._k("treever")

    # tree
    def nodes(self) -> str:  # hash code -> Node JSON
        return self._k("nodes")

    def kids(self, code: str) -> str:  # set of child codes ("" parent: the roots)
        return self._k("kids", code)

    def by_name(self, name: str) -> str:  # set of codes carrying `name`
        return self._k("name", name)

    def level(self, level: str) -> str:  # set of codes on one level
        return self._k("level", level)

    # groups
    def groups(self) -> str:  # hash chat_id -> canonical Group JSON, updated_at last
        return self._k("groups")

    def group_meta(self) -> str:  # hash chat_id -> "pack index|anc1,anc2,…" (where indexed)
        return self._k("gmeta")

    def group_names(self) -> str:  # hash group name -> space separated chat ids
        return self._k("gname")

    # A "pack" holds the rows of the groups (active; "g"-prefixed: dismissed) whose pack
    # node it is (their deepest 网格, else deepest 乡镇街道/县区/市; store.PACK_LEVELS),
    # joined by newlines; `packs:<code>` refcounts the packs at or below a node,
    # `psum:<code>` gives those packs' SHA-1 and `packsum` every pack's. A whole city is
    # then read as ~2,300 strings, not 100,000 records, and a process that holds a pack
    # decoded re-reads it only when its SHA-1 changed.
    def pack(self, node: str, *, dismissed: bool = False) -> str:
        return self._k("gpack" if dismissed else "pack", node)

    def packs(self, code: str, *, dismissed: bool = False) -> str:  # hash pack node -> groups
        return self._k("gpacks" if dismissed else "packs", code)

    def pack_sums(self, code: str, *, dismissed: bool = False) -> str:  # pack node -> SHA-1
        return self._k("gpsum" if dismissed else "psum", code)

    def all_pack_sums(self, *, dismissed: bool = False) -> str:  # hash pack node -> SHA-1
        return self._k("gpacksum" if dismissed else "packsum")

    def layout(self) -> str:  # the index layout version the stored indexes were built for
        return self._k("layout")

    def counts(self, code: str) -> str:  # hash kind -> groups, "m:"+kind -> members
        return self._k("count", code)

    def unplaced(self) -> str:  # hash chat_id -> reason JSON
        return self._k("unplaced")

    def bindings(self) -> str:  # hash chat_id -> group name when explicitly placed
        return self._k("bound")

    def move_requests(self) -> str:  # hash chat_id -> MoveRequest JSON (a rename pointing away)
        return self._k("moves")

    def history(self, chat_id: str) -> str:  # list of one group's changes (JSON, oldest first)
        return self._k("hist", chat_id)

    # people
    def people(self) -> str:  # hash userid -> Person JSON
        return self._k("people")

    def staff(self, code: str) -> str:  # set of userids covering exactly this node
        return self._k("staff", code)

    def role(self, role: str) -> str:  # set of userids with this role
        return self._k("role", role)

    # sync from WeCom
    def sync_state(self) -> str:  # hash: cursor, status, counters
        return self._k("sync", "state")

    def sync_seen(self) -> str:  # set of chat ids listed by the current run
        return self._k("sync", "seen")

    def sync_lock(self) -> str:
        return self._k("sync", "lock")
