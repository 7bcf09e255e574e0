"""The leak scanner itself: it must catch what it is there to catch (every collect test runs
under it via the autouse leak_guard in conftest.py)."""

from __future__ import annotations

import logging

import pytest

from bot.masking import scrub
from tests.collect.data import SECRETS
from tests.collect.leakscan import assert_no_leaks, find_leaks

ID, PHONE = "141102199503010018", "13812345678"


@pytest.mark.parametrize("text", [
    f"身份证 {ID} 已保存", f"电话：{PHONE}", "电话：138 1234 5678", "电话：+86-138-1234-5678",
    f"<td>{ID.lower()}</td>", "编号14232619881111001X。",
])
def test_full_numbers_are_found(text: str) -> None:
    assert find_leaks(text, (ID, PHONE))


@pytest.mark.parametrize("text", [
    "1411**********0018", "138****5678", "P12 已保存（2026-11-27 10:32）", "流水号 1764230000123",
    "stream 1764230000123-0", scrub(f"{ID} {PHONE}"),
])
def test_masked_or_unrelated_text_is_clean(text: str) -> None:
    assert find_leaks(text, (ID, PHONE)) == []


def test_assert_no_leaks_names_the_place_not_the_number() -> None:
    with pytest.raises(AssertionError) as failure:
        assert_no_leaks([("reply to w1", f"号码 {ID}")], SECRETS)
    assert "reply to w1" in str(failure.value) and ID not in str(failure.value)


@pytest.mark.leaks_expected  # plants a number in a log line on purpose
def test_the_guard_sees_log_lines(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    logging.getLogger("collect.test").debug("looked up %s", ID)
    texts = [(r.name, r.getMessage()) for r in caplog.records]
    with pytest.raises(AssertionError):
        assert_no_leaks(texts, SECRETS)
    caplog.clear()  # the autouse guard checks this test's records afterwards
