"""The self-declaration form over real HTTP on the bot's app: the fact sheet's vectors,
errors next to their field, CSRF/nonce/size/origin/expiry defences, and chat-then-form
giving one record with its history."""

from __future__ import annotations

import pytest
from pytest_aiohttp import AiohttpClient

from bot.audit import AuditLog
from bot.clock import Clock
from bot.settings import Settings
from collect.deps import CollectDeps
from collect.models import ChangeKind, RecordKind, ReviewState
from tests.collect.conftest import G01, G02, Chat, LeakLog
from tests.collect.data import ID_VECTORS, USCC_VECTORS
from tests.collect.formkit import PERSON_FIELDS, UNIT_FIELDS, FormClient, campaign_path, form_app
from tests.collect.helpers import masked_id, person_by_id, unit_by_code


@pytest.fixture
async def form(aiohttp_client: AiohttpClient, settings: Settings, deps: CollectDeps,
               leaks: LeakLog) -> FormClient:
    client = await aiohttp_client(form_app(settings))
    return FormClient(client, await campaign_path(deps, G01))


def person(number: str, **more: str) -> dict[str, str]:
    return {**PERSON_FIELDS, "id_number": number, **more}


@pytest.mark.parametrize(("number", "expected", "why"), ID_VECTORS)
async def test_id_number_vectors_in_the_form(form: FormClient, deps: CollectDeps, number: str,
                                             expected: str, why: str) -> None:
    page = await form.submit(person(number))
    assert number not in page.text and "15800002222" not in page.text, "numbers never echoed"
    if expected == "refuse":
        assert page.status == 422, why
        assert page.errors("id_number")[0].startswith("公民身份号码：")
        assert 'name="confirm"' not in page.text
        assert await person_by_id(deps, number) is None
        return
    if expected == "warn":
        assert page.status == 422 and 'name="confirm"' in page.text, why
        assert page.errors("id_number")[0].startswith("公民身份号码：")
        assert f"已保留 {masked_id(number)}" in page.text and page.draft
        assert await person_by_id(deps, number) is None
        page = await form.resubmit(page, person(number))
    assert page.status == 200 and "提交成功" in page.text, why
    assert masked_id(number) in page.text and number not in page.text
    record = await person_by_id(deps, number)
    assert record is not None and record.state is ReviewState.PENDING
    assert record.source == "form" and record.created_by.startswith("resident@C")


@pytest.mark.parametrize(("code", "expected", "why"), USCC_VECTORS)
async def test_credit_code_vectors_in_the_form(form: FormClient, deps: CollectDeps, code: str,
                                               expected: str, why: str) -> None:
    fields = {**UNIT_FIELDS, "uscc": code}
    page = await form.submit(fields, kind=RecordKind.UNIT)
    if expected == "refuse":
        assert page.status == 422 and page.errors("uscc"), why
        assert await unit_by_code(deps, code) is None
        return
    if expected == "checksum":
        assert page.status == 422 and "确认无误" in page.errors("uscc")[0], why
        assert await unit_by_code(deps, code) is None
        page = await form.resubmit(page, fields, kind=RecordKind.UNIT)
    assert page.status == 200 and "提交成功" in page.text, why
    record = await unit_by_code(deps, code)
    assert record is not None and record.fields["unit_type"]


async def test_errors_are_shown_next_to_their_fields(form: FormClient) -> None:
    page = await form.submit(person("142326198811110019", phone="12345", street="", door="",
                                    building="", unit="", room="", population_type=""))
    assert page.status == 422
    assert page.errors("phone")[0].startswith("联系电话：")
    assert page.errors("population_type")[0].startswith("人口类型：")
    assert page.errors("address")[0].startswith("地址：")
    assert 'value="周小梅"' in page.text, "what was typed stays in the form"
    assert "1423**********0019" in page.text and "142326198811110019" not in page.text


async def test_a_draft_only_serves_its_own_link(form: FormClient, deps: CollectDeps) -> None:
    number = "141102199503010018"  # a warning: the page keeps the number in a draft
    page = await form.submit(person(number))
    other = FormClient(form.client, await campaign_path(deps, G01))
    stolen = await other.submit({**PERSON_FIELDS, "id_number": "", "phone": "",
                                 "draft": page.draft, "confirm": "1"})
    assert stolen.status == 422 and stolen.errors("id_number"), "another link's draft is void"
    done = await form.resubmit(page, person(number))
    assert done.status == 200 and await person_by_id(deps, number) is not None


async def test_chat_then_form_is_one_record_with_history(chat: Chat, form: FormClient,
                                                         deps: CollectDeps) -> None:
    number = "141102200506010027"
    await chat.send("w1", f"采集 人口\n姓名：周小梅\n身份证：{number}\n电话：15800002222\n"
                          "地址：振兴路18号3栋2单元601\n人口类型：常住")
    page = await form.submit(person(number, phone="18600003333"))
    assert page.status == 200 and "P1" in page.text
    record = await person_by_id(deps, number)
    assert record is not None and record.id == "P1" and record.source == "form"
    assert record.display("phone") == "186****3333"
    history = await deps.store.history("P1")
    assert [(h.kind, h.actor) for h in history] == [
        (ChangeKind.COLLECT, "w1"), (ChangeKind.DECLARE, "resident@C1")]
    assert sorted(c.field for c in history[1].changes) == ["与户主关系", "联系电话"]
    todo = await chat.send("w1", "我的待办")
    assert "【居民自主申报，待核查】" in todo and "P1 人口 周**" in todo
    assert await deps.store.count(G01, RecordKind.PERSON) == 1


async def test_form_defences(form: FormClient, deps: CollectDeps) -> None:
    good = person("142326197002020043")
    missing = await form.submit(good, csrf="")
    assert missing.status == 403 and "页面已过期" in missing.text
    other = await campaign_path(deps, G02)
    foreign = await form.submit(good, csrf=(await FormClient(form.client, other).open()).csrf)
    assert foreign.status == 403, "a CSRF value is bound to its own link"
    cross = await form.submit(good, headers={"Origin": "https://evil.example"})
    assert cross.status == 403
    page = await form.open()
    first = await form.submit(good, csrf=page.csrf)
    again = await form.submit(good, csrf=page.csrf)
    assert (first.status, again.status) == (200, 409), "one filled-in form is stored once"
    stored = await person_by_id(deps, good["id_number"])
    assert stored is not None and len(await deps.store.history(stored.id)) == 1
    async with form.client.post(form.path, data={"x": "y" * 20_000}) as resp:
        assert resp.status == 413
    tampered = form.path[:-3] + ("AAA" if not form.path.endswith("AAA") else "BBB")
    async with form.client.get(tampered) as resp:
        assert resp.status == 403 and "链接无效" in await resp.text()
    expired = await campaign_path(deps, G01, days=-1)
    async with form.client.get(expired) as resp:
        assert resp.status == 403 and "已过期" in await resp.text()
    headers = (await form.client.get(form.path)).headers
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["Referrer-Policy"] == "same-origin" and headers["Cache-Control"] == "no-store"


async def test_residents_stay_inside_their_link(form: FormClient, deps: CollectDeps) -> None:
    page = await form.submit(person("142326196606060068", node=G02))
    assert page.status == 422 and "不在本次采集范围" in page.errors("node")[0]
    assert await person_by_id(deps, "142326196606060068") is None
    entries = await AuditLog(deps.redis, deps.keys.keys, Clock()).entries(action="collect.submit")
    assert [(e.actor, e.outcome, e.target) for e in entries] == [("resident@C1", "refused", G02)]

