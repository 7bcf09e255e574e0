"""A resident gets their own household's link in the 微信客服 conversation (表决 …), after
proving they are a registered adult of the village with the tails of their numbers."""

from __future__ import annotations

import re

from cases.deps import CasesDeps
from cases.service import CaseService
from deliberation import kf
from tests.deliberation.conftest import G01, World
from tests.deliberation.data import id_number, phone
from tests.deliberation.test_matters import all_links, open_matter, six_households


async def link(w: World) -> str:
    return await w.ctx.wecom.kf_add_contact_way(w.sim.add_kf_account("东关村警务室"), G01)


async def test_resident_gets_own_link_in_kf_and_votes(w: World) -> None:
    await six_households(w)
    matter = await open_matter(w)
    await w.kf("wmR1", enter=await link(w))  # the grid's 客服 link ties them to G01
    listing = await w.kf("wmR1", "表决")
    assert f"东关村正在表决：{matter}「修建村口道路」" in listing and "身份证号后6位" in listing
    # household 1's head: id_number(10, 1971), phone(10)
    wrong = await w.kf("wmR1", f"表决 {id_number(10, 1971)[-6:]} 9999")
    assert wrong == kf.NOT_FOUND
    answer = await w.kf("wmR1", f"表决 {id_number(10, 1971)[-6:]} {phone(10)[-4:]}")
    found = re.findall(r"http\S+", answer)
    assert len(found) == 1 and "只属于您家" in answer, answer
    sheet = await all_links(w, matter)
    assert w.local(found[0]) in sheet  # the same household link the grid worker holds
    status, page = await w.vote(w.local(found[0]), 0)
    assert status == 200 and "投票成功" in page
    # no case was made of these messages; the audit never names the resident
    assert await CaseService(CasesDeps.from_context(w.ctx), source="t").queue("p1") == []
    audit = await w.ctx.audit.entries(action="deliberation.kf_link")
    assert [e.outcome for e in audit] == ["ok", "refused"]
    assert all("wmR1" not in f"{e.actor}{e.target}{e.detail}" for e in audit)


async def test_guessing_is_limited(w: World) -> None:
    await six_households(w)
    await open_matter(w)
    await w.kf("wmR2", enter=await link(w))
    answers = [await w.kf("wmR2", f"表决 00000{n} 000{n}") for n in range(kf.TRIES + 1)]
    assert answers[:kf.TRIES] == [kf.NOT_FOUND] * kf.TRIES
    assert "尝试次数过多" in answers[-1]
    # even the right numbers are refused now, for the hour
    right = await w.kf("wmR2", f"表决 {id_number(10, 1971)[-6:]} {phone(10)[-4:]}")
    assert "尝试次数过多" in right
