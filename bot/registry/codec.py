"""Canonical encodings of the registry's records, as stored in Redis.

The scripts decide "changed or not" by comparing stored and new strings, so one record has
exactly one encoding. Nodes and people are compact JSON (covered nodes sorted). A group is a
row of fields separated by US (\\x1f), in GROUP_FIELDS order, tags sorted and joined by RS
(\\x1e): a tenth of JSON's parsing cost when a whole city is read, and smaller in memory.
The content a writer sends leaves `updated_at` out; the upsert script appends it as the
stored row's last field. Control characters in text fields become spaces, so separators (and
the newline joining rows in bulk reads) never occur inside a field.
"""

from __future__ import annotations

import gc
import json
import re
from collections.abc import Iterable
from dataclasses import asdict, replace
from typing import Any

from bot.registry.models import DeliveryKind, Group, GroupState, Node, Person

US, RS, GS, ROW = "\x1f", "\x1e", "\x1d", "\n"
GROUP_FIELDS = ("chat_id", "name", "kind", "node", "owner", "member_count", "state",
                "webhook_key", "tags", "dismissed_at", "updated_at")
_KINDS = {kind.value: kind for kind in DeliveryKind}
_STATES = {state.value: state for state in GroupState}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def clean(text: str) -> str:
    return _CONTROL.sub(" ", text)


def normalise_group(group: Group) -> Group:
    """The group as it is stored: clean text, tags sorted and unique, no updated_at."""
    tags = tuple(sorted({clean(t) for t in group.tags if clean(t).strip()}))
    return replace(group, chat_id=clean(group.chat_id), name=clean(group.name),
                   node=clean(group.node), owner=clean(group.owner),
                   webhook_key=clean(group.webhook_key), tags=tags, updated_at=0.0)


def group_content(group: Group) -> str:
    """The stored row of `group` without its last field, updated_at."""
    g = normalise_group(group)
    return US.join((g.chat_id, g.name, g.kind.value, g.node, g.owner, str(g.member_count),
                    g.state.value, g.webhook_key, RS.join(g.tags), repr(float(g.dismissed_at))))


# Slot setters of the frozen Group: a frozen dataclass' __init__ goes through
# object.__setattr__ per field, which made up half of decoding a 100,000-group city; setting
# the slots directly builds the same immutable object in half the time.
_NEW = object.__new__
(_CHAT_ID, _NAME, _KIND, _NODE, _OWNER, _MEMBERS, _STATE, _HOOK, _TAGS, _UPDATED,
 _DISMISSED) = (Group.__dict__[name].__set__ for name in (
    "chat_id", "name", "kind", "node", "owner", "member_count", "state", "webhook_key", "tags",
    "updated_at", "dismissed_at"))


def decode_group(row: str) -> Group:
    """A stored row (content + updated_at) as a Group."""
    f = row.split(US)
    g: Group = _NEW(Group)
    _CHAT_ID(g, f[0])
    _NAME(g, f[1])
    _KIND(g, _KINDS[f[2]])
    _NODE(g, f[3])
    _OWNER(g, f[4])
    _MEMBERS(g, int(f[5]))
    _STATE(g, _STATES[f[6]])
    _HOOK(g, f[7])
    _TAGS(g, tuple(f[8].split(RS)) if f[8] else ())
    _DISMISSED(g, float(f[9]))
    _UPDATED(g, float(f[10]))
    return g


def decode_many(rows: Iterable[str]) -> list[Group]:
    """Many rows as Groups, with the cyclic GC paused: Groups hold only strings, numbers,
    enums and tuples, so they cannot form cycles, and with a big heap the collections the
    allocations would trigger cost a third of the decoding of a 100,000-group city."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return [decode_group(row) for row in rows]
    finally:
        if was_enabled:
            gc.enable()


def group_dict(group: Group) -> dict[str, Any]:
    """A group as a plain dict without updated_at (canonical dumps, history)."""
    data = asdict(group)
    del data["updated_at"]
    data["tags"] = list(group.tags)
    return data


def typed_field(name: str, value: str) -> Any:
    """A row field (as the history records it) back in its Python type."""
    if name == "member_count":
        return int(value)
    if name in ("dismissed_at", "updated_at"):
        return float(value)
    if name == "tags":
        return value.split(RS) if value else []
    return value


def node_json(node: Node) -> str:
    return _dumps(asdict(node))


def normalise_person(person: Person) -> Person:
    return replace(person, nodes=tuple(sorted(set(person.nodes))))


def person_json(person: Person) -> str:
    return _dumps(asdict(normalise_person(person)))
