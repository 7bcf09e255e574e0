"""Masking: ID and phone numbers are hidden in any text that is shown or logged."""

from __future__ import annotations

import logging

import pytest

from bot.log import ScrubFilter
from bot.masking import mask_id_number, mask_name, mask_phone, scrub


def test_mask_shapes() -> None:
    assert mask_id_number("141102199503010018") == "1411**********0018"
    assert mask_phone("+86 138-1234-5678") == "138****5678"
    assert mask_name("张三丰") == "张**"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("身份证：11010519491231002X，请核对", "11010519491231002X"),
        ("old id 440524800101001 here", "440524800101001"),
        ("电话13812345678", "13812345678"),
        ("tel +8613812345678.", "13812345678"),
        ("手机 138 1234 5678", "138 1234 5678"),
    ],
)
def test_scrub_removes_numbers(text: str, secret: str) -> None:
    out = scrub(text)
    assert secret not in out
    assert secret.replace(" ", "") not in out.replace(" ", "")


def test_scrub_keeps_ordinary_numbers() -> None:
    text = "孝义市 412/415，6 分钟；编号 N20261126001"
    assert scrub(text) == text


def test_scrub_keeps_a_hash_whole_and_still_masks_beside_it() -> None:
    """A published SHA-256 that holds a mobile-like run (CI once saw a draw's seed hash
    masked, so nobody could have checked it) is left whole; numbers beside it are not."""
    digest = "bcd356f8e34197acbbce19737ae5c9a7ac9e4bb13312345678a96507f0123456789"
    text = f"种子哈希 {digest}\n联系电话13812345678，短码abc13912345678"
    out = scrub(text)
    assert digest in out
    assert "13812345678" not in out and "13912345678" not in out


def test_log_filter_scrubs_message_and_args(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.scrub")
    logger.addFilter(ScrubFilter())
    with caplog.at_level(logging.INFO, logger="test.scrub"):
        logger.info("bad row %s phone %s", "141102199503010018", "13812345678")
    assert "141102199503010018" not in caplog.text
    assert "13812345678" not in caplog.text
    assert "1411**********0018" in caplog.text
