"""Canonical JSON of the registry's records, as stored in Redis.

The scripts decide "changed or not" by comparing stored and new strings, so one record has
exactly one encoding: compact separators, tags and covered nodes sorted, and a group's
`updated_at` kept out of its content (it lives in the group's meta entry instead).
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from typing import Any

from bot.registry.models import DeliveryKind, Group, GroupState, Node, Person

_KINDS = {kind.value: kind for kind in DeliveryKind}
_STATES = {state.value: state for state in GroupState}


def _dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def normalise_group(group: Group) -> Group:
    return replace(group, tags=tuple(sorted(set(group.tags))), updated_at=0.0)


def group_content(group: Group) -> str:
    """The stored content of `group`: everything but `updated_at`."""
    data = asdict(normalise_group(group))
    del data["updated_at"]
    return _dumps(data)


def decode_group(content: str, meta: str | None) -> Group:
    """Inverse of group_content; `meta` is the "updated_at|ancestors" entry."""
    raw = json.loads(content)
    return Group(
        chat_id=raw["chat_id"],
        name=raw["name"],
        kind=_KINDS[raw["kind"]],
        node=raw["node"],
        owner=raw["owner"],
        member_count=raw["member_count"],
        state=_STATES[raw["state"]],
        webhook_key=raw["webhook_key"],
        tags=tuple(raw["tags"]),
        updated_at=float(meta.split("|", 1)[0]) if meta else 0.0,
        dismissed_at=raw["dismissed_at"],
    )


def meta_ancestors(meta: str | None) -> list[str]:
    """Codes of the nodes a group was indexed under, root first."""
    if not meta or "|" not in meta:
        return []
    codes = meta.split("|", 1)[1]
    return codes.split(",") if codes else []


def node_json(node: Node) -> str:
    return _dumps(asdict(node))


def normalise_person(person: Person) -> Person:
    return replace(person, nodes=tuple(sorted(set(person.nodes))))


def person_json(person: Person) -> str:
    return _dumps(asdict(normalise_person(person)))
