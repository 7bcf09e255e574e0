"""Suggest a category and urgency from the words of a report, and read corrections.

Plain word lists (not a model): a grid worker sees the suggestion in the reply and corrects it
with `类别 E12 交通` / `紧急 E12`; the lists below are what a station would tune first.
"""

from __future__ import annotations

import re

from cases.models import CaseKind, Category, Urgency

_WORDS: tuple[tuple[Category, tuple[str, ...]], ...] = (
    (Category.FIRE, ("消防", "灭火器", "着火", "起火", "火灾", "烟", "防火门", "消防通道",
                     "电动车充电", "飞线", "燃气", "煤气", "液化气")),
    (Category.DISPUTE, ("纠纷", "吵架", "争吵", "矛盾", "邻里", "打架", "欠薪", "扰民", "噪音",
                        "宅基地", "婚姻", "继承", "物业")),
    (Category.TRAFFIC, ("交通", "车祸", "事故", "乱停", "堵", "红绿灯", "占道", "车辆", "撞")),
    (Category.SECURITY, ("可疑", "盗", "偷", "抢", "诈骗", "陌生人", "治安", "赌", "毒",
                         "斗殴", "持刀", "闹事", "吸毒", "传销")),
    (Category.HELP, ("求助", "走失", "迷路", "老人", "孩子", "困难", "救助", "帮忙", "被困")),
)
_URGENT = ("紧急", "马上", "立即", "正在", "着火", "起火", "持刀", "受伤", "流血", "打架",
           "斗殴", "被困", "走失", "救命", "危险", "煤气", "燃气泄漏")
_NODE = re.compile(r"^[@＠](\S+)\s*")


def suggest_category(text: str) -> Category:
    """The category whose words appear first in `text`; 其他 when none does."""
    best: tuple[int, Category] | None = None
    for category, words in _WORDS:
        for word in words:
            at = text.find(word)
            if at >= 0 and (best is None or at < best[0]):
                best = (at, category)
    return best[1] if best else Category.OTHER


def suggest_urgency(text: str) -> Urgency:
    return Urgency.URGENT if any(w in text for w in _URGENT) else Urgency.NORMAL


def kind_for(category: Category) -> CaseKind:
    if category is Category.DISPUTE:
        return CaseKind.DISPUTE
    return CaseKind.REQUEST if category is Category.HELP else CaseKind.PROBLEM


def split_node(text: str) -> tuple[str, str]:
    """`@141181001001-G02 描述` -> (node, 描述); no leading @: ("", text)."""
    match = _NODE.match(text)
    return (match.group(1), text[match.end():].strip()) if match else ("", text)


def category_named(word: str) -> Category | None:
    word = word.strip()
    for category in Category:
        if word == category.value:
            return category
    return {"纠纷": Category.DISPUTE, "消防": Category.FIRE}.get(word)


def urgency_named(word: str) -> Urgency | None:
    word = word.strip()
    return next((u for u in Urgency if u.value == word), None)
