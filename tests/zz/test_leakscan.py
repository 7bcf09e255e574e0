"""Runs last: the whole suite's replies, logs and error bodies carried no personal number."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.leakscan import DATA_DIRS, LEDGER, LeakLedger, find_leaks, scan_data_files


def test_scanner_finds_planted_numbers() -> None:
    text = "身份证 11010519491231002X 电话 13812345678 编号 N20261126 时间 1700000000123"
    assert len(find_leaks(text)) == 2
    assert find_leaks("1101**********002X 138****5678") == []
    assert len(find_leaks("电话13812345678，请回电")) == 1


def test_digit_runs_inside_hex_signatures_are_not_numbers() -> None:
    # an access-log line of 2026-12-01 that failed the whole-suite scan
    url = "/wecom/callback?msg_signature=a038d3efe0771c64de8df15510473560eb512add&nonce=5648438562"
    assert find_leaks(url) == []


@pytest.mark.leaks_expected
def test_the_guard_would_fail_a_leaking_test(pytester: pytest.Pytester) -> None:
    root = Path(__file__).resolve().parents[2]
    pytester.makeconftest(
        f"import sys\nsys.path.insert(0, {str(root)!r})\n"
        "from tests.leakscan import no_personal_number_leaks  # noqa: F401\n"
    )
    pytester.makepyfile(
        "import logging\n"
        "def test_leaky():\n"
        "    logging.getLogger('x').warning('phone 13812345678')\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    assert "personal numbers leaked" in result.stdout.str()


def test_whole_suite_leaked_nothing() -> None:
    logging.getLogger("tests.zz").debug("final scan of %d texts", LEDGER.scanned)
    if LEDGER.scanned == 0:
        pytest.skip("只在整套测试中有意义：请运行 python3 dev.py test")
    assert LEDGER.leaks == []


@pytest.mark.leaks_expected
def test_the_file_scan_finds_a_number_written_to_an_aof(tmp_path: Path) -> None:
    """Control for the whole-suite file scan: a number stored in clear is found in the AOF,
    the tests' own `test:` keys are not."""
    import redis

    from bot.redis import EmbeddedRedis

    server = EmbeddedRedis(tmp_path / "planted", appendfsync="always")
    server.start()
    DATA_DIRS.discard((tmp_path / "planted").resolve())  # not part of the suite's scan
    try:
        client = redis.Redis.from_url(server.url)
        client.set("test:own", "13812345678")
        assert scan_data_files({tmp_path / "planted"}, LeakLedger()) == []
        client.hset("gridbot:x", "phone", "13812345678")
        client.close()
    finally:
        server.stop()
    assert len(scan_data_files({tmp_path / "planted"}, LeakLedger())) == 1


def test_whole_suite_redis_files_hold_no_numbers() -> None:
    """Issue 10: every key the tests left was scanned before each flush (the guard); here the
    AOF and RDB files of every embedded redis-server the suite started."""
    if LEDGER.scanned == 0 or not DATA_DIRS:
        pytest.skip("只在整套测试中有意义：请运行 python3 dev.py test")
    hits = scan_data_files()
    logging.getLogger("tests.zz").debug("scanned the files of %d servers", len(DATA_DIRS))
    assert hits == []
