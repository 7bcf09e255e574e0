"""The tamper-evident ballot record: every ballot is an entry, each entry's hash chained.

An entry is canonical JSON (sorted keys, no spaces) naming no voter:
``{"kind":"ballot","option":i,"seq":n,"supersedes":m,"tag":t}`` where ``tag`` is the first 32
hex digits of SHA-256 of the voter's receipt secret and ``supersedes`` the seq of the same
voter's earlier ballot (0 if none) when changes are allowed; a show of hands is one entry
``{"kind":"hands","counts":[…],"present":p,"seq":n}``.

    h0 = SHA-256("gridbot-deliberation\\0" + matter id + "\\0" + roll hash)
    h_n = SHA-256(h_{n-1} hex + "\\n" + entry_n)

The head h_N is published with the result together with the entries; anyone recomputes it.
A receipt ``<matter>-<seq>-<secret>`` proves that ballot is in the published list (and counted
unless superseded). Counting is done from the entries alone, so the published list, the head
and the result check each other.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


def genesis(matter_id: str, roll_hash: str) -> str:
    return hashlib.sha256(f"gridbot-deliberation\0{matter_id}\0{roll_hash}".encode()).hexdigest()


def link(prev: str, entry: str) -> str:
    return hashlib.sha256(f"{prev}\n{entry}".encode()).hexdigest()


def hashes(matter_id: str, roll_hash: str, entries: Sequence[str]) -> list[str]:
    out, prev = [], genesis(matter_id, roll_hash)
    for entry in entries:
        prev = link(prev, entry)
        out.append(prev)
    return out


def head(matter_id: str, roll_hash: str, entries: Sequence[str]) -> str:
    chain = hashes(matter_id, roll_hash, entries)
    return chain[-1] if chain else genesis(matter_id, roll_hash)


def canonical(entry: dict[str, Any]) -> str:
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def receipt_tag(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:32]


def count(entries: Sequence[str], n_options: int) -> tuple[int, tuple[int, ...]]:
    """(present, counts per option) from the entries: the latest ballot of each voter counts;
    a show-of-hands entry gives its own headcount and counts."""
    parsed = [json.loads(e) for e in entries]
    hands = [e for e in parsed if e["kind"] == "hands"]
    if hands:
        last = hands[-1]
        return int(last["present"]), tuple(int(c) for c in last["counts"])
    superseded = {int(e["supersedes"]) for e in parsed if e.get("supersedes")}
    counts = [0] * n_options
    live = [e for e in parsed if e["kind"] == "ballot" and int(e["seq"]) not in superseded]
    for entry in live:
        counts[int(entry["option"])] += 1
    return len(live), tuple(counts)


@dataclass(frozen=True, slots=True)
class Receipt:
    matter: str
    seq: int
    secret: str

    def __str__(self) -> str:
        return f"{self.matter}-{self.seq}-{self.secret}"

    @classmethod
    def parse(cls, text: str) -> Receipt | None:
        parts = text.strip().rsplit("-", 2)
        if len(parts) != 3 or not parts[1].isdigit() or not 8 <= len(parts[2]) <= 64:
            return None
        return cls(parts[0], int(parts[1]), parts[2])


@dataclass(frozen=True, slots=True)
class Inclusion:
    ok: bool
    counted: bool
    option: int
    message: str


def prove(receipt: Receipt, matter_id: str, roll_hash: str, entries: Sequence[str],
          published_head: str) -> Inclusion:
    """Check a receipt against the published entries and head (no server secret needed)."""
    if receipt.matter != matter_id:
        return Inclusion(False, False, -1, "回执不属于本议题")
    if head(matter_id, roll_hash, entries) != published_head:
        return Inclusion(False, False, -1, "公布的选票记录与链头不符：记录可能被改动")
    if not 1 <= receipt.seq <= len(entries):
        return Inclusion(False, False, -1, "回执编号不在公布的选票记录中")
    entry = json.loads(entries[receipt.seq - 1])
    if entry.get("tag") != receipt_tag(receipt.secret) or int(entry["seq"]) != receipt.seq:
        return Inclusion(False, False, -1, "回执校验码与记录不符")
    superseded = any(json.loads(e).get("supersedes") == receipt.seq for e in entries)
    if superseded:
        return Inclusion(True, False, int(entry["option"]), "该票已被同一链接的后一次投票替换")
    return Inclusion(True, True, int(entry["option"]), "该票已计入结果")
