"""The validators on the fact sheet's vectors, and the wrappers around stdnum/phonenumbers."""

from __future__ import annotations

import datetime as dt

import pytest

from collect.address import canonical, parse
from collect.models import RecordKind
from collect.validate import (
    Severity,
    check_id_number,
    check_mobile,
    check_record,
    check_uscc,
    normalise_mobile,
)
from tests.collect.data import ID_VECTORS, USCC_VECTORS

ON = dt.date(2026, 6, 1)


def outcome(issues: tuple[object, ...]) -> str:
    severities = {i.severity for i in issues}  # type: ignore[attr-defined]
    if Severity.ERROR in severities:
        return "refuse"
    if Severity.CHECKSUM in severities:
        return "checksum"
    return "warn" if severities else "accept"


@pytest.mark.parametrize(("number", "expected", "why"), ID_VECTORS)
def test_id_number_vectors(number: str, expected: str, why: str) -> None:
    result = check_id_number(number, ON)
    assert outcome(result.issues) == expected, why
    for issue in result.issues:
        assert issue.message.startswith("公民身份号码："), "every issue names the field"
        assert number not in issue.message and number[6:14] not in issue.message
    if expected != "refuse":
        assert result.derived["sex"] == ("男" if int(number[16]) % 2 else "女")
        assert result.derived["birth_date"] == f"{number[6:10]}-{number[10:12]}-{number[12:14]}"


def test_id_number_shapes_and_dates() -> None:
    assert "15位旧号码" in check_id_number("141102950301001", ON).issues[0].message
    assert "应为18位" in check_id_number("1411021995030100", ON).issues[0].message
    assert "第18位是数字或X" in check_id_number("14110219950301001Y", ON).issues[0].message
    future = "141102202701010013"  # checksum-correct, born after ON
    assert "晚于今天" in check_id_number(future, ON).issues[0].message
    # full-width digits, spaces and a lower-case x are normalised first
    assert check_id_number("１１０１０５ 19491231002x", ON).value == "11010519491231002X"


@pytest.mark.parametrize(("code", "expected", "why"), USCC_VECTORS)
def test_credit_code_vectors(code: str, expected: str, why: str) -> None:
    result = check_uscc(code)
    assert outcome(result.issues) == expected, why
    assert all(i.message.startswith("统一社会信用代码：") for i in result.issues)
    if expected == "checksum":
        assert "确认无误" in result.issues[0].message


def test_credit_code_types_come_from_the_first_two_characters() -> None:
    assert check_uscc("N2141124MA0K12345K").derived["unit_type"] == "村级集体经济组织"
    assert check_uscc("121200004013590816").derived["unit_type"] == "事业单位"
    assert check_uscc("91110108551385082Q").derived["unit_type"] == "企业"
    assert "第1位" in check_uscc("B1110000600037341L").issues[0].message
    assert "第3–8位" in check_uscc("91A10000600037341L").issues[0].message


@pytest.mark.parametrize(("raw", "normalised"), [
    ("+86 138-1234-5678", "13812345678"), ("0086 13812345678", "13812345678"),
    ("8613812345678", "13812345678"), ("１３８ １２３４ ５６７８", "13812345678"),
])
def test_mobile_normalisation(raw: str, normalised: str) -> None:
    assert normalise_mobile(raw) == normalised
    assert check_mobile(raw).issues == ()


@pytest.mark.parametrize(("number", "expected"), [
    ("13812345678", "accept"), ("19212345678", "accept"), ("16612345678", "accept"),
    ("17400012345", "accept"), ("14912345678", "warn"),  # new block: libphonenumber disagrees
    ("12345678901", "refuse"), ("10012345678", "refuse"), ("03585221234", "refuse"),
    ("1381234567", "refuse"),
])
def test_mobile_rules(number: str, expected: str) -> None:
    result = check_mobile(number)
    assert outcome(result.issues) == expected
    assert all(number not in i.message for i in result.issues)


def test_stated_sex_and_birth_date_are_cross_checked() -> None:
    base = {"name": "张三", "id_number": "142326198811110019", "phone": "13812345678",
            "address": "振兴路18号", "population_type": "常住"}
    wrong = check_record(RecordKind.PERSON, {**base, "sex": "女"}, ON)
    assert [i.field for i in wrong.errors] == ["sex"]
    assert "第17位" in wrong.errors[0].message
    stated = {**base, "sex": "男", "birth_date": "1988年11月11日"}
    right = check_record(RecordKind.PERSON, stated, ON)
    assert right.outcome() == "accept"
    assert right.values["birth_date"] == "1988-11-11"
    missing = check_record(RecordKind.PERSON, {"name": "张三"}, ON)
    assert {i.field for i in missing.errors} == {"id_number", "phone", "address",
                                                  "population_type"}
    assert all("未填写" in i.message for i in missing.errors)


def test_names_reject_digits_and_symbols() -> None:
    bad = check_record(RecordKind.PERSON, {"name": "张三3"}, ON)
    assert any(i.field == "name" and "汉字" in i.message for i in bad.errors)
    ok = check_record(RecordKind.PERSON, {"name": "阿依古丽·买买提"}, ON)
    assert not [i for i in ok.errors if i.field == "name"]


@pytest.mark.parametrize("text", [
    "振兴路18号3号楼2单元5层501室", "振兴路 18 号 三栋 二单元 501", "振兴路18号3-2-501",
    "振兴路１８号３幢２单元０５０１室", "振兴路18號3#楼2单元501户",
    "新义街道振兴路18号3栋2单元501",
])
def test_one_canonical_key_per_address(text: str) -> None:
    parts = parse(text, strip=("新义街道",))
    assert canonical("G", parts) == "G|振兴路|18|3|2||501"


def test_distinct_addresses_keep_distinct_keys() -> None:
    keys = {canonical("G", parse(t)) for t in (
        "振兴路18号3栋2单元501", "振兴路18号3栋2单元502", "振兴路19号3栋2单元501",
        "五一路18号3栋2单元501", "振兴路18号")}
    assert len(keys) == 5
    assert parse("五一路3号").street == "五一路", "numerals in names are not counters"
    rural = parse("张家庄村3组15号")
    assert (rural.street, rural.door) == ("张家庄村3组", "15")
