"""The fact sheet's ID-number and credit-code vectors through the chat path (template).

accept → stored at once; warn → held until 确认保存; checksum → held until 确认无误;
refuse → never stored. Replies are checked through the simulator (real HTTP).
"""

from __future__ import annotations

import pytest

from collect.models import ReviewState
from handlers.fallback import UNKNOWN_TEXT
from tests.collect.conftest import B001, Chat, chat_deps, template
from tests.collect.data import ID_VECTORS, USCC_VECTORS
from tests.collect.helpers import masked_id, person_by_id, unit_by_code


def person_template(number: str) -> str:
    return template("人口", name="王小明", id=number, phone="138 1234 5678",
                    address="振兴路18号3栋2单元501", type="常住", relation="户主")


@pytest.mark.parametrize(("number", "expected", "why"), ID_VECTORS)
async def test_id_number_vectors_in_chat(chat: Chat, number: str, expected: str,
                                         why: str) -> None:
    deps = chat_deps(chat)
    reply = await chat.send("w1", person_template(number))
    if expected == "refuse":
        assert reply.startswith("未保存") and "公民身份号码：" in reply, why
        assert await person_by_id(deps, number) is None
        assert await chat.send("w1", "确认保存") == UNKNOWN_TEXT  # nothing held
        return
    if expected == "warn":
        assert reply.startswith("尚未保存") and "「确认保存」" in reply, why
        assert await person_by_id(deps, number) is None
        reply = await chat.send("w1", "确认保存")
    assert reply.startswith("已保存：人口记录 P"), why
    assert masked_id(number) in reply and "138****5678" in reply
    record = await person_by_id(deps, number)
    assert record is not None and record.state is ReviewState.PENDING
    assert record.node == B001, "3栋 resolves to the registry's 3号楼 under 东关一网格"
    assert record.created_by == "w1" and record.source == "chat"


def unit_template(code: str) -> str:
    return template("单位", unit_name="东关便民超市", uscc=code, legal_rep="李四",
                    phone="13912345670", staff="12", address="振兴路20号")


@pytest.mark.parametrize(("code", "expected", "why"), USCC_VECTORS)
async def test_credit_code_vectors_in_chat(chat: Chat, code: str, expected: str,
                                           why: str) -> None:
    deps = chat_deps(chat)
    reply = await chat.send("w1", unit_template(code))
    if expected == "refuse":
        assert reply.startswith("未保存") and "统一社会信用代码：" in reply, why
        assert await unit_by_code(deps, code) is None
        return
    if expected == "checksum":
        assert "「确认无误」" in reply and await unit_by_code(deps, code) is None
        again = await chat.send("w1", "确认保存")
        assert "校验位不符" in again and await unit_by_code(deps, code) is None
        reply = await chat.send("w1", "确认无误")
    assert reply.startswith("已保存：单位记录 U"), why
    record = await unit_by_code(deps, code)
    assert record is not None and record.fields["uscc"] == code
    assert record.fields["unit_type"] and record.display("legal_rep") == "李*"
    assert "139****5670" in reply and "13912345670" not in reply
