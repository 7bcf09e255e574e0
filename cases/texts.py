"""What people read about cases (Chinese), built from the records in one place."""

from __future__ import annotations

import datetime as dt

from cases.models import Case, CaseView, Status

CHINA_TZ = dt.timezone(dt.timedelta(hours=8))
USAGE_REPORT = ("上报 描述（可在开头写 @网格编码 指定网格），随后几分钟内发送的照片和位置会附在"
                "同一事件")


def hhmm(at: float) -> str:
    return dt.datetime.fromtimestamp(at, CHINA_TZ).strftime("%m-%d %H:%M")


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} 分钟" if seconds < 7200 else f"{seconds / 3600:.1f} 小时"


def head(case: Case) -> str:
    return f"{case.id}（{case.category.value}·{case.urgency.value}·{case.status.label}）"


def names(people: dict[str, str], userids: tuple[str, ...] | list[str]) -> str:
    return "、".join(people.get(u, u) for u in userids) or "（暂无）"


def new_case_notice(case: Case, reporter: str, limit: float) -> str:
    lines = [f"【新事件 {case.id}】{case.category.value}·{case.urgency.value}",
             f"内容：{case.text}", f"上报：{reporter}，{hhmm(case.created_at)}",
             f"请在 {minutes(limit)} 内回复「接单 {case.id}」；查看：事件 {case.id}"]
    if case.notice:
        lines.insert(1, f"协查通报 #{case.notice} 的线索（举报人身份仅您可见：事件 {case.id}）")
    return "\n".join(lines)


def queue_lines(cases: list[Case], now: float) -> list[str]:
    rows = []
    for case in cases:
        late = case.status in (Status.NEW, Status.REOPENED) and case.respond_due < now
        flag = "【超时】" if late else ""
        rows.append(f"{flag}{head(case)} {case.text[:30]}")
    return rows


def view_text(view: CaseView, people: dict[str, str]) -> str:
    c = view.case
    holders = [c.handler] if c.handler else list(c.officers)
    lines = [f"事件 {head(c)}", f"内容：{c.text}", f"节点：{c.node}",
             f"上报人：{view.reporter_label}", f"处理人：{names(people, holders)}"]
    if c.photos:
        lines.append(f"照片：{len(c.photos)} 张")
    if c.location:
        lines.append(f"位置：{c.location}")
    if c.parties or c.settle_level or c.route or c.outcome:
        lines.append(f"当事人：{'、'.join(c.parties) or '未登记'}；"
                     f"化解层级：{c.settle_level or '—'}；途径：{c.route or '—'}；"
                     f"结果：{c.outcome or '—'}")
    if c.satisfaction:
        lines.append(f"评价：{c.satisfaction}")
    lines.append("时间线：")
    lines += [f"  {hhmm(e.at)} {people.get(e.actor, e.actor)} {e.action} {e.text}".rstrip()
              for e in view.timeline]
    return "\n".join(lines)
