"""The Chinese command grammar: forgiving about punctuation, order and wording."""

from __future__ import annotations

from datetime import datetime

import pytest

from broadcasts.grammar import GrammarError, parse_follow_up, parse_notice, parse_notice_id
from broadcasts.models import NoticeKind, NoticeLevel
from broadcasts.quota import BEIJING

NOW = datetime(2026, 11, 26, 15, 30, tzinfo=BEIJING).timestamp()


def test_the_documented_example() -> None:
    d = parse_notice("通知 紧急预警 范围：孝义市,汾阳市 除：下堡村 内容：今晚 8 点起停水", NOW)
    assert d.level is NoticeLevel.URGENT
    assert d.targets == ("孝义市", "汾阳市")
    assert d.exclude == ("下堡村",)
    assert d.content.text == "今晚 8 点起停水"
    assert d.schedule_at is None


def test_forgiving_separators_order_and_multiline_text() -> None:
    d = parse_notice("协查  除 下堡村、上堡村 目标:孝义市/新义街道；汾阳市 标签：楼栋 "
                     "正文：\n第一行\n第二行 范围：不是字段", NOW)
    assert d.level is NoticeLevel.ASSIST
    assert d.targets == ("孝义市/新义街道", "汾阳市")
    assert d.exclude == ("下堡村", "上堡村")
    assert d.tags == ("楼栋",)
    assert d.content.text == "第一行\n第二行 范围：不是字段"  # the text is never parsed


def test_level_as_command_word_and_bare_targets() -> None:
    d = parse_notice("孝义市 内容：注意安全", NOW, level_word="普通通知")
    assert d.level is NoticeLevel.NORMAL and d.targets == ("孝义市",)
    d = parse_notice("紧急 孝义市\n第二行是正文", NOW)
    assert d.targets == ("孝义市",) and d.content.text == "第二行是正文"


def test_markdown_link_and_image() -> None:
    d = parse_notice("通知 普通 范围：孝义市 图片：https://x.cn/a.png 链接：https://x.cn/n 详情页 "
                     "MD：**停水**通知", NOW)
    assert d.content.markdown and d.content.text == "**停水**通知"
    assert d.content.image_url == "https://x.cn/a.png"
    assert (d.content.link_url, d.content.link_title) == ("https://x.cn/n", "详情页")


@pytest.mark.parametrize(("written", "expected"), [
    ("2026-11-27 08:00", datetime(2026, 11, 27, 8, 0, tzinfo=BEIJING)),
    ("11月28日 9点", datetime(2026, 11, 28, 9, 0, tzinfo=BEIJING)),
    ("明天 07:30", datetime(2026, 11, 27, 7, 30, tzinfo=BEIJING)),
    ("16:00", datetime(2026, 11, 26, 16, 0, tzinfo=BEIJING)),
    ("08:00", datetime(2026, 11, 27, 8, 0, tzinfo=BEIJING)),  # today's has passed
])
def test_schedule_times_in_beijing_time(written: str, expected: datetime) -> None:
    d = parse_notice(f"定时 {written} 通知 紧急预警 范围：孝义市 内容：x", NOW)
    assert d.schedule_at == expected.timestamp()
    d = parse_notice(f"紧急预警 范围：孝义市 定时：{written} 内容：x", NOW)
    assert d.schedule_at == expected.timestamp()


@pytest.mark.parametrize(("text", "hint"), [
    ("范围：孝义市 内容：x", "级别"),
    ("紧急预警 范围：孝义市", "内容"),
    ("定时 2026-11-20 08:00 紧急预警 范围：孝义市 内容：x", "已经过去"),
    ("定时 下周 紧急预警 范围：孝义市 内容：x", "时间"),
    ("紧急 范围：孝义市 链接：ftp://x 内容：x", "http"),
])
def test_errors_say_what_to_write(text: str, hint: str) -> None:
    with pytest.raises(GrammarError, match=hint):
        parse_notice(text, NOW)


def test_follow_ups_and_ids() -> None:
    f = parse_follow_up("撤回", "#17 发布有误")
    assert (f.kind, f.notice_id, f.text) == (NoticeKind.RETRACT, 17, "发布有误")
    f = parse_follow_up("已破案", "17：内容：嫌疑人已落网")
    assert (f.kind, f.text) == (NoticeKind.SOLVED, "嫌疑人已落网")
    assert parse_notice_id("＃42", "确认") == 42
    with pytest.raises(GrammarError, match="编号"):
        parse_follow_up("更新", "内容：没有编号")
