"""The Chinese text of every collect reply. Values come from Record.display (masked)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from collect.campaign import Campaign, GridProgress
from collect.models import HistoryEntry, Record, RecordKind
from collect.officer import Lookup, Todo
from collect.results import CONFIRM_CHECKSUM, CONFIRM_SAVE, Outcome, Result
from collect.validate import CHINA_TZ, Issue, Severity

SUMMARY: dict[RecordKind, tuple[tuple[str, str], ...]] = {
    RecordKind.PERSON: (("name", "姓名"), ("id_number", "公民身份号码"), ("sex", "性别"),
                        ("phone", "联系电话"), ("population_type", "人口类型"),
                        ("relation", "与户主关系"), ("address_full", "地址"), ("status", "状态")),
    RecordKind.HOUSE: (("address_full", "地址"), ("usage", "用途"), ("occupancy", "居住类型"),
                       ("owner_name", "房主"), ("owner_id", "房主身份证"),
                       ("owner_phone", "房主电话"), ("tenants", "承租人"), ("status", "状态")),
    RecordKind.UNIT: (("unit_name", "名称"), ("uscc", "统一社会信用代码"), ("unit_type", "类型"),
                      ("legal_rep", "法定代表人"), ("legal_rep_phone", "联系电话"),
                      ("staff_count", "从业人数"), ("address_full", "地址"), ("status", "状态")),
    RecordKind.ADDRESS: (("address_full", "地址"), ("status", "状态")),
}


def when(at: float) -> str:
    return dt.datetime.fromtimestamp(at, CHINA_TZ).strftime("%Y-%m-%d %H:%M")


def summary(record: Record) -> str:
    lines = [f"{label}：{record.display(name)}" for name, label in SUMMARY[record.kind]
             if record.display(name)]
    lines.append(f"核查状态：{record.state.label}" + (f"（{record.note}）" if record.note else ""))
    return "\n".join(lines)


def stored(result: Result) -> str:
    record = result.record
    assert record is not None
    if result.created:
        head = f"已保存：{record.kind.label}记录 {record.id}（新登记）"
    elif result.changes:
        changed = "、".join(c.field for c in result.changes)
        head = f"已保存：{record.kind.label}记录 {record.id}（已有记录，更新了 {changed}）"
    else:
        head = f"已保存：{record.kind.label}记录 {record.id}（已有记录，内容无变化）"
    warned = [i.message for i in result.issues if i.severity is not Severity.ERROR]
    note = ["已按您的确认保存：" + "；".join(warned)] if warned else []
    tail = f"如需修改请发送：更正 {record.id} 项目：新内容"
    return "\n".join([head, summary(record), *note, tail])


def problems(issues: Sequence[Issue], head: str = "未保存，请修改后重新发送：") -> str:
    lines = [f"{n}. {issue.message}" for n, issue in enumerate(issues, start=1)]
    return "\n".join([head, *lines])


def confirm(result: Result) -> str:
    warned = [i for i in result.issues if i.severity is not Severity.ERROR]
    word = result.confirm_word
    tail = (f"核实无误请回复「{word}」保存；需要修改请直接重新发送；放弃请回复「取消」")
    return problems(warned, "尚未保存，请先核实：") + "\n" + tail


def answer(result: Result) -> str:
    """The reply to any submission, correction or status change."""
    if result.outcome is Outcome.STORED:
        return stored(result)
    if result.outcome is Outcome.CONFIRM:
        return confirm(result)
    if result.outcome is Outcome.REFUSED:
        return problems(result.issues)
    return result.message or "操作未完成，请稍后重试"


def todo(t: Todo) -> str:
    if not (t.pending or t.returned):
        return "我的待办：暂无待核查或退回的记录"
    lines = [f"我的待办：待核查 {t.pending_total} 条，退回 {t.returned_total} 条"]
    if t.returned:
        lines.append("【退回，请更正后重新提交】")
        lines += [_line(r) + (f"｜原因：{r.note}" if r.note else "") for r in t.returned]
    if t.declared:
        lines.append("【居民自主申报，待核查】")
        lines += [_line(r) for r in t.declared]
    others = [r for r in t.pending if r.source != "form"]
    if others:
        lines.append("【待核查】")
        lines += [_line(r) for r in others]
    lines.append("核查：核查 编号 通过｜核查 编号 退回 原因；更正：更正 编号 项目：新内容")
    return "\n".join(lines)


def _line(record: Record) -> str:
    main = {RecordKind.PERSON: "name", RecordKind.HOUSE: "address_full",
            RecordKind.UNIT: "unit_name", RecordKind.ADDRESS: "address_full"}[record.kind]
    return f"{record.id} {record.kind.label} {record.display(main)}（{when(record.updated_at)}）"


def history_line(entry: HistoryEntry) -> str:
    changed = "、".join(f"{c.field}" for c in entry.changes[:6])
    why = f"：{entry.reason}" if entry.reason else ""
    return f"{when(entry.at)} {entry.kind.value}{why}（{entry.actor}）" + (
        f" 变更 {changed}" if changed else "")


def lookup(result: Lookup) -> str:
    if not result.allowed or result.record is None:
        return result.message
    history = [history_line(e) for e in result.history[-10:]]
    return "\n".join([f"{result.record.kind.label}记录 {result.record.id}",
                      summary(result.record), "【变更记录】", *history])


def progress(campaign: Campaign, grids: Sequence[GridProgress], now: float) -> str:
    expected = sum(g.expected for g in grids)
    covered = sum(min(g.covered, g.expected) if g.expected else g.covered for g in grids)
    share = f"{covered / expected:.0%}" if expected else "无基数"
    lagging = [g for g in grids if g.expected and g.completion < campaign.elapsed_share(now)]
    lines = [f"采集进度 {campaign.id}（{campaign.root_name}，截止 {when(campaign.deadline)}）",
             f"已覆盖 {covered}/{expected} 户（{share}），网格 {len(grids)} 个，"
             f"进度落后 {len(lagging)} 个",
             "口径：户数基数＝网格内居民群成员数（一户一人入群）；已覆盖＝本次采集以来至少登记一人的户"]
    worst = sorted(grids, key=lambda g: (g.completion, g.grid.code))[:10]
    lines += [f"{g.grid.name}：{g.covered}/{g.expected or '—'}"
              + (f"（{g.completion:.0%}）" if g.expected else "") for g in worst]
    return "\n".join(lines)


CONFIRM_WORDS = (CONFIRM_SAVE, CONFIRM_CHECKSUM)
