"""Everything a person reads about a notice: the message residents get, the 1:1 messages to
owners, officers and supervisors, and the splitting of long lists into messages WeCom takes.

Every message a notice sends carries `警务通知编号 #<id>`, so the customer-group task of a
notice can be found again with get_groupmsg_list_v2 after a worker died mid-request.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.wecom.models import Attachment
from broadcasts.models import Notice, NoticeKind, NoticeLevel

TEXT_LIMIT = 2048  # appchat/send, webhook text, message/send (wecom.md §5)
TASK_TEXT_LIMIT = 4000  # add_msg_template
CHUNK_BYTES = 1900  # long reports are split below the 2,048-byte app-message ceiling


def marker(notice_id: int) -> str:
    return f"警务通知编号 #{notice_id}"


def has_marker(text: str, notice_id: int) -> bool:
    """True when `text` is a message of notice `notice_id` (not of #170 when looking for #17)."""
    return re.search(re.escape(marker(notice_id)) + r"(?!\d)", text) is not None


def headline(notice: Notice) -> str:
    """`【紧急预警】` / `【更新·紧急预警】`."""
    if notice.kind is NoticeKind.ORIGINAL:
        return f"【{notice.level.label}】"
    return f"【{notice.kind.label}·{notice.level.label}】"


def resident_text(notice: Notice, *, for_task: bool = False) -> str:
    """The message residents read; markdown when the officer wrote markdown (not in tasks)."""
    c = notice.content
    bold = c.markdown and not for_task
    lines = [f"**{headline(notice)}**" if bold else headline(notice), _lead(notice) + c.text]
    if c.link_url and not for_task:
        lines.append(f"详情：{c.link_title} {c.link_url}".replace("  ", " "))
    if c.image_url and not for_task:
        lines.append(f"图片：{c.image_url}")
    origin = f"，原通知 #{notice.parent}" if notice.parent else ""
    lines.append(f"（{marker(notice.id)}{origin}）")
    return "\n".join(lines)


def _lead(notice: Notice) -> str:
    """What a follow-up says about the original before the officer's own words."""
    p = notice.parent
    return {NoticeKind.UPDATE: f"通知 #{p} 有更新：",
            NoticeKind.RETRACT: f"通知 #{p} 已撤回，请勿再转发。"
            + ("说明：" if notice.content.text else ""),
            NoticeKind.SOLVED: f"通知 #{p} 所涉案件已破获，感谢大家支持！"}.get(notice.kind, "")


def attachments(notice: Notice) -> list[Attachment]:
    """Image and link of a customer-group task."""
    c, out = notice.content, []
    if c.image_url:
        out.append(Attachment("image", pic_url=c.image_url))
    if c.link_url:
        out.append(Attachment("link", title=c.link_title or "详情", url=c.link_url))
    return out


def size_problem(notice: Notice, *, groups: bool, tasks: bool) -> str:
    """A Chinese reason the content is too long for a channel the notice uses, or ""."""
    size = len(resident_text(notice).encode())
    limit = 4096 if notice.content.markdown else TEXT_LIMIT
    if groups and size > limit:
        return f"内容过长：应用群聊/群机器人最多 {limit} 字节，当前 {size} 字节"
    task_size = len(resident_text(notice, for_task=True).encode())
    if tasks and task_size > TASK_TEXT_LIMIT:
        return f"内容过长：客户群群发最多 {TASK_TEXT_LIMIT} 字节，当前 {task_size} 字节"
    return ""


def _excerpt(text: str, n: int = 40) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= n else flat[:n] + "…"


def _group_list(names: Sequence[str], n: int = 8) -> str:
    shown = "、".join(names[:n])
    return shown + (f" 等 {len(names)} 个群" if len(names) > n else "")


def owner_text(notice: Notice, issuer: str, groups: Sequence[str]) -> str:
    """The 1:1 message asking a group owner to confirm the task at once."""
    urgent = "（紧急，请立即确认）" if notice.level is NoticeLevel.URGENT else ""
    return "\n".join([
        f"{headline(notice)}请确认群发{urgent}",
        f"{issuer}发布的通知需要您在企业微信确认后才会发到您的 {len(groups)} 个居民群："
        f"{_group_list(groups)}。",
        "操作：工作台 → 客户联系 → 群发助手 → 确认发送。",
        f"内容：{_excerpt(notice.content.text)}",
        f"（{marker(notice.id)}）",
    ])


def reminder_text(notice: Notice, waited: float, groups: int) -> str:
    """The 1:1 reminder to an owner who has not confirmed."""
    minutes = max(1, round(waited / 60))
    return (f"【提醒】{headline(notice)}通知 #{notice.id} 已等待 {minutes} 分钟仍未确认，"
            f"请立即在群发助手确认发送到您的 {groups} 个居民群。（{marker(notice.id)}）")


def escalation_lines(rows: Sequence[tuple[str, Sequence[str]]]) -> list[str]:
    """`1. 张三（zhangsan）：a群、b群` per waiting owner."""
    return [f"{i}. {owner}：{_group_list(list(groups), 5)}"
            for i, (owner, groups) in enumerate(rows, 1)]


def escalation_header(notice: Notice, waited: float, supervisor: bool) -> str:
    word = "督办" if supervisor else "催办"
    minutes = max(1, round(waited / 60))
    return (f"【{word}·{notice.level.label} #{notice.id}】以下网格员已 {minutes} 分钟未在群发助手"
            f"确认，居民群尚未收到通知，请立即电话督促：")


def chunks(header: str, lines: Sequence[str], limit: int = CHUNK_BYTES,
           max_messages: int = 10) -> list[str]:
    """Split `header` + `lines` into messages under `limit` bytes (`（续 2）` on later ones);
    past `max_messages` the rest is summarised rather than sent."""
    out: list[str] = []
    current = header
    for i, line in enumerate(lines):
        if len((current + "\n" + line).encode()) > limit:
            out.append(current)
            if len(out) == max_messages - 1:
                out.append(f"（续 {len(out) + 1}）其余 {len(lines) - i} 条未列出，"
                           "请用「进度 编号」或管理后台查看完整名单")
                return out
            current = f"（续 {len(out) + 1}）{line}"
        else:
            current += "\n" + line
    out.append(current)
    return out
