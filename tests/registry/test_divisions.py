"""Any city (issue 11 §6): `gridbot groups divisions <code>` builds the tree of a city or
county from official division codes (统计用区划代码) down to 村/社区, and `groups synth` makes
a synthetic city on any such tree."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from registry.divisions import DivisionError, load_tree, village_name
from registry.models import Level, Node
from registry.synthetic import generate_city
from tests.registry.test_cli import gridbot


def test_taiyuan_from_the_shipped_official_codes() -> None:
    nodes = load_tree("140100")
    counts = Counter(n.level for n in nodes)
    assert nodes[0].name == "太原市" and nodes[0].level is Level.CITY
    assert (counts[Level.COUNTY], counts[Level.TOWNSHIP], counts[Level.VILLAGE]) == \
        (11, 108, 1401)
    by_code = {n.code: n for n in nodes}
    assert by_code["140105"].name == "小店区"
    assert by_code["140105001001"].name == "师范街社区" and by_code["140105001001"].urban
    assert all(by_code[n.parent].level.value == {Level.COUNTY: "city", Level.TOWNSHIP: "county",
                                                   Level.VILLAGE: "township"}[n.level]
               for n in nodes if n.parent)
    villages = [n for n in nodes if n.level is Level.VILLAGE]
    assert all(n.name.endswith(("社区", "村")) or not n.name.endswith("委会") for n in villages)


def test_one_county_and_everyday_names() -> None:
    nodes = load_tree("140105")
    assert [n.code for n in nodes[:2]] == ["140100", "140105"]
    assert all(n.code.startswith("140105") for n in nodes[1:])
    assert village_name("东关社区居委会") == ("东关社区", True)
    assert village_name("南坪头村委会") == ("南坪头村", False)
    assert village_name("王村村民委员会") == ("王村村", False)
    with pytest.raises(DivisionError, match="6 位数字"):
        load_tree("1401")
    with pytest.raises(DivisionError, match="--file"):
        load_tree("320100")


def test_synthetic_city_on_a_real_tree() -> None:
    tree = tuple(load_tree("140105"))
    city = generate_city(seed=3, tree=tree, total_groups=400, residents=30_000)
    assert len(city.groups) == 400 and city.residents == 30_000
    real = {n.code for n in tree}
    villages = {n.code for n in tree if n.level is Level.VILLAGE}
    assert real <= {n.code for n in city.nodes}
    placed = {n.code: n for n in city.nodes}
    assert all(_village_of(g.node, placed) in villages for g in city.groups)
    assert city.groups[0].name.startswith("小店区-")


def _village_of(code: str, nodes: dict[str, Node]) -> str:
    node = nodes[code]
    while node.level not in (Level.VILLAGE, Level.CITY):
        node = nodes[node.parent]
    return node.code


def test_cli_builds_the_tree_and_synth_uses_it(tmp_path: Path) -> None:
    out = gridbot(tmp_path, "divisions", "140100")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "太原市（140100）：县级 11 个、乡级 108 个、村级 1401 个" in out.stdout
    tree = gridbot(tmp_path, "tree", "小店区", "--depth", "1")
    assert tree.returncode == 0, tree.stderr
    assert "坞城街道" in tree.stdout

    synth = gridbot(tmp_path, "synth", "--divisions", "140105", "--out", "city.csv",
                    "--groups", "400", "--residents", "30000", "--gaps", "0")
    assert synth.returncode == 0, synth.stdout + synth.stderr
    done = gridbot(tmp_path, "import", "city_nodes.csv", "city_people.csv", "city.csv")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "city.csv（群，UTF-8 (BOM)）：共 400 行，导入 400 行" in done.stdout
    stats = gridbot(tmp_path, "stats", "小店区")
    assert stats.returncode == 0 and "400" in stats.stdout, stats.stdout

    wrong = gridbot(tmp_path, "divisions", "320100")
    assert wrong.returncode == 2 and "--file" in wrong.stdout
