"""Telling the village: notices in its resident groups (through the broadcasts service, as
the village officer's notice) and the voting links to each grid's worker, 1:1.

Announcing is best effort after the state change it reports: a failure is logged and audited
and never undoes the matter's opening or closing.
"""

from __future__ import annotations

import logging

from bot.masking import scrub
from broadcasts.deps import Runtime
from broadcasts.grammar import NoticeDraft
from broadcasts.models import Content, NoticeLevel
from broadcasts.service import BroadcastService
from deliberation import links, texts
from deliberation.deps import DelibDeps
from deliberation.models import Matter, Mode, Voter
from registry.models import Role

log = logging.getLogger(__name__)


async def to_groups(deps: DelibDeps, matter: Matter, text: str) -> int | None:
    """Post `text` to the village's resident groups as its officer's notice; the notice id."""
    if deps.wecom is None:
        return None
    officers = await deps.registry.staff_for(matter.village, [Role.OFFICER])
    if not officers:
        await deps.record("system", "deliberation.announce", "refused", target=matter.id,
                          detail="本村没有负责民警，未发群通知")
        return None
    rt = Runtime.build(deps.settings, deps.redis, deps.base_keys, deps.clock, deps.wecom,
                       deps.registry, deps.audit)
    draft = NoticeDraft(NoticeLevel.NORMAL, Content(texts.fit(text, 1800)),
                        targets=(matter.village,))
    service, officer = BroadcastService(rt), officers[0].userid
    try:
        reply = await service.issue(officer, draft, source=f"deliberation:{matter.id}")
        if reply.ok and reply.notice_id is not None and "确认" in reply.text:
            # a village with more groups than the preview threshold: the matter's own
            # opening (or closing) is the officer's decision, no second confirmation
            reply = await service.confirm(officer, reply.notice_id,
                                          source=f"deliberation:{matter.id}")
    except Exception:  # announcing must never undo the matter's state change
        log.exception("群通知发送失败 %s", matter.id)
        return None
    return reply.notice_id


def sheet_url(deps: DelibDeps, matter: Matter, grid: str, userid: str) -> str:
    token = links.sheet_token(deps.link_key, matter.id, grid, userid)
    return f"{deps.base_url()}/vote/{matter.id}/sheet/{token}"


def vote_url(deps: DelibDeps, matter: Matter, vid: str) -> str:
    return f"{deps.base_url()}/vote/{matter.id}/{links.vote_token(deps.link_key, matter.id, vid)}"


async def links_to_workers(deps: DelibDeps, matter: Matter, roll: list[Voter]) -> int:
    """One message per grid worker: how many voters, and the sheet of their links."""
    if deps.wecom is None or matter.mode is Mode.HANDS:
        return 0
    per_grid: dict[str, int] = {}
    for voter in roll:
        per_grid[voter.grid] = per_grid.get(voter.grid, 0) + 1
    sent = 0
    for grid, count in sorted(per_grid.items()):
        workers = await deps.registry.staff_for(grid, [Role.GRID_WORKER])
        for worker in workers:
            text = (f"【说事议事】{matter.title}（{matter.id}）\n本网格{count}"
                    f"{matter.electorate.unit}可表决，每{matter.electorate.unit}一个专用链接，"
                    f"请逐一转给本人（勿转群）：\n{sheet_url(deps, matter, grid, worker.userid)}")
            try:
                await deps.wecom.send_text(worker.userid, scrub(text))
                sent += 1
            except Exception:
                log.exception("表决链接未能发给网格员 %s", worker.userid)
    return sent
