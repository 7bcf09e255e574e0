"""Standard addresses (一标): parse free text into elements and build ONE canonical key.

"振兴路18号3号楼2单元5层501室", "振兴路 18 号 三栋 二单元 501" and "振兴路18号3-2-501" all give
the same key, so the same household is never registered twice. Elements follow GA/T 2000.32's
hierarchy below the registry node: 街路巷/小区 → 门牌 → 楼栋 → 单元 → 层 → 户室.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace

from collect.text import no_spaces, numerals_before

_MARKERS = "号楼|号院|号|栋|幢|座|单元|层|楼|室|户|号房"
_BUILDING = re.compile(r"([0-9A-Z]+)(?:号楼|栋|幢|座)")
_UNIT = re.compile(r"([0-9A-Z]+)单元")
_FLOOR = re.compile(r"(-?\d+)(?:层|楼)")
_ROOM = re.compile(r"([0-9A-Z]+)(?:室|户|号房)")
_DOOR = re.compile(r"(\d+(?:-\d+)?)号(?!楼|房)")
_DASHED = re.compile(r"(\d+)-(\d+)-(\d+)$")
_TRAILING_NUMBER = re.compile(r"([0-9]+[A-Z]?)$")


@dataclass(frozen=True, slots=True)
class AddressParts:
    """Elements below the registry node; empty strings where not given."""

    street: str = ""  # 街路巷 or 小区 (or 村民小组 for rural addresses)
    door: str = ""  # 门(楼)牌号
    building: str = ""  # 楼栋
    unit: str = ""  # 单元
    floor: str = ""  # 层
    room: str = ""  # 户室

    @property
    def is_empty(self) -> bool:
        return not any((self.street, self.door, self.building, self.unit, self.floor, self.room))

    @property
    def is_household(self) -> bool:
        """A dwelling-level address (a 户): has a room, or is a door number without buildings."""
        return bool(self.room) or (bool(self.door) and not self.building)

    def display(self) -> str:
        parts = [self.street]
        parts += [f"{self.door}号"] if self.door else []
        parts += [f"{self.building}栋"] if self.building else []
        parts += [f"{self.unit}单元"] if self.unit else []
        parts += [f"{self.floor}层"] if self.floor and not self.room else []
        parts += [f"{self.room}室"] if self.room else []
        return "".join(parts)

    def as_dict(self) -> dict[str, str]:
        return {"street": self.street, "door": self.door, "building": self.building,
                "unit": self.unit, "floor": self.floor, "room": self.room}


def normalise(text: str) -> str:
    """Half-width, no spaces, upper-case letters, 號/# variants unified, numerals converted."""
    t = no_spaces(text).upper().replace("號", "号").replace("#", "号")
    t = t.replace("—", "-").replace("－", "-").replace("–", "-")
    return numerals_before(t, _MARKERS)


def _number(value: str) -> str:
    """'0501' -> '501' so zero-padded and plain numbers give one key."""
    return value.lstrip("0") or value if value.isdigit() else value


def _take(pattern: re.Pattern[str], text: str) -> tuple[str, str, int]:
    """(value, text with the match blanked out, start) of the first match, or ('', text, -1)."""
    match = pattern.search(text)
    if not match:
        return "", text, -1
    blank = "\0" * (match.end() - match.start())
    blanked = text[: match.start()] + blank + text[match.end():]
    return _number(match.group(1)), blanked, match.start()


def parse(text: str, *, strip: tuple[str, ...] = ()) -> AddressParts:
    """Split an address into elements; `strip` are registry node names to drop from the front."""
    t = normalise(text)
    for name in strip:
        t = t.removeprefix(normalise(name))
    dashed = _DASHED.search(t)
    if dashed:
        head = t[: dashed.start()]
        rest = parse(head) if head else AddressParts()
        return replace(rest, building=_number(dashed.group(1)), unit=_number(dashed.group(2)),
                       room=_number(dashed.group(3)))
    building, t, b_at = _take(_BUILDING, t)
    unit, t, u_at = _take(_UNIT, t)
    room, t, r_at = _take(_ROOM, t)
    floor, t, f_at = _take(_FLOOR, t)
    if floor and not building and "层" not in text and "层" not in normalise(text):
        building, floor, b_at, f_at = floor, "", f_at, -1  # "5楼" alone is a building
    door, t, d_at = _take(_DOOR, t)
    starts = [s for s in (b_at, u_at, r_at, f_at, d_at) if s >= 0]
    cut = min(starts) if starts else len(t)
    street, tail = t[:cut].replace("\0", ""), t[cut:].replace("\0", "")
    trailing = _TRAILING_NUMBER.search(tail)
    if trailing and not room and (building or unit or floor):
        room = _number(trailing.group(1))
    elif trailing and not door and not building:
        door = _number(trailing.group(1))
    elif not starts:
        number = _TRAILING_NUMBER.search(street)
        if number:
            street, door = street[: number.start()], _number(number.group(1))
    return AddressParts(street=street, door=door, building=building, unit=unit, floor=floor,
                        room=room)


def canonical(node: str, parts: AddressParts) -> str:
    """The one key of an address: node plus elements; the room implies its floor."""
    floor = "" if parts.room else parts.floor
    return "|".join((node, parts.street, parts.door, parts.building, parts.unit, floor,
                     parts.room))


def parts_digest(parts: AddressParts) -> str:
    """Digest of the elements alone (no node)."""
    return canonical_digest("", parts)


def canonical_digest(node: str, parts: AddressParts) -> str:
    """Bounded-size digest of the canonical key, for the dedupe key name."""
    return hashlib.sha256(canonical(node, parts).encode()).hexdigest()[:32]
