"""Validation of collected values. Every issue names the field and says how to fix it, in Chinese.

python-stdnum and phonenumbers are used where they are right and wrapped where they are wrong
(yibiao_sanshi.md §2): stdnum.cn.ric rejects real numbers whose region code is newer than the
birth year (late registrations) and HK/MO/TW residence-permit numbers, so those are warnings;
stdnum.cn.uscc.validate rejects every A/N/Y code (village collectives N2…), so only its
calc_check_digit is used, with our own format rule; libphonenumber lags new number blocks, so
its disagreement is a warning and only `1[3-9]\\d{9}` is a hard rule.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

import phonenumbers
from stdnum import numdb
from stdnum.cn import ric, uscc

from bot.clock import Clock
from collect import codes
from collect.models import RecordKind
from collect.schema import SCHEMAS, FieldSpec
from collect.text import no_spaces, squeeze

CHINA_TZ = dt.timezone(dt.timedelta(hours=8))  # no DST in China since 1991
MAX_AGE_YEARS = 120
_PROVINCES = frozenset({
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
    "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64",
    "65", "71", "81", "82", "83",
})
_PERMITS = {"81": "香港", "82": "澳门", "83": "台湾"}
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_FORMAT = re.compile(rf"^[{_USCC_ALPHABET}]{{2}}\d{{6}}[{_USCC_ALPHABET}]{{10}}$")
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_NAME = re.compile(r"^[\u3400-\u9fff\uf900-\ufaffA-Za-z·•. ]+$")


class Severity(StrEnum):
    ERROR = "error"  # refused: fix and resend
    CHECKSUM = "checksum"  # refused unless the sender replies 确认无误
    WARNING = "warning"  # stored after the sender replies 确认保存


@dataclass(frozen=True, slots=True)
class Issue:
    field: str
    severity: Severity
    message: str


@dataclass(frozen=True, slots=True)
class FieldResult:
    value: str
    issues: tuple[Issue, ...] = ()
    derived: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Checked:
    """A whole submission after validation: normalised values plus every issue found."""

    values: dict[str, str]
    issues: tuple[Issue, ...]

    @property
    def errors(self) -> tuple[Issue, ...]:
        return tuple(i for i in self.issues if i.severity is Severity.ERROR)

    @property
    def needs_override(self) -> bool:
        return any(i.severity is Severity.CHECKSUM for i in self.issues)

    @property
    def warnings(self) -> tuple[Issue, ...]:
        return tuple(i for i in self.issues if i.severity is not Severity.ERROR)

    def outcome(self) -> str:
        """'refuse', 'confirm' (warnings / checksum override pending) or 'accept'."""
        if self.errors:
            return "refuse"
        return "confirm" if self.warnings else "accept"


def today(clock: Clock) -> dt.date:
    """The date in China now, by the shared clock."""
    return dt.datetime.fromtimestamp(clock.now(), CHINA_TZ).date()


def _err(name: str, message: str, severity: Severity = Severity.ERROR) -> Issue:
    return Issue(name, severity, message)


def normalise_id_number(raw: str) -> str:
    return no_spaces(raw).upper().replace("-", "")


def check_id_number(raw: str, on: dt.date, name: str = "id_number",
                    label: str = "公民身份号码") -> FieldResult:
    """GB 11643: length, digits, MOD 11-2 check, a real past birth date; region as a warning."""
    value = normalise_id_number(raw)
    shape = _id_shape(value, name, label)
    if shape:
        return FieldResult(value, (shape,))
    if value[-1] != ric.calc_check_digit(value):
        return FieldResult(value, (_err(name, f"{label}：校验位（第18位）与前17位不符，可能有数字"
                                        "填错或顺序颠倒，请对照证件逐位核对后重新填写"),))
    born = _birth_date(value)
    if born is None:
        return FieldResult(value, (_err(name, f"{label}：第7–14位出生日期不是有效日期"
                                        "（年月日须真实存在），请核对"),))
    if born > on:
        return FieldResult(value, (_err(name, f"{label}：第7–14位出生日期晚于今天，"
                                        "请核对"),))
    if value[:2] not in _PROVINCES:
        return FieldResult(value, (_err(name, f"{label}：前两位省份代码 {value[:2]} 不存在，请核对"
                                        "前6位地址码"),))
    warnings = _region_warnings(value, born, name, label)
    if on.year - born.year > MAX_AGE_YEARS:
        warnings.append(_err(name, f"{label}：出生日期距今超过{MAX_AGE_YEARS}年，"
                             "请核实证件后确认", Severity.WARNING))
    sex = ("1", "男") if int(value[16]) % 2 else ("2", "女")
    derived = {"sex": sex[1], "birth_date": born.isoformat()}
    return FieldResult(value, tuple(warnings), derived)


def _id_shape(value: str, name: str, label: str) -> Issue | None:
    if not value:
        return _err(name, f"{label}：未填写，请填写18位身份证号码")
    if len(value) == 15 and value.isdigit():
        return _err(name, f"{label}：这是15位旧号码，请填写现行的18位号码（见身份证正面）")
    if len(value) != 18:
        return _err(name, f"{label}：应为18位，现为{len(value)}位，请核对后重新填写")
    if not value[:17].isdigit() or not (value[17].isdigit() or value[17] == "X"):
        return _err(name, f"{label}：前17位只能是数字，第18位是数字或X，请核对")
    return None


def _birth_date(value: str) -> dt.date | None:
    try:
        return dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return None


def _region_warnings(value: str, born: dt.date, name: str, label: str) -> list[Issue]:
    """The address code must have existed in the birth year; when not, ask to confirm."""
    code = value[:6]
    if value[:2] in _PERMITS:
        return [_err(name, f"{label}：{code} 开头是{_PERMITS[value[:2]]}居民居住证号码，"
                     "请核实证件后确认", Severity.WARNING)]
    counties = _counties(code)
    if not counties:
        return [_err(name, f"{label}：地址码 {code} 不在行政区划代码历史中，请核实证件后确认",
                     Severity.WARNING)]
    if any(start <= born.year <= end for start, end, _ in counties):
        return []
    start, end, county = counties[0]
    when = f"{start}年才启用，晚于" if start > born.year else f"{end}年已撤销，早于"
    return [_err(name, f"{label}：地址码 {code}（{county}）{when}证件上的出生年份；"
                 "补录户口时可能出现，请核实证件后确认", Severity.WARNING)]


def _counties(code: str) -> list[tuple[int, int, str]]:
    """(first year, last year, name) of each county stdnum's history knows under `code`."""
    info = {k: v for _, props in numdb.get("cn/loc").info(code) for k, v in props.items()}
    out = []
    for county in info.get("county", "").split(","):
        if not county:
            continue
        if not county.startswith("["):
            out.append((0, 9999, county))
            continue
        span, county_name = county[1:].split("]", 1)
        start, end = span.split("-")
        out.append((int(start or 0), int(end or 9999), county_name))
    return out


