"""Test households for 说事议事, typed into 一标三实 through collect's own service."""

from __future__ import annotations

from collect.access import Actor
from collect.deps import CollectDeps
from collect.models import RecordKind
from collect.results import Outcome, Submission
from collect.service import CollectService

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"


def id_number(n: int, year: int) -> str:
    """A checksum-valid number from the old 临县 code (valid for these birth years)."""
    body = f"142326{year:04d}{1 + n % 12:02d}{1 + n % 28:02d}{n % 1000:03d}"
    total = sum(int(d) * w for d, w in zip(body, _WEIGHTS, strict=True))
    return body + "10X98765432"[total % 11]


def phone(n: int) -> str:
    return f"139{n:08d}"


async def add_person(deps: CollectDeps, worker: str, n: int, address: str, *, year: int,
                     relation: str) -> None:
    values = {"name": SURNAMES[n % len(SURNAMES)] + "某" + "甲乙丙丁"[n % 4],
              "id_number": id_number(n, year), "phone": phone(n), "address": address,
              "population_type": "常住", "relation": relation}
    result = await CollectService(deps).submit(Submission(
        RecordKind.PERSON, values, Actor.staff(worker), "test", confirmed=True, override=True))
    assert result.outcome is Outcome.STORED, result


async def add_households(deps: CollectDeps, worker: str, street: str, count: int, *,
                         first: int = 1, with_child: bool = True) -> None:
    """`count` households at `street` N号: an adult head, and a child under 18 in every other."""
    for h in range(first, first + count):
        address = f"{street}{h}号"
        await add_person(deps, worker, h * 10, address, year=1970 + h % 20, relation="户主")
        if with_child and h % 2 == 0:
            await add_person(deps, worker, h * 10 + 1, address, year=2015, relation="子")
