"""Who may see and act on a case (pure rules over the case and the registry's person).

* A clue (线索) is seen by the officer who issued the 协查通报 (and whoever he hands it to)
  only: no supervisor, no grid worker.
* Otherwise: police (民警, 辅警), supervisors and station admins covering a node on the case's
  path see and act; the case's grid worker(s) and the member who reported it see only; whoever
  holds the case (after 转交 or escalation) sees and acts.
"""

from __future__ import annotations

from cases.models import Case
from registry.models import Person, Role

ACTING_ROLES = frozenset({Role.OFFICER, Role.AUXILIARY, Role.SUPERVISOR, Role.STATION_ADMIN})


def _covers(person: Person | None, case: Case) -> bool:
    return person is not None and bool(set(person.nodes) & set(case.path))


def holds(userid: str, case: Case) -> bool:
    return userid == case.handler or userid in case.escalated_to


def may_act(userid: str, person: Person | None, case: Case) -> bool:
    if case.is_clue:
        return userid in case.officers or userid == case.handler
    if holds(userid, case):
        return True
    return person is not None and person.role in ACTING_ROLES and _covers(person, case)


def may_view(userid: str, person: Person | None, case: Case) -> bool:
    if may_act(userid, person, case):
        return True
    if case.is_clue:
        return False
    if userid and userid == case.reporter:
        return True
    return (person is not None and person.role is Role.GRID_WORKER and _covers(person, case)
            ) or userid in case.grid_workers