def check_uscc(raw: str, name: str = "uscc", label: str = "统一社会信用代码") -> FieldResult:
    """GB 32100 with our format rule (A/N/Y departments allowed) and stdnum's check digit."""
    value = no_spaces(raw).upper().replace("-", "")
    shape = _uscc_shape(value, name, label)
    if shape:
        return FieldResult(value, (shape,))
    category = codes.USCC_CATEGORIES.get((value[0], value[1]))
    derived = {"unit_type": category or "未知类别"}
    issues: list[Issue] = []
    if value[-1] != uscc.calc_check_digit(value[:17]):
        issues.append(_err(name, f"{label}：校验位（第18位）不符，请对照营业执照或登记证书"
                           "逐位核对；若与证照完全一致，回复「确认无误」保存", Severity.CHECKSUM))
    if category is None:
        issues.append(_err(name, f"{label}：第2位机构类别码 {value[1]} 不在已知类别中，请核对后"
                           "确认", Severity.WARNING))
    return FieldResult(value, tuple(issues), derived)


def _uscc_shape(value: str, name: str, label: str) -> Issue | None:
    if not value:
        return _err(name, f"{label}：未填写，请填写18位统一社会信用代码")
    if len(value) != 18:
        return _err(name, f"{label}：应为18位，现为{len(value)}位，请对照营业执照核对")
    bad = sorted({ch for ch in value if ch not in _USCC_ALPHABET})
    if bad:
        return _err(name, f"{label}：含有不会出现的字符 {'、'.join(bad)}"
                    "（代码中没有 I、O、Z、S、V 及汉字），请对照营业执照核对")
    if value[0] not in codes.USCC_DEPARTMENTS:
        return _err(name, f"{label}：第1位登记管理部门码 {value[0]} 无效，请核对")
    if not _USCC_FORMAT.match(value):
        return _err(name, f"{label}：第3–8位应为6位数字的行政区划代码，请核对")
    return None


