"""The house plan, enforced: which package may import which, and no import circle.

Layers, lowest first (docs/design.md): the service core `bot` ← `registry` ← the domains
(`broadcasts`, `collect`, then `cases`, then `deliberation`, each may use those before it) ←
`console` and `handlers` on top. A package imports only from its own layer or below.
Composition roots (`bot.cli`, `bot.__main__`, `bot.app`) wire everything together and are the
one exception. Imports under `if TYPE_CHECKING:` count for circles (a circle of types is still
a circle for a reader) but not for layering: the core may name a registry type it carries.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS: dict[str, int] = {
    "bot": 0,
    "registry": 1,
    "broadcasts": 2,
    "collect": 2,
    "cases": 3,
    "deliberation": 4,
    "console": 5,
    "handlers": 6,
}
ROOTS = ("bot.cli", "bot.__main__", "bot.app")


def product_sources() -> dict[str, str]:
    """module name -> source of every product module."""
    found: dict[str, str] = {}
    for package in LAYERS:
        for path in sorted((ROOT / package).rglob("*.py")) if (ROOT / package).is_dir() else ():
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path.read_text(encoding="utf-8")
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(module: str, source: str) -> list[tuple[str, bool]]:
    """(imported module, only for type checking) for every import in `source`."""
    tree = ast.parse(source)
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            typing_only.update(id(n) for child in node.body for n in ast.walk(child))
    found: list[tuple[str, bool]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in typing_only) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node.module, id(node) in typing_only)]
            # `from pkg import mod` imports the module pkg.mod when there is one
            found += [(f"{node.module}.{a.name}", id(node) in typing_only) for a in node.names]
    return found


def _resolve(name: str, modules: Iterable[str]) -> str | None:
    known = set(modules)
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def graph(sources: Mapping[str, str]) -> dict[str, set[tuple[str, bool]]]:
    """module -> {(product module it imports, typing only)}."""
    edges: dict[str, set[tuple[str, bool]]] = {m: set() for m in sources}
    for module, source in sources.items():
        for name, typing in imports_of(module, source):
            target = _resolve(name, sources)
            if target and target != module and not module.startswith(target + "."):
                edges[module].add((target, typing))
    return edges


def upward_imports(sources: Mapping[str, str]) -> list[str]:
    """'a.b -> c.d' for every runtime import of a higher layer outside the composition roots."""
    found = []
    for module, targets in graph(sources).items():
        if module.startswith(ROOTS):
            continue
        own = LAYERS[module.split(".")[0]]
        found += [f"{module} -> {target}" for target, typing in sorted(targets)
                  if not typing and LAYERS[target.split(".")[0]] > own]
    return sorted(found)


def circles(sources: Mapping[str, str]) -> list[list[str]]:
    """Every strongly connected group of two or more modules (Tarjan)."""
    edges = {m: sorted({t for t, _ in ts}) for m, ts in graph(sources).items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    return found


def test_no_package_imports_one_above_it() -> None:
    assert upward_imports(product_sources()) == []


def test_no_import_circle_among_product_modules() -> None:
    assert circles(product_sources()) == []


def test_a_deliberate_upward_import_is_caught() -> None:
    sources = product_sources()
    sources["registry.upward"] = "from broadcasts.models import Notice\n"
    sources["bot.upward"] = "import registry.store\n"
    assert upward_imports(sources) == ["bot.upward -> registry.store",
                                       "registry.upward -> broadcasts.models"]


def test_a_type_only_upward_import_is_allowed_but_still_makes_a_circle() -> None:
    sources = product_sources()
    sources["bot.upward"] = ("from typing import TYPE_CHECKING\n"
                             "if TYPE_CHECKING:\n    from registry.store import Registry\n")
    assert upward_imports(sources) == []
    sources["registry.store"] += "\nimport bot.upward\n"
    assert ["bot.upward", "registry.store"] in circles(sources)


def test_the_three_old_circles_would_be_caught() -> None:
    sources = product_sources()
    sources["bot.context"] += "\nfrom bot.router import Router\n"
    sources["bot.router"] += "\nfrom bot.context import Context\n"
    assert ["bot.context", "bot.router"] in circles(sources)
