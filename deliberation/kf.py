"""A resident asks for their own voting link in the 微信客服 conversation (表决 …).

The resident came in by a 客服 link of their node (cases.residents keeps that node); they
prove they are a registered adult of the village by the last 6 characters of their ID number
and the last 4 digits of their phone, compared with the village's sealed 一标三实 records (no
full number is typed, stored or shown). One match, and the household's (or person's) link of
each open matter of the village is sent back in the same conversation (kf_send_text, inside the
48-hour window the resident's message just opened). At most TRIES attempts an hour per
resident; every answer audited under a keyed digest, never the resident's identity.
"""

from __future__ import annotations

import re

from bot.events import KfMessage
from bot.rtypes import smap
from cases import kfsend
from cases.deps import CasesDeps
from deliberation import announce, links, roll, texts
from deliberation.deps import DelibDeps
from deliberation.models import Matter, Mode, Status
from registry.models import Level

WORDS = ("表决", "投票")
TRIES, TRIES_WINDOW, SEEN_TTL = 5, 3600.0, 4 * 86400.0
_PROOF = re.compile(r"^(?:表决|投票)\s*([0-9Xx]{6})\s+(\d{4})$")
HOW = ("请回复：表决 身份证号后6位 手机号后4位（例：表决 12345X 5678），"
       "核对您是本村登记住户后，把您家的专用表决链接发给您。")
NOT_FOUND = "没有找到与您登记信息相符的本村住户：请核对后重试，或请网格员转交表决链接。"


def asks_for_link(event: KfMessage) -> bool:
    return event.msgtype == "text" and event.origin == 3 and event.text.startswith(WORDS)


async def answer(deps: DelibDeps, cases: CasesDeps, event: KfMessage) -> str | None:
    """Handle one 表决 message; the text sent back (None: already handled)."""
    if not await deps.redis.set(deps.keys.kf_seen(event.msgid or event.dedupe_key), "1",
                                nx=True, px=deps.clock.real_ms(SEEN_TTL)):
        return None
    digest = kfsend.resident_digest(cases, event.sender)
    text = await _reply(deps, cases, event, digest)
    await kfsend.send(cases, kfsend.Resident(event.sender, event.open_kfid), text)
    return text


async def _reply(deps: DelibDeps, cases: CasesDeps, event: KfMessage, digest: str) -> str:
    node = smap(await deps.redis.hgetall(cases.keys.resident(digest))).get("node", "")
    village = next((n for n in await deps.registry.path(node) if n.level is Level.VILLAGE),
                   None) if node else None
    if village is None:
        return "请通过您所在小区群里的「联系社区民警」链接进入，以便核对您所在的村（社区）。"
    matters = await _open_matters(deps, village.code)
    if not matters:
        return f"{village.name}目前没有正在网上表决的议题。"
    proof = _PROOF.match(event.text)
    if proof is None:
        names = "、".join(f"{m.id}「{m.title}」" for m in matters)
        return f"{village.name}正在表决：{names}。{HOW}"
    tries = await deps.redis.incr(deps.keys.kf_tries(digest))
    if tries == 1:
        await deps.redis.pexpire(deps.keys.kf_tries(digest), deps.clock.real_ms(TRIES_WINDOW))
    if tries > TRIES:
        await deps.record(f"kf-{digest[:16]}", "deliberation.kf_link", "refused",
                          target=village.code, detail="尝试次数过多")
        return "尝试次数过多，请一小时后再试，或请网格员转交表决链接。"
    found = await _match(deps, village.code, proof.group(1).upper(), proof.group(2))
    if found is None:
        await deps.record(f"kf-{digest[:16]}", "deliberation.kf_link", "refused",
                          target=village.code, detail="登记信息不符")
        return NOT_FOUND
    lines = await _links(deps, matters, found)
    await deps.record(f"kf-{digest[:16]}", "deliberation.kf_link", "ok",
                      target=",".join(m.id for m in matters), detail=f"{len(lines)}个链接")
    if not lines:
        return "您家不在这些议题的表决名单中（名单在发起时按一标三实生成）。"
    return texts.fit("您家的专用表决链接（只属于您家，请勿转发）：\n" + "\n".join(lines), 580)


async def _open_matters(deps: DelibDeps, village: str) -> list[Matter]:
    now, found = deps.now(), []
    for matter_id in await deps.matters.in_village(village):
        matter = await deps.matters.get(matter_id)
        if matter and matter.status is Status.OPEN and matter.mode is Mode.ONLINE and \
                now < matter.closes_at:
            found.append(matter)
    return found


async def _match(deps: DelibDeps, village: str, id_tail: str, phone_tail: str
                 ) -> tuple[str, str] | None:
    """(address id, record id) of the one adult whose numbers end so; None unless exactly one."""
    cipher, hits = deps.collect.cipher, []
    for resident in await roll.residents(deps.collect, village):
        sealed = resident.record.sealed
        if not resident.adult or "id_number" not in sealed or "phone" not in sealed:
            continue
        rid = resident.record.id
        if cipher.open(sealed["id_number"], rid, "id_number").upper().endswith(id_tail) and \
                cipher.open(sealed["phone"], rid, "phone").endswith(phone_tail):
            hits.append((resident.address_id, rid))
    return hits[0] if len(hits) == 1 else None


async def _links(deps: DelibDeps, matters: list[Matter], found: tuple[str, str]) -> list[str]:
    lines = []
    for matter in matters:
        for who in found:
            vid = await deps.matters.vid_of(matter.id, links.who(deps.link_key, matter.id, who))
            if vid:
                lines.append(f"{matter.id}「{matter.title}」{texts.when(matter.closes_at)}截止："
                             f"{announce.vote_url(deps, matter, vid)}")
                break
    return lines