def normalise_mobile(raw: str) -> str:
    """Drop spaces, dashes, brackets and a +86 / 0086 / 86 prefix."""
    digits = re.sub(r"[\s\-()（）]", "", squeeze(raw))
    for prefix in ("+86", "0086"):
        digits = digits.removeprefix(prefix)
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    return digits


def check_mobile(raw: str, name: str = "phone", label: str = "联系电话") -> FieldResult:
    value = normalise_mobile(raw)
    if not value:
        return FieldResult(value, (_err(name, f"{label}：未填写，请填写11位手机号码"),))
    if not _MOBILE.match(value):
        message = (f"{label}：应为1开头的11位手机号码（如 138xxxxxxxx），"
                   "现在的号码位数或号段不对，请核对")
        return FieldResult(value, (_err(name, message),))
    parsed = phonenumbers.parse(value, "CN")
    mobile_types = (phonenumbers.PhoneNumberType.MOBILE,
                    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)
    if phonenumbers.is_valid_number(parsed) and phonenumbers.number_type(parsed) in mobile_types:
        return FieldResult(value)
    message = f"{label}：号段 {value[:3]} 不在号码库中（可能是新号段），请与本人核实号码后确认"
    return FieldResult(value, (_err(name, message, Severity.WARNING),))


def check_name(raw: str, name: str = "name", label: str = "姓名") -> FieldResult:
    value = squeeze(raw)
    if not value:
        return FieldResult(value, (_err(name, f"{label}：未填写，请填写证件上的姓名"),))
    if not _NAME.match(value):
        return FieldResult(value, (_err(name, f"{label}：只能包含汉字、字母和间隔号“·”，"
                                        "请按证件填写"),))
    if len(value) > 30:
        return FieldResult(value, (_err(name, f"{label}：过长（最多30个字），请核对"),))
    return FieldResult(value)


def _choice(raw: str, name: str, label: str, table: Mapping[str, str], hint: str) -> FieldResult:
    value = no_spaces(raw)
    if value in table:
        return FieldResult(table[value])
    return FieldResult(value, (_err(name, f"{label}：无法识别“{value[:10]}”，请填写 {hint}"),))


def _coded(raw: str, name: str, label: str, table: dict[str, tuple[str, str]],
           hint: str) -> FieldResult:
    found = codes.lookup(table, no_spaces(raw))
    if found:
        return FieldResult(found[1], derived={f"{name}_code": found[0]})
    return FieldResult(no_spaces(raw), (_err(name, f"{label}：无法识别“{no_spaces(raw)[:10]}”，"
                                             f"请填写 {hint}"),))


def check_count(raw: str, name: str = "staff_count", label: str = "从业人数") -> FieldResult:
    value = no_spaces(raw).removesuffix("人")
    if value.isdigit() and int(value) <= 1_000_000:
        return FieldResult(str(int(value)))
    return FieldResult(value, (_err(name, f"{label}：请填写0或正整数，如 12"),))


def check_text(raw: str, spec: FieldSpec) -> FieldResult:
    value = squeeze(raw)
    if len(value) > spec.max_len:
        message = f"{spec.label}：过长（最多{spec.max_len}个字），请精简后重新填写"
        return FieldResult(value, (_err(spec.name, message),))
    return FieldResult(value)


