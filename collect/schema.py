"""Which fields each record kind has: labels, the words users type for them, what is personal.

Personal fields (`sealed=True`) are stored encrypted with a masked copy for display; the others
are stored as plain values. `prompt` is what the guided flow asks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.masking import mask_id_number, mask_name, mask_phone
from collect.models import RecordKind
from collect.text import no_spaces


def mask_date(value: str) -> str:
    """A birth date is always hidden (it is the middle of the ID number)."""
    return "****-**-**" if value else ""


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    label: str
    aliases: tuple[str, ...] = ()
    required: bool = False
    sealed: bool = False
    masker: Callable[[str], str] | None = None
    prompt: str = ""
    max_len: int = 60

    def mask(self, value: str) -> str:
        return self.masker(value) if self.masker else value


ADDRESS = FieldSpec(
    "address", "地址",
    ("地址", "现住址", "住址", "现住地址", "房屋地址", "单位地址", "详细地址", "场所地址"),
    required=True, max_len=120,
    prompt="请发送地址（街路巷/小区＋门牌＋楼栋＋单元＋户室，如 振兴路18号3栋2单元501室）")
NODE = FieldSpec("node", "网格", ("网格", "节点", "所属网格", "社区"), max_len=80)

PERSON = (
    FieldSpec("name", "姓名", ("姓名", "名字"), required=True, sealed=True, masker=mask_name,
              prompt="请发送姓名", max_len=30),
    FieldSpec("id_number", "公民身份号码", ("身份证", "身份证号", "身份证号码", "公民身份号码",
              "证件号码", "身份号码"), required=True, sealed=True, masker=mask_id_number,
              prompt="请发送18位公民身份号码", max_len=24),
    FieldSpec("sex", "性别", ("性别",), prompt="", max_len=4),
    FieldSpec("birth_date", "出生日期", ("出生日期", "生日"), sealed=True, masker=mask_date,
              max_len=12),
    FieldSpec("phone", "联系电话", ("电话", "手机", "手机号", "手机号码", "联系电话", "联系方式"),
              required=True, sealed=True, masker=mask_phone,
              prompt="请发送联系电话（11位手机号码）", max_len=24),
    ADDRESS,
    FieldSpec("population_type", "人口类型", ("人口类型", "类型", "人员类型"), required=True,
              prompt="请发送人口类型：常住、流动 或 境外", max_len=10),
    FieldSpec("relation", "与户主关系", ("与户主关系", "关系", "户主关系"),
              prompt="请发送与户主关系（如 户主、配偶、子、女、父母、租户；没有可回复 跳过）",
              max_len=10),
    NODE,
)
HOUSE = (
    ADDRESS,
    FieldSpec("usage", "用途", ("用途", "房屋用途", "建筑用途"), required=True,
              prompt="请发送房屋用途：住宅、商业、办公、厂房、仓库 或 其他", max_len=10),
    FieldSpec("occupancy", "居住类型", ("居住类型", "使用情况", "自住出租", "状态"), required=True,
              prompt="请发送居住类型：自住、出租 或 空置", max_len=6),
    FieldSpec("owner_name", "房主姓名", ("房主", "房主姓名", "产权人", "户主"), required=True,
              sealed=True, masker=mask_name, prompt="请发送房主姓名", max_len=30),
    FieldSpec("owner_id", "房主身份证", ("房主身份证", "房主身份证号", "产权人身份证"),
              sealed=True, masker=mask_id_number, max_len=24,
              prompt="请发送房主身份证号码（没有可回复 跳过）"),
    FieldSpec("owner_phone", "房主电话", ("房主电话", "房主手机", "产权人电话"), sealed=True,
              masker=mask_phone, prompt="请发送房主联系电话（没有可回复 跳过）", max_len=24),
    FieldSpec("tenants", "承租人", ("承租人", "租户", "租住人"),
              prompt="请发送承租人的人口记录编号或身份证号（多个用逗号分隔，没有可回复 跳过）",
              max_len=400),
    NODE,
)
UNIT = (
    FieldSpec("unit_name", "单位名称", ("名称", "单位名称", "企业名称", "单位"), required=True,
              prompt="请发送单位名称", max_len=60),
    FieldSpec("uscc", "统一社会信用代码", ("统一社会信用代码", "信用代码", "社会信用代码", "代码"),
              required=True, prompt="请发送18位统一社会信用代码", max_len=24),
    FieldSpec("unit_type", "单位类型", ("单位类型",), max_len=20),
    FieldSpec("legal_rep", "法定代表人", ("法定代表人", "法人", "负责人"), required=True,
              sealed=True, masker=mask_name, prompt="请发送法定代表人姓名", max_len=30),
    FieldSpec("legal_rep_phone", "法定代表人电话", ("法人电话", "法定代表人电话", "负责人电话",
              "联系电话", "电话"), sealed=True, masker=mask_phone,
              prompt="请发送法定代表人联系电话（没有可回复 跳过）", max_len=24),
    FieldSpec("staff_count", "从业人数", ("从业人数", "员工数", "人数", "员工人数"),
              prompt="请发送从业人数（数字）", max_len=8),
    ADDRESS,
    NODE,
)
ADDRESS_FIELDS = (
    ADDRESS,
    FieldSpec("street", "街路巷", ("街路巷", "街道路", "小区", "街路巷小区"), max_len=60),
    FieldSpec("door", "门牌号", ("门牌", "门牌号"), max_len=12),
    FieldSpec("building", "楼栋", ("楼栋", "楼号", "栋"), max_len=12),
    FieldSpec("unit", "单元", ("单元",), max_len=12),
    FieldSpec("floor", "层", ("层", "楼层"), max_len=12),
    FieldSpec("room", "户室", ("户室", "室", "房号", "门牌户室"), max_len=12),
    NODE,
)

SCHEMAS: dict[RecordKind, tuple[FieldSpec, ...]] = {
    RecordKind.PERSON: PERSON, RecordKind.HOUSE: HOUSE, RecordKind.UNIT: UNIT,
    RecordKind.ADDRESS: ADDRESS_FIELDS,
}
# derived by the validator, never asked for in the guided flow
DERIVED = frozenset({"sex", "birth_date", "unit_type"})
# asked in the guided flow in this order (the other fields only via the template or the form)
FLOW_FIELDS: dict[RecordKind, tuple[str, ...]] = {
    RecordKind.PERSON: ("name", "id_number", "phone", "address", "population_type", "relation"),
    RecordKind.HOUSE: ("address", "usage", "occupancy", "owner_name", "owner_id", "owner_phone",
                       "tenants"),
    RecordKind.UNIT: ("unit_name", "uscc", "legal_rep", "legal_rep_phone", "staff_count",
                      "address"),
    RecordKind.ADDRESS: ("address",),
}


def spec(kind: RecordKind, name: str) -> FieldSpec:
    return next(f for f in SCHEMAS[kind] if f.name == name)


def field_for(kind: RecordKind, word: str) -> FieldSpec | None:
    """The field a user meant by `word` (a label or alias, full/half width, spaces ignored)."""
    wanted = no_spaces(word)
    for candidate in SCHEMAS[kind]:
        if wanted == candidate.label or wanted in candidate.aliases or wanted == candidate.name:
            return candidate
    return None


def sealed_fields(kind: RecordKind) -> frozenset[str]:
    return frozenset(f.name for f in SCHEMAS[kind] if f.sealed)
