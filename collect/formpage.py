"""Rendering of the self-declaration pages: every value escaped, errors next to their field."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from string import Template

from collect.codes import POPULATION_TYPE
from collect.models import RecordKind
from collect.validate import Issue, Severity
from registry.models import Node

ADDRESS_INPUTS = ("node", "street", "door", "building", "unit", "room")
POPULATION_CHOICES = ("常住人口", "流动人口", "境外人员")
RELATION_CHOICES = ("", "户主", "配偶", "子", "女", "父母", "祖父母", "孙辈", "兄弟姐妹", "其他",
                    "非亲属")
# validator fields shown in another input's slot
_SLOT_OF = {"sex": "id_number", "birth_date": "id_number", "unit_type": "uscc",
            "street": "address", "door": "address", "building": "address", "unit": "address",
            "room": "address"}


@dataclass(frozen=True, slots=True)
class Input:
    name: str
    label: str
    required: bool = False
    max_len: int = 30
    mode: str = "text"  # inputmode
    hint: str = ""
    choices: tuple[str, ...] = ()  # a <select> when given
    secret: bool = False  # a personal number: never sent back in full (kept server-side)


KIND_INPUTS: dict[RecordKind, tuple[Input, ...]] = {
    RecordKind.PERSON: (
        Input("name", "姓名", True), Input("id_number", "公民身份号码", True, 24,
                                          hint="18位，最后一位可能是 X", secret=True),
        Input("phone", "手机号码", True, 24, "tel", secret=True),
        Input("population_type", "人口类型", True, choices=POPULATION_CHOICES),
        Input("relation", "与户主关系", choices=RELATION_CHOICES),
    ),
    RecordKind.UNIT: (
        Input("unit_name", "单位名称", True, 60), Input("uscc", "统一社会信用代码", True, 24,
                                                     hint="18位，见营业执照或登记证书"),
        Input("legal_rep", "法定代表人", True), Input("legal_rep_phone", "联系电话", False, 24,
                                                   "tel", secret=True),
        Input("staff_count", "从业人数", False, 8, "numeric"),
    ),
}
TITLES = {RecordKind.PERSON: ("实有人口自主申报", "本人信息", "现住地址"),
          RecordKind.UNIT: ("实有单位自主申报", "单位信息", "经营场所地址")}


def field_names(kind: RecordKind) -> tuple[str, ...]:
    return (*(i.name for i in KIND_INPUTS[kind]), *ADDRESS_INPUTS)


def _template(name: str) -> Template:
    return Template(resources.files("collect").joinpath("templates", name).read_text("utf-8"))


FORM = _template("form.html")
MESSAGE = _template("message.html")


def _esc(value: str) -> str:
    return html.escape(value, quote=True)


def _select(spec: Input, selected: str) -> str:
    values = spec.choices if spec.choices[0] == "" else ("", *spec.choices)
    blank = "请选择" if spec.required else "（可不填）"
    options = "".join(f'<option value="{_esc(v)}"{" selected" if v == selected else ""}>'
                      f"{_esc(v or blank)}</option>" for v in values)
    return f'<select id="{spec.name}" name="{spec.name}">{options}</select>'


def _input(spec: Input, value: str, error: str, failing: bool, kept: str = "") -> str:
    req = '<span class="req">*</span>' if spec.required else ""
    if spec.choices:
        control = _select(spec, value)
    else:
        shown = "" if spec.secret else value
        holder = f' placeholder="{_esc(kept)}"' if kept else ""
        control = (f'<input id="{spec.name}" name="{spec.name}" maxlength="{spec.max_len}" '
                   f'inputmode="{spec.mode}" value="{_esc(shown)}"{holder}>')
    note = f"已保留 {kept}，不改可留空" if kept else spec.hint
    hint = f'<div class="hint">{_esc(note)}</div>' if note else ""
    css = "has-err" if failing else ""
    return (f'<div class="{css}"><label for="{spec.name}">{_esc(spec.label)}{req}</label>'
            f"{control}{error}{hint}</div>")


def _building_select(buildings: Sequence[Node], selected: str) -> str:
    if not buildings:
        return ""
    options = [("", "不在列表中／不确定")] + [(b.code, b.name) for b in buildings]
    rendered = "".join(f'<option value="{_esc(code)}"{" selected" if code == selected else ""}>'
                       f"{_esc(name)}</option>" for code, name in options)
    return f'<label for="node">所在楼栋</label><select id="node" name="node">{rendered}</select>'


def _slot(field: str, slots: Sequence[str]) -> str:
    slot = _SLOT_OF.get(field, field)
    return slot if slot in slots else "address"


def _issue_html(issues: Sequence[Issue], slots: Sequence[str]) -> dict[str, str]:
    out: dict[str, list[str]] = {}
    for issue in issues:
        slot = _slot(issue.field, slots)
        css = "err" if issue.severity is Severity.ERROR else "warn"
        out.setdefault(slot, []).append(f'<div class="{css}" data-field="{slot}">'
                                        f"{_esc(issue.message)}</div>")
    return {slot: "".join(parts) for slot, parts in out.items()}


def _tabs(kind: RecordKind) -> str:
    links = ((RecordKind.PERSON, "个人申报"), (RecordKind.UNIT, "单位申报"))
    on = ' class="on"'
    return '<nav class="tabs">' + "".join(
        f'<a href="?t={k.value}"{on if k is kind else ""}>{label}</a>'
        for k, label in links) + "</nav>"


@dataclass(frozen=True, slots=True)
class FormView:
    kind: RecordKind
    place: str
    deadline: str
    csrf: str
    nonce: str
    values: Mapping[str, str]
    issues: Sequence[Issue] = ()
    buildings: Sequence[Node] = ()
    note: str = ""
    draft: str = ""  # reference of the numbers kept server-side for this form
    kept: Mapping[str, str] = field(default_factory=dict)  # masked copies of those numbers


def render_form(view: FormView) -> str:
    inputs = KIND_INPUTS[view.kind]
    slots = (*(i.name for i in inputs), "node", "address")
    errors = _issue_html(view.issues, slots)
    failing = {_slot(i.field, slots) for i in view.issues if i.severity is Severity.ERROR}
    fields = "\n".join(_input(i, _shown(i, view.values), errors.get(i.name, ""), i.name in failing,
                              view.kept.get(i.name, "")) for i in inputs)
    warned = [i for i in view.issues if i.severity is not Severity.ERROR]
    confirm = ('<div class="card"><label class="confirm"><input type="checkbox" name="confirm" '
               'value="1" id="confirm">我已核实上述提示，所填信息与证件、证照一致</label></div>'
               if warned and not failing else "")
    title, section, address_title = TITLES[view.kind]
    plain = {n: _esc(view.values.get(n, "")) for n in ADDRESS_INPUTS if n != "node"}
    return FORM.substitute(
        title=title, section=section, address_title=address_title, kind=view.kind.value,
        draft=_esc(view.draft),
        place=_esc(view.place), deadline=_esc(view.deadline), csrf=_esc(view.csrf),
        nonce=view.nonce, banner=_banner(view.note), tabs=_tabs(view.kind), fields=fields,
        confirm_block=confirm, err_node=errors.get("node", ""),
        cls_node="has-err" if "node" in failing else "",
        err_address=errors.get("address", ""),
        cls_address="has-err" if "address" in failing else "",
        building_select=_building_select(view.buildings, view.values.get("node", "")), **plain)


def _shown(spec: Input, values: Mapping[str, str]) -> str:
    value = values.get(spec.name, "")
    if spec.name == "population_type":
        return POPULATION_TYPE.get(value, "")
    return value


def _banner(text: str) -> str:
    return f'<div class="card notice">{_esc(text)}</div>' if text else ""


def render_message(title: str, text: str, nonce: str,
                   details: Sequence[tuple[str, str]] = ()) -> str:
    rows = "".join(f"<dt>{_esc(k)}</dt><dd>{_esc(v)}</dd>" for k, v in details)
    return MESSAGE.substitute(title=_esc(title), text=_esc(text), nonce=nonce,
                              details=f"<dl>{rows}</dl>" if rows else "")
