"""Placing a group on the tree from its name (settings.registry.naming_rule).

The rule, e.g. "{county}-{township}-{village}-{building}", names levels in order; a group
name fills them left to right and may stop early ("离石区-滨河街道-龙凤社区" is the village's
group). Each part must name exactly one node of that level inside the node found so far;
levels the rule skips (the grid above a building) are searched through. No match, or more
than one, leaves the group unplaced with the reason and the candidates: never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from registry.models import LEVEL_ORDER, Level, Node
from registry.store import Registry

_FIELD = re.compile(r"\{(\w+)\}")
_DASHES = str.maketrans({"－": "-", "—": "-", "–": "-", "‐": "-"})
_SPACES = re.compile(r"[\s\u3000]+")
# A group's own suffix on the last part, tried only when the exact name finds nothing.
GROUP_SUFFIXES = ("居民群", "业主群", "网格群", "微信群", "群")


class NamingRuleError(ValueError):
    """The configured rule cannot be used; the message says why (Chinese)."""


def normalise_name(text: str) -> str:
    """Dash variants to "-", white space removed: how both rule and names are compared."""
    return _SPACES.sub("", text.translate(_DASHES))


@dataclass(frozen=True, slots=True)
class NamingRule:
    """A parsed naming rule: the levels it names and the literal text around them."""

    text: str
    levels: tuple[Level, ...]
    literals: tuple[str, ...]  # len(levels) + 1: before, between … after

    @classmethod
    def parse(cls, text: str) -> NamingRule:
        pieces = _FIELD.split(normalise_name(text))
        literals, names = tuple(pieces[0::2]), pieces[1::2]
        try:
            levels = tuple(Level(name) for name in names)
        except ValueError:
            bad = next(n for n in names if n not in {lv.value for lv in Level})
            raise NamingRuleError(f"命名规则 {text} 中的 {{{bad}}} 不是层级名") from None
        if not levels:
            raise NamingRuleError(f"命名规则 {text} 没有任何 {{层级}} 占位符")
        order = [LEVEL_ORDER.index(level) for level in levels]
        if order != sorted(set(order)):
            raise NamingRuleError(f"命名规则 {text} 的层级必须从上到下且不重复")
        if any(not lit for lit in literals[1:-1]):
            raise NamingRuleError(f"命名规则 {text} 的相邻占位符之间需要分隔符")
        return cls(text, levels, literals)

    def split(self, name: str) -> list[tuple[Level, str]] | None:
        """The (level, part) pairs `name` fills, longest first; None when it does not fit."""
        name = normalise_name(name)
        for count in range(len(self.levels), 0, -1):
            match = self._pattern(count).fullmatch(name)
            if match:
                return list(zip(self.levels[:count], match.groups(), strict=True))
        return None

    def format(self, parts: Mapping[Level, str]) -> str:
        """The name the rule gives a group on the deepest of its levels found in `parts`."""
        out = [self.literals[0]]
        for index, level in enumerate(self.levels):
            if level not in parts:
                return "".join(out)
            if index:
                out.append(self.literals[index])
            out.append(parts[level])
        return "".join([*out, self.literals[-1]])

    def _pattern(self, count: int) -> re.Pattern[str]:
        parts = [re.escape(self.literals[0])]
        for i in range(count):
            parts.append("(.+?)")
            parts.append(re.escape(self.literals[i + 1]) if i + 1 < count else "")
        if count == len(self.levels):
            parts.append(re.escape(self.literals[-1]))
        return re.compile("".join(parts))


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a name puts a group: `node`, or "" with the reason and candidate codes."""

    node: str
    reason: str = ""
    candidates: tuple[str, ...] = ()


class Placer:
    """Resolves group names against the tree in the registry."""

    def __init__(self, registry: Registry, rule: NamingRule | str) -> None:
        self.registry = registry
        self.rule = rule if isinstance(rule, NamingRule) else NamingRule.parse(rule)

    async def place(self, name: str) -> Placement:
        parts = self.rule.split(name)
        if not parts:
            return Placement("", f"群名「{name}」不符合命名规则 {self.rule.text}")
        inside: Node | None = None
        for index, (level, text) in enumerate(parts):
            last = index == len(parts) - 1
            found = await self._find(level, text, inside, suffixes=last)
            if len(found) != 1:
                return self._failure(level, text, inside, found)
            inside = found[0]
        assert inside is not None  # parts is never empty
        return Placement(inside.code)

    async def _find(
        self, level: Level, text: str, inside: Node | None, *, suffixes: bool
    ) -> list[Node]:
        found = await self._named(level, text, inside)
        if found or not suffixes:
            return found
        for suffix in GROUP_SUFFIXES:
            if text.endswith(suffix) and len(text) > len(suffix):
                found = await self._named(level, text[: -len(suffix)], inside)
                if found:
                    return found
        return []

    async def _named(self, level: Level, text: str, inside: Node | None) -> list[Node]:
        """Nodes of `level` named `text` within `inside` (anywhere when None)."""
        if inside is None:
            nodes = await self.registry.nodes(await self.registry.codes_named(text))
            return [n for n in nodes if n is not None and n.level is level]
        return [n for n in await self.registry.descendants(inside.code, level) if n.name == text]

    def _failure(
        self, level: Level, text: str, inside: Node | None, found: list[Node]
    ) -> Placement:
        where = f"「{inside.name}」下" if inside else ""
        if not found:
            return Placement("", f"{where}找不到名为「{text}」的{level.label}")
        codes = tuple(n.code for n in found)
        reason = f"{where}有 {len(found)} 个名为「{text}」的{level.label}，无法确定"
        return Placement("", reason, codes)
