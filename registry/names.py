"""Made-up but plausible Chinese names for the synthetic city: places and people.

Deterministic for a given random.Random; names are unique where the naming rule needs them
to be (townships within a county, villages within a county).
"""

from __future__ import annotations

import random

PLACE_CHARS = (
    "东西南北中上下前后新旧大小王李张刘赵杨陈高马石柳河沟坪峪庄堡塔岭峁湾口头寨坡岔"
    "泉水川店桥关城阳明安宁兴隆丰和平康乐福寿永昌盛德清凤龙虎鹤松梅桃杏枣槐榆杨林"
)
SURNAMES = (
    "王李张刘陈杨赵黄周吴徐孙马胡朱郭何罗高林梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢"
    "蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵"
    "孟龙万段雷钱汤尹黎易常武乔贺赖龚文"
)
GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建文辉宁鹏斌宇浩凯亮婷雪琳"
    "晶欣博瑞志国海"
)
NUMERALS = "一二三四五六七八九十"


class NamePool:
    """Hands out place stems never used twice within one scope."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self._used: dict[str, set[str]] = {}

    def stem(self, scope: str, length: int = 2) -> str:
        used = self._used.setdefault(scope, set())
        for _ in range(10_000):
            chars = self.rng.sample(PLACE_CHARS, length)
            stem = "".join(chars)
            if stem not in used:
                used.add(stem)
                return stem
        return self.stem(scope, length + 1)  # scope exhausted: longer names

    def person(self) -> str:
        given = "".join(self.rng.choice(GIVEN) for _ in range(self.rng.choice((1, 2, 2))))
        return self.rng.choice(SURNAMES) + given


def chinese_ordinal(n: int) -> str:
    """1 → 一, 12 → 十二, 20 → 二十 (enough for grid numbers)."""
    if n <= 10:
        return NUMERALS[n - 1]
    tens, ones = divmod(n, 10)
    head = "" if tens == 1 else NUMERALS[tens - 1]
    return head + "十" + (NUMERALS[ones - 1] if ones else "")
