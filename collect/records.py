"""Between validated values and stored records: sealing, revealing and diffing field values."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

from collect.crypto import FieldCipher
from collect.models import Change, Record, RecordKind
from collect.schema import SCHEMAS, spec

# stored alongside the schema's fields; never typed by users
CODE_FIELDS = ("sex_code", "relation_code", "usage_code")
RECORD_FIELDS = ("address_id", "address_full", "status", "under14", "id_bidx")
_SKIP = frozenset({"address", "node"})


def compose(kind: RecordKind, record_id: str, values: Mapping[str, str],
            cipher: FieldCipher) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """(plain fields, sealed fields, masked copies) of `values` for record `record_id`."""
    fields: dict[str, str] = {}
    sealed: dict[str, str] = {}
    masked: dict[str, str] = {}
    for field_spec in SCHEMAS[kind]:
        value = values.get(field_spec.name, "")
        if field_spec.name in _SKIP or not value:
            continue
        if field_spec.sealed:
            sealed[field_spec.name] = cipher.seal(value, record_id, field_spec.name)
            masked[field_spec.name] = field_spec.mask(value)
        else:
            fields[field_spec.name] = value
    for name in (*CODE_FIELDS, *RECORD_FIELDS):
        if values.get(name):
            fields[name] = values[name]
    return fields, sealed, masked


def reveal(record: Record, cipher: FieldCipher) -> dict[str, str]:
    """Every value of `record` in clear: only for validation, officers' exports and rekeying."""
    plain = dict(record.fields)
    for name, sealed in record.sealed.items():
        plain[name] = cipher.open(sealed, record.id, name)
    return plain


Merged = tuple[Record, tuple[Change, ...]]


def merge(record: Record, new: Mapping[str, str], cipher: FieldCipher) -> Merged:
    """`record` with `new` values applied (absent ones kept) and the changes, masked."""
    old = reveal(record, cipher)
    wanted = {**old, **{k: v for k, v in new.items() if v}}
    changes = tuple(_change(record.kind, name, old.get(name, ""), wanted[name])
                    for name in sorted(wanted) if wanted[name] != old.get(name, "")
                    and name not in CODE_FIELDS and name not in ("id_bidx", "address_full"))
    if not changes:
        return record, ()
    fields, sealed, masked = compose(record.kind, record.id, wanted, cipher)
    # unchanged sealed values keep their ciphertext (no needless re-encryption)
    for name in sealed:
        if wanted.get(name) == old.get(name) and name in record.sealed:
            sealed[name] = record.sealed[name]
    return replace(record, fields=fields, sealed=sealed, masked=masked), changes


def _change(kind: RecordKind, name: str, old: str, new: str) -> Change:
    label, mask = label_of(kind, name), _masker(kind, name)
    return Change(label, mask(old) if old else "", mask(new) if new else "")


def label_of(kind: RecordKind, name: str) -> str:
    extra = {"address_id": "地址编号", "status": "状态", "under14": "未满14周岁",
             "tenants": "承租人", "unit_type": "单位类型"}
    if name in extra:
        return extra[name]
    try:
        return spec(kind, name).label
    except StopIteration:
        return name


def _masker(kind: RecordKind, name: str) -> Callable[[str], str]:
    try:
        return spec(kind, name).mask
    except StopIteration:
        return lambda value: value
