"""The draw by lot (抓阄), deterministic and recomputable by anyone from the published record.

Published BEFORE the draw (fixed): title, participants, items, whether two-stage, the public
value's source named in advance, the committee's commitments, participants' contributions,
and `seed_commitment` = SHA-256(secret) of the operator's secret. Their canonical JSON's
SHA-256 is `list_hash`.

Published AFTER: the secret, the committee's reveals (each must hash to its commitment), the
public value. Then

    seed = SHA-256("gridbot-draw-v1" ‖ 0 ‖ list_hash ‖ 0 ‖ secret ‖ 0 ‖ public value
                   ‖ 0 ‖ reveals joined by 0)                     (hex strings, UTF-8)

and the draw is an HMAC-SHA256 Fisher–Yates shuffle: block k of stream `label` is
HMAC-SHA256(seed, label ‖ 0 ‖ k); each block gives four big-endian 64-bit numbers r used in
turn; for i = n−1 … 1, j = r mod (i+1) after rejecting r ≥ 2^64 − (2^64 mod (i+1)); swap i, j.

* one stage: participants shuffled (stream "order"); the k-th drawn gets item k (list order);
* two stages (坑下村 / 尤溪县 practice): first the order of choosing (stream "order"), then
  the choice: items shuffled (stream "choice"), the k-th in order gets the k-th drawn item.
Adding, removing or reordering one participant changes list_hash, hence the seed, hence the
whole allocation.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

VERSION = "gridbot-draw-v1"
_FIXED = ("id", "title", "village", "participants", "items", "two_stage", "public_source",
          "commitments", "contributions", "seed_commitment", "algorithm")


class DrawError(Exception):
    """The record does not verify; str() says which part, in Chinese."""


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _stream(seed: bytes, label: str) -> Iterator[int]:
    block = 0
    while True:
        digest = hmac.new(seed, f"{label}\0{block}".encode(), hashlib.sha256).digest()
        for at in range(0, 32, 8):
            yield int.from_bytes(digest[at:at + 8], "big")
        block += 1


def shuffle(seed: bytes, label: str, n: int) -> list[int]:
    """A permutation of range(n) (Fisher–Yates with rejection sampling, see module doc)."""
    order = list(range(n))
    numbers = _stream(seed, label)
    for i in range(n - 1, 0, -1):
        bound = i + 1
        limit = 2 ** 64 - (2 ** 64 % bound)
        r = next(numbers)
        while r >= limit:
            r = next(numbers)
        j = r % bound
        order[i], order[j] = order[j], order[i]
    return order


@dataclass(frozen=True, slots=True)
class Outcome:
    seed: str
    order: tuple[str, ...]  # participants in the order drawn
    allocation: tuple[tuple[str, str], ...]  # (participant, item)


def fixed_part(record: dict[str, Any]) -> dict[str, Any]:
    return {k: record.get(k) for k in _FIXED}


def list_hash(record: dict[str, Any]) -> str:
    return sha256(json.dumps(fixed_part(record), sort_keys=True, separators=(",", ":"),
                             ensure_ascii=False))


def derive_seed(lhash: str, secret: str, public_value: str, reveals: Sequence[str]) -> str:
    return sha256("\0".join((VERSION, lhash, secret, public_value, *reveals)))


def allocate(seed_hex: str, participants: Sequence[str], items: Sequence[str],
             two_stage: bool) -> Outcome:
    seed = bytes.fromhex(seed_hex)
    order = [participants[i] for i in shuffle(seed, "order", len(participants))]
    chosen = [items[i] for i in shuffle(seed, "choice", len(items))] if two_stage \
        else list(items)
    pairs = tuple(zip(order, chosen, strict=False))
    return Outcome(seed_hex, tuple(order), pairs)


@dataclass(frozen=True, slots=True)
class Check:
    outcome: Outcome
    problems: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(record: dict[str, Any]) -> Check:
    """Recompute a published draw from its record; problems name what does not match."""
    problems: list[str] = []
    secret = str(record.get("secret", ""))
    if sha256(secret) != record.get("seed_commitment"):
        problems.append("种子原值与事先公布的种子哈希不符")
    if record.get("list_hash") and list_hash(record) != record["list_hash"]:
        problems.append("名单或物品与事先公布的名单哈希不符（公布后被改动）")
    reveals = [str(r) for r in record.get("reveals", [])]
    commitments = list(record.get("commitments", []))
    if sorted(sha256(r) for r in reveals) != sorted(commitments):
        problems.append("委员会揭示值与事先公布的承诺不符")
    seed = derive_seed(list_hash(record), secret, str(record.get("public_value", "")), reveals)
    if record.get("seed") and seed != record["seed"]:
        problems.append("公布的种子与重新计算的种子不符")
    outcome = allocate(seed, list(record["participants"]), list(record["items"]),
                       bool(record.get("two_stage")))
    published = record.get("allocation")
    if published is not None and [list(p) for p in outcome.allocation] != \
            [list(p) for p in published]:
        problems.append("公布的分配结果与重新计算的结果不符")
    return Check(outcome, tuple(problems))
