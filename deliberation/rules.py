"""Quorum and passing rules of village meetings (residents_console_votes.md §5.1).

* 村民会议, each adult villager: more than half of the villagers aged 18 or over (Art. 22);
* 村民会议, each household: at least two thirds of the households' representatives (Art. 22);
* 村民代表会议: at least two thirds of its members (Art. 25/26);
* passing: more than half of those present (Art. 22) — a present voter who abstains counts
  against; where the law asks for it (土地承包方案, 农村土地承包法) at least two thirds of ALL
  members. Quorum is counted against the whole roll, never against who opened the poll.
Integer arithmetic only: no rounding at the boundary.
"""

from __future__ import annotations

from deliberation.models import Body, Electorate, Rule


def quorum_met(body: Body, electorate: Electorate, eligible: int, present: int) -> bool:
    if eligible <= 0:
        return False
    if body is Body.VILLAGERS and electorate is Electorate.ADULTS:
        return present * 2 > eligible
    return present * 3 >= eligible * 2


def quorum_text(body: Body, electorate: Electorate) -> str:
    if body is Body.VILLAGERS and electorate is Electorate.ADULTS:
        return "过半数的18周岁以上村民参加"
    if body is Body.VILLAGERS:
        return "三分之二以上的户代表参加"
    return "三分之二以上的村民代表参加"


def quorum_needed(body: Body, electorate: Electorate, eligible: int) -> int:
    """The smallest turnout meeting the quorum."""
    return next(n for n in range(eligible + 1) if quorum_met(body, electorate, eligible, n)) \
        if eligible > 0 else 1


def option_passes(rule: Rule, count: int, present: int, eligible: int) -> bool:
    if rule is Rule.TWO_THIRDS:
        return count * 3 >= eligible * 2 and count > 0
    return count * 2 > present


def adopted(rule: Rule, counts: tuple[int, ...], present: int, eligible: int,
            options: tuple[str, ...]) -> int:
    """Index of the option that meets the rule, or -1. 弃权 is never adopted."""
    for index, count in enumerate(counts):
        if options[index] == "弃权":
            continue
        if option_passes(rule, count, present, eligible):
            return index
    return -1