Checker = Callable[[str, dt.date], FieldResult]
CHECKERS: dict[str, Checker] = {
    "name": lambda v, _: check_name(v),
    "id_number": lambda v, on: check_id_number(v, on),
    "phone": lambda v, _: check_mobile(v),
    "sex": lambda v, _: _coded(v, "sex", "性别", codes.SEX, "男 或 女"),
    "population_type": lambda v, _: _choice(v, "population_type", "人口类型",
                                            codes.POPULATION_TYPE, "常住、流动 或 境外"),
    "relation": lambda v, _: _coded(v, "relation", "与户主关系", codes.RELATION,
                                    "户主、配偶、子、女、父母、兄弟姐妹、其他 或 非亲属"),
    "usage": lambda v, _: _coded(v, "usage", "用途", codes.USAGE,
                                 "住宅、商业、办公、厂房、仓库 或 其他"),
    "occupancy": lambda v, _: _choice(v, "occupancy", "居住类型", codes.OCCUPANCY,
                                      "自住、出租 或 空置"),
    "owner_name": lambda v, _: check_name(v, "owner_name", "房主姓名"),
    "owner_id": lambda v, on: check_id_number(v, on, "owner_id", "房主身份证"),
    "owner_phone": lambda v, _: check_mobile(v, "owner_phone", "房主电话"),
    "legal_rep": lambda v, _: check_name(v, "legal_rep", "法定代表人"),
    "legal_rep_phone": lambda v, _: check_mobile(v, "legal_rep_phone", "法定代表人电话"),
    "uscc": lambda v, _: check_uscc(v),
    "staff_count": lambda v, _: check_count(v),
}


def check_record(kind: RecordKind, raw: Mapping[str, str], on: dt.date) -> Checked:
    """Validate every field of one submission; address and tenants are resolved by the service."""
    values: dict[str, str] = {}
    issues: list[Issue] = []
    derived: dict[str, str] = {}
    for spec in SCHEMAS[kind]:
        text = raw.get(spec.name, "").strip()
        if not text:
            if spec.required:
                issues.append(_err(spec.name, f"{spec.label}：未填写，{_fill_hint(spec)}"))
            continue
        result = _check_one(spec, text, on)
        values[spec.name] = result.value
        issues.extend(result.issues)
        derived.update(result.derived)
    issues.extend(_cross_check(values, derived))
    for name, value in derived.items():
        values.setdefault(name, value)
    return Checked(values, tuple(issues))


def _check_one(spec: FieldSpec, text: str, on: dt.date) -> FieldResult:
    if len(text) > spec.max_len * 2:  # before any parsing: oversized input is never processed
        return FieldResult(text[: spec.max_len], (_err(spec.name, f"{spec.label}：内容过长，"
                                                       "请核对后重新填写"),))
    checker = CHECKERS.get(spec.name)
    return checker(text, on) if checker else check_text(text, spec)


def _fill_hint(spec: FieldSpec) -> str:
    return spec.prompt.replace("请发送", "请填写") if spec.prompt else f"请填写{spec.label}"


def _cross_check(values: dict[str, str], derived: dict[str, str]) -> list[Issue]:
    """What the person stated must agree with what the ID number says."""
    issues = []
    if "sex" in values and "sex" in derived and values["sex"] != derived["sex"]:
        issues.append(_err("sex", f"性别：填写为{values['sex']}，但公民身份号码第17位表示"
                           f"{derived['sex']}，请核对性别或身份证号码"))
    stated = values.get("birth_date")
    if stated and "birth_date" in derived:
        parsed = _parse_date(stated)
        if parsed is None:
            issues.append(_err("birth_date", "出生日期：格式应为 YYYY-MM-DD，如 1990-01-31"))
        elif parsed.isoformat() != derived["birth_date"]:
            issues.append(_err("birth_date", "出生日期：与公民身份号码第7–14位不一致，"
                               "请核对出生日期或身份证号码"))
        else:
            values["birth_date"] = parsed.isoformat()
    return issues


def _parse_date(text: str) -> dt.date | None:
    digits = re.sub(r"[年月日./\-]", "-", no_spaces(text)).strip("-")
    parts = digits.split("-") if "-" in digits else [digits[:4], digits[4:6], digits[6:8]]
    try:
        return dt.date(int(parts[0]), int(parts[1]), int(parts[2]))
    except (ValueError, IndexError):
        return None
