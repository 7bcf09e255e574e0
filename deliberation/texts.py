"""Every sentence residents, organisers and groups read about a matter (Chinese)."""

from __future__ import annotations

import datetime as dt

from deliberation import rules
from deliberation.models import Body, Matter, Mode, Rule, Status, Tally

_BEIJING = dt.timezone(dt.timedelta(hours=8))
NOTICE_DAYS = 10 * 86400  # 组织法 Art. 21: a 村民会议 is announced ten days ahead

VOTE_ANSWERS = {
    "ok": "投票成功，感谢参与！请保存下面的回执，结果公布后可凭回执核对您的票已被计入。",
    "changed": "已改票：以本次选择为准（原来那一票作废）。请保存新的回执。",
    "already": "这个链接已经投过票，不能重复投票（本议题不允许改票）。",
    "closed": "表决已经截止（或尚未开始），不能再投票。结果以公布的为准。",
    "not_on_roll": "您不在本议题的表决名单中（名单按本村一标三实登记生成）。",
    "bad_option": "选项无效：请在页面上选择一个选项后提交。",
}
HANDS_ANSWERS = {
    "closed": "该议题已结束（或尚未开始），不能再登记举手结果。",
    "has_ballots": "该议题已有网上投票，不能再登记举手结果。",
}


def when(at: float) -> str:
    return dt.datetime.fromtimestamp(at, _BEIJING).strftime("%m月%d日 %H:%M")


def rule_line(matter: Matter) -> str:
    quorum = rules.quorum_text(matter.body, matter.electorate)
    return (f"{matter.body.label}，{matter.electorate.label}；须{quorum}（有效），"
            f"{matter.rule.label}方为通过")


def opened(matter: Matter) -> str:
    state = "已开始表决" if matter.status is Status.OPEN else f"将于{when(matter.opens_at)}开始"
    needed = rules.quorum_needed(matter.body, matter.electorate, matter.eligible)
    hands = "\n会上举手表决后，由网格员发送「举手表决 …」登记结果。" \
        if matter.mode is Mode.HANDS else "\n每户（人）专用表决链接已发给各网格网格员转交。"
    return (f"议题 {matter.id}「{matter.title}」{state}，{when(matter.closes_at)}截止。\n"
            f"{rule_line(matter)}。\n表决名单{matter.eligible}{matter.electorate.unit}"
            f"（一标三实快照），至少{needed}{matter.electorate.unit}参加才有效。" + hands +
            f"\n发「议题 进度 {matter.id}」查看参与情况。")


def notice_open(matter: Matter) -> str:
    options = "、".join(matter.options)
    how = "会上举手表决" if matter.mode is Mode.HANDS else \
        "网格员将把每户（人）专用的表决链接发给您本人"
    background = f"\n{matter.background}" if matter.background else ""
    return (f"【说事议事】{matter.village_name}：{matter.title}{background}\n"
            f"选项：{options}。{rule_line(matter)}。\n"
            f"表决时间：{when(matter.opens_at)}至{when(matter.closes_at)}；{how}。"
            "投票不记名，组织者看不到谁投了什么。")


def turnout(matter: Matter, count: int) -> str:
    needed = rules.quorum_needed(matter.body, matter.electorate, matter.eligible)
    return (f"议题 {matter.id}「{matter.title}」{matter.status.label}，"
            f"{when(matter.closes_at)}截止。\n已参加 {count}/{matter.eligible}"
            f"{matter.electorate.unit}（有效须至少{needed}）。表决结束前不公布各选项票数。")


def result(matter: Matter) -> str:
    tally = Tally.from_dict(matter.result)
    counts = "；".join(f"{o} {c}" for o, c in zip(matter.options, tally.counts, strict=True))
    quorum = "达到" if tally.quorum_met else "未达到"
    if not tally.quorum_met:
        verdict = "参加人数不足，表决无效"
    elif tally.adopted >= 0:
        verdict = f"「{matter.options[tally.adopted]}」获通过"
    else:
        verdict = "没有选项达到通过所需票数，未通过"
    base = "全体成员" if matter.rule is Rule.TWO_THIRDS else "到会人员"
    how = "举手表决，到会" if tally.mode is Mode.HANDS else "参加"
    notice = "\n注：自发布至截止不足10日（村民会议依法提前十日通知），结果供参考。" \
        if matter.body is Body.VILLAGERS and matter.closes_at - matter.created_at < NOTICE_DAYS \
        else ""
    return (f"议题 {matter.id}「{matter.title}」表决结果：{verdict}。\n"
            f"{how}{tally.present}/{tally.eligible}{matter.electorate.unit}，{quorum}法定人数"
            f"（{rules.quorum_text(matter.body, matter.electorate)}）；"
            f"通过标准：{base}{'三分之二以上' if matter.rule is Rule.TWO_THIRDS else '过半数'}。"
            f"\n{counts}。\n选票记录{tally.entries}条，链头 {tally.head}"
            "（凭回执可核对自己的票已计入）。" + notice)


def notice_result(matter: Matter) -> str:
    return f"【说事议事】{matter.village_name}：" + result(matter)


def fit(text: str, limit: int = 1900) -> str:
    """`text` cut to fit one WeCom text message (2,048 bytes, UTF-8)."""
    if len(text.encode()) <= limit:
        return text
    while len(text.encode()) > limit - 6:
        text = text[:-20]
    return text + "……"
