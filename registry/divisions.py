"""吕梁市 and its 13 county-level divisions (yibiao_sanshi.md §3).

GB/T 2260 codes agreed by python-stdnum's loc.dat and NBS 2023; 乡级 counts NBS 2023;
村委会/居委会 counts NBS 2020 ("other" 村级 units are counted with the 居委会 here).
"""

from __future__ import annotations

from dataclasses import dataclass

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
