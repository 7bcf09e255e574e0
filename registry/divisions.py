"""Official division trees (any city), and 吕梁市's county counts for the synthetic city.

load_tree(code) builds the tree of a city or one of its counties — 市 / 县 / 乡镇街道 /
村社区 — from official division codes (统计用区划代码): the files in registry/data/ (their
source and date in its README) or a deployer's own file in the same `code,name,parent`
format. `gridbot groups divisions <code>` imports it, so a deployer adds only grids,
buildings, people and groups; `gridbot groups synth --divisions <code>` builds a synthetic
city on it.

吕梁市 (yibiao_sanshi.md §3): GB/T 2260 codes agreed by python-stdnum's loc.dat and NBS 2023;
乡级 counts NBS 2023; 村委会/居委会 counts NBS 2020 ("other" 村级 units are counted with the
居委会 here).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from registry.models import Level, Node

DATA_DIR = Path(__file__).resolve().parent / "data"
# official 村级 names → the names people use (and groups carry): 「东关社区居委会」→「东关社区」
VILLAGE_SUFFIXES = (("社区居民委员会", "社区", True), ("村民委员会", "村", False),
                    ("居民委员会", "社区", True), ("社区居委会", "社区", True),
                    ("居委会", "社区", True), ("村委会", "村", False))


class DivisionError(ValueError):
    """No tree for that code (Chinese message naming the fix)."""


def city_of(code: str) -> str:
    """The 6-digit city code of a city or county code."""
    if not (code.isdigit() and len(code) == 6):
        raise DivisionError(f"区划代码「{code}」应为 6 位数字（市如 140100，县区如 140105）")
    return code[:4] + "00"


def data_file(code: str) -> Path:
    """The shipped file for the city of `code`."""
    path = DATA_DIR / f"{city_of(code)}.csv"
    if not path.is_file():
        shipped = "、".join(sorted(p.stem for p in DATA_DIR.glob("*.csv"))) or "无"
        raise DivisionError(f"没有随附 {city_of(code)} 的区划数据（随附：{shipped}）；"
                            f"请按 registry/data/README.md 准备 code,name,parent 格式的文件，"
                            "用 --file 指定")
    return path


def village_name(official: str) -> tuple[str, bool]:
    """The everyday name of a 村级 unit and whether it is urban (社区)."""
    for suffix, replacement, urban in VILLAGE_SUFFIXES:
        if official.endswith(suffix) and len(official) > len(suffix):
            return official[: -len(suffix)] + replacement, urban
    return official, official.endswith("社区")


def load_tree(code: str, path: Path | None = None) -> list[Node]:
    """The nodes of city `code` (or of the county `code` under its city) down to 村/社区,
    parents before children."""
    city = city_of(code)
    rows = _read(path or data_file(code))
    if city not in rows or code not in rows:
        raise DivisionError(f"区划文件中没有 {code if city in rows else city}")
    prefix = city[:4] if code == city else code  # every code below starts with it
    out = [Node(city, rows[city][0], Level.CITY)]
    for c in sorted(rows, key=lambda c: (len(c), c)):
        name, parent = rows[c]
        if c == city or not c.startswith(prefix):
            continue
        if len(c) == 6:
            out.append(Node(c, name, Level.COUNTY, city))
        elif len(c) == 9:
            out.append(Node(c, name, Level.TOWNSHIP, parent))
        elif len(c) == 12:
            everyday, urban = village_name(name)
            out.append(Node(c, everyday, Level.VILLAGE, parent, urban))
    return out


def _read(path: Path) -> dict[str, tuple[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"code", "name", "parent"} <= set(reader.fieldnames):
            raise DivisionError(f"{path.name}：表头须含 code,name,parent")
        return {r["code"].strip(): (r["name"].strip(), r["parent"].strip()) for r in reader
                if r["code"] and r["code"].strip().isdigit()}

CITY_CODE = "141100"
CITY_NAME = "吕梁市"


@dataclass(frozen=True, slots=True)
class County:
    code: str
    name: str
    subdistricts: int  # 街道
    towns: int  # 镇
    townships: int  # 乡
    other: int  # other 乡级 units (development zones, industrial parks)
    villages: int  # 村委会
    communities: int  # 居委会 (+ other 村级 units)

    @property
    def township_count(self) -> int:
        return self.subdistricts + self.towns + self.townships + self.other


COUNTIES: tuple[County, ...] = (
    County("141102", "离石区", 7, 2, 2, 0, 105, 85),
    County("141121", "文水县", 0, 7, 5, 0, 158, 11),
    County("141122", "交城县", 0, 7, 1, 1, 131, 7),
    County("141123", "兴县", 0, 7, 8, 1, 372, 20),
    County("141124", "临县", 0, 13, 10, 0, 631, 32),
    County("141125", "柳林县", 0, 10, 5, 0, 197, 4),
    County("141126", "石楼县", 0, 5, 4, 0, 104, 1),
    County("141127", "岚县", 0, 4, 5, 1, 136, 1),
    County("141128", "方山县", 0, 6, 0, 0, 90, 2),
    County("141129", "中阳县", 0, 5, 1, 0, 75, 14),
    County("141130", "交口县", 0, 6, 1, 0, 88, 1),
    County("141181", "孝义市", 5, 8, 3, 0, 309, 51),
    County("141182", "汾阳市", 3, 11, 0, 0, 165, 40),
)

# Names of the 乡级 units that are neither 街道, 镇 nor 乡 (yibiao_sanshi.md §3).
OTHER_UNITS = {
    "141122": "夏家营生态工业园区",
    "141123": "兴县经济技术开发区",
    "141127": "岚县普明工业园区",
}
