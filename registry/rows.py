"""One row of an import file → a Node, Person or Group, or the reason it is bad (Chinese).

Column names (and their accepted Chinese spellings) are documented in README.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from registry import codes
from registry.models import (
    LEVEL_LABELS,
    ROLE_LABELS,
    DeliveryKind,
    Group,
    Level,
    Node,
    Person,
    Role,
)

MAX_MEMBERS = {
    DeliveryKind.CUSTOMER_GROUP: 500, DeliveryKind.APPCHAT: 2000, DeliveryKind.WEBHOOK: 2000,
}
_LIST_SEPARATORS = re.compile(r"[;；,，、|\s]+")

GROUP_COLUMNS = {
    "chat_id": ("群ID", "群id", "chatid", "群聊ID"),
    "name": ("群名称", "群名", "名称"),
    "kind": ("类型", "群类型", "发送方式", "type"),
    "node": ("node_code", "节点编码", "节点", "所属节点"),
    "owner": ("群主", "群主ID", "群主userid", "owner_userid"),
    "member_count": ("成员数", "人数", "群人数", "members"),
    "webhook_key": ("机器人key", "webhook", "key"),
    "tags": ("标签",),
    "quota_used": ("本月已群发",),  # simulator only (synthetic city); the importer ignores it
}
NODE_COLUMNS = {
    "code": ("编码", "区划代码", "节点编码"),
    "name": ("名称", "节点名称"),
    "level": ("层级", "级别"),
    "parent": ("上级编码", "上级", "parent_code"),
    "urban": ("城市社区", "城镇", "社区"),
}
PEOPLE_COLUMNS = {
    "userid": ("用户ID", "账号", "企业微信ID"),
    "name": ("姓名",),
    "role": ("角色", "身份"),
    "nodes": ("负责节点", "节点", "covered_nodes"),
}
REQUIRED = {
    "groups": ("chat_id", "name", "kind", "node"),
    "nodes": ("code", "name"),
    "people": ("userid", "name", "role", "nodes"),
}

KINDS = {k.value: k for k in DeliveryKind} | {k.label: k for k in DeliveryKind} | {
    "外部群": DeliveryKind.CUSTOMER_GROUP, "内部群": DeliveryKind.APPCHAT,
    "机器人": DeliveryKind.WEBHOOK, "webhook群": DeliveryKind.WEBHOOK,
}
LEVELS = {lv.value: lv for lv in Level} | {label: lv for lv, label in LEVEL_LABELS.items()}
ROLES = {r.value: r for r in Role} | {label: r for r, label in ROLE_LABELS.items()}
ROLE_CHOICES = "、".join(ROLE_LABELS.values())
TRUE = frozenset({"1", "true", "yes", "y", "是", "城市", "城镇", "社区"})
FALSE = frozenset({"", "0", "false", "no", "n", "否", "农村", "村"})
_ID = re.compile(r"[A-Za-z0-9_.@\-]{1,64}")


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    reason: str
    key: str = ""


Known = Callable[[str], bool]
E = TypeVar("E")


def split_list(value: str) -> list[str]:
    return [part for part in _LIST_SEPARATORS.split(value) if part]


def check_code(code: str, known: Known, what: str = "节点") -> str:
    """Why `code` cannot be used ("" when it can)."""
    if not codes.is_well_formed(code):
        shapes = "6/9/12 位区划代码，或 …-Gnn 网格、…-Gnn-Bnnn 楼栋"
        return f"{what}编码「{code}」格式不正确（应为 {shapes}）"
    if not known(code):
        return f"找不到{what}「{code}」，请先导入节点"
    return ""


def parse_group(line: int, row: dict[str, str], known: Known) -> Group | RowError:
    chat_id, name = row.get("chat_id", ""), row.get("name", "")
    fail = _checks(
        (not chat_id, "群ID为空"),
        (bool(chat_id) and not _ID.fullmatch(chat_id), f"群ID「{chat_id}」含有非法字符"),
        (not name, "群名称为空"),
    )
    kind = _lookup(KINDS, row.get("kind", ""))
    if not fail and kind is None:
        shapes = "customer_group/客户群、appchat/应用群聊、webhook/群机器人"
        fail = f"类型「{row.get('kind', '')}」不正确（应为 {shapes}）"
    node = row.get("node", "")
    if not fail and node:
        fail = check_code(node, known)
    if fail or kind is None:
        return RowError(line, fail, chat_id)
    members = _members(row.get("member_count", ""), kind)
    if isinstance(members, str):
        return RowError(line, members, chat_id)
    owner, key = row.get("owner", ""), row.get("webhook_key", "")
    fail = _checks(
        (kind is DeliveryKind.CUSTOMER_GROUP and not owner, "客户群必须填写群主（owner）"),
        (kind is DeliveryKind.WEBHOOK and not key, "群机器人必须填写机器人key（webhook_key）"),
    )
    if fail:
        return RowError(line, fail, chat_id)
    tags = tuple(split_list(row.get("tags", "")))
    return Group(chat_id, name, kind, node, owner, members, webhook_key=key, tags=tags)


def _members(value: str, kind: DeliveryKind) -> int | str:
    text = value.strip().replace(",", "")
    if not text:
        return 0
    try:
        number = float(text)
    except ValueError:
        return f"成员数「{value}」不是整数"
    if not number.is_integer() or number < 0:
        return f"成员数「{value}」不是非负整数"
    if number > MAX_MEMBERS[kind]:
        return f"成员数 {int(number)} 超过{kind.label}上限 {MAX_MEMBERS[kind]}"
    return int(number)


def parse_node(line: int, row: dict[str, str], known: Known) -> Node | RowError:
    code, name = row.get("code", ""), row.get("name", "")
    if not codes.is_well_formed(code):
        return RowError(line, check_code(code, lambda _: True), code)
    level = codes.level_of(code)
    given = row.get("level", "")
    explicit = _lookup(LEVELS, given)
    fail = _checks(
        (not name, "名称为空"),
        (any(sep in name for sep in "/／"), f"名称「{name}」不能含有 /"),
        (bool(given) and explicit is None, f"层级「{given}」不正确"),
    )
    if fail or level is None:
        return RowError(line, fail, code)
    if explicit is Level.CITY and level is Level.COUNTY:
        level = Level.CITY  # a 6-digit code not ending in 00 may still be a city of its own
    elif explicit is not None and explicit is not level:
        return RowError(line, f"层级「{given}」与编码「{code}」不符（应为{level.label}）", code)
    implied = "" if level is Level.CITY else codes.expected_parent(code) or ""
    parent = row.get("parent", "") or implied
    fail = check_code(parent, known, "上级节点") if parent else ""
    urban = row.get("urban", "").strip().lower()
    if not fail and urban not in TRUE | FALSE:
        fail = f"城市社区标记「{row.get('urban', '')}」应为 是/否"
    if fail:
        return RowError(line, fail, code)
    return Node(code, name, level, parent, urban in TRUE)


def parse_person(line: int, row: dict[str, str], known: Known) -> Person | RowError:
    userid, name = row.get("userid", ""), row.get("name", "")
    role = _lookup(ROLES, row.get("role", ""))
    covered = split_list(row.get("nodes", ""))
    fail = _checks(
        (not userid, "userid 为空"),
        (bool(userid) and not _ID.fullmatch(userid), f"userid「{userid}」含有非法字符"),
        (not name, "姓名为空"),
        (role is None, f"角色「{row.get('role', '')}」不正确（应为 {ROLE_CHOICES}）"),
        (not covered, "负责节点为空"),
    )
    if not fail:
        fail = next((f for f in (check_code(c, known) for c in covered) if f), "")
    if fail or role is None:
        return RowError(line, fail, userid)
    return Person(userid, name, role, tuple(covered))


def _lookup(table: dict[str, E], value: str) -> E | None:
    """Case-insensitive lookup of an enum by value or Chinese label."""
    value = value.strip()
    return table.get(value.lower(), table.get(value))


def _checks(*pairs: tuple[bool, str]) -> str:
    """The first failing check's message, or ""."""
    return next((message for failed, message in pairs if failed), "")
