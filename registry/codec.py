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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, replace
from functools import partial
from typing import Any

from registry.models import DeliveryKind, Group, GroupState, Node, Person

US, RS, ROW = "\x1f", "\x1e", "\n"
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
    return group._replace(chat_id=clean(group.chat_id), name=clean(group.name),
                          node=clean(group.node), owner=clean(group.owner),
                          webhook_key=clean(group.webhook_key), tags=tags, updated_at=0.0)


def group_content(group: Group) -> str:
    """The stored row of `group` without its last field, updated_at."""
    g = normalise_group(group)
    return US.join((g.chat_id, g.name, g.kind.value, g.node, g.owner, str(g.member_count),
                    g.state.value, g.webhook_key, RS.join(g.tags), repr(float(g.dismissed_at))))


_FIELD_COUNT = len(GROUP_FIELDS)
_UPDATED, _DISMISSED = GROUP_FIELDS.index("updated_at"), GROUP_FIELDS.index("dismissed_at")
_make_group = partial(tuple.__new__, Group)


def decode_rows(blob: str) -> list[Group]:
    """Stored rows joined by ROW (a bulk read) as Groups.

    Decoded by column: one split of the whole reply, then each field list converted with
    map() and the tuples zipped together, so the loops run in C; a per-row decoder spent most
    of a 100,000-group whole-city query in Python bytecode.
    """
    if not blob:
        return []
    flat = blob.replace(ROW, US).split(US)
    if len(flat) % _FIELD_COUNT:
        raise ValueError(f"group rows: {len(flat)} fields is not a multiple of {_FIELD_COUNT}")
    n = _FIELD_COUNT

    def column(index: int) -> list[str]:
        return flat[index::n]

    tags = column(8)
    # few distinct tag sets: decode each once, share the tuples
    tag_sets = {raw: tuple(raw.split(RS)) if raw else () for raw in set(tags)}
    columns = zip(
        column(0), column(1), map(_KINDS.__getitem__, column(2)), column(3), column(4),
        map(int, column(5)), map(_STATES.__getitem__, column(6)), column(7),
        map(tag_sets.__getitem__, tags),
        map(float, column(_UPDATED)), map(float, column(_DISMISSED)),
        strict=True,
    )
    with gc_paused():
        return list(map(_make_group, columns))


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic collector off while records are built (nesting allowed).

    Groups hold only strings, numbers, enums and tuples of strings, so they cannot form
    cycles; with a big heap, the collections that building 100,000 of them triggers cost
    more than the building itself.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def decode_group(row: str) -> Group:
    """A stored row (content + updated_at) as a Group."""
    return decode_rows(row)[0]


def group_dict(group: Group) -> dict[str, Any]:
    """A group as a plain dict without updated_at (canonical dumps, history)."""
    data = group._asdict()
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
