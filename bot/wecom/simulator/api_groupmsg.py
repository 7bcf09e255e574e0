"""客户群群发: add_msg_template and the tracking APIs (wecom.md §1.3, doc 92135/96355)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bot.wecom.simulator import errors, params
from bot.wecom.simulator.errors import SimError, ok
from bot.wecom.simulator.params import Body
from bot.wecom.simulator.state import SimState
from bot.wecom.simulator.tasks import SENT, Task

TEMPLATE_TEXT_MAX = 4000
CHATS_PER_TASK = 2000
ATTACHMENTS_MAX = 9
LIST_WINDOW_MAX = 31 * 86400  # get_groupmsg_list_v2: at most one month
DAY = 86400.0


def add_msg_template(state: SimState, body: Body, query: Mapping[str, str]) -> dict[str, Any]:
    if body.get("chat_type") != "group":
        raise SimError(errors.INVALID_PARAMETER, "only chat_type group is simulated")
    sender = params.string(body, "sender", errors.MISSING_USERID)
    if sender not in state.directory.users:
        raise SimError(errors.USERID_NOT_FOUND)
    chat_ids = _chat_ids(body)
    text, attachments = _message(body)
    accepted = [c for c in chat_ids if _owned_by(state, c, sender)]
    owned = set(accepted)
    fail_list = [c for c in chat_ids if c not in owned]
    if not accepted:
        raise SimError(errors.NO_SENDABLE_CUSTOMER)
    task = Task(state.new_id("msg"), sender, text, attachments, state.now(), tuple(accepted))
    state.tasks.add(task)
    state.owners.created(task)
    return ok(fail_list=fail_list, msgid=task.msgid)


def _chat_ids(body: Body) -> list[str]:
    raw = body.get("chat_id_list")
    if not isinstance(raw, list) or not raw or not all(isinstance(c, str) for c in raw):
        raise SimError(errors.INVALID_PARAMETER, "chat_id_list missing or invalid")
    if len(raw) > CHATS_PER_TASK:
        raise SimError(errors.INVALID_PARAMETER, f"chat_id_list exceed max size {CHATS_PER_TASK}")
    return list(dict.fromkeys(raw))


def _message(body: Body) -> tuple[str, list[dict[str, Any]]]:
    text_part = body.get("text")
    text = text_part.get("content", "") if isinstance(text_part, Mapping) else ""
    attachments = body.get("attachments") or []
    if not isinstance(text, str) or not isinstance(attachments, list):
        raise SimError(errors.INVALID_PARAMETER)
    if not text and not attachments:
        raise SimError(errors.EMPTY_CONTENT)
    if params.utf8_len(text) > TEMPLATE_TEXT_MAX:
        raise SimError(errors.CONTENT_TOO_LONG)
    if len(attachments) > ATTACHMENTS_MAX:
        raise SimError(errors.INVALID_PARAMETER, f"attachments exceed max size {ATTACHMENTS_MAX}")
    return text, attachments


def _owned_by(state: SimState, chat_id: str, sender: str) -> bool:
    group = state.groups.get(chat_id)
    return group is not None and group.owner == sender


def get_groupmsg_list_v2(state: SimState, body: Body, query: Mapping[str, str]) -> dict[str, Any]:
    start = params.integer(body, "start_time", -1, 0, 2**40)
    end = params.integer(body, "end_time", -1, 0, 2**40)
    if end < start or end - start > LIST_WINDOW_MAX:
        raise SimError(errors.INVALID_PARAMETER, "invalid time range, at most one month")
    filter_type = params.integer(body, "filter_type", 2, 0, 2)
    limit = params.integer(body, "limit", 50, 1, 100)
    offset = params.cursor(body)
    if filter_type == 1:  # 个人发表: the simulator only creates 企业发表 tasks
        return ok(next_cursor="", group_msg_list=[])
    creator = str(body.get("creator") or "")
    page, more = state.tasks.page(start, end, creator=creator, offset=offset, limit=limit)
    return ok(
        next_cursor=params.next_cursor(offset + limit, more),
        group_msg_list=[t.summary() for t in page],
    )


def _task(state: SimState, body: Body) -> Task:
    task = state.tasks.get(params.string(body, "msgid"))
    if task is None:
        raise SimError(errors.INVALID_PARAMETER, "invalid msgid")
    return task


def get_groupmsg_task(state: SimState, body: Body, query: Mapping[str, str]) -> dict[str, Any]:
    task = _task(state, body)
    params.integer(body, "limit", 500, 1, 1000)
    entry: dict[str, Any] = {"userid": task.sender, "status": task.status}
    if task.status == SENT:
        entry["send_time"] = int(task.send_time)
    return ok(next_cursor="", task_list=[entry])


def get_groupmsg_send_result(
    state: SimState, body: Body, query: Mapping[str, str]
) -> dict[str, Any]:
    task = _task(state, body)
    userid = params.string(body, "userid", errors.MISSING_USERID)
    limit = params.integer(body, "limit", 500, 1, 1000)
    offset = params.cursor(body)
    chats: Sequence[str] = task.chat_ids if userid == task.sender else ()
    page = chats[offset : offset + limit]
    more = offset + limit < len(chats)
    return ok(
        next_cursor=params.next_cursor(offset + limit, more),
        send_list=[_result(task, chat_id) for chat_id in page],
    )


def _result(task: Task, chat_id: str) -> dict[str, Any]:
    status, at = task.results.get(chat_id, (0, 0.0))
    entry: dict[str, Any] = {"chat_id": chat_id, "userid": task.sender, "status": status}
    if at:
        entry["send_time"] = int(at)  # WeCom returns send_time only once sent
    return entry


def remind_groupmsg_send(state: SimState, body: Body, query: Mapping[str, str]) -> dict[str, Any]:
    task = _task(state, body)
    now = state.now()
    recent = [t for t in task.remind_times if now - t < DAY]
    if len(recent) >= state.config.reminders_per_day:
        raise SimError(errors.FREQ_LIMIT, "remind freq out of limit, at most 3 per 24 hours")
    task.remind_times.append(now)
    if task.open:
        state.owners.reminded(task, now, "remind_groupmsg_send")
    return ok()


def cancel_groupmsg_send(state: SimState, body: Body, query: Mapping[str, str]) -> dict[str, Any]:
    task = _task(state, body)
    if task.open:
        task.cancelled = True
        task.note("cancelled", state.now())
        state.owners.closed(task)
    return ok()
