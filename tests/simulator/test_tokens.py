"""gettoken and access_token validation (wecom.md §2.2, §2.3)."""

from __future__ import annotations

from tests.simulator.conftest import CORP_ID, SimFactory, sleep_sim


async def test_gettoken_answers_token_and_expires_in(make_sim: SimFactory) -> None:
    h = await make_sim(token_ttl=7200.0)
    data = await h.gettoken()
    assert data["errcode"] == 0 and data["expires_in"] == 7200
    assert 0 < len(data["access_token"]) <= 512
    assert h.sim.calls("gettoken") == 1


async def test_gettoken_rejects_wrong_secret_and_wrong_corp(make_sim: SimFactory) -> None:
    h = await make_sim()
    assert (await h.gettoken(secret="wrong"))["errcode"] == 40001
    assert (await h.gettoken(corpid="wwother"))["errcode"] == 40013
    assert (await h.gettoken(corpid=CORP_ID, secret=""))["errcode"] == 41004
    assert h.sim.errors_answered(40001, "gettoken") == 1


async def test_missing_token_is_41001(make_sim: SimFactory) -> None:
    h = await make_sim()
    async with h.session.post(
        f"{h.base}/cgi-bin/externalcontact/groupchat/list", json={"limit": 10}
    ) as resp:
        data = await resp.json()
    assert data["errcode"] == 41001
    assert "errmsg" in data


async def test_token_expires_after_its_ttl(make_sim: SimFactory) -> None:
    h = await make_sim(speed=200.0, token_ttl=60.0)
    await h.gettoken()
    assert (await h.call("externalcontact/groupchat/list", {"limit": 10}))["errcode"] == 0
    await sleep_sim(h, 61.0)
    assert (await h.call("externalcontact/groupchat/list", {"limit": 10}))["errcode"] == 42001


async def test_invalidated_token_is_40014_and_a_new_one_works(make_sim: SimFactory) -> None:
    h = await make_sim()
    await h.gettoken()
    old = h.token
    h.sim.invalidate_token()
    assert (await h.call("externalcontact/groupchat/list", {"limit": 10}))["errcode"] == 40014
    await h.gettoken()
    assert h.token != old
    assert (await h.call("externalcontact/groupchat/list", {"limit": 10}))["errcode"] == 0
    h.token = "made-up"
    assert (await h.call("externalcontact/groupchat/list", {"limit": 10}))["errcode"] == 40014
